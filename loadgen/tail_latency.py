#!/usr/bin/env python3
"""Live-tail delivery time: from an ingest acknowledgement to the `log` event on the tail.

Usage: loadgen/tail_latency.py URL KEY [SAMPLES]

Opens `GET /api/v1/logs/tail?model=tail-probe&trace_id=...` with a key that has the `ingest`
and `read` scopes, then sends one marker record at a time (`POST /api/v1/logs`) and times
how long after the 200 the record arrives as an event. Run it alone, or while
`modelwatch-loadgen` drives ingest at full speed on other models, to see that the tail keeps
up. Standard library only.
"""

import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
key = sys.argv[2]
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 50
model = "tail-probe"
arrived = {}
ready = threading.Event()


def listen():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", f"/api/v1/logs/tail?model={model}", headers={"Authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"tail answered {resp.status}: {resp.read()[:200]!r}")
    event = None
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "ready":
            ready.set()
        elif line.startswith("data:") and event == "log":
            trace = json.loads(line[5:])["trace_id"]
            arrived[trace] = time.monotonic()


def send(conn, trace):
    body = json.dumps([{"model": model, "timestamp": int(time.time() * 1000), "trace_id": trace}])
    conn.request("POST", "/api/v1/logs", body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        sys.exit(f"ingest answered {resp.status}")
    return time.monotonic()


# The model must exist before the tail can be opened on it.
post = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
send(post, "tail-probe-warmup")
threading.Thread(target=listen, daemon=True).start()
if not ready.wait(10):
    sys.exit("the tail did not open")
delays = []
for i in range(samples):
    trace = f"tail-probe-{time.time_ns()}-{i}"
    acked = send(post, trace)
    deadline = acked + 10
    while trace not in arrived and time.monotonic() < deadline:
        time.sleep(0.002)
    if trace not in arrived:
        sys.exit(f"{trace} did not arrive within 10 s")
    delays.append((arrived[trace] - acked) * 1000)
    time.sleep(0.137)  # spread the sends over the poll interval
delays.sort()
p95 = delays[int(len(delays) * 0.95) - 1]
print(f"{samples} records: ack -> tail event p50 {statistics.median(delays):.0f} ms, p95 {p95:.0f} ms, max {delays[-1]:.0f} ms")
