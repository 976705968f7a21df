"""`trailhouse compact`: rewrite a lake's partitions as few sorted files, compressed harder.

An ingest writes for speed: each batch its own sorted file (~10K events), zstd 1. A day that has stopped
growing is read many times more than it is written, so it pays to rewrite it once: its events sorted across
batches (similar events of every batch side by side, one dictionary per column and row group) and
`event.original` at zstd 9 in 8 MiB pages: on the benchmark's lake 219 → 197 B/event, at ~25 µs of one core
per event (docs/performance.md). Run it after the nightly ingest, on the days before the last (--until).

A partition's files from earlier compactions that are full (COMPACT_ROWS) are kept; the rest (new batch
files, a part-filled compacted file) are rewritten in sorts of at most SORT_ROWS rows, one row group each,
so a worker's memory does not follow the size of a day. A partition with nothing new is left alone: a second
compaction writes nothing. Everything is written aside and committed like an ingest (lock, journal, atomic
swap; jobs/lake.py and jobs/s3lake.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from jobs.errors import UsageError, not_parquet
from jobs.lake import PARTITION, ROW_GROUP_SIZE, TABLES, open_lake, parquet_options
from jobs.pool import worker_init
from jobs.storage import S3Options
from transforms.schema import SORT_KEYS

#: Rows of a compacted file; a full one is not rewritten again.
COMPACT_ROWS = 200_000
#: Rows of one sort, written as one row group. Sorting 25K, 50K or 200K rows together gives about the same
#: size (198.4, 197.4, 197.3 B/event on the benchmark's lake), but a worker holds the rows it sorts twice
#: (read, then taken in order): largest worker 341 MiB at 25K, 479 at 50K, ~1.1 GiB at 200K.
SORT_ROWS = 25_000
#: zstd levels above the ingest's (1) where they pay: the raw record is most of a file (docs/performance.md).
COMPACT_LEVELS = {"event.original": 9}
#: zstd sees more of `event.original` at once in bigger pages (−4 B/event). Not at ingest: a worker's pages
#: would hold 15–35 MiB more (docs/performance.md).
COMPACT_PAGE_BYTES = 8 << 20
COMPACTED = "-compact-"


@dataclass
class Options:
    lake: str
    since: dt.date | None = None
    until: dt.date | None = None
    workers: int = 1
    s3: S3Options = field(default_factory=S3Options)


@dataclass
class Summary:
    run_id: str
    partitions: list[str]
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    rows: int = 0
    seconds: float = 0.0
    recovered: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"command": "compact", **asdict(self)}


@dataclass
class Rewrite:
    """One compacted file to write into `out`: each unit's files read and sorted together, a row group each."""
    table: str
    day: str
    units: list[list[str]]
    rows: int
    out: str

    @property
    def files(self) -> list[str]:
        return [f for unit in self.units for f in unit]


def compact_options(table: str, schema) -> dict:
    """The ingest's write options (jobs/lake.py), with bigger pages and harder compression where it pays."""
    opts = parquet_options(table, schema)
    del opts["row_group_size"]  # a writer's, given with each table written
    opts["data_page_size"] = COMPACT_PAGE_BYTES
    columns = opts["use_dictionary"] + list(opts["column_encoding"])
    opts["compression_level"] = {c: COMPACT_LEVELS.get(c, opts["compression_level"]) for c in columns}
    return opts


def rewrites(table: str, day: str, held: dict[str, int], run: str, out_dir: Path, file_rows: int | None = None,
             sort_rows: int | None = None) -> list[Rewrite]:
    """The partition's files to rewrite (all but the full compacted ones), in files of up to COMPACT_ROWS
    rows made of sorts of up to SORT_ROWS (a file is never split). None when there is nothing new: every
    file is a full compacted one, or the partition is one compacted file."""
    file_rows, sort_rows = file_rows or COMPACT_ROWS, sort_rows or SORT_ROWS
    todo = [f for f, n in held.items() if not (COMPACTED in Path(f).name and n >= file_rows)]
    if not todo or (len(todo) == 1 and COMPACTED in Path(todo[0]).name):
        return []
    out: list[Rewrite] = []
    for f in todo:
        if not out or out[-1].rows + held[f] > file_rows:
            out.append(Rewrite(table, day, [[]], 0, str(out_dir / f"part-{run}{COMPACTED}{len(out):03d}.parquet")))
        last = out[-1]
        if last.units[-1] and sum(held[g] for g in last.units[-1]) + held[f] > sort_rows:
            last.units.append([])
        last.units[-1].append(f)
        last.rows += held[f]
    return out


def rewrite(job: Rewrite, lake_url: str, s3: S3Options) -> int:
    """Write the compacted file: each unit's rows read, sorted by the table's keys and written as one row
    group; the rows written. Arrow only: a DuckDB sort of wide rows ran out of memory under 500 MB."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fs = getattr(open_lake(lake_url, s3), "fs", None)
    keys = [(pc.field(*k.split(".")), "ascending") for k in SORT_KEYS[job.table]]
    # the files' schemas differ in nullability only: a file an older commit rewrote (DuckDB) marks `@timestamp`
    # required, a worker's (Arrow) does not; the union holds both
    schema = pa.unify_schemas([pq.read_schema(_path(f, fs), filesystem=fs) for f in job.files])
    written = 0
    with pq.ParquetWriter(job.out, schema, **compact_options(job.table, schema)) as writer:
        for unit in job.units:
            rows = pa.concat_tables([pq.read_table(_path(f, fs), filesystem=fs).cast(schema) for f in unit])
            writer.write_table(rows.take(pc.sort_indices(rows, sort_keys=keys)), row_group_size=ROW_GROUP_SIZE)
            written += rows.num_rows
            del rows
    if written != job.rows:
        raise RuntimeError(f"compacting {job.files[0]} …: wrote {written} rows of {job.rows}")
    return written


def _path(url: str, fs) -> str:
    return url.split("://", 1)[1] if fs is not None else url


def _worker_setup() -> None:
    worker_init()  # Ctrl-C is the driver's to handle; no interpreter teardown at exit
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"  # before pyarrow loads: freed pages go back at once


def run(opts: Options) -> Summary:
    """Compact every partition in --since/--until that holds files not yet compacted; all or nothing."""
    from jobs.ingest import new_run_id

    start = time.perf_counter()
    lake = open_lake(opts.lake, opts.s3)
    if not any(lake.partitions(t) for t in TABLES):
        raise UsageError(f"there is no lake at {opts.lake} (no events or digests): nothing to compact")
    lake.prepare()
    lock = lake.lock("compact")
    try:
        recovered = lake.recover()
        mark_version = lake.check_version(False)  # a lake from before the marker gets it with this commit
        run_id = new_run_id()
        tmp = lake.tmp(run_id)
        summary = Summary(run_id, [], recovered=recovered)
        try:
            jobs, kept = _plan(lake, opts, run_id, tmp, summary)
            if jobs:
                _rewrite_all(jobs, opts, lake.url)
                replace = sorted({(j.table, j.day) for j in jobs})
                for table, day in replace:
                    adds = [j.out for j in jobs if (j.table, j.day) == (table, day)]
                    removes = [f for j in jobs if (j.table, j.day) == (table, day) for f in j.files]
                    lake.stage(run_id, table, day, adds, removes, list(kept[(table, day)]))
                    summary.files_after += len(adds) + len(kept[(table, day)])
                    summary.bytes_after += sum(Path(a).stat().st_size for a in adds) + sum(kept[(table, day)].values())
                summary.partitions = [f"{t}/{PARTITION}={d}" for t, d in replace]
                summary.seconds = round(time.perf_counter() - start, 3)
                (tmp / "run.json").write_text(json.dumps(summary.as_dict(), indent=2))
                lake.commit(run_id, replace, [], reset_state=False, mark_version=mark_version)
            summary.seconds = round(time.perf_counter() - start, 3)
            return summary
        finally:
            lake._cleanup(run_id)
    finally:
        lock.release()


def _plan(lake, opts: Options, run_id: str, tmp: Path, summary: Summary) -> tuple[list[Rewrite], dict]:
    """The files to write, and each partition's files kept as they are, with their sizes (each file's size
    asked once: on S3 a request each)."""
    jobs: list[Rewrite] = []
    kept: dict[tuple[str, str], dict[str, int]] = {}
    for table in TABLES:
        for day in lake.partitions(table):
            if (opts.since and day < opts.since.isoformat()) or (opts.until and day > opts.until.isoformat()):
                continue
            files = lake.partition_files(table, day)
            held = {f: _rows(lake, f) for f in files}
            out_dir = tmp / table / f"{PARTITION}={day}"
            todo = rewrites(table, day, held, run_id, out_dir)
            if not todo:
                continue
            out_dir.mkdir(parents=True, exist_ok=True)
            jobs += todo
            rewritten = {f for j in todo for f in j.files}
            sizes = {f: lake.size([f]) for f in files}
            kept[(table, day)] = {f: n for f, n in sizes.items() if f not in rewritten}
            summary.files_before += len(files)
            summary.bytes_before += sum(sizes.values())
            summary.rows += sum(held.values())
    return jobs, kept


def _rows(lake, f: str) -> int:
    """A file's rows from its footer; a file that has none is the user's to fix, not a bug (pyarrow does not
    name the file)."""
    import pyarrow as pa

    try:
        return lake.rows([f])
    except pa.ArrowInvalid:
        raise UsageError(not_parquet(f)) from None


def _rewrite_all(jobs: list[Rewrite], opts: Options, lake_url: str) -> None:
    """The compacted files across worker processes, biggest first."""
    jobs = sorted(jobs, key=lambda j: -j.rows)
    workers = max(1, min(opts.workers, len(jobs)))
    if workers == 1:
        for j in jobs:
            rewrite(j, lake_url, opts.s3)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_worker_setup) as pool:
        futures = [pool.submit(rewrite, j, lake_url, opts.s3) for j in jobs]
        try:
            for f in futures:
                f.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
