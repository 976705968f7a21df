"""What users would do instead of trailhouse, run by `trailhouse bench` as separate processes.

    python -m jobs.bench_alternatives duckdb BUCKET OUT.parquet THREADS
    python -m jobs.bench_alternatives python BUCKET MAX_EVENTS
    python -m jobs.bench_alternatives floor  BUCKET PROCESSES
"""

from __future__ import annotations

import gzip
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import msgspec
from isal import igzip

from jobs.sql import sql_string


class _Envelope(msgspec.Struct):
    Records: list[msgspec.Raw]


def _files(bucket: str) -> list[str]:
    return sorted(str(p) for p in Path(bucket).rglob("*.json.gz") if "/CloudTrail/" in str(p))


def duckdb_only(bucket: str, out: str, threads: int) -> int:
    """The load a DuckDB user writes: unnest Records straight to Parquet, no normalization."""
    import duckdb

    con = duckdb.connect(config={"threads": threads})
    glob = f"{bucket}/AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"
    return con.execute(f"COPY (SELECT unnest(Records, recursive := true) FROM read_json({sql_string(glob)})) "
                       f"TO {sql_string(out)} (FORMAT parquet)").fetchall()[0][0]


def per_event_python(bucket: str, limit: int) -> int:
    """The straightforward normalizer: json.loads each file, then a dict and a ua-parser call per event."""
    import ua_parser

    done = 0
    for f in _files(bucket):
        for rec in json.loads(gzip.decompress(Path(f).read_bytes()))["Records"]:
            ua = ua_parser.parse(rec.get("userAgent") or "")
            ident = rec.get("userIdentity") or {}
            _row = {
                "@timestamp": rec.get("eventTime"), "event.action": rec.get("eventName"),
                "event.provider": rec.get("eventSource"), "event.id": rec.get("eventID"),
                "event.outcome": "failure" if rec.get("errorCode") or rec.get("errorMessage") else "success",
                "user.name": ident.get("userName"), "source.address": rec.get("sourceIPAddress"),
                "user_agent.name": ua.user_agent.family if ua.user_agent else "Other",
                "request_parameters": json.dumps(rec.get("requestParameters")),
                "event.original": json.dumps(rec),
            }
            done += 1
            if done >= limit:
                return done
    return done


def _parse_file(path: str) -> int:
    return len(msgspec.json.decode(igzip.decompress(Path(path).read_bytes()), type=_Envelope).Records)


def floor(bucket: str, processes: int) -> int:
    """Decompress and JSON-parse every file, nothing else: no tool can do less."""
    with ProcessPoolExecutor(processes) as pool:
        return sum(pool.map(_parse_file, _files(bucket), chunksize=16))


if __name__ == "__main__":
    kind, bucket, *rest = sys.argv[1:]
    if kind == "duckdb":
        n = duckdb_only(bucket, rest[0], int(rest[1]))
    elif kind == "python":
        n = per_event_python(bucket, int(rest[0]))
    else:
        n = floor(bucket, int(rest[0]))
    print(n)
