#!/usr/bin/env bash
# Modelwatch's two set-up commands (see README):
#   ./dev.sh run [serve flags]  build the release binary (browser bundle embedded) and start it
#                               on embedded SQLite at http://127.0.0.1:8080
#   ./dev.sh test               install what the tests need, then run every test (CI runs this)
# Other subcommands, for development: site (browser bundle only), build (release binary only).
#
# No cargo-leptos: it takes 31 minutes to install on the target machines. cargo builds the
# wasm, wasm-bindgen (pinned to the version in Cargo.lock) generates the loader, and the server
# embeds target/site.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
SITE="$ROOT/target/site"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want; want=$(wasm_bindgen_version)
  if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (once, about 5 minutes)"
    # Not --locked: its lock file pins a yanked webpki-roots that crates.io no longer serves.
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

# The browser bundle: target/site/pkg/modelwatch{.js,_bg.wasm,.css} plus public/.
# Files are replaced only when their content changed: the release binary embeds target/site,
# and a new mtime alone would make cargo rebuild it on every run.
build_site() {
  ensure_rust_tools
  log "building the browser bundle"
  cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
  local stage="$ROOT/target/site-stage"
  rm -rf "$stage" && mkdir -p "$stage/pkg"
  wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$stage/pkg" --out-name modelwatch target/wasm32-unknown-unknown/wasm-release/frontend.wasm
  cp style/modelwatch.css "$stage/pkg/modelwatch.css"
  cp -R public/. "$stage/"
  (cd "$stage" && find . -type f) | while read -r f; do
    if ! cmp -s "$stage/$f" "$SITE/$f"; then
      mkdir -p "$(dirname "$SITE/$f")" && cp "$stage/$f" "$SITE/$f"
    fi
  done
}

build_release() {
  build_site
  log "building the modelwatch binary (release)"
  cargo build -p modelwatch --release
}

ensure_test_packages() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "installing python3-venv from Debian's packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
  fi
  # The real OpenTelemetry Python SDK, which the OTLP tests export with (versions pinned).
  local venv="$ROOT/target/otel-venv"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s end2end/otel/requirements.txt "$venv/requirements.txt"; then
    log "installing the OpenTelemetry Python SDK for the OTLP tests (virtualenv in target/otel-venv)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r end2end/otel/requirements.txt
    cp end2end/otel/requirements.txt "$venv/requirements.txt"
  fi
  if [ ! -d end2end/node_modules/playwright-core ]; then
    log "installing the browser-test driver (playwright-core; it uses Debian's Chromium)"
    (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# A throwaway Postgres cluster on loopback for the storage and server tests.
PG_TMP=""
start_postgres() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_TMP=$(mktemp -d /tmp/modelwatch-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$PG_TMP"; run=(runuser -u postgres --); fi
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  log "starting a throwaway Postgres on 127.0.0.1:$port"
  "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -A trust -U postgres >/dev/null
  # A self-signed certificate, so the tests also connect with sslmode=require.
  "${run[@]}" openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$PG_TMP/data/server.key" -out "$PG_TMP/data/server.crt" >/dev/null 2>&1
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w start \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 -c ssl=on" >/dev/null
  export MODELWATCH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  PG_RUN=("${run[@]}"); PG_BIN=$bin
  trap stop_postgres EXIT
}
stop_postgres() {
  if [ -n "$PG_TMP" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}

run_tests() {
  ensure_test_packages
  build_site
  start_postgres
  export MODELWATCH_REQUIRE_POSTGRES=1   # the Postgres half of the suite must not skip itself
  export MODELWATCH_OTEL_PYTHON="$ROOT/target/otel-venv/bin/python" MODELWATCH_REQUIRE_OTEL_PYTHON=1
  # No incremental caches: a test run builds each crate once, and the caches would roughly
  # double the disk the build takes.
  export CARGO_INCREMENTAL=0
  local out; out=$(mktemp)
  log "Rust tests (engine, app, server; SQLite and Postgres)"
  # Per package: a workspace-wide build would enable the ssr and hydrate features together.
  local status=0
  timeout 1200 cargo test --no-fail-fast -p engine --features server 2>&1 | tee -a "$out" || status=1
  timeout 1200 cargo test --no-fail-fast -p app --features ssr 2>&1 | tee -a "$out" || status=1
  timeout 1200 cargo test --no-fail-fast -p modelwatch 2>&1 | tee -a "$out" || status=1
  timeout 1200 cargo test --no-fail-fast -p loadgen 2>&1 | tee -a "$out" || status=1
  log "browser tests (Chromium)"
  # The binary cargo built for the server's integration tests above: building it again
  # without the dev-dependencies would recompile half the tree with other features.
  [ -x "$ROOT/target/debug/modelwatch" ] || cargo build -p modelwatch
  (cd end2end && MODELWATCH_BIN="$ROOT/target/debug/modelwatch" node --test --test-reporter=spec tests/) 2>&1 | tee -a "$out" || status=1
  # One closing line over every runner above.
  local passed failed
  passed=$(( $(grep -oE 'test result: .*\. ([0-9]+) passed' "$out" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}') \
           + $(grep -E '^ℹ pass [0-9]+' "$out" | awk '{s+=$3} END {print s+0}') ))
  failed=$(( $(grep -oE '([0-9]+) failed' "$out" | grep -v '^0' | awk '{s+=$1} END {print s+0}') \
           + $(grep -E '^ℹ fail [0-9]+' "$out" | awk '{s+=$3} END {print s+0}') ))
  rm -f "$out"
  if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  echo "$passed passed, $failed failed"
  return "$status"
}

case "${1:-}" in
  run)
    shift
    build_release
    if [ "${1:-}" = demo ]; then
      shift
      log "starting Modelwatch with demo data on embedded SQLite (data in ./data); Ctrl-C stops it"
      exec target/release/modelwatch demo "$@"
    fi
    log "starting Modelwatch on embedded SQLite (data in ./data); Ctrl-C stops it"
    exec target/release/modelwatch serve "$@"
    ;;
  test) run_tests ;;
  site) build_site ;;
  build) build_release ;;
  *) echo "usage: ./dev.sh run | test" >&2; exit 2 ;;
esac
