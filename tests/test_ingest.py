"""The ingest job end to end: the lake contract, incremental runs, dedup, quarantine, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import lake as lake_mod
from jobs.lake import MAX_FILES_PER_PARTITION
from jobs.cli import main
from jobs.discover import Scope, discover
from jobs.ingest import worker_pool
from transforms.schema import LAKE_SCHEMA_VERSION, SORT_KEYS, arrow_schema
from tests.conftest import (ROOT, SAMPLE, ingest, lake_files, last_run, quarantine, record, sql, trail_path,
                            write)

ACCT, OTHER = "111122223333", "444455556666"


def sample_truth() -> tuple[int, set[str]]:
    """Records in the sample and their distinct eventIDs, read with nothing but gzip and json."""
    n, ids = 0, set()
    for f in SAMPLE.rglob("*.json.gz"):
        if "CloudTrail-Digest" in str(f):
            continue
        recs = json.loads(gzip.decompress(f.read_bytes()))["Records"]
        n += len(recs)
        ids.update(r["eventID"] for r in recs)
    return n, ids


def assert_written_as_workers_write(lake: Path) -> None:
    """Every events file has the lake's Arrow schema and encodings, whichever step wrote it, so Polars reads the
    lake whole: it refused one where the commit's DuckDB had written some files (their JSON payloads, with no
    Arrow schema stored, read as binary beside the workers' JSON)."""
    import polars as pl

    for f in (lake / "events").glob("*/*.parquet"):
        assert pq.read_schema(f).remove_metadata() == arrow_schema("events"), f
        meta = pq.read_metadata(f)
        columns = {meta.schema.column(i).path: meta.row_group(0).column(i) for i in range(meta.num_columns)}
        assert {path: columns[path].encodings[-1] for path in lake_mod.DELTA_ENCODED["events"]} == \
            lake_mod.DELTA_ENCODED["events"], f
    read = pl.scan_parquet(lake / "events", hive_partitioning=True).select(
        pl.col("event").struct.field("id"), pl.col("aws").struct.field("cloudtrail").struct.field("request_parameters"))
    duck = sql(lake, "SELECT event.id, aws.cloudtrail.request_parameters::VARCHAR FROM EVENTS")
    assert sorted(read.collect().rows(), key=str) == sorted(duck, key=str)


def rows(lake: Path) -> list[tuple]:
    return sql(lake, 'SELECT event.id, event.original, CAST("@timestamp" AS VARCHAR), CAST(event_date AS VARCHAR) '
               'FROM EVENTS ORDER BY 1, 2')


def _dig(row: dict, dotted: str):
    """A nested value of a row read back from Parquet, by its ECS path."""
    for part in dotted.split("."):
        row = row[part] if row is not None else None
    return row


def test_sample_lands_complete_sorted_and_reconciled(tmp_path):
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    n_records, ids = sample_truth()
    run = last_run(lake)
    assert run["events_read"] == n_records
    assert run["events_written"] == len(ids)
    assert run["duplicates"] == n_records - len(ids) > 0
    assert run["events_read"] == run["events_written"] + run["duplicates"] + run["events_quarantined"] \
        + run["events_filtered"]
    assert {r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")} == ids
    assert sql(lake, "SELECT count(*) FROM EVENTS")[0][0] == len(ids)
    # partitions are UTC event dates, one file each, in the hive layout
    parts = sorted(p.name for p in (lake / "events").iterdir())
    assert parts == ["event_date=2026-11-01", "event_date=2026-11-02"]
    assert all(1 <= len(list((lake / "events" / p).glob("*.parquet"))) <= MAX_FILES_PER_PARTITION for p in parts)
    assert sql(lake, "SELECT count(*) FROM EVENTS WHERE CAST(\"@timestamp\" AS DATE) <> event_date")[0][0] == 0
    # each part file sorted by the declared keys (account, region, service, action, caller, client, address, time)
    for f in (lake / "events").glob("*/*.parquet"):
        t = pq.read_table(f).to_pylist()
        keys = [tuple(_dig(r, k) for k in SORT_KEYS["events"]) for r in t]
        assert keys == sorted(keys, key=lambda ks: tuple((v is None, v or "") for v in ks))
        assert len({k[4] for k in keys}) > 1  # more than one caller per file: the caller key has work to do
        meta = pq.read_metadata(f)
        assert meta.row_group(0).column(0).compression == "ZSTD"
    # every digest file is one row of the digests table
    n_digests = len(list(SAMPLE.rglob("*CloudTrail-Digest*.json.gz")))
    assert sql(lake, "SELECT count(*), count(DISTINCT file.path) FROM DIGESTS")[0] == (n_digests, n_digests)


STEPS = {"fetch", "split", "records", "extract", "validate", "normalize", "order", "export", "write"}


def test_a_run_says_where_its_workers_time_went(tmp_path, capsys):
    """Each step of the workers' flow timed in every batch and summed over the run (the JSON summary, and a line
    of the printed one), so an operator sees whether reading, parsing or writing bounds a nightly job."""
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "2") == 0
    run = last_run(lake)
    steps = run["worker_seconds_by_step"]
    assert set(steps) == STEPS | {"other"}
    assert all(steps[s] >= 0 for s in STEPS) and steps["other"] >= 0  # seconds to the ms: a fast fetch may be 0
    assert min(steps["extract"], steps["normalize"], steps["write"]) > 0
    assert list(steps.values()) == sorted(steps.values(), reverse=True)  # the largest first
    busy = sum(w["seconds"] for w in run["workers"].values())  # each batch's own seconds, rounded to 1 ms
    batches = sum(w["batches"] for w in run["workers"].values())
    assert abs(sum(steps.values()) - busy) <= 0.002 * len(steps) + 0.001 * batches
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  worker time "))
    shown = dict(part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split(" · "))
    assert set(shown) <= set(steps) and {"extract", "normalize", "write"} <= set(shown)
    total = sum(steps.values())
    assert all(abs(int(v.rstrip("%")) - 100 * steps[k] / total) <= 0.51 for k, v in shown.items())  # each its share
    assert all(steps[k] < 0.005 * total for k in set(steps) - set(shown))  # only the slivers are left out
    assert line.startswith(f"  worker time {sum(steps.values()):,.2f} s: ")


def test_worker_files_store_unique_columns_delta_encoded(tmp_path, monkeypatch):
    """Random ids, each event's text and the time are delta encoded; repeated values keep their dictionary."""
    monkeypatch.setattr(lake_mod, "SMALL_FILE_ROWS", 0)  # keep the workers' files as written (no fragment merge)
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    files = list((lake / "events").glob("*/*.parquet"))
    assert len(files) > 2
    for f in files:
        meta = pq.read_metadata(f)
        columns = {meta.schema.column(i).path: meta.row_group(0).column(i) for i in range(meta.num_columns)}
        assert {path: columns[path].encodings[-1] for path in lake_mod.DELTA_ENCODED["events"]} == \
            lake_mod.DELTA_ENCODED["events"], f
        assert "RLE_DICTIONARY" in columns["event.action"].encodings, f
        # min/max for what queries filter on, none for the long texts (the record's, the JSON payloads)
        assert columns["event.action"].is_stats_set and columns["@timestamp"].is_stats_set, f
        assert columns["event.action"].statistics.min <= columns["event.action"].statistics.max, f
        assert not columns["event.original"].is_stats_set, f
        assert not columns["aws.cloudtrail.request_parameters"].is_stats_set, f
    assert sql(lake, "SELECT count(*) FROM EVENTS WHERE event.id IS NULL OR event.original IS NULL")[0][0] == 0


def test_a_worker_reuses_the_memory_its_last_batch_freed():
    """A worker keeps its heap for the next batch, and Arrow allocates from it: a batch's large blocks (its JSON
    joined, Arrow's columns) are faulted in once, not again by every batch. With glibc's defaults the freed
    blocks went back to the kernel each time; Arrow's jemalloc (no decay) faulted its own pages in every time."""
    with worker_pool(1) as pool:
        backend, pages, blocks, columns = pool.submit(_page_faults_of_each_batch).result(timeout=120)
    assert backend == "system"
    assert blocks[0] > pages // 2  # the first batch does fault its pages in
    assert max(blocks[-4:]) < pages // 20, blocks  # the later ones reuse the kept heap
    # Arrow's columns come from that same heap: what Python freed, Arrow reuses without a fault
    assert columns[0] < pages // 20, columns


def _page_faults_of_each_batch() -> tuple[str, int, list[int], list[int]]:
    """Run in a pool worker: the page faults of rounds of what a batch does with large blocks (Python's, then
    Arrow's), and how many pages one round's blocks take."""
    import resource

    import pyarrow as pa
    import pyarrow.compute as pc

    from jobs.ingest import arrow_uses_malloc

    arrow_uses_malloc()
    numbers = pa.array(range(2**21), pa.int64())  # 16 MiB

    def faults(step) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    def blocks() -> None:  # Python's buffers: 48 MiB of 1 MiB blocks, freed from the heap's top down
        held = [b"y" * 2**20 for _ in range(48)]
        while held:
            held.pop()

    def columns() -> None:  # Arrow's: three 16 MiB columns (as many pages as the blocks) computed, then freed
        held = [pc.add(numbers, i) for i in range(3)]
        del held

    block_faults = [faults(blocks) for _ in range(8)]
    column_faults = [faults(columns) for _ in range(2)]
    return pa.default_memory_pool().backend_name, 48 * 2**20 // 4096, block_faults, column_faults


def test_a_pool_worker_ends_without_teardown_and_loses_nothing(tmp_path):
    """A worker skips its interpreter's teardown (~0.17 s of a 1M-event run spent before the commit may start):
    its output is still flushed, the exit handlers of libraries it imported later still run, its results all
    arrive, and objects left for the teardown are never finalized (a fresh interpreter, a real spawned pool)."""
    (tmp_path / "task.py").write_text(
        "import atexit, os, sys\n"
        "class Left:  # finalized by the interpreter's teardown, if there is one\n"
        f"    def __del__(self, _open=open, _path={str(tmp_path / 'teardown')!r}):\n"
        "        _open(_path, 'w').close()\n"
        "kept = []\n"
        "def task(n):\n"
        "    if not kept:  # a library imported by the first batch, with exit handlers of its own\n"
        f"        atexit.register(lambda: open({str(tmp_path / 'library-exit')!r}, 'w').close())\n"
        "        kept.append(Left())\n"
        "    print(f'batch {n} in {os.getpid()}', end=' ')  # a pipe: block-buffered, not yet written\n"
        "    return n * n\n")
    code = ("from concurrent.futures import ProcessPoolExecutor\n"
            "from multiprocessing import get_context\n"
            "from jobs.pool import worker_init\n"
            "import task\n"
            "with ProcessPoolExecutor(1, mp_context=get_context('spawn'), initializer=worker_init) as pool:\n"
            "    print(sum(pool.map(task.task, range(5))))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    # the worker's text reached the pipe when it ended (flushed), before the driver's own, flushed at its exit
    words = proc.stdout.split()
    assert words[-1] == "30"  # 0 + 1 + 4 + 9 + 16
    assert proc.stdout.count("batch ") == 5 and "batch 4 in" in proc.stdout
    assert (tmp_path / "library-exit").exists()
    assert not (tmp_path / "teardown").exists()


def test_the_driver_loads_no_engine_while_its_workers_read(tmp_path):
    """DuckDB, Polars and Arrow (~75 MiB) are the workers' business while a run reads: the driver lists, plans
    and hands out batches without them, and loads them for its commit (a fresh interpreter: a module once
    imported stays imported). Each progress call is one finished batch."""
    code = ("import json, sys; from jobs.ingest import Options, run\n"
            "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'polars', 'pyarrow'})\n"
            "during = []\n"
            f"s = run(Options([{str(SAMPLE)!r}], {str(tmp_path / 'lake')!r}, workers=2), "
            "lambda *_: during.append(loaded()))\n"
            "print(json.dumps({'during': during, 'after': loaded(), 'written': s.counts.events_written, "
            "'workers': len(s.workers)}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["workers"] == 2 and len(out["during"]) > 2  # the batches ran in two worker processes
    assert out["during"] == [[]] * len(out["during"])
    assert {"duckdb", "pyarrow"} <= set(out["after"]) and out["written"] == len(sample_truth()[1])


def test_columns_are_queryable_by_their_ecs_paths(tmp_path):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    (row,) = sql(lake, """
        SELECT count(*) FILTER (aws.cloudtrail.user_identity.arn LIKE 'arn:aws:%'),
               count(*) FILTER (event.action = 'ConsoleLogin' AND event.outcome = 'failure'),
               count(*) FILTER (aws.cloudtrail.error_code = 'Client.UnauthorizedOperation'),
               count(*) FILTER (source.ip IS NOT NULL AND source.ip = source.address),
               count(*) FILTER (source.address = 'AWS Internal' AND source.ip IS NULL),
               count(*) FILTER (cloud.provider = 'aws'),
               count(*) FILTER (json_extract_string(aws.cloudtrail.request_parameters, '$.instanceType') IS NOT NULL),
               count(*)
        FROM EVENTS""")
    arns, failed_logins, unauthorized, ips, internal, aws, typed_payloads, total = row
    assert arns > total * 0.7 and failed_logins >= 10 and unauthorized > 0 and internal > 0
    assert ips > total / 2 and aws == total and typed_payloads > 0
    types = dict(sql(lake, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM EVENTS)"))
    assert types["@timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert "request_parameters JSON" in types["aws"] and "response_elements JSON" in types["aws"]


def test_rerun_is_idempotent_byte_for_byte(tmp_path):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    before = lake_files(lake)
    state_before = sorted(p.name for p in (lake / "_state").rglob("*"))
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    assert lake_files(lake) == before
    assert sorted(p.name for p in (lake / "_state").rglob("*")) == state_before


def test_incremental_run_merges_into_touched_partitions(tmp_path):
    one_shot, lake = tmp_path / "one", tmp_path / "inc"
    ingest(SAMPLE, "--lake", one_shot, "--workers", "1")
    first_day = str(SAMPLE / "AWSLogs" / "*" / "CloudTrail" / "*" / "2026" / "11" / "01")
    assert ingest(first_day, "--lake", lake, "--workers", "1") == 0
    first = last_run(lake)
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    second = last_run(lake)
    assert second["files_skipped"] == first["files_seen"] > 0
    assert second["files_read"] == second["files_seen"] - second["files_skipped"]
    assert rows(lake) == rows(one_shot)
    assert all(len(list(p.glob("*.parquet"))) <= MAX_FILES_PER_PARTITION for p in (lake / "events").iterdir())
    assert first["events_written"] + second["events_written"] == len(rows(one_shot))


def test_duplicates_within_and_across_files_and_without_event_id(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    a, b = record(eid="same-1"), record("StopInstances", eid="same-2")
    no_id = record("GetCallerIdentity")
    del no_id["eventID"]
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [a, a, b, no_id])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "b"), [b, no_id, dict(no_id, eventName="Other")])
    assert ingest(src, "--lake", lake) == 0
    run = last_run(lake)
    assert (run["events_read"], run["events_written"], run["duplicates"]) == (7, 4, 3)
    assert sorted(r[0] or "" for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["", "", "same-1", "same-2"]
    assert sql(lake, "SELECT count(DISTINCT event.hash) FROM EVENTS WHERE event.id IS NULL")[0][0] == 2
    # the first delivery wins: file a sorts before file b
    assert sql(lake, "SELECT log.file.path FROM EVENTS WHERE event.id = 'same-2'")[0][0].endswith("_a.json.gz")


def test_duplicates_across_runs_rewrite_only_the_new_file(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(eid="x"), record(eid="y")])
    assert ingest(src, "--lake", lake) == 0
    first = lake_files(lake)
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "b"), [record(eid="y"), record(eid="z")])
    assert ingest(src, "--lake", lake) == 0
    run = last_run(lake)
    assert (run["events_read"], run["events_written"], run["duplicates"]) == (2, 1, 1)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["x", "y", "z"]
    after = lake_files(lake)
    assert set(first) <= set(after) and all(after[f] == first[f] for f in first)  # the old file untouched
    # a file holding nothing new leaves the partition as it was
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "c"), [record(eid="z")])
    assert ingest(src, "--lake", lake) == 0
    run = last_run(lake)
    assert (run["events_written"], run["duplicates"], run["partitions"]) == (0, 1, [])
    assert lake_files(lake) == after


def test_a_redelivery_in_the_next_batch_is_settled_by_its_worker(tmp_path, monkeypatch):
    """File b re-delivers an event of file a (same stream); a and b land in different batches."""
    from jobs import ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "BATCH_FILES", 1)  # one file per batch
    rewrites = []
    original_rewrite = lake_mod.without_rows_sql
    monkeypatch.setattr(lake_mod, "without_rows_sql", lambda *a: rewrites.append(a) or original_rewrite(*a))
    src, lake = tmp_path / "src", tmp_path / "lake"
    bad_copy = record(eid="w")
    del bad_copy["eventName"]  # file a's copy of w is quarantined: b's copy must land
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(eid="x"), record(eid="y"), bad_copy])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "b"), [record(eid="y"), record(eid="z"), record(eid="w")])
    write(trail_path(src, ACCT, "eu-west-1", "2026-11-01", "c"), [record(eid="y", awsRegion="eu-west-1")])
    batches = list(ingest_mod.plan(discover([str(src)], Scope()), 1))
    assert [len(b.files) for b in batches] == [1, 1, 1]
    assert [[Path(f.url).name[-10:] for f in b.context] for b in batches] == [[], [], ["_a.json.gz"]]
    assert ingest(src, "--lake", lake, "--workers", "1") == 3  # a's bad record is quarantined
    run = last_run(lake)
    assert (run["events_read"], run["events_written"], run["duplicates"], run["events_quarantined"]) == (7, 4, 2, 1)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["w", "x", "y", "z"]
    # y: c (another stream, first in path order) wins; b's copy was dropped in its worker, and only a's
    # copy, in a stream c's batch knows nothing of, cost a rewrite at commit
    assert sql(lake, "SELECT log.file.path FROM EVENTS WHERE event.id = 'y'")[0][0].endswith("_c.json.gz")
    assert len(rewrites) == 1 and rewrites[0][1] == [1]  # a's part file without its row 1 (y)
    assert len(quarantine(lake)) == 1  # reported once, by a's own batch, not again as context
    assert_written_as_workers_write(lake)


def test_a_batch_with_more_json_than_a_worker_may_hold_is_cut_into_runs(tmp_path, monkeypatch):
    """Files that compress better than the plan assumed: the worker reads the batch in runs of at most
    CHUNK_JSON_BYTES of JSON. b re-delivers an event of a across a cut: the run after it reads a as context
    and drops it, so nothing is rewritten at commit."""
    from jobs import read, worker

    rewrites = []
    original_rewrite = lake_mod.without_rows_sql
    monkeypatch.setattr(lake_mod, "without_rows_sql", lambda *a: rewrites.append(a) or original_rewrite(*a))
    monkeypatch.setattr(lake_mod, "SMALL_FILE_ROWS", 1)  # keep each run's part file as the worker wrote it
    src, lake = tmp_path / "src", tmp_path / "lake"
    files = [write(trail_path(src, ACCT, "us-east-1", "2026-11-01", name), [record(eid=e1), record(eid=e2)])
             for name, e1, e2 in (("a", "x", "y"), ("b", "y", "z"), ("c", "v", "w"))]
    sizes = {read.json_size(f.read_bytes()) for f in files}
    assert len(sizes) == 1  # three files of one size: a run each
    monkeypatch.setattr(worker, "CHUNK_JSON_BYTES", sizes.pop())
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    run = last_run(lake)
    assert (run["events_read"], run["events_written"], run["duplicates"]) == (6, 5, 1)
    parts = sorted(p.name for p in (lake / "events" / "event_date=2026-11-01").glob("*.parquet"))
    assert [p.rsplit("-", 2)[1:] for p in parts] == [["b000000", "00.parquet"], ["b000000", "01.parquet"],
                                                   ["b000000", "02.parquet"]]
    assert [pq.read_metadata(lake / "events" / "event_date=2026-11-01" / p).num_rows for p in parts] == [2, 1, 2]
    assert rewrites == []
    assert sql(lake, "SELECT log.file.path FROM EVENTS WHERE event.id = 'y'")[0][0].endswith("_a.json.gz")


def test_runs_are_cut_about_equal_and_each_reads_the_file_before_its_streams():
    from jobs import worker
    from jobs.discover import classify
    from jobs.ingest import Batch

    def f(region: str, n: int):
        return classify(f"/t/AWSLogs/{ACCT}/CloudTrail/{region}/2026/11/01/{region}_{n:02d}.json.gz", 1, "")

    east, west = [f("us-east-1", n) for n in range(1, 7)], [f("eu-west-1", n) for n in range(1, 4)]
    batch = Batch(east + west, [f("us-east-1", 0), f("eu-west-1", 0)])  # each stream's file in the batch before
    cap = worker.CHUNK_JSON_BYTES
    runs = worker.chunks(batch, [cap * 4 // 10] * 9)  # none may hold three files

    def names(files):
        return [x.url.rsplit("/", 1)[1][:12] for x in files]
    assert [names(r.files) for r in runs] == [["us-east-1_01", "us-east-1_02"], ["us-east-1_03", "us-east-1_04"],
                                              ["us-east-1_05", "us-east-1_06"], ["eu-west-1_01", "eu-west-1_02"],
                                              ["eu-west-1_03"]]
    assert [names(r.context) for r in runs] == [["us-east-1_00"], ["us-east-1_02"], ["us-east-1_04"],
                                                ["eu-west-1_00"], ["eu-west-1_02"]]
    even = worker.chunks(Batch(east + west + [f("us-west-2", 1)], []), [cap * 15 // 100] * 10)  # 1.5 runs' worth
    assert [len(r.files) for r in even] == [5, 5]  # not 6 and 4
    assert worker.chunks(batch, [cap // 9] * 9) == [batch]


def test_a_partition_never_holds_more_than_the_file_bound(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    for n in range(MAX_FILES_PER_PARTITION + 2):
        again = [record(eid=f"e{n - 1}")] if n == MAX_FILES_PER_PARTITION else []  # a re-delivery, as it compacts
        write(trail_path(src, ACCT, "us-east-1", "2026-11-01", f"f{n:02d}"), [record(eid=f"e{n}"), *again])
        assert ingest(src, "--lake", lake) == 0
        files = list((lake / "events" / "event_date=2026-11-01").glob("*.parquet"))
        assert len(files) == (n + 1 if n < MAX_FILES_PER_PARTITION else n + 1 - MAX_FILES_PER_PARTITION)
        run = last_run(lake)  # the counts follow the rows, through the compaction too
        assert (run["events_written"], run["duplicates"]) == (1, len(again))
        assert sql(lake, "SELECT count(*) FROM EVENTS")[0][0] == n + 1
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == sorted(
        f"e{n}" for n in range(MAX_FILES_PER_PARTITION + 2))


def test_fragments_are_files_under_half_the_runs_largest_and_only_they_are_merged(tmp_path, monkeypatch):
    """One file per batch: a's batch writes 8 events of Nov 1st, so the pieces of Nov 1st that b, c and d
    (delivered into Nov 2nd's folder) write are fragments under 4 rows: c's 2 and d's 1 become one file, b's 5
    stay as written, as a's 8 do (under SMALL_FILE_ROWS all, every one would have been re-sorted)."""
    from jobs import ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "BATCH_FILES", 1)
    monkeypatch.setattr(lake_mod, "SMALL_FILE_ROWS", 10)
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(eid=f"a{n}") for n in range(8)])
    for name, late in (("b", 5), ("c", 2), ("d", 1)):
        write(trail_path(src, ACCT, "us-east-1", "2026-11-02", name),
              [record(time="2026-11-01T23:59:00Z", eid=f"{name}{n}") for n in range(late)]
              + [record(time="2026-11-02T01:00:00Z", eid=f"{name}-next")])
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    day = lake / "events" / "event_date=2026-11-01"
    held = sorted((p.name.endswith("-small.parquet"), pq.read_metadata(p).num_rows) for p in day.glob("*.parquet"))
    assert held == [(False, 5), (False, 8), (True, 3)]
    assert_written_as_workers_write(lake)
    assert lake_mod.fragment_rows([8, 5, 2, 1, 1, 1, 1]) == 4 and lake_mod.fragment_rows([]) == 0
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS WHERE event_date = '2026-11-01'")) == sorted(
        [f"a{n}" for n in range(8)] + [f"b{n}" for n in range(5)] + ["c0", "c1", "d0"])


def test_past_the_file_bound_only_small_files_are_compacted_a_batchs_file_is_kept(tmp_path, monkeypatch):
    """A busy day's batch files are left as written (compacting the day whole ran the driver out of memory
    at 1M events); the small files late runs add are compacted once there are more than the bound."""
    monkeypatch.setattr(lake_mod, "SMALL_FILE_ROWS", 3)
    monkeypatch.setattr(lake_mod, "MAX_FILES_PER_PARTITION", 4)
    src, lake = tmp_path / "src", tmp_path / "lake"
    day = lake / "events" / "event_date=2026-11-01"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "big"), [record(eid=f"b{n}") for n in range(5)])
    assert ingest(src, "--lake", lake) == 0
    (big,) = day.glob("*.parquet")
    inode = big.stat().st_ino
    held = []
    for n in range(6):
        write(trail_path(src, ACCT, "us-east-1", "2026-11-01", f"late{n}"), [record(eid=f"l{n}")])
        assert ingest(src, "--lake", lake) == 0
        held.append(sorted(pq.read_metadata(f).num_rows for f in day.glob("*.parquet")))
    assert held == [[1, 5], [1, 1, 5], [1, 1, 1, 5], [1, 1, 1, 1, 5], [5, 5], [1, 5, 5]]
    assert big.stat().st_ino == inode  # the batch's file, untouched (hard-linked into each new partition)
    assert_written_as_workers_write(lake)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == sorted(
        [f"b{n}" for n in range(5)] + [f"l{n}" for n in range(6)])


def test_late_event_lands_in_its_own_day(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(time="2026-11-01T12:00:00Z", eid="noon")])
    assert ingest(src, "--lake", lake) == 0
    # delivered after midnight, into the next day's folder, in a later run
    write(trail_path(src, ACCT, "us-east-1", "2026-11-02", "b"),
          [record(time="2026-11-01T23:58:30Z", eid="late"), record(time="2026-11-02T00:01:00Z", eid="early")])
    assert ingest(src, "--lake", lake) == 0
    assert sorted(sql(lake, "SELECT event.id, CAST(event_date AS VARCHAR) FROM EVENTS")) == [
        ("early", "2026-11-02"), ("late", "2026-11-01"), ("noon", "2026-11-01")]
    assert last_run(lake)["partitions"] == ["events/event_date=2026-11-01", "events/event_date=2026-11-02"]


def test_quarantine_keeps_good_data_and_exits_3(tmp_path, capsys):
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "good"), [record(eid="g1"), record(eid="g2")])
    broken = trail_path(src, ACCT, "us-east-1", "2026-11-01", "trunc")
    broken.write_bytes(gzip.compress(json.dumps({"Records": [record()]}).encode())[:-20])
    bad_rec = {"eventName": "X", "eventTime": "not a time", "eventID": "b1"}
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "mixed"), [record(eid="g3"), bad_rec, "just text"])
    (src / "notes.txt").write_text("these are my notes")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    assert ingest(src, "--lake", lake) == 3
    out = capsys.readouterr().out
    assert "quarantined 2" in out and "exit 3" in out
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["g1", "g2", "g3"]
    q = quarantine(lake)
    by_reason = {(Path(e["source"]).name, e["record"]): e for e in q}
    assert "truncated gzip" in by_reason[(broken.name, None)]["reason"]
    assert "not JSON" in by_reason[("notes.txt", None)]["reason"]
    mixed = next(n for n, r in by_reason if "mixed" in n)
    assert by_reason[(mixed, 1)]["reason"] == "eventTime is not a valid timestamp: not a time"
    assert json.loads(by_reason[(mixed, 1)]["original"]) == bad_rec
    assert by_reason[(mixed, 2)]["reason"] == "record is not a JSON object"
    run = last_run(lake)
    assert (run["files_quarantined"], run["events_quarantined"]) == (2, 2)
    assert run["events_read"] == run["events_written"] + run["duplicates"] + run["events_quarantined"]
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # inputs untouched
    # an unchanged broken file is not re-reported by the next run
    assert ingest(src, "--lake", lake) == 0


def test_a_file_whose_name_is_not_utf8_is_quarantined_and_the_rest_lands(tmp_path):
    """Linux lets a name hold any bytes; the lake's text (log.file.path, the state) cannot. The file is
    quarantined with what to do, every run until it is renamed, and never stops the run."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    good = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "good"), [record(eid="g")])
    misnamed = os.fsencode(good.parent) + b"/bad\xff_name.json.gz"
    with open(misnamed, "wb") as fh:
        fh.write(gzip.compress(json.dumps({"Records": [record(eid="m")]}).encode()))
    for run in range(2):  # the second run has state to skip by: the name is hashed as its bytes
        assert ingest(src, "--lake", lake) == 3
        assert (last_run(lake)["files_quarantined"], last_run(lake)["files_skipped"]) == (1, run)
    assert [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")] == ["g"]
    assert [(e["source"].rsplit("/", 1)[1], e["reason"]) for e in quarantine(lake)] == [
        ("bad\\xff_name.json.gz", "the file name is not valid UTF-8: rename the file")] * 2


def test_scope_filters_by_event_time_account_and_region(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    for day in ("2026-10-31", "2026-11-01", "2026-11-02"):
        write(trail_path(src, ACCT, "us-east-1", day, "a"), [record(time=day + "T12:00:00Z", eid=f"{day}-a")])
        write(trail_path(src, ACCT, "eu-west-1", day, "b"),
              [record(time=day + "T12:00:00Z", eid=f"{day}-b", region="eu-west-1")])
        write(trail_path(src, OTHER, "us-east-1", day, "c"),
              [record(time=day + "T12:00:00Z", eid=f"{day}-c", account=OTHER)])
    # a file without layout holding an out-of-range event: kept by the listing, dropped by eventTime
    write(src / "loose.json", [record(time="2026-11-03T01:00:00Z", eid="loose")])
    assert ingest(src, "--lake", lake, "--since", "2026-11-01", "--until", "2026-11-01",
                  "--account", ACCT, "--region", "us-east-1") == 0
    assert sql(lake, "SELECT event.id FROM EVENTS") == [("2026-11-01-a",)]
    run = last_run(lake)
    assert run["events_read"] == run["events_written"] + run["events_filtered"]
    assert run["events_filtered"] >= 1


def test_a_file_read_in_part_under_a_scope_is_read_again_by_a_wider_run(tmp_path, capsys):
    """A backfill in windows: the window's listing reaches a day past its end (folders are delivery dates), so
    that day's files are read and their events outside the window left out. Such a file is recorded as read in
    part, not done, and the next run that lists it keeps what was left out, the dedup dropping what the lake
    has: the windows together build the lake one run without a scope builds (the files were skipped as done,
    and the day after each window lost)."""
    src, lake, whole = tmp_path / "src", tmp_path / "lake", tmp_path / "whole"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(time="2026-11-01T10:00:00Z", eid="a")])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-02", "b"),  # a late delivery of Nov 1st, and Nov 2nd
          [record(time="2026-11-01T23:59:00Z", eid="b-late"), record(time="2026-11-02T00:05:00Z", eid="b-next")])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-03", "c"), [record(time="2026-11-03T08:00:00Z", eid="c")])
    # an event of another account in this account's folder: left out by --account, kept by a run without it;
    # so is an event that names no account at all (a scope's test is null there, not false)
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "d"),
          [record(eid="d-mine"), record(eid="d-other", account=OTHER)])
    nameless = record(eid="e-none")
    del nameless["recipientAccountId"], nameless["userIdentity"]["accountId"]
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "e"), [record(eid="e-mine"), nameless])
    assert ingest(src, "--lake", lake, "--until", "2026-11-01", "--account", ACCT) == 0
    run = last_run(lake)
    assert (run["files_read"], run["files_partial"], run["events_written"], run["events_filtered"]) == (4, 3, 4, 3)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["a", "b-late", "d-mine", "e-mine"]
    assert ingest(src, "--lake", lake, "--since", "2026-11-02") == 0  # the next window: b and c, d and e again
    run = last_run(lake)
    assert (run["files_skipped"], run["files_read"], run["files_partial"]) == (1, 4, 3)  # b's Nov 1st, d's, e's
    assert (run["events_written"], run["duplicates"]) == (2, 0)  # b-next, c: the Nov 1st events left out again
    assert ingest(src, "--lake", lake) == 0  # then everything
    run = last_run(lake)
    assert (run["files_skipped"], run["files_read"], run["files_partial"]) == (2, 3, 0)
    assert (run["events_written"], run["duplicates"]) == (2, 4)  # d-other, e-none; the lake held the other four
    capsys.readouterr()
    assert ingest(src, "--lake", lake) == 0
    assert "seen 5 · skipped as already ingested 5 · read 0 ·" in capsys.readouterr().out  # done now
    assert ingest(src, "--lake", whole) == 0
    assert rows(lake) == rows(whole) and len(rows(whole)) == 8


def test_a_lake_inside_its_source_is_not_read_back_through_a_symbolic_link(tmp_path, monkeypatch, capsys):
    """`cd linked; trailhouse ingest . --lake linked/lake`: the listing names the real folders, the lake its
    linked path; the lake's own files (parts, state, quarantine) were listed and quarantined every run."""
    real, linked = tmp_path / "real", tmp_path / "linked"
    write(trail_path(real, ACCT, "us-east-1", "2026-11-01", "a"), [record(eid="x"), record(eid="y")])
    linked.symlink_to(real)
    monkeypatch.chdir(linked)
    assert ingest(".", "--lake", linked / "lake") == 0
    capsys.readouterr()
    for _ in range(2):  # nothing new: the lake's files are not listed
        assert ingest(".", "--lake", linked / "lake") == 0
        assert "files       seen 1 · skipped as already ingested 1 · read 0 · quarantined 0\n" in capsys.readouterr().out
    assert quarantine(real / "lake") == [] and sql(real / "lake", "SELECT count(*) FROM EVENTS")[0][0] == 2


def test_a_full_refresh_of_days_keeps_their_late_deliveries_and_refuses_an_account_scope(tmp_path, capsys):
    """A refresh replaces the days it rebuilds, so it must find all their events: a late delivery sits in a
    folder days after its event (it listed its range and a day of slack, and deleted those). A refresh of
    one account or region would replace whole days, every other account's events included: refused."""
    src, lake, whole = tmp_path / "src", tmp_path / "lake", tmp_path / "whole"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record(time="2026-11-01T10:00:00Z", eid="a")])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-02", "b"), [record(time="2026-11-02T10:00:00Z", eid="b")])
    write(trail_path(src, ACCT, "us-east-1", "2026-11-04", "late"),  # three days late, and Nov 4th's own
          [record(time="2026-11-01T23:00:00Z", eid="late"), record(time="2026-11-04T01:00:00Z", eid="next")])
    write(trail_path(src, OTHER, "eu-west-1", "2026-11-01", "o"),
          [record(time="2026-11-01T11:00:00Z", eid="other", account=OTHER, region="eu-west-1")])
    assert ingest(src, "--lake", lake) == 0
    before = rows(lake)
    assert ingest(src, "--lake", lake, "--full-refresh", "--since", "2026-11-01", "--until", "2026-11-01") == 0
    run = last_run(lake)
    assert (run["events_written"], run["events_filtered"], run["partitions"]) == (
        3, 2, ["events/event_date=2026-11-01"])  # a, late, other; b and next read, left out
    assert rows(lake) == before
    capsys.readouterr()
    for scope in (["--account", ACCT], ["--region", "us-east-1"]):
        assert ingest(src, "--lake", lake, "--full-refresh", *scope) == 2
        err = capsys.readouterr().err
        assert err.startswith("trailhouse: --full-refresh rebuilds whole days") and err.count("\n") == 1
    assert rows(lake) == before and len(before) == 5
    assert ingest(src, "--lake", lake) == 0  # the files read in part (b's, Nov 4th's) are read again: nothing new
    assert ingest(src, "--lake", whole) == 0
    assert rows(lake) == rows(whole)


def test_full_refresh_rebuilds_the_lake(tmp_path):
    lake, fresh = tmp_path / "lake", tmp_path / "fresh"
    src = tmp_path / "src"
    write(trail_path(src, ACCT, "us-east-1", "2026-10-01", "old"), [record(time="2026-10-01T00:00:00Z", eid="gone")])
    ingest(src, "--lake", lake)
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1", "--full-refresh") == 0
    ingest(SAMPLE, "--lake", fresh, "--workers", "1")
    assert rows(lake) == rows(fresh)
    assert not (lake / "events" / "event_date=2026-10-01").exists()
    assert len(list((lake / "_state" / "files").glob("*.parquet"))) == 1


def test_a_full_refresh_that_cannot_read_a_source_file_leaves_the_lake_as_it_was(tmp_path, capsys):
    """A full refresh replaces whole days with what the sources hold now: a file it cannot read (not CloudTrail,
    a folder it may not list) would take its events out of the lake. It refuses instead (exit 1, one line),
    and the lake, its state included, is exactly as before."""
    lake, src = tmp_path / "lake", tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    before = lake_files(lake) | {str(p.relative_to(lake)): p.read_bytes() for p in (lake / "_state").rglob("*.*")}
    notes = tmp_path / "notes.txt"
    notes.write_text("hi\n")
    broken = sorted(src.rglob("*.json.gz"))[5]
    broken.write_bytes(b"not gzip at all")
    for sources in ([notes], [src], [src, notes]):
        capsys.readouterr()
        assert main(["ingest", *map(str, sources), "--lake", str(lake), "--workers", "1", "--full-refresh"]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "the lake is unchanged" in err, err
        assert (str(notes) if sources[0] == notes else broken.name) in err
        after = lake_files(lake) | {str(p.relative_to(lake)): p.read_bytes() for p in (lake / "_state").rglob("*.*")}
        assert after == before
    assert not list((lake / "_tmp").glob("*")) if (lake / "_tmp").exists() else True
    # an incremental run merges: it quarantines the file and loses nothing the lake holds
    n = sql(lake, "SELECT count(*) FROM EVENTS")[0][0]
    assert ingest(src, "--lake", lake, "--workers", "1") == 3
    assert sql(lake, "SELECT count(*) FROM EVENTS")[0][0] == n


def test_a_lake_is_marked_with_a_new_schema_version_only_by_a_full_refresh_that_commits(tmp_path, capsys):
    """An older lake is refused until a full refresh rebuilds it. A full refresh that is refused (a source file it
    cannot read) leaves the lake as it was, its version marker included: marked new by a refresh that then failed,
    the old lake took the next incremental run's rows."""
    lake, src = tmp_path / "lake", tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    marker = lake / "_state" / "lake.json"
    assert json.loads(marker.read_text()) == {"schema_version": LAKE_SCHEMA_VERSION}
    marker.write_text(json.dumps({"schema_version": LAKE_SCHEMA_VERSION - 1}))
    old = marker.read_bytes()
    before = lake_files(lake)
    broken = sorted(src.rglob("*.json.gz"))[5]
    good = broken.read_bytes()
    broken.write_bytes(b"not gzip at all")
    # a refresh of some days would leave the others at the old version: refused as well
    for args, code in (((), 2), (("--full-refresh",), 1), ((), 2), (("--full-refresh", "--since", "2026-11-02"), 2)):
        capsys.readouterr()
        assert ingest(src, "--lake", lake, "--workers", "1", *args) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("--full-refresh" in err), err
        assert ("without --since/--until" in err) == ("--since" in args), err
        assert marker.read_bytes() == old and lake_files(lake) == before
    broken.write_bytes(good)
    assert ingest(src, "--lake", lake, "--workers", "1", "--full-refresh") == 0
    assert json.loads(marker.read_text()) == {"schema_version": LAKE_SCHEMA_VERSION}
    assert ingest(src, "--lake", lake, "--workers", "1") == 0


def test_a_run_that_fails_before_its_commit_leaves_no_new_lake_behind(tmp_path):
    """A first run that fails (here a full refresh refused) does not leave the folders of a lake it never wrote;
    a folder that was there before the run stays, empty, as it was."""
    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    sorted(src.rglob("*.json.gz"))[0].write_bytes(b"not gzip at all")
    new, given = tmp_path / "deep" / "er" / "new", tmp_path / "given"
    (given / "keep" / "empty").mkdir(parents=True)  # the user's: an empty folder in it stays too
    for lake in (new, given):
        assert ingest(src, "--lake", lake, "--workers", "1", "--full-refresh") == 1
    assert not (tmp_path / "deep").exists()  # the parents the run made go with it
    assert sorted(p.relative_to(given).as_posix() for p in given.rglob("*")) == ["keep", "keep/empty"]
    assert ingest(src, "--lake", new, "--workers", "1") == 3  # the same run without --full-refresh commits
    assert json.loads((new / "_state" / "lake.json").read_text()) == {"schema_version": LAKE_SCHEMA_VERSION}


def test_no_original_drops_only_the_original(tmp_path):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1", "--no-original")
    (n, originals, actions) = sql(lake, "SELECT count(*), count(event.original), count(event.action) FROM EVENTS")[0]
    assert n > 0 and originals == 0 and actions == n


def test_org_trail_insight_and_digest(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    org = "o-a1b2c3d4e5"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "e", org=org), [record(eid="org-1")])
    insight = {"eventVersion": "1.08", "eventTime": "2026-11-01T10:00:00Z", "awsRegion": "us-east-1",
               "eventID": "ins-1", "eventType": "AwsCloudTrailInsight", "recipientAccountId": ACCT,
               "sharedEventID": "s-1", "eventCategory": "Insight",
               "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                                  "insightType": "ApiCallRateInsight"}}
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "i", org=org, kind="CloudTrail-Insight"), [insight])
    digest = {"awsAccountId": ACCT, "digestStartTime": "2026-11-01T00:00:00Z", "digestEndTime": "2026-11-01T01:00:00Z",
              "digestS3Bucket": "trail", "digestS3Object": "AWSLogs/o/x-digest.json.gz", "digestPublicKeyFingerprint":
              "abc", "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": "2026-11-01T00:59:00Z",
              "oldestEventTime": "2026-11-01T00:00:10Z", "previousDigestS3Bucket": None,
              "logFiles": [{"s3Bucket": "trail", "s3Object": "AWSLogs/x.json.gz", "hashValue": "ff",
                            "hashAlgorithm": "SHA-256", "newestEventTime": "2026-11-01T00:59:00Z",
                            "oldestEventTime": "2026-11-01T00:00:10Z"}]}
    p = trail_path(src, ACCT, "us-east-1", "2026-11-01", "d", org=org, kind="CloudTrail-Digest")
    write(p, [digest], fmt="single")
    assert ingest(src, "--lake", lake) == 0
    assert sorted(sql(lake, "SELECT event.id, event.action, event.provider FROM EVENTS")) == [
        ("ins-1", "RunInstances", "ec2.amazonaws.com"), ("org-1", "DescribeInstances", "ec2.amazonaws.com")]
    (d,) = sql(lake, """SELECT cloud.account.id, file.path, aws.cloudtrail.digest.signature_algorithm,
                        strftime(aws.cloudtrail.digest.end_time, '%H:%M'), strftime("@timestamp", '%H:%M'),
                        aws.cloudtrail.digest.log_files[1].hash_value FROM DIGESTS""")
    assert d == (ACCT, "AWSLogs/o/x-digest.json.gz", "SHA256withRSA", "01:00", "01:00", "ff")


@pytest.mark.parametrize("args, message", [
    (["ingest", "{src}", "--lake", "{lake}", "--since", "2026-13-01"], "not a date"),
    (["ingest", "{src}", "--lake", "{lake}", "--workers", "0"], "whole number"),
    (["ingest", "{src}", "--lake"], "expected one argument"),
    # refused when the command is read, not after every input was read (the commit's DuckDB would refuse them)
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "abc"], "not a memory size (e.g. 1GB"),
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "0GB"], "out of range: give at least 64MB and at most 1000TB"),
    (["ingest", "s3://b/p", "--lake", "{lake}", "--endpoint-url", "notaurl"], "not an http(s) URL"),
    (["generate", "--out", "{file}", "--events", "10"], "is a file, not a directory"),
    (["bench", "--workdir", "{file}", "--events", "10"], "is a file, not a directory"),
    (["bench", "--json", "{lake}/no/such/dir/x.json", "--events", "10"], "there is no directory"),
    (["dashboards", "--lake", "{lake}", "--out", "{file}"], "is a file, not a directory"),
    # dates a day either side of which is no date: the listing's margin overflowed (exit 1, a lake left begun)
    (["ingest", "{src}", "--lake", "{lake}", "--until", "9999-12-31"], "out of range: give a date from 1970-01-01"),
    (["ingest", "{src}", "--lake", "{lake}", "--since", "0001-01-01"], "out of range"),
    (["findings", "--lake", "{lake}", "--since", "0001-01-01"], "out of range"),
    (["ingest", "{src}", "--lake", "{lake}", "--lookback-days", "99999999999"], "at most 3653 days"),
    # sizes DuckDB refuses, or cannot merge a partition in, only at the commit
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "1000%"], "at most 100%"),
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "99999999TB"], "out of range: give at least 64MB"),
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "1b"], "out of range"),
    # schemes no filesystem here reads: an ImportError, a DNS lookup, "Protocol not known"
    (["ingest", "gs://bucket/trail", "--lake", "{lake}"], "gs:// is not supported; give a local path or s3://"),
    (["ingest", "https://example.com/trail", "--lake", "{lake}"], "https:// is not supported"),
    (["sql", "--lake", "gs://bucket/lake", "SELECT 1"], "gs:// is not supported"),
    (["sql", "--lake", "{lake}", "--output", "{lake}/no/such/dir/x.csv", "SELECT 1"], "there is no directory"),
    (["ingest", "s3://", "--lake", "{lake}"], "name the bucket, s3://bucket/prefix"),
    (["ingest", "s3://trail*/AWSLogs", "--lake", "{lake}"], "name the bucket"),
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "0.001%"], "out of range"),
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "512Mi"], "not a memory size"),  # DuckDB: no
    (["ingest", "{src}", "--lake", "{lake}", "--memory-limit", "NONE"], "not a memory size"),
    (["dashboards", "--lake", "{lake}", "--out", "file:///tmp/x"], "give a local path, not a URL"),
])
def test_argument_errors_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit) as exc:
        main([a.format(src=SAMPLE, lake=tmp_path / "lake", file=tmp_path / "a-file") for a in args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("limit", ["1GB", "512 MiB", "1.5gb", "50%", "100%", "2 gigabytes", "64MB", "1000TB", "1G",
                                   ".5GB", "1e3MB", "1 terabyte", "-1", "none"])
def test_memory_limits_duckdb_takes_are_taken(limit):
    import duckdb

    from jobs.cli import parser

    assert parser().parse_args(["ingest", "s", "--lake", "l", "--memory-limit", limit]).memory_limit == limit
    duckdb.connect(config={"memory_limit": limit}).close()  # and DuckDB takes it


def test_an_s3_scheme_in_capitals_is_s3():
    from jobs.cli import parser

    args = parser().parse_args(["ingest", "S3://trail/AWSLogs", "--lake", "S3A://lakes/l"])
    assert (args.sources, args.lake) == (["s3://trail/AWSLogs"], "s3a://lakes/l")
    assert parser().parse_args(["ingest", "dir/a://b", "--lake", "file:///tmp/l"]).sources == ["dir/a://b"]


def test_a_source_that_is_the_lake_or_inside_it_is_refused(tmp_path, capsys, monkeypatch):
    """The lake's own files are never read back, so `ingest src --lake src` listed nothing ("seen 0", exit 0)
    and wrote the lake's state into the trail. A lake inside its source stays fine."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SAMPLE, "src")
    before = sorted(str(p) for p in Path("src").rglob("*"))
    for source, lake in (("src", "src"), ("./src/", str(tmp_path / "src")), ("src/AWSLogs", "src"),
                         ("src/AWSLogs/*/CloudTrail", "src")):
        assert ingest(source, "--lake", lake) == 2, (source, lake)
        assert capsys.readouterr().err == (f"trailhouse: the source {source} is inside the lake {lake}, whose own "
                                           "files a run never reads: give the trail's folder as the source and "
                                           "keep the lake in a folder or prefix of its own\n")
    assert sorted(str(p) for p in Path("src").rglob("*")) == before
    assert ingest("src", "--lake", "src-lake") == 0  # beside it, a name sharing the prefix
    assert ingest("src", "--lake", "lake[prod]") == 0  # a lake's name is a name, not a pattern
    assert ingest("src", "--lake", "src/lake") == 0  # inside its source: left out of the listing
    for out in ("src-lake", "src-lake/events"):
        assert main(["dashboards", "--lake", "src-lake", "--out", out]) == 2
        assert f"--out {out} is inside the lake src-lake" in capsys.readouterr().err
    assert sorted(p.name for p in Path("src-lake/events").iterdir()) == ["event_date=2026-11-01",
                                                                          "event_date=2026-11-02"]


def test_a_damaged_state_file_is_named_with_the_fix_and_the_fix_loses_nothing(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake) == 0
    rows = sql(lake, "SELECT count(*), count(DISTINCT event.id) FROM EVENTS")
    (state,) = (lake / "_state" / "files").glob("*.parquet")
    state.write_bytes(state.read_bytes()[:100])  # truncated
    capsys.readouterr()
    assert ingest(SAMPLE, "--lake", lake) == 2
    assert capsys.readouterr().err == (
        f"trailhouse: {state}, a record of the files a run ingested, cannot be read (Parquet magic bytes not found "
        "in footer. Either the file is corrupted or this is not a parquet file.): remove it and run again (its "
        "files are read again, and their events, already in the lake, are not added twice), or rebuild with "
        "--full-refresh\n")
    state.unlink()  # as the message says
    assert ingest(SAMPLE, "--lake", lake) == 0
    assert sql(lake, "SELECT count(*), count(DISTINCT event.id) FROM EVENTS") == rows
    assert ingest(SAMPLE, "--lake", lake) == 0 and "skipped as already ingested 90" in capsys.readouterr().out


def test_a_start_past_the_calendar_is_a_usage_error(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "g"), "--events", "10", "--start", "9999-12-30"]) == 2
    assert "runs past 9999-12-31: choose an earlier --start" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_configuration_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lake = tmp_path / "lake"
    assert ingest(tmp_path / "missing", "--lake", lake) == 2
    assert ingest(SAMPLE, "--lake", lake, "--since", "2026-11-02", "--until", "2026-11-01") == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ingest(SAMPLE, "--lake", blocker / "lake") == 2
    assert ingest(SAMPLE, "--lake", "s3://bucket/lake") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("trailhouse: ") for line in err)
    assert "source not found" in err[0] and "after --until" in err[1] and "not writable" in err[2]
    assert "no AWS credentials" in err[3]
    assert "Traceback" not in "".join(err)
    assert not lake.exists()


def test_a_glob_that_matches_nothing_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """Like a missing folder: a typo in a glob is not an empty run that exits 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert ingest("typo/*", "--lake", "lake") == 2
    assert ingest("data/*.json.gz", "--lake", "lake") == 2
    assert capsys.readouterr().err.splitlines() == [
        "trailhouse: nothing matches typo/*: check the pattern (hidden files and folders are skipped)",
        "trailhouse: nothing matches data/*.json.gz: check the pattern (hidden files and folders are skipped)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no lake


def test_an_empty_lake_source_or_output_is_a_usage_error(tmp_path, capsys, monkeypatch):
    """An empty path would be the current directory: a lake made of it, a source read from it."""
    monkeypatch.chdir(tmp_path)
    for args in (["ingest", SAMPLE, "--lake", ""], ["ingest", "", "--lake", "lake"], ["sql", "--lake", "", "SELECT 1"],
                 ["generate", "--out", "", "--events", "1"]):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        assert exc.value.code == 2
        assert "must not be empty (it would mean the current directory)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no lake, nothing generated


def test_a_held_lock_stops_a_second_ingest_and_a_stale_one_is_taken_over(tmp_path, capsys):
    lake = tmp_path / "lake"
    (lake / "_state").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock = {"pid": holder.pid, "host": os.uname().nodename, "since": "2026-11-21T00:00:00Z"}
        (lake / "_state" / "lock").write_text(json.dumps(lock))
        assert ingest(SAMPLE, "--lake", lake) == 1
        assert "another ingest is running" in capsys.readouterr().err
        assert not (lake / "events").exists()
    finally:
        holder.kill()
        holder.wait()
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0  # the holder is dead: stale lock
    assert not (lake / "_state" / "lock").exists()


def test_crash_before_the_journal_leaves_the_lake_untouched(tmp_path, monkeypatch):
    lake, clean = tmp_path / "lake", tmp_path / "clean"
    first_day = str(SAMPLE / "AWSLogs" / "*" / "CloudTrail" / "*" / "2026" / "11" / "01")
    ingest(first_day, "--lake", lake, "--workers", "1")
    before = lake_files(lake)
    calls = []

    def dying_build(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped mid-merge
        return real_build(self, *args, **kwargs)

    real_build = lake_mod.Lake.build_partition
    monkeypatch.setattr(lake_mod.Lake, "build_partition", dying_build)
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 130
    monkeypatch.undo()
    assert lake_files(lake) == before
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    ingest(SAMPLE, "--lake", clean, "--workers", "1")
    assert rows(lake) == rows(clean)


def test_crash_after_the_journal_is_completed_by_the_next_run(tmp_path, monkeypatch, capsys):
    lake, clean = tmp_path / "lake", tmp_path / "clean"
    first_day = str(SAMPLE / "AWSLogs" / "*" / "CloudTrail" / "*" / "2026" / "11" / "01")
    ingest(first_day, "--lake", lake, "--workers", "1")

    def dying_exchange(a, b):
        raise KeyboardInterrupt  # killed between two partition swaps

    monkeypatch.setattr(lake_mod, "_exchange", dying_exchange)
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 130
    monkeypatch.undo()
    assert list((lake / "_state" / "journal").glob("*.json"))
    # readers still see whole partitions: no duplicate ids in between
    (n, distinct) = sql(lake, "SELECT count(*), count(DISTINCT event.id) FROM EVENTS")[0]
    assert n == distinct
    capsys.readouterr()
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    assert "recovered" in capsys.readouterr().out
    assert not list((lake / "_state" / "journal").glob("*.json"))
    assert not (lake / "_tmp").exists() or not any((lake / "_tmp").iterdir())
    ingest(SAMPLE, "--lake", clean, "--workers", "1")
    assert rows(lake) == rows(clean)


def test_real_process_with_workers_matches_a_single_worker_run(tmp_path):
    """The console script, as cron runs it: no TTY, so no progress bar, and the summary on stdout."""
    single, multi = tmp_path / "single", tmp_path / "multi"
    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    write(src / "extra" / "big.json", [record(eid=f"x{i}") for i in range(40000)])  # forces several batches
    exe = Path(sys.executable).parent / "trailhouse"
    proc = subprocess.run([str(exe), "ingest", str(src), "--lake", str(multi), "--workers", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "events      read" in proc.stdout and "events/s" in proc.stdout
    assert ingest(src, "--lake", single, "--workers", "1") == 0
    assert rows(multi) == rows(single)
    assert last_run(multi)["events_written"] == last_run(single)["events_written"]


def test_progress_bar_only_on_a_terminal(tmp_path):
    import pty

    exe = Path(sys.executable).parent / "trailhouse"
    master, slave = pty.openpty()
    proc = subprocess.run([str(exe), "ingest", str(SAMPLE), "--lake", str(tmp_path / "lake"), "--workers", "1"],
                          stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "160"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    drawn = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "files" in drawn and "events/s" in drawn  # the live bar went to the terminal
    assert "events      read" in proc.stdout


def test_every_part_file_has_exactly_the_declared_schema(tmp_path):
    """Files written by workers, rewritten without duplicates, merged from fragments or compacted all match."""
    from transforms.schema import arrow_schema

    src, lake = tmp_path / "src", tmp_path / "lake"
    for n in range(MAX_FILES_PER_PARTITION + 1):  # the last run compacts
        write(trail_path(src, ACCT, "us-east-1", "2026-11-01", f"f{n:02d}"), [record(eid=f"e{n}"), record(eid="dup")])
        write(trail_path(src, ACCT, "us-east-1", "2026-11-02", f"g{n:02d}"),
              [record(time="2026-11-01T23:59:00Z", eid=f"late{n}"), record(time="2026-11-02T01:00:00Z", eid=f"g{n}")])
        assert ingest(src, "--lake", lake) == 0
    names = arrow_schema("events").names
    for f in (lake / "events").glob("*/*.parquet"):
        schema = pq.read_schema(f)
        assert schema.names == names, f
        assert schema.field("aws").type == arrow_schema("events").field("aws").type, f
    assert sql(lake, "SELECT count(*), count(DISTINCT event.id) FROM EVENTS")[0] == (
        3 * (MAX_FILES_PER_PARTITION + 1) + 1,) * 2


def test_the_state_a_run_skips_by_is_each_inputs_latest_record_of_the_wanted_folders():
    """Hashed urls and versions, not the urls, are held; an input whose latest download failed is retried, one
    read since is not, and an input back at an older version than its latest record is read again."""
    import pyarrow as pa

    from jobs.lake import UNREADABLE, input_key, latest_versions, version_key

    day = "s3://t/AWSLogs/1/CloudTrail/us-east-1/2026/11/01/"
    other = "s3://t/AWSLogs/1/CloudTrail/us-east-1/2026/10/01/"

    def run(*rows):
        return pa.RecordBatch.from_pylist([dict(zip(("url", "size", "version", "status"), r)) for r in rows])
    runs = [run((day + "a", 10, "v1", "ingested"), (day + "b", 20, "v1", UNREADABLE), (day + "c", 30, "v1", "ingested"),
                (day + "f", 20, "v1", "ingested"), (other + "d", 40, "v1", "ingested")),
            run((day + "a", 11, "v2", "ingested"), (day + "b", 20, "v1", "ingested"), (day + "c", 30, "v1", UNREADABLE),
                (day + "f", 10, "v1", "ingested")),
            run((day + "f", 20, "v2", UNREADABLE))]
    done = latest_versions(iter(runs), [day + "a"])

    def skipped(url, size, version):
        return done.get(input_key(url)) == version_key(size, version)
    assert skipped(day + "a", 11, "v2")  # rewritten, read again: its new version is done
    assert not skipped(day + "a", 10, "v1")  # back at its old version: read again
    assert skipped(day + "b", 20, "v1")  # failed, then read
    assert not skipped(day + "c", 30, "v1")  # its latest download failed: retried
    assert not skipped(day + "f", 10, "v1") and not skipped(day + "f", 20, "v1")  # latest failed, older ones too
    assert not skipped(other + "d", 40, "v1")  # a folder the run does not list
    assert not skipped(day + "e", 10, "v1")
    assert set(done) == {input_key(day + u) for u in "ab"}
    assert latest_versions(iter(runs), []) == {}


def test_a_batch_goes_to_arrow_as_the_lake_schema_without_the_large_string_copy():
    """The worker hands Polars' string views to Arrow and casts once (`worker._as_arrow`): the same table as
    the default export cast, typed as the lake's schema, on every table of the sample's files."""
    import pyarrow as pa

    from jobs import read, worker
    from tests.conftest import normalized_frame
    from transforms.schema import arrow_schema

    files = sorted(str(p) for p in SAMPLE.rglob("*.json.gz"))
    parsed = [read.split(Path(f).read_bytes()) for f in files]
    for table in ("events", "digests"):
        names = [f for f, p in zip(files, parsed) if p.table == table]
        normalized = normalized_frame(names, [p for p in parsed if p.table == table], table)
        schema = arrow_schema(table)
        got = worker._as_arrow(normalized, schema)
        assert got.schema.equals(schema) and got.num_rows == sum(len(p.records) for p in parsed if p.table == table) > 0
        assert got.equals(normalized.to_arrow().cast(schema))
        strings = [f for f in schema if pa.types.is_struct(f.type)]  # nested text was carried, not dropped
        assert all(got[f.name].null_count < got.num_rows for f in strings)
