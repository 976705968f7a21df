"""`trailhouse bench` at a small size: it completes and the counts agree (speed is never asserted)."""

from __future__ import annotations

import json

from jobs.cli import main
from jobs.generate import GENERATOR_VERSION


def test_bench_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--events", "20000", "--workdir", str(tmp_path / "work"), "--workers", "2",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["results"]]
    assert names == ["trailhouse ingest", "trailhouse --no-original", "duckdb-only load", "per-event python",
                     "floor (gunzip+parse)"]
    assert 20000 <= report["events"] < 20200 and report["distinct_events"] == 20000
    by = {r["name"]: r for r in report["results"]}
    for name in names:
        assert by[name]["seconds"] > 0 and by[name]["peak_rss_mb"] > 10 and by[name]["events_per_second"] > 0
    assert by["per-event python"]["events"] == 20000
    for name in ("trailhouse ingest", "trailhouse --no-original", "duckdb-only load"):
        assert by[name]["events"] == report["events"] and by[name]["bytes_per_event"] > 0
    assert by["trailhouse --no-original"]["bytes_per_event"] < by["trailhouse ingest"]["bytes_per_event"]
    assert by["trailhouse ingest"]["trailhouse_ratio"] == 1.0
    printed = capsys.readouterr().out
    assert "duckdb-only load" in printed and "trailhouse ×" in printed
    # the bucket is cached: a second run reuses it
    assert (tmp_path / "work" / f"bucket-20000-1-g{GENERATOR_VERSION}" / ".complete").exists()
