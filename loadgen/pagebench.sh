#!/bin/bash
# Usage: loadgen/pagebench.sh 1000000|100000000
# Whole-request server time (loopback, `curl time_total`, 20 runs after 3 warm-ups) of the
# dashboard pages with their SVG charts and of the REST reads, on a fixture built by
# `cargo bench -p engine --bench dashboards`. Needs `cargo build --release -p modelwatch`.
cd "$(dirname "$0")/.."
LOGS=$1
END=$(( 1795000000000 / 3600000 * 3600000 ))
FROM=$(( END - 30*86400000 ))
FROM24=$(( END - 86400000 ))
set -u
rm -rf /tmp/pagebench; mkdir -p /tmp/pagebench
# Port 18091 on loopback; the fixture gets this build's migrations.
export MODELWATCH_DATA_DIR=/tmp/pagebench MODELWATCH_LISTEN=127.0.0.1:18091 MODELWATCH_ADMIN_PASSWORD=bench-password-1
export MODELWATCH_DATABASE_URL=sqlite://$PWD/target/bench-fixtures/dashboards-$LOGS.db
target/release/modelwatch serve > /tmp/pagebench/serve.log 2>&1 &
PID=$!
for i in $(seq 60); do curl -sf http://127.0.0.1:18091/readyz >/dev/null && break; sleep 0.5; done
J=/tmp/pagebench/cookies
curl -s -c $J -o /dev/null -H "Origin: http://127.0.0.1:18091" --data "username=admin&password=bench-password-1" http://127.0.0.1:18091/auth/login
m() { # label url
  for i in $(seq 3); do curl -s -b $J -o /dev/null "$2"; done  # warm
  for i in $(seq 20); do curl -s -b $J -o /tmp/pagebench/out -w "%{time_total}\n" "$2"; done | sort -n | awk -v l="$1" -v f=/tmp/pagebench/out '{a[NR]=$1} END {getline sz < f; printf "%-40s p50 %.1f ms  max %.1f ms\n", l, a[10]*1000, a[NR]*1000}'
  printf "   bytes %s, svg %s\n" "$(wc -c < /tmp/pagebench/out)" "$(grep -o '<svg' /tmp/pagebench/out | wc -l)"
}
B=http://127.0.0.1:18091
m "model page 30d (HTML+SVG)" "$B/models/model-07?from=$FROM&to=$END"
m "model page 24h (HTML+SVG)" "$B/models/model-07?from=$FROM24&to=$END"
m "overview 30d (HTML)" "$B/?from=$FROM&to=$END"
m "API kpis 30d" "$B/api/v1/models/model-07/kpis?from=$FROM&to=$END"
m "API breakdown user 30d" "$B/api/v1/models/model-07/breakdown?by=user&from=$FROM&to=$END"
kill -INT $PID; wait $PID
