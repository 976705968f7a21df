"""The ingest job: discover → plan batches → read + transform in workers → commit.

Workers only write staged part files; the driver alone merges partitions and
commits, so a run that fails anywhere before the commit journal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace as with_fields
from itertools import chain, islice
from multiprocessing import get_context
from pathlib import Path

from jobs.discover import Scope, SourceFile, check_sources, iter_files, newest_folders
from jobs.listing import listed_again
from jobs.errors import RunError
from jobs.lake import PARTITION, fragment_rows, input_key, open_lake, version_key
from jobs.pool import worker_init
from jobs.storage import S3Options

#: Decompressed JSON per batch, as estimated from the files' sizes (see Inflation): a worker's memory follows
#: the JSON it reads (~11 MiB of resident size per MiB), whatever the input size. A worker cuts a batch that
#: turns out larger (jobs/worker.py: CHUNK_JSON_BYTES).
BATCH_BYTES = 14 * 2**20
BATCH_FILES = 2000
#: What a gzip file is taken to decompress to until the run has read some (CloudTrail's compress 5–16×).
GZIP_RATIO = 8


@dataclass(frozen=True)
class Options:
    sources: list[str]
    lake: str
    scope: Scope = Scope()
    workers: int = 1
    full_refresh: bool = False
    keep_original: bool = True
    memory_limit: str = "1GB"
    s3: S3Options = S3Options()
    #: S3 sources: days re-listed before the newest folder already ingested, for late deliveries
    lookback_days: int = 2
    executor: str = "local"  # or "dask": batches run on a Dask cluster (jobs/dask_executor.py)
    scheduler: str | None = None  # the Dask scheduler address (else DASK_SCHEDULER_ADDRESS)


@dataclass
class Counts:
    files_seen: int = 0
    files_skipped: int = 0
    files_read: int = 0
    files_quarantined: int = 0
    files_partial: int = 0  # read in part: events outside the scope left out, read again by a later run
    events_read: int = 0
    events_quarantined: int = 0
    events_filtered: int = 0
    events_written: int = 0
    duplicates: int = 0
    digests_read: int = 0
    digests_quarantined: int = 0
    digests_filtered: int = 0
    digests_written: int = 0
    digest_duplicates: int = 0
    seconds_reading: float = 0.0  # discovery, reading, transforming and staging, until every batch is done
    seconds_committing: float = 0.0  # merging the touched partitions and swapping them in

    def add(self, other: Counts) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


@dataclass
class BatchResult:
    counts: Counts = field(default_factory=Counts)
    staged: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)
    quarantine: list[dict] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    worker: str = ""  # host:pid of the process that ran the batch
    seconds: float = 0.0
    gzip_bytes: int = 0  # the gzip files it read, and the JSON they held
    json_bytes: int = 0
    #: seconds of the batch in each step of the worker's flow (fetch, split, records, extract, validate,
    #: normalize, order, export, write); the rest of `seconds` is quarantining and bookkeeping
    steps: dict[str, float] = field(default_factory=dict)


@dataclass
class Summary:
    run_id: str
    counts: Counts
    partitions: list[str]
    seconds: float
    recovered: list[str]
    #: host:pid → batches, events read, seconds busy: each worker's share and throughput
    workers: dict[str, dict] = field(default_factory=dict)
    #: the workers' seconds by step, summed over the run's batches: where the time went
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        c = self.counts
        return 3 if c.files_quarantined or c.events_quarantined or c.digests_quarantined else 0

    @property
    def events_per_second(self) -> float:
        return self.counts.events_read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"command": "ingest", "run_id": self.run_id, **asdict(self.counts), "partitions": self.partitions,
                "seconds": round(self.seconds, 3), "events_per_second": round(self.events_per_second),
                "exit_code": self.exit_code, "recovered_runs": self.recovered, "workers": self.workers,
                "worker_seconds_by_step": self.steps}


def new_run_id() -> str:
    """Sorts by start time (to the microsecond), unique across hosts."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


# --- planning -----------------------------------------------------------------------
#: Worker processes: one Polars thread each (parallelism is across batches). A worker keeps the memory a batch
#: freed for the next batch instead of handing it back to the kernel and faulting it in again, page by page:
#: Polars' jemalloc purges only what stayed unused for 5 s (an idle worker still shrinks); glibc serves blocks
#: up to 32 MiB (the most it allows) from its heap, not from a mapping of their own that is unmapped when
#: freed, and does not trim the heap; Arrow allocates from glibc too (`arrow_uses_malloc`), so what DuckDB,
#: Python and Arrow free, each reuses. Memory given back after every batch cost a sixth of the run in the
#: kernel at first, and ~1.3 page faults per event until Arrow and glibc kept theirs (docs/performance.md).
WORKER_ENV = {"POLARS_MAX_THREADS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:5000,muzzy_decay_ms:5000",
              "ARROW_DEFAULT_MEMORY_POOL": "system",
              "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295"}
#: What a worker imports before it ignores Ctrl-C: Polars sets a SIGINT handler of its own (jobs/pool.py).
WORKER_PRELOAD = ("polars",)


@functools.cache
def arrow_uses_malloc() -> None:
    """Arrow allocates from the C library's malloc (driver and workers), beside DuckDB and Python.

    pyarrow's default pool (mimalloc) keeps what a batch freed in a heap of its own (~50 MiB more at the peak
    of a two-worker run); Arrow's jemalloc with no decay gave it back to the kernel after every batch, so its
    strings and Parquet pages were faulted in afresh by each (a batch's cast to the lake's schema 17–20 ms
    against 9–11 from malloc). Setting the pool here reaches only part of Arrow's allocations;
    `ARROW_DEFAULT_MEMORY_POOL`, read before Arrow's first allocation, reaches them all: WORKER_ENV sets it for
    spawned workers, and this covers the rest (the driver, a Dask worker).
    """
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


@dataclass(frozen=True)
class Batch:
    """Files one worker turns into part files, plus context: the file just before each of its streams.

    CloudTrail re-delivers an event in a later file of the same stream (account, region). Where a stream
    continues from the previous batch, the worker reads that previous file too, only to drop events already
    there: the duplicate is settled in the worker instead of by rewriting a whole file at commit time.
    """
    files: list[SourceFile]
    context: list[SourceFile] = field(default_factory=list)


class Inflation:
    """What the run's gzip files decompress to, learnt from the batches done: the plan sizes batches by the JSON
    they will hold, and a trail's files compress 5× (small files, varied calls) to 16× (one caller's repeated
    calls). Until a batch is done, GZIP_RATIO."""

    def __init__(self) -> None:
        self.gzip = self.json = 0

    def learn(self, result: BatchResult) -> None:
        self.gzip += result.gzip_bytes
        self.json += result.json_bytes

    def estimate(self, f: SourceFile) -> int:
        if not f.gzipped:
            return f.size
        return int(f.size * (self.json / self.gzip if self.gzip else GZIP_RATIO))


def plan(files: Iterable[SourceFile], workers: int, inflation: Inflation | None = None) -> Iterator[Batch]:
    """Batches of neighbouring files (same stream and day, in listing order) of bounded size, cut as the
    listing goes: the driver holds a few batches' files, never the whole of a backfill.

    An input smaller than 4 full batches per worker is spread over that many batches (so every worker has
    work); telling the two apart needs only that much read-ahead.
    """
    files, estimate = iter(files), (inflation or Inflation()).estimate
    ahead, size = [], 0
    for f in files:
        ahead.append(f)
        size += estimate(f)
        if size >= BATCH_BYTES * workers * 4:
            break
    target = max(4 * 2**20, min(BATCH_BYTES, size // max(1, workers * 4)))
    return with_context(_groups(chain(ahead, files), target, estimate))


def _groups(files: Iterator[SourceFile], target: int,
            estimate: Callable[[SourceFile], int]) -> Iterator[list[SourceFile]]:
    """Consecutive files up to `target` bytes; a batch at least half full also ends where the folder date
    changes, so it writes one day's part file, not a large one and a fragment of the next day to merge."""
    current: list[SourceFile] = []
    size = 0
    for f in files:
        more = estimate(f)  # as known when the file is planned: later files use what more batches taught
        full = size + more > target or len(current) >= BATCH_FILES
        if current and (full or (size >= target // 2 and f.folder_date != current[-1].folder_date)):
            yield current
            current, size = [], 0
        current.append(f)
        size += more
    if current:
        yield current


def _stream(f: SourceFile) -> str | None:
    """…/AWSLogs/<account>/CloudTrail/<region>/ for a file in the dated layout; None otherwise."""
    return f.url.rsplit("/", 4)[0] if f.folder_date and not f.digest else None


def with_context(groups: Iterable[list[SourceFile]], before: Iterable[SourceFile] = ()) -> Iterator[Batch]:
    """Each group as a Batch whose context is the file just before each of its streams: in an earlier group,
    or among `before` (files read earlier, each the last of its stream)."""
    last_of: dict[str, SourceFile] = {s: f for f in before if (s := _stream(f))}  # stream → its latest file
    for files in groups:
        context = []
        seen: set[str] = set()
        for f in files:
            s = _stream(f)
            if s and s not in seen:  # the stream's first file in this batch
                seen.add(s)
                if s in last_of and len(context) < MAX_CONTEXT_FILES:
                    context.append(last_of[s])
        for f in files:
            s = _stream(f)
            if s:
                last_of[s] = f
        yield Batch(files, context)


#: A batch reads at most this many neighbouring files as context (see Batch).
MAX_CONTEXT_FILES = 32


# --- the worker task ---------------------------------------------------------------
def process_batch(batch_no: int, batch: Batch, opts: Options, staging: str) -> BatchResult:
    """Read, validate, normalize and stage one batch (jobs/worker.py). Imported where it runs, so the driver
    never loads the reader and the transforms (DuckDB extraction, user-agent and domain parsers)."""
    from jobs.worker import process_batch as run_batch

    return run_batch(batch_no, batch, opts, staging)


_COUNTER_NAMES = {("events", "duplicates"): "duplicates", ("digests", "duplicates"): "digest_duplicates"}


def _bump(c: Counts, table: str, what: str, n: int) -> None:
    name = _COUNTER_NAMES.get((table, what), f"{table}_{what}")
    setattr(c, name, getattr(c, name) + n)



# --- the driver ---------------------------------------------------------------------
ProgressFn = Callable[[int, int | None, int], None]  # files done, files total (once listed), events read


def listing_scope(opts: Options) -> Scope:
    """The folders a run lists. A --full-refresh replaces the days it rebuilds, so it lists every folder from
    its first day on: an event is delivered into a later day's folder, sometimes days later, and a refresh
    that listed only its range and a day of slack deleted those late events from the days it replaced."""
    return with_fields(opts.scope, until=None) if opts.full_refresh else opts.scope


def run(opts: Options, progress: ProgressFn | None = None) -> Summary:
    """One ingest run: everything or nothing is committed."""
    start = time.perf_counter()
    check_sources(opts.sources)
    lake = open_lake(opts.lake, opts.s3)
    # each source's listing is started before anything is written, so a source error leaves no trace; the
    # newest folder per stream (where a lookback window starts) comes from the state as it stands
    today = dt.datetime.now(dt.timezone.utc).date()
    folders = {} if opts.full_refresh else lake.state_folders()
    known = newest_folders([url for url, read in folders.items() if read])  # a stream never read is listed whole
    done = ingested(lake, list(folders), opts, known, today)
    listed = iter_files(opts.sources, listing_scope(opts), opts.s3, known, opts.lookback_days, today)
    lake.prepare()
    lock = lake.lock()
    finished = False
    try:
        recovered = lake.recover()
        mark_version = lake.check_version(opts.full_refresh, bool(opts.scope.since or opts.scope.until))
        run_id = new_run_id()
        if recovered and not opts.full_refresh:  # a finished commit added state (the listing keeps its windows)
            done = ingested(lake, list(lake.state_folders()), opts, known, today)
        todo = Todo(listed, lake.url.rstrip("/") + "/", done)
        log = RunLog(lake.tmp(run_id), run_id)
        inflation = Inflation()
        execution = _execute(plan(todo, opts.workers, inflation), opts, str(lake.staging(run_id)), progress, todo,
                             inflation)
        try:
            results = [log.add(r) for r in execution]
        finally:  # the pool ends here, not when collected: a signal caught outside it (in the plan) kept it alive
            execution.close()  # in its traceback, its workers writing on into the staging area this run removes
        arrow_uses_malloc()  # the driver's first Arrow allocation is the state file, then the commit
        log.close()
        counts = Counts(files_seen=todo.seen, files_skipped=todo.skipped,
                        seconds_reading=round(time.perf_counter() - start, 3))
        for r in results:
            counts.add(r.counts)
        workers, steps = per_worker(results), per_step(log.steps, log.busy)
        if opts.full_refresh and counts.files_quarantined:
            raise RunError(_refresh_refused(log.first_unread, counts.files_quarantined))
        partitions: list[str] = []
        if results:
            partitions = _commit(lake, run_id, opts, results, counts, start, recovered, workers, steps,
                                 mark_version)
        else:
            lake._cleanup(run_id)
        finished = True
        return Summary(run_id, counts, partitions, time.perf_counter() - start, recovered, workers, steps)
    except BaseException:
        if "run_id" in locals():
            lake._cleanup(run_id)
        raise
    finally:
        lock.release()
        if not finished:
            lake.tidy()


def _refresh_refused(first: dict, files: int) -> str:
    """Why a full refresh leaves the lake as it was: it replaces whole days with what the sources hold now, so a
    source file it could not read (unreadable, not CloudTrail, a folder it may not list) would take its events
    out of the lake, or a day the lake holds only from it. An incremental run merges, and loses nothing."""
    more = f" and {files - 1:,} more" if files > 1 else ""
    return (f"--full-refresh rebuilds whole days from the sources, but it could not read {first['source']} "
            f"({first['reason']}){more}: the lake is unchanged; fix or move what could not be read and run "
            "again, or ingest without --full-refresh")


def ingested(lake, folders: list[str], opts: Options, known: dict[str, dt.date],
             today: dt.date) -> dict[bytes, bytes]:
    """What the lake has ingested of the folders this run's listing can yield (`folders`: one url of each
    folder in the state): the state of a nightly run's window, not of every file a years-old lake read."""
    wanted = [url for url in folders if listed_again(url, opts.sources, opts.scope, known, opts.lookback_days, today)]
    return lake.ingested(wanted) if wanted else {}


class Todo:
    """The listed files still to ingest, counted as the listing streams by (see `plan`)."""

    def __init__(self, listed: Iterable[SourceFile], lake_prefix: str, done: dict[bytes, bytes]) -> None:
        self._listed, self._done, self._lake = listed, done, lake_prefix
        #: a local lake's path with its links resolved, which the listing's resolved folders are matched to
        self._real_lake = None if "://" in lake_prefix else os.path.realpath(lake_prefix) + "/"
        self._folder: tuple[str, bool] = ("", False)  # the last listed folder, and whether it is in the lake
        self.seen = self.skipped = self.count = 0
        self.complete = False

    def _in_lake(self, url: str) -> bool:
        """Whether a listed file is the lake's own: a lake inside its source is never read back, also where
        one of the two paths goes through a symbolic link (`cd linked; ingest . --lake linked/lake`). Local
        folders are resolved once each, as the listing reaches them."""
        if url.startswith(self._lake):
            return True
        if self._real_lake is None or "://" in url:
            return False
        folder = url.rsplit("/", 1)[0]
        if folder != self._folder[0]:
            self._folder = (folder, (os.path.realpath(folder) + "/").startswith(self._real_lake))
        return self._folder[1]

    def __iter__(self) -> Iterator[SourceFile]:
        for f in self._listed:
            if self._in_lake(f.url):  # never read the lake back
                continue
            self.seen += 1
            # a backfill into a fresh lake has nothing to skip: no hashing per listed file then
            if self._done and self._done.get(input_key(f.url)) == version_key(f.size, f.version):
                self.skipped += 1
                continue
            self.count += 1
            yield f
        self.complete = True

    @property
    def total(self) -> int | None:
        """How many files the run reads: known once the listing is complete."""
        return self.count if self.complete else None


def _execute(batches: Iterator[Batch], opts: Options, staging: str, progress: ProgressFn | None,
             todo: Todo, inflation: Inflation) -> Iterator[BatchResult]:
    """Run the batches on the chosen executor; results come back as batches finish, progress follows them."""
    files_done = events = 0
    first = list(islice(batches, 2))  # one batch runs in this process, more go to the workers
    batches = chain(first, batches)
    if progress:
        progress(0, todo.total, 0)
    if opts.executor == "dask":
        from jobs.dask_executor import dask_results

        results = dask_results(batches, opts, staging)
    elif opts.workers <= 1 or len(first) <= 1:
        results = (process_batch(n, b, opts, staging) for n, b in enumerate(batches))
    else:
        results = _process_pool(batches, opts, staging)
    for r in results:
        inflation.learn(r)  # the batches cut from now on are sized by it
        files_done += len(r.files)
        events += r.counts.events_read
        if progress:
            progress(files_done, todo.total, events)
        yield r


def _process_pool(batches: Iterator[Batch], opts: Options, staging: str) -> Iterator[BatchResult]:
    with worker_pool(opts.workers) as pool:
        try:
            yield from _pool_results(pool, batches, opts, staging)
        except BaseException:  # Ctrl-C or a failed batch: the queued batches are dropped, running ones end
            pool.shutdown(wait=True, cancel_futures=True)
            raise


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Worker processes as a run starts them: fresh interpreters (spawned) with WORKER_ENV, set up by
    `pool.worker_init`. The driver's own environment is as it was once the pool has ended; glibc settings of
    the user's own (`GLIBC_TUNABLES`) are passed on after ours, so theirs win."""
    env = dict(WORKER_ENV)
    if os.environ.get("GLIBC_TUNABLES"):
        env["GLIBC_TUNABLES"] += ":" + os.environ["GLIBC_TUNABLES"]
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # spawned workers inherit it before they start
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=worker_init, initargs=WORKER_PRELOAD) as pool:
            yield pool
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pool_results(pool: ProcessPoolExecutor, batches: Iterator[Batch], opts: Options,
                  staging: str) -> Iterator[BatchResult]:
    """Results as batches finish, with a bounded window of batches in flight: a finished batch's result is let
    go once yielded, so the driver holds O(workers) results, not one per batch of a million-file backfill."""
    todo = iter(enumerate(batches))
    pending = {pool.submit(process_batch, n, b, opts, staging) for n, b in islice(todo, 2 * opts.workers)}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            try:
                r = fut.result()
            except Exception as exc:  # a bug or a dead worker, never bad input
                if isinstance(exc, OSError):  # e.g. the disk is full: said as such by the CLI
                    raise
                raise RunError(f"a worker failed: {type(exc).__name__}: {exc}") from exc
            pending |= {pool.submit(process_batch, n, b, opts, staging) for n, b in islice(todo, 1)}
            yield r
        del done


def per_worker(results: list[BatchResult]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in results:
        w = out.setdefault(r.worker, {"batches": 0, "events": 0, "seconds": 0.0})
        w["batches"] += 1
        w["events"] += r.counts.events_read + r.counts.digests_read
        w["seconds"] = round(w["seconds"] + r.seconds, 3)
    return dict(sorted(out.items()))


def per_step(steps: dict[str, float], busy: float) -> dict[str, float]:
    """The workers' seconds by step over all batches, the largest first; `other` is what no step timed of the
    `busy` seconds in all (none without a batch)."""
    out = {**steps, "other": max(0.0, busy - sum(steps.values()))} if steps else {}
    return {k: round(v, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def _commit(lake, run_id: str, opts: Options, results: list[BatchResult], counts: Counts, start: float,
            recovered: list[str], workers: dict[str, dict], steps: dict[str, float], mark_version: bool) -> list[str]:
    import duckdb  # the driver loads its engines only now, once the workers are done (docs/performance.md)

    committing = time.perf_counter()
    staged: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for r in results:
        for key, parts in r.staged.items():
            staged.setdefault(key, []).extend(parts)
    tmp = lake.tmp(run_id)
    tmp.mkdir(parents=True, exist_ok=True)
    config = {"threads": max(1, opts.workers), "memory_limit": opts.memory_limit,
              "temp_directory": str(tmp / "spill"), "autoinstall_known_extensions": False,
              "autoload_known_extensions": False}
    fragment = fragment_rows(n for parts in staged.values() for _, n in parts)
    replace = []
    for (table, day), parts in sorted(staged.items()):
        staged_rows = sum(n for _, n in parts)
        # a connection per partition: one kept for the whole commit holds on to a few MiB more with each
        # partition it reads (180 MiB after 10 partitions against 158 fresh), so a backfill's commit would
        # grow with its days (docs/performance.md)
        con = duckdb.connect(config=config)
        try:
            con.execute("SET TimeZone = 'UTC'")
            lake.attach(con)
            built = lake.build_partition(con, run_id, table, day, dict(parts), opts.full_refresh,
                                         fragment)
        finally:
            con.close()
        before, after = built if built else (0, 0)
        _bump(counts, table, "duplicates", staged_rows - (after - before))
        _bump(counts, table, "written", after - before)
        if built:  # a partition whose new rows were all duplicates is left as it is
            replace.append((table, day))
    remove = _stale_partitions(lake, opts, set(staged)) if opts.full_refresh else []
    partitions = [f"{t}/{PARTITION}={d}" for t, d in replace]
    counts.seconds_committing = round(time.perf_counter() - committing, 3)  # the swap itself is milliseconds
    summary = Summary(run_id, counts, partitions, time.perf_counter() - start, recovered, workers, steps)
    (tmp / "run.json").write_text(json.dumps(summary.as_dict(), indent=2))
    lake.commit(run_id, replace, remove, reset_state=opts.full_refresh, mark_version=mark_version)
    return partitions


def _stale_partitions(lake, opts: Options, rebuilt: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """On --full-refresh, partitions in the run's date range that the sources no longer produce."""
    stale = []
    for table in ("events", "digests"):
        for day in lake.partitions(table):
            d = dt.date.fromisoformat(day)
            in_range = (not opts.scope.since or d >= opts.scope.since) and (not opts.scope.until or d <= opts.scope.until)
            if in_range and (table, day) not in rebuilt:
                stale.append((table, day))
    return stale


#: A state row's columns as the run writes them down (Arrow type names), then run_id and ingested_at.
STATE_COLUMNS = {"url": "string", "size": "int64", "version": "string", "status": "string", "records": "int64",
                 "rejected": "int64"}


class RunLog:
    """The run's state rows (one per input) and quarantine entries, written to the run's work area as batches
    finish: the driver keeps no per-file data, however many files a backfill reads. State rows are JSON lines
    while the workers read (the driver loads no Arrow then) and become the state's Parquet file on `close`."""

    def __init__(self, tmp: Path, run_id: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp, self.run_id = tmp, run_id
        self.at = dt.datetime.now(dt.timezone.utc)
        self.state = open(tmp / "files.jsonl", "w")
        self.quarantine = None
        self.first_unread: dict | None = None  # the first input quarantined whole, to name in a refusal
        self.steps: dict[str, float] = {}  # the workers' seconds by step, summed as batches finish
        self.busy = 0.0  # and their seconds in all

    def add(self, r: BatchResult) -> BatchResult:
        """Write down a batch's files and quarantine; what the commit still needs is returned."""
        for f in r.files:
            self.state.write(json.dumps({k: f[k] for k in STATE_COLUMNS}) + "\n")
        if r.quarantine:
            if self.quarantine is None:
                self.quarantine = open(self.tmp / "quarantine.jsonl", "w")
            for q in r.quarantine:
                self.quarantine.write(json.dumps(q, ensure_ascii=False) + "\n")
                if q["record"] is None and self.first_unread is None:
                    self.first_unread = q
        for step, seconds in r.steps.items():
            self.steps[step] = self.steps.get(step, 0.0) + seconds
        self.busy += r.seconds
        return BatchResult(counts=r.counts, staged=r.staged, worker=r.worker, seconds=r.seconds)

    def close(self) -> None:
        self.state.close()
        if self.quarantine is not None:
            self.quarantine.close()
        _state_parquet(self.tmp / "files.jsonl", self.tmp / "files.parquet", self.run_id, self.at)


def _state_parquet(rows: Path, out: Path, run_id: str, at: dt.datetime) -> None:
    """The run's state rows as the state's Parquet file, streamed in blocks (a backfill lists millions)."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    listed = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in STATE_COLUMNS.items()])
    schema = listed.append(pa.field("run_id", pa.string())).append(pa.field("ingested_at", pa.timestamp("us", "UTC")))
    with pq.ParquetWriter(out, schema) as writer:
        if rows.stat().st_size:
            reader = pj.open_json(rows, parse_options=pj.ParseOptions(explicit_schema=listed,
                                                                      unexpected_field_behavior="error"))
            for block in reader:
                n = block.num_rows
                writer.write_batch(pa.RecordBatch.from_arrays(
                    [*block.columns, pa.array([run_id] * n, pa.string()),
                     pa.array([at] * n, pa.timestamp("us", "UTC"))], schema=schema))
    rows.unlink()
