"""`trailhouse bench` at a small size: it completes and the counts agree (speed is never asserted)."""

from __future__ import annotations

import json

from jobs.bench import Result, median_of
from jobs.cli import main
from jobs.generate import GENERATOR_VERSION


def test_bench_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--events", "20000", "--workdir", str(tmp_path / "work"), "--workers", "2",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["results"]]
    assert names == ["trailhouse ingest", "trailhouse compact", "trailhouse --no-original", "duckdb-only load", "per-event python",
                     "floor (gunzip+parse)"]
    assert 20000 <= report["events"] < 20200 and report["distinct_events"] == 20000
    by = {r["name"]: r for r in report["results"]}
    for name in names:
        assert by[name]["seconds"] > 0 and by[name]["peak_rss_mb"] > 10 and by[name]["events_per_second"] > 0
    assert by["per-event python"]["events"] == 20000
    assert report["repeat"] == 1 and all(len(r["runs_events_per_second"]) == len(r["runs_peak_rss_mb"]) == 1
                                       for r in report["results"])
    for name in ("trailhouse ingest", "trailhouse --no-original", "duckdb-only load"):
        assert by[name]["events"] == report["events"] and by[name]["bytes_per_event"] > 0
    assert by["trailhouse --no-original"]["bytes_per_event"] < by["trailhouse ingest"]["bytes_per_event"]
    # the compaction rewrites the ingest's lake smaller (and the counts, checked by the bench, still agree)
    assert by["trailhouse compact"]["bytes_per_event"] < by["trailhouse ingest"]["bytes_per_event"]
    assert by["trailhouse ingest"]["trailhouse_ratio"] == 1.0
    for r in report["results"]:  # each process's own peak, from the same samples as the tree's
        assert 10 < r["driver_peak_mb"] <= r["peak_rss_mb"] and r["child_peak_mb"] <= r["peak_rss_mb"]
        assert (r["children"] > 0) == (r["child_peak_mb"] > 0)
    printed = capsys.readouterr().out
    assert "duckdb-only load" in printed and "trailhouse ×" in printed
    assert "peak RSS of each process on its own" in printed
    # the bucket is cached: a second run reuses it
    assert (tmp_path / "work" / f"bucket-20000-1-g{GENERATOR_VERSION}" / ".complete").exists()


def test_repeated_rows_report_the_median_run_and_the_highest_peak():
    runs = [Result("x", 1000, s, rss, 10, driver, child, 2)
            for s, rss, driver, child in ((2.0, 300.0, 40.0, 250.0), (1.0, 500.0, 30.0, 400.0), (4.0, 200.0, 90.0, 100.0))]
    mid = median_of(runs)
    assert (mid.seconds, mid.peak_rss_mb, mid.events_per_second) == (2.0, 500.0, 500.0)
    assert (mid.driver_peak_mb, mid.child_peak_mb, mid.children) == (90.0, 400.0, 2)  # each its highest run
    assert median_of(runs[:2]).seconds == 1.0  # an even count takes the faster of the middle two
