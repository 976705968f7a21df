"""`trailhouse bench` at a small size: it completes and the counts agree (speed is never asserted)."""

from __future__ import annotations

import json

from jobs.bench import Result, median_of, render, round_ratios
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
        assert by[name]["seconds"] > 0 and by[name]["peak_rss_mib"] > 10 and by[name]["events_per_second"] > 0
    assert by["per-event python"]["events"] == 20000
    assert report["repeat"] == 1 and all(len(r["runs_events_per_second"]) == len(r["runs_peak_rss_mib"]) == 1
                                       for r in report["results"])
    for name in ("trailhouse ingest", "trailhouse --no-original", "duckdb-only load"):
        assert by[name]["events"] == report["events"] and by[name]["bytes_per_event"] > 0
    assert by["trailhouse --no-original"]["bytes_per_event"] < by["trailhouse ingest"]["bytes_per_event"]
    # the compaction rewrites the ingest's lake smaller (and the counts, checked by the bench, still agree)
    assert by["trailhouse compact"]["bytes_per_event"] < by["trailhouse ingest"]["bytes_per_event"]
    assert by["trailhouse ingest"]["trailhouse_ratio"] == 1.0
    for r in report["results"]:  # one round: its ratio is the medians' ratio
        assert r["runs_trailhouse_ratio"] == [r["trailhouse_ratio"]]
    for r in report["results"]:  # each process's own peak, from the same samples as the tree's
        assert 10 < r["driver_peak_mib"] <= r["peak_rss_mib"] and r["child_peak_mib"] <= r["peak_rss_mib"]
        assert (r["children"] > 0) == (r["child_peak_mib"] > 0)
    # where the ingest's workers spent their time, per event read, step by step (from its run summary)
    steps = report["ingest_worker_us_per_event"]
    assert {"extract", "normalize", "write", "split", "other"} <= set(steps) and steps["extract"] > 0
    assert all(us >= 0 for us in steps.values()) and list(steps.values()) == sorted(steps.values(), reverse=True)
    busy = sum(steps.values()) * report["events"] / 1e6  # the workers' seconds in all: within the run's wall time
    assert 0.1 * by["trailhouse ingest"]["seconds"] < busy < report["workers"] * by["trailhouse ingest"]["seconds"]
    printed = capsys.readouterr().out
    assert f"its workers' time by step (last run): {sum(steps.values()):.1f} µs of a worker per event read = " \
        f"{next(iter(steps))} " in printed
    assert "duckdb-only load" in printed and "trailhouse ×" in printed
    assert "peak RSS of each process on its own" in printed
    assert "round by round" not in printed  # one round: nothing to pair beyond the table
    # the bucket is cached: a second run reuses it
    assert (tmp_path / "work" / f"bucket-20000-1-g{GENERATOR_VERSION}" / ".complete").exists()


def test_repeated_rows_report_the_median_run_and_the_highest_peak():
    runs = [Result("x", 1000, s, rss, 10, driver, child, 2)
            for s, rss, driver, child in ((2.0, 300.0, 40.0, 250.0), (1.0, 500.0, 30.0, 400.0), (4.0, 200.0, 90.0, 100.0))]
    mid = median_of(runs)
    assert (mid.seconds, mid.peak_rss_mib, mid.events_per_second) == (2.0, 500.0, 500.0)
    assert (mid.driver_peak_mib, mid.child_peak_mib, mid.children) == (90.0, 400.0, 2)  # each its highest run
    assert median_of(runs[:2]).seconds == 1.0  # an even count takes the faster of the middle two


def test_each_round_pairs_trailhouse_with_the_row_run_beside_it():
    """The ratio round by round, not of sorted runs: a slow spell that hit both runs of a round cancels out."""
    ours = [Result("trailhouse ingest", 1000, s, 900.0, 10, 30.0, 450.0, 2) for s in (1.0, 2.0, 1.25)]
    duck = [Result("duckdb-only load", 1000, s, 2000.0, 10, 2000.0, 0.0, 0) for s in (2.0, 3.0, 2.0)]
    assert round_ratios(ours, duck) == [2.0, 1.5, 1.6]
    assert round_ratios(ours, ours) == [1.0, 1.0, 1.0]
    row = {"events_per_second": 500, "mib_per_second": 1.0, "peak_rss_mib": 900.0, "bytes_per_event": 200.0,
           "driver_peak_mib": 30.0, "children": 2, "child_peak_mib": 450.0}
    report = {"events": 1000, "distinct_events": 1000, "input_bytes": 2**20, "workers": 2, "repeat": 3,
              "machine": {"cpus": 2, "python": "3.11"},
              "results": [{**row, "name": "trailhouse ingest", "trailhouse_ratio": 1.0,
                           "runs_trailhouse_ratio": round_ratios(ours, ours)},
                          {**row, "name": "duckdb-only load", "trailhouse_ratio": 1.6,
                           "runs_trailhouse_ratio": round_ratios(ours, duck)}]}
    lines = render(report).splitlines()
    at = lines.index("trailhouse × round by round (its run against the row's run of the same round):")
    assert lines[at + 1].split() == ["duckdb-only", "load", "2.00", "1.50", "1.60"]
    assert lines[at + 2].startswith("peak RSS of each process")  # trailhouse against itself is not listed
    # sizes are MiB (2**20 bytes) and say so: the 1 GB target is 954 MiB, and "900MB" would read as 43 MB less
    assert "MiB/s in" in lines[1] and lines[2].split()[4] == "900MiB"
    assert lines[at + 3].endswith("the process started 30MiB, the largest of its 2 descendants 450MiB")
