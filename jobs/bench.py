"""`trailhouse bench`: trailhouse against what a user would do instead, on the same files in the same run.

(a) trailhouse ingest into a fresh lake, then `trailhouse compact` of that lake; (b) the DuckDB-only load (unnest Records to Parquet, no
normalization); (c) a straightforward per-event Python normalizer (json.loads + ua-parser per event),
on a sample; (d) the floor: decompress and JSON-parse only. Each runs as its own process so its peak
RSS (the whole process tree, workers included) is measured by polling /proc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jobs.generate import GENERATOR_VERSION, Spec, generate

PYTHON_SAMPLE = 20_000  # events the per-event Python normalizer runs on (it is slow; its rate is what matters)


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    peak_rss_mib: float
    output_bytes: int
    #: each process's own peak: the one started (the driver) and the largest of its descendants (workers).
    #: The tree's peak is the sum of processes sampled together, so it moves with how their peaks coincide;
    #: whether any process grows with the input shows here.
    driver_peak_mib: float = 0.0
    child_peak_mib: float = 0.0
    children: int = 0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _tree_rss(pid: int) -> dict[int, int]:
    """Resident bytes of a process and of each of its descendants, by pid, from /proc."""
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                found[p] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def measure(name: str, argv: list[str], events: int, output: Path | None) -> Result:
    """Run one command to completion, sampling its process tree's RSS every 20 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, own = 0, {}  # the tree's peak; each process's own
    while proc.poll() is None:
        sample = _tree_rss(proc.pid)
        peak = max(peak, sum(sample.values()))
        for pid, rss in sample.items():
            own[pid] = max(own.get(pid, 0), rss)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{name} failed ({proc.returncode}): {err.strip().splitlines()[-1:] or out}")
    size = sum(f.stat().st_size for f in output.rglob("*.parquet")) if output and output.is_dir() else (
        output.stat().st_size if output and output.exists() else 0)
    children = [rss for pid, rss in own.items() if pid != proc.pid]
    return Result(name, events, seconds, peak / 2**20, size, own.get(proc.pid, 0) / 2**20,
                  max(children, default=0) / 2**20, len(children))


def _files(bucket: Path) -> list[Path]:
    return sorted(p for p in bucket.rglob("*.json.gz") if "/CloudTrail/" in str(p))


def prepare(events: int, workdir: Path, seed: int = 1) -> tuple[Path, int, int]:
    """The cached bucket for this size: (directory, events in its CloudTrail/ log files, bytes of those files)."""
    bucket = workdir / f"bucket-{events}-{seed}-g{GENERATOR_VERSION}"  # a new generator, a new bucket
    marker = bucket / ".complete"
    if not marker.exists():
        days = max(2, min(30, events // 200_000))
        stats = generate(Spec(events=events, seed=seed, accounts=3, regions=3, days=days), str(bucket))
        marker.write_text(json.dumps(stats))
    stats = json.loads(marker.read_text())
    return bucket, stats["events"] - stats["insights"], sum(f.stat().st_size for f in _files(bucket))


def median_of(runs: list[Result]) -> Result:
    """The run with the median time (peak RSS: the highest of all runs): a shared machine's noise, mostly
    ±10–15 % between runs, would otherwise decide ratios between rows."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    mid = ordered[(len(ordered) - 1) // 2]
    return Result(mid.name, mid.events, mid.seconds, max(r.peak_rss_mib for r in runs), mid.output_bytes,
                  max(r.driver_peak_mib for r in runs), max(r.child_peak_mib for r in runs),
                  max(r.children for r in runs))


def round_ratios(ours: list[Result], theirs: list[Result]) -> list[float]:
    """trailhouse's events/s over a row's, round by round: the runs of one round ran back to back, so a slow
    spell of the machine weighs on both, and the spread of these says more than the medians' ratio alone."""
    return [round(o.events_per_second / t.events_per_second, 2) for o, t in zip(ours, theirs)]


def run(events: int, workdir: Path, workers: int, repeat: int = 1) -> dict:
    """Each row `repeat` times, rows interleaved (so a slow spell of the machine hits every row alike)."""
    workdir.mkdir(parents=True, exist_ok=True)
    bucket, delivered, input_bytes = prepare(events, workdir)
    py = sys.executable
    source = f"{bucket}/AWSLogs/*/CloudTrail"  # the delivered log files only, as every alternative reads
    lake, lake_no, duck_out = workdir / "lake", workdir / "lake-no-original", workdir / "duckdb-only.parquet"
    ingest = [py, "-m", "jobs.cli", "ingest", source, "--workers", str(workers), "--lake"]
    alternative = [py, "-m", "jobs.bench_alternatives"]
    rows = [  # name, command, events, what its output is measured on, the lake made fresh before each run
        ("trailhouse ingest", [*ingest, str(lake)], delivered, lake / "events", lake),
        # the same lake, compacted as a nightly job would after its ingest (jobs/compact.py)
        ("trailhouse compact", [py, "-m", "jobs.cli", "compact", "--lake", str(lake), "--workers", str(workers)],
         delivered, lake / "events", None),
        ("trailhouse --no-original", [*ingest, str(lake_no), "--no-original"], delivered, lake_no / "events",
         lake_no),
        ("duckdb-only load", [*alternative, "duckdb", str(bucket), str(duck_out), str(workers)], delivered, duck_out,
         None),
        ("per-event python", [*alternative, "python", str(bucket), str(PYTHON_SAMPLE)], min(PYTHON_SAMPLE, delivered),
         None, None),
        ("floor (gunzip+parse)", [*alternative, "floor", str(bucket), str(workers)], delivered, None, None),
    ]
    runs: dict[str, list[Result]] = {name: [] for name, *_ in rows}
    for _ in range(repeat):
        for name, argv, n, output, fresh in rows:
            if fresh:
                subprocess.run(["rm", "-rf", str(fresh)], check=True)
            runs[name].append(measure(name, argv, n, output))
    results = [median_of(runs[name]) for name, *_ in rows]
    summary = _check_counts(lake, delivered)
    counted = summary["events_written"]
    ours = results[0].events_per_second
    return {
        "events": delivered, "distinct_events": counted, "input_bytes": input_bytes, "workers": workers,
        "repeat": repeat, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        # where the ingest's workers spent their time, from its last run's summary: µs of a worker per event read
        "ingest_worker_us_per_event": {step: round(seconds * 1e6 / delivered, 2)
                                       for step, seconds in summary["worker_seconds_by_step"].items()},
        "results": [{**asdict(r), "events_per_second": round(r.events_per_second),
                     "mib_per_second": round(input_bytes / 2**20 / r.seconds * r.events / delivered, 1),
                     "bytes_per_event": round(r.output_bytes / counted, 1) if r.output_bytes else None,
                     "trailhouse_ratio": round(ours / r.events_per_second, 2) if r.events_per_second else None,
                     "runs_events_per_second": [round(x.events_per_second) for x in runs[r.name]],
                     "runs_trailhouse_ratio": round_ratios(runs[results[0].name], runs[r.name]),
                     "runs_peak_rss_mib": [round(x.peak_rss_mib) for x in runs[r.name]],
                     "runs_driver_peak_mib": [round(x.driver_peak_mib) for x in runs[r.name]],
                     "runs_child_peak_mib": [round(x.child_peak_mib) for x in runs[r.name]]}
                    for r in results],
    }


def _check_counts(lake: Path, delivered: int) -> dict:
    """The lake holds every distinct event: read = written + duplicates, as the ingest reported (its summary)."""
    runs = [json.loads(p.read_text()) for p in sorted((lake / "_state" / "runs").glob("*.json"))]
    summary = [r for r in runs if r.get("command", "ingest") == "ingest"][-1]
    read = summary["events_read"]
    if read != delivered or read != summary["events_written"] + summary["duplicates"] + summary["events_quarantined"]:
        raise RuntimeError(f"counts do not agree: delivered {delivered}, run summary {summary}")
    return summary


def render(report: dict) -> str:
    lines = [f"trailhouse bench · {report['events']:,} events ({report['distinct_events']:,} distinct), "
             f"{report['input_bytes'] / 2**20:,.1f} MiB gzip input, {report['workers']} workers, "
             f"{report['machine']['cpus']} cores" + (f", median of {report['repeat']} runs" if report["repeat"] > 1 else ""),
             f"{'':26}{'events/s':>12}{'MiB/s in':>10}{'peak RSS':>11}{'B/event':>10}{'trailhouse ×':>14}"]
    for r in report["results"]:
        bpe = f"{r['bytes_per_event']:.0f}" if r["bytes_per_event"] else "–"
        lines.append(f"{r['name']:26}{r['events_per_second']:>12,}{r['mib_per_second']:>10,.1f}"
                     f"{r['peak_rss_mib']:>8,.0f}MiB{bpe:>10}{r['trailhouse_ratio']:>14.2f}")
    if report["repeat"] > 1:
        lines.append("trailhouse × round by round (its run against the row's run of the same round):")
        for r in report["results"][1:]:
            lines.append(f"  {r['name']:26}" + "  ".join(f"{x:.2f}" for x in r["runs_trailhouse_ratio"]))
    lines.append("peak RSS of each process on its own (highest run; the peaks need not coincide):")
    for r in report["results"]:
        line = f"  {r['name']:26}the process started {r['driver_peak_mib']:,.0f}MiB"
        if r["children"]:
            line += f", the largest of its {r['children']} descendants {r['child_peak_mib']:,.0f}MiB"
        lines.append(line)
    if steps := report.get("ingest_worker_us_per_event"):
        lines.append(f"trailhouse ingest, its workers' time by step (last run): {sum(steps.values()):.1f} µs of a "
                     "worker per event read = " + " · ".join(f"{step} {us:.1f}" for step, us in steps.items()))
    return "\n".join(lines)
