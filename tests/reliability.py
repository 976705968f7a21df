"""The crash harness: kill `trailhouse ingest` with SIGKILL, rerun it, compare the lake with a clean run.

    python -m tests.reliability [--kills N] [--seed S] [--doc docs/reliability.md]

Each trial starts a real `trailhouse ingest` process (2 workers) on a multi-day, multi-account,
multi-file trail, kills its whole process group with SIGKILL, either at a random moment or at a
named point of the commit (jobs/failpoints.py), runs it again to completion, and checks the lake:
the same set of event ids and digests as a clean run, no duplicates, every file readable, no
work areas, journal or lock left, and every input recorded in the state. Half the trials are
incremental: the lake already holds the first days, and the killed run merges new files (late
deliveries included) into existing partitions. `--doc` rewrites the figures in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
#: Points inside a commit where a crash is forced, besides the random kills (local lake).
FAILPOINTS = ("before-journal", "after-journal", "partition-swapped:1", "partition-swapped:3", "after-apply")


@dataclass
class Outcome:
    trial: str
    killed: bool  # the process died by the kill (not finished before it)
    problems: list[str] = field(default_factory=list)


def ingest_cmd(src: Path, lake: Path) -> list[str]:
    return [sys.executable, "-m", "jobs.cli", "ingest", str(src), "--lake", str(lake), "--workers", "2"]


def run(src: Path, lake: Path, env: dict | None = None, kill_after: float | None = None) -> tuple[int, bool]:
    """Run an ingest; SIGKILL its process group after `kill_after` seconds. Returns (exit code, killed)."""
    proc = subprocess.Popen(ingest_cmd(src, lake), cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    rc = proc.wait()
    try:  # workers of a killed driver must not linger
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return rc, rc == -signal.SIGKILL


def make_trail(root: Path, seed: int, events: int) -> tuple[Path, Path]:
    """A 3-day trail (2 accounts × 2 regions, late deliveries, re-deliveries, digests) and its first 2 days."""
    from jobs.generate import Spec, generate

    full = root / "full"
    generate(Spec(events=events, seed=seed, accounts=2, regions=2, days=3), str(full))
    first = root / "first"
    for f in full.rglob("*.json.gz"):
        parts = f.relative_to(full).parts
        if "2026/11/03" not in "/".join(parts) and "2026/11/04" not in "/".join(parts):
            dest = first / f.relative_to(full)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
    return full, first


def snapshot(lake: Path) -> dict:
    con = duckdb.connect()
    out = {"events": [], "digests": []}
    for table, key in (("events", "event.id"), ("digests", "file.path")):
        files = sorted(str(p) for p in (lake / table).glob("*/*.parquet"))
        if files:
            out[table] = sorted(r[0] for r in con.sql(
                f"SELECT {key} FROM read_parquet({files!r}, hive_partitioning = false)").fetchall())
    return out


def check(lake: Path, src: Path, reference: dict) -> list[str]:
    problems = []
    for f in list((lake / "events").glob("*/*.parquet")) + list((lake / "digests").glob("*/*.parquet")):
        try:
            pq.read_metadata(f)
        except Exception as exc:  # a partial file
            problems.append(f"unreadable part file {f.name}: {exc}")
    snap = snapshot(lake)
    for table in ("events", "digests"):
        got, want = snap[table], reference[table]
        if len(got) != len(set(got)):
            problems.append(f"{table}: {len(got) - len(set(got))} duplicate rows")
        if set(got) != set(want):
            problems.append(f"{table}: {len(set(want) - set(got))} missing, {len(set(got) - set(want))} unexpected")
    for leftover in ("_tmp", "_staging"):
        d = lake / leftover
        if d.exists() and any(d.iterdir()):
            problems.append(f"{leftover}/ not cleaned up")
    if list((lake / "_state" / "journal").glob("*.json")):
        problems.append("a journal is left")
    if (lake / "_state" / "lock").exists():
        problems.append("the lock is left")
    con = duckdb.connect()
    state = con.sql(f"SELECT url, arg_max(status, run_id) FROM read_parquet('{lake}/_state/files/*.parquet') "
                    "GROUP BY url").fetchall()
    inputs = {str(p) for p in src.rglob("*.json.gz")}
    recorded = {u for u, s in state if s == "ingested"}
    if inputs - recorded:
        problems.append(f"{len(inputs - recorded)} inputs not recorded as ingested")
    return problems


def clean_run(src: Path, lake: Path) -> tuple[dict, float]:
    t = time.perf_counter()
    rc, _ = run(src, lake)
    if rc != 0:
        raise SystemExit(f"the clean run failed with exit {rc}")
    return snapshot(lake), time.perf_counter() - t


def trials(kills: int, seed: int, work: Path, events: int = 15_000) -> dict:
    rng = random.Random(seed)
    full, first = make_trail(work / "trail", seed, events)
    reference, seconds = clean_run(full, work / "clean")
    base = work / "base"  # the lake after the first two days, for incremental trials
    clean_run(first, base)
    plan = [("failpoint", fp, inc) for fp in FAILPOINTS for inc in (False, True)]
    plan += [("random", None, i % 2 == 1) for i in range(max(0, kills - len(plan)))]
    outcomes: list[Outcome] = []
    for n, (how, fp, incremental) in enumerate(plan[:max(kills, len(FAILPOINTS))]):
        lake = work / f"lake-{n}"
        shutil.rmtree(lake, ignore_errors=True)
        if incremental:
            shutil.copytree(base, lake, symlinks=True)
        if how == "failpoint":
            rc, killed = run(full, lake, env={"TRAILHOUSE_FAILPOINT": fp})
            name = f"kill at {fp}"
        else:
            delay = rng.uniform(0.3, seconds * 1.1)
            rc, killed = run(full, lake, kill_after=delay)
            name = f"kill after {delay:.2f} s"
        name += " (incremental)" if incremental else " (fresh lake)"
        rerun, _ = run(full, lake)
        problems = [] if rerun == 0 else [f"the rerun exited {rerun}"]
        problems += check(lake, full, reference)
        outcomes.append(Outcome(name, killed, problems))
        shutil.rmtree(lake, ignore_errors=True)
    return {"trials": len(outcomes), "killed": sum(o.killed for o in outcomes),
            "failed": [o.__dict__ for o in outcomes if o.problems],
            "events_checked": len(reference["events"]) * len(outcomes),
            "clean_run_seconds": round(seconds, 2), "events": len(reference["events"]),
            "digests": len(reference["digests"]), "outcomes": [o.__dict__ for o in outcomes]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--events", type=int, default=15_000)
    ap.add_argument("--json", help="write the figures as JSON")
    ap.add_argument("--doc", help="rewrite the figures section of this markdown file (docs/reliability.md)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trailhouse-reliability-") as tmp:
        report = trials(args.kills, args.seed, Path(tmp), args.events)
    print(f"{report['trials']} trials ({report['killed']} killed mid-run), {report['events']:,} events × "
          f"{report['trials']} lakes checked, {len(report['failed'])} failed")
    for f in report["failed"]:
        print(f"  FAILED {f['trial']}: {'; '.join(f['problems'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.doc:
        write_figures(Path(args.doc), report, args)
    return 1 if report["failed"] else 0


def write_figures(doc: Path, report: dict, args: argparse.Namespace) -> None:
    by_kind = {"failpoint": [o for o in report["outcomes"] if o["trial"].startswith("kill at")],
               "random": [o for o in report["outcomes"] if o["trial"].startswith("kill after")]}
    lines = [
        f"`make reliability` (= `python -m tests.reliability --kills {args.kills} --seed {args.seed} "
        f"--events {args.events} --doc docs/reliability.md`), run {time.strftime('%Y-%m-%d', time.gmtime())}:",
        "",
        "| | figure |", "|---|---:|",
        f"| trials (kill, rerun, compare) | {report['trials']} |",
        f"| runs that died by SIGKILL mid-run | {report['killed']} |",
        f"| … at a commit failpoint ({', '.join(FAILPOINTS)}; fresh and incremental) | "
        f"{sum(o['killed'] for o in by_kind['failpoint'])} of {len(by_kind['failpoint'])} |",
        f"| … at a random moment (uniform over 0.3 s to 1.1 × the clean run's {report['clean_run_seconds']} s) | "
        f"{sum(o['killed'] for o in by_kind['random'])} of {len(by_kind['random'])} |",
        f"| events per lake / digests per lake | {report['events']:,} / {report['digests']:,} |",
        f"| events checked (ids compared with the clean run) | {report['events_checked']:,} |",
        f"| lakes that differed from the clean run | {len(report['failed'])} |",
    ]
    text = doc.read_text()
    start, end = "<!-- figures: written by `make reliability` -->", "<!-- /figures -->"
    head, rest = text.split(start, 1)
    doc.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    sys.exit(main())
