#!/usr/bin/env python3
"""Estimates the disk per log if log rows were stored in compressed columnar blocks.

Reads the logs of a Modelwatch SQLite database (e.g. after a load-generator run), groups them
per model into blocks of BLOCK consecutive logs, encodes each column of a block on its own
(ids and timestamps as zigzag varint deltas, numbers as varints or 8-byte floats, text and
binary ids length-prefixed, metadata resolved from `log_metadata`) and compresses it with zstd
at LEVEL. Prints bytes per log in total and per column, plus 24 bytes per block for a header.

An estimate for planning (docs/benchmarks.md), not part of the product.

    pip install zstandard
    python3 docs/tools/columnar_estimate.py data/modelwatch.db [BLOCK=4096] [LEVEL=3]

Caveat: the load generator replays 64 pre-built batches, so with blocks that span more than
~64,000 records of one model its "random" trace, span and session ids repeat and compress;
keep BLOCK × (number of models) under that.
"""
import sqlite3
import struct
import sys

import zstandard

COLUMNS = [
    "id", "ts", "model_id", "series_id", "flags", "level", "http_status", "latency_ms", "ttft_ms",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "feedback", "error_type", "message",
    "error_message", "user_id", "session_id", "trace_id", "span_id",
    "CASE WHEN metadata_ref IS NULL THEN metadata ELSE "
    "(SELECT body FROM log_metadata WHERE log_metadata.id = metadata_ref) END",
]
NAMES = COLUMNS[:-1] + ["metadata"]
DELTA = {0, 1}  # id, ts
PER_BLOCK = {2}  # model_id: in the block header


def varint(n, out):
    n = (n << 1) ^ (n >> 63)
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def encode(values, delta):
    out, prev = bytearray(), 0
    for v in values:
        if delta:
            varint(v - prev, out)
            prev = v
        elif v is None:
            out.append(0)
        elif isinstance(v, float):
            out += b"\x01" + struct.pack("<d", v)
        elif isinstance(v, int):
            out.append(1)
            varint(v, out)
        else:
            b = v if isinstance(v, bytes) else v.encode()
            varint(len(b) + 1, out)
            out += b
    return bytes(out)


def main():
    db = sys.argv[1]
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    level = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    conn = sqlite3.connect(db)
    z = zstandard.ZstdCompressor(level=level)
    per_column = [0] * len(COLUMNS)
    total = logs = 0
    sql = f"SELECT {', '.join(COLUMNS)} FROM logs WHERE model_id = ? ORDER BY id"
    for (model,) in conn.execute("SELECT DISTINCT model_id FROM logs").fetchall():
        rows = conn.execute(sql, (model,)).fetchall()
        for start in range(0, len(rows), block):
            chunk = rows[start:start + block]
            logs += len(chunk)
            total += 24
            for c in range(len(COLUMNS)):
                if c in PER_BLOCK:
                    continue
                size = len(z.compress(encode([r[c] for r in chunk], c in DELTA)))
                per_column[c] += size
                total += size
    print(f"logs {logs}, blocks of {block}, zstd level {level}: {total / logs:.1f} B/log")
    for name, size in sorted(zip(NAMES, per_column), key=lambda x: -x[1]):
        if size:
            print(f"  {name:14} {size / logs:6.2f}")


if __name__ == "__main__":
    main()
