#!/usr/bin/env python3
"""Threshold breach → webhook delivered: how long it takes with the server's settings.

Usage: alert_latency.py BASE_URL ADMIN_PASSWORD [ROUNDS]

Against a running Modelwatch (e.g. `target/release/modelwatch serve` with default settings),
it signs in as `admin`, creates an ingest key and a webhook channel pointing at a receiver it
runs on 127.0.0.1, then per round: creates an error-rate rule (1-minute window, critical above
50 %) on a fresh model, waits a random 0–10 s (a random phase against the evaluation
cycle), ingests ten failed calls for that model, and measures from the moment
the ingest request was acknowledged to the moment the firing webhook arrives. Prints each
round and the p50 / p95 / max. Standard library only.
"""

import http.cookiejar
import random
import http.server
import json
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

BASE, PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 10

arrivals = {}  # model -> monotonic time the firing webhook arrived
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        now = time.monotonic()
        if body.get("type") == "alert.firing":
            with lock:
                for a in body["alerts"]:
                    arrivals.setdefault(a["model"], now)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"

jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def form(path, fields):
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(BASE + path, data=data, headers={"accept": "application/json"})
    with opener.open(req) as r:
        text = r.read().decode()
    return json.loads(text) if text else None


login = urllib.request.Request(BASE + "/auth/login", data=urllib.parse.urlencode({"username": "admin", "password": PASSWORD}).encode())
with opener.open(login) as r:
    r.read()
assert any(c.name for c in jar), "login failed: no session cookie"
key = form("/fn/create_api_key", {"name": f"alert-latency-{int(time.time())}", "scope_ingest": "on"})
channel = form("/fn/create_channel", {"name": f"latency-hook-{int(time.time())}", "kind": "webhook", "url": hook_url})

latencies = []
for i in range(ROUNDS):
    model = f"latency-{int(time.time())}-{i}"
    form("/fn/save_alert_rule", {
        "rule[name]": f"latency probe {i}", "rule[models]": model, "rule[kind]": "threshold",
        "rule[metric]": "error_rate", "rule[window_minutes]": "1", "rule[comparison]": ">",
        "rule[critical]": "50", "rule[enabled]": "on", "rule[channels][]": str(channel["id"]),
    })
    # A random phase against the evaluation cycle, so the rounds sample all of it.
    time.sleep(random.uniform(0, 10))
    records = [{"model": model, "status": "error", "error_type": "timeout"} for _ in range(10)]
    req = urllib.request.Request(BASE + "/api/v1/logs", data=json.dumps(records).encode(),
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    acked = time.monotonic()
    deadline = acked + 60
    while time.monotonic() < deadline:
        with lock:
            if model in arrivals:
                break
        time.sleep(0.02)
    with lock:
        got = arrivals.get(model)
    if got is None:
        print(f"round {i}: no webhook within 60 s")
        continue
    latencies.append(got - acked)
    print(f"round {i}: {got - acked:.2f} s")

if latencies:
    s = sorted(latencies)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    print(f"breach → webhook over {len(s)} rounds: p50 {statistics.median(s):.2f} s, p95 {p95:.2f} s, max {s[-1]:.2f} s")
