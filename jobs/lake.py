"""The Parquet lake on disk: layout, lock, partition merge and the atomic commit.

    LAKE/events/event_date=YYYY-MM-DD/part-<run>-<batch>.parquet   normalized events, each file sorted
    LAKE/digests/event_date=YYYY-MM-DD/part-<run>-<batch>.parquet  one row per digest file
    LAKE/quarantine/<run>.jsonl                             rejected files and records
    LAKE/_state/files/<run>.parquet                         inputs each run ingested
    LAKE/_state/runs/<run>.json                             each run's summary
    LAKE/_state/journal/<run>.json                          only while a commit is applied
    LAKE/_staging/<run>/, LAKE/_tmp/<run>/                  work areas of a running ingest

Workers write final part files (deduplicated within their batch, sorted, zstd). A commit
assembles each touched partition's next file set aside under `_tmp/<run>` (unchanged files
hard-linked, new ones moved in, a new file holding duplicates rewritten without them, and
the small files compacted into one past MAX_FILES_PER_PARTITION), then writes the
journal (the point of no return), then swaps each partition into place and moves
the state files in. A run that dies before the journal leaves the lake untouched
(its work areas are removed by the next run); one that dies after it is completed
by the next run from the journal. Swaps use RENAME_EXCHANGE where the kernel has
it, so readers see the old or the new partition, never neither.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from jobs import signals
from jobs.errors import CommitInterrupted, RunError, UsageError
from jobs.failpoints import failpoint
from jobs.sql import sql_string
from jobs.storage import S3Options, is_s3
from transforms.schema import DEDUP_KEYS, LAKE_SCHEMA_VERSION, PARTITION, SORT_KEYS

# The engines are imported by the functions that use them: an ingest driver lists, plans and hands out batches
# without loading DuckDB, Polars or Arrow (~75 MiB) while its workers read (docs/performance.md).
if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa

TABLES = ("events", "digests")
ROW_GROUP_SIZE = 50_000
#: zstd 1 compresses these sorted files as well as 3 (within 1 %) and writes 25 % faster (docs/performance.md).
PARQUET_ZSTD_LEVEL = 1
#: Columns a dictionary cannot shrink: each event's own random ids and text, and the time (sorted within each
#: action's caller, client and address). Delta encodings store them ~9 B/event smaller than a dictionary that
#: never repeats, for ~5 % more write time. The record's text shares long prefixes with its sorted neighbours
#: (`{"eventVersion":…,"userIdentity":{…`), which DELTA_BYTE_ARRAY stores once: ~2 B/event less than
#: DELTA_LENGTH_BYTE_ARRAY at zstd 1, at the same write time (docs/performance.md).
DELTA_ENCODED: dict[str, dict[str, str]] = {
    "events": {"event.id": "DELTA_LENGTH_BYTE_ARRAY", "aws.cloudtrail.request_id": "DELTA_LENGTH_BYTE_ARRAY",
               "event.original": "DELTA_BYTE_ARRAY", "@timestamp": "DELTA_BINARY_PACKED"},
    "digests": {},
}
#: A partition holds at most this many small files (under SMALL_FILE_ROWS); a commit that would leave more
#: compacts them into one. Files a full batch wrote are kept as they are: compacting a busy day whole had the
#: driver sort it in one query (1M events of one day: DuckDB out of memory at the 1 GB limit).
MAX_FILES_PER_PARTITION = 32
#: New part files smaller than this (late deliveries spilling into a neighbouring day) are merged into one,
#: and smaller than half the run's largest part file (`fragment_rows`).
SMALL_FILE_ROWS = 4_096


def fragment_rows(part_rows: Iterable[int]) -> int:
    """Rows under which a run's new part file is a fragment, to be merged with the partition's other fragments.

    Half the run's largest part file, which is about what a full batch writes: below it a file holds the tail
    of a batch that crossed into another day, or late deliveries. Batches of big events hold fewer rows, and a
    fixed count would have the driver re-sort whole batches' worth of them (policy documents: 71K of 250K events,
    commit 1.2 → 2.3 s).
    """
    return min(SMALL_FILE_ROWS, max(part_rows, default=0) // 2)


def _sql_path(dotted: str) -> str:
    return "t." + ".".join(f'"{p}"' for p in dotted.split("."))


def _files_sql(paths: list[str]) -> str:
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"


def losers_sql(table: str, existing: list[str], new: list[str]) -> str:
    """Rows of new files whose event is already in the lake or in an earlier new file (by name = batch order).

    Only the key columns are read; the answer is usually a handful of rows or none. The keys held twice are
    found by a hash aggregate first, so only their rows are ranked (a window over every row of a partition
    sorted all of them: 0.48 → 0.17 s for five 200K-event partitions).
    """
    key = "coalesce(" + ", ".join(_sql_path(k) for k in DEDUP_KEYS[table]) + ")"
    rank = f"CASE WHEN filename IN ({_files_sql(existing)[1:-1] or 'NULL'}) THEN 0 ELSE 1 END"
    return (
        f"WITH keyed AS (SELECT filename, file_row_number, {key} AS k, {rank} AS r "
        f"FROM read_parquet({_files_sql(existing + new)}, filename = true, file_row_number = true, "
        "hive_partitioning = false) t), "
        "twice AS (SELECT k FROM keyed GROUP BY k HAVING count(*) > 1), "
        "ranked AS (SELECT filename, file_row_number, "
        "row_number() OVER (PARTITION BY k ORDER BY r, filename, file_row_number) AS rn "
        "FROM keyed SEMI JOIN twice ON keyed.k IS NOT DISTINCT FROM twice.k) "
        "SELECT filename, file_row_number FROM ranked WHERE rn > 1"
    )


def without_rows_sql(src: str, rows: list[int]) -> str:
    """A sorted part file's rows but some, in its order."""
    keep = ", ".join(str(r) for r in rows)
    return (f"SELECT * EXCLUDE (file_row_number) FROM read_parquet({_files_sql([src])}, file_row_number = true, "
            f"hive_partitioning = false) WHERE file_row_number NOT IN ({keep}) ORDER BY file_row_number")


def merged_sql(table: str, files: list[str]) -> str:
    """Part files' rows as one sorted file's."""
    order = ", ".join(_sql_path(k) for k in SORT_KEYS[table])
    return f"SELECT * FROM read_parquet({_files_sql(files)}, hive_partitioning = false) t ORDER BY {order}"


def write_part(con: duckdb.DuckDBPyConnection, sql: str, table: str, out: str) -> None:
    """A query's rows written as a part file the way a worker writes one: the lake's Arrow schema and write
    options. DuckDB's own writer stores no Arrow schema, so Polars reads the JSON payloads of its files as
    binary and those of the workers' as JSON, and refuses a lake that holds both; it also marks `@timestamp`
    required and uses none of the delta encodings. Streamed a row group at a time."""
    import pyarrow.parquet as pq
    from transforms.schema import arrow_schema

    schema = arrow_schema(table)
    options = parquet_options(table, schema)
    rows = options.pop("row_group_size")
    with pq.ParquetWriter(out, schema, **options) as writer:
        for batch in con.sql(sql).to_arrow_reader(rows):
            writer.write_batch(batch.cast(schema))


def parquet_options(table: str, schema: pa.Schema) -> dict:
    """pyarrow write options of a part file: zstd, bounded row groups, delta encodings where they pay, and
    min/max statistics for every column but the long texts (`statistics_columns`)."""
    delta = DELTA_ENCODED[table]
    return {"compression": "zstd", "compression_level": PARQUET_ZSTD_LEVEL, "row_group_size": ROW_GROUP_SIZE,
            "use_dictionary": [c for c in _leaf_columns(schema) if c not in delta], "column_encoding": delta,
            "write_statistics": statistics_columns(schema)}


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns whose min/max a part file keeps: all but the record's text and the JSON payloads. No query
    filters those by range, and their statistics (up to 4 KB of text each, in every page header and in the
    footer) cost ~2.6 B/event and a little write time, pruning nothing (docs/performance.md)."""
    import pyarrow as pa

    return [path for path, kind in _leaves(schema) if path != "event.original" and not isinstance(kind, pa.JsonType)]


def _leaf_columns(schema: pa.Schema) -> list[str]:
    """Parquet column paths of an Arrow schema: event.id, related.ip.list.element, …"""
    return [path for path, _ in _leaves(schema)]


def _leaves(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    """Each Parquet leaf column of an Arrow schema, by path, with its Arrow type."""
    import pyarrow as pa

    def walk(kind: pa.DataType, path: str) -> list[tuple[str, pa.DataType]]:
        if pa.types.is_struct(kind):
            return [c for f in kind for c in walk(f.type, f"{path}.{f.name}")]
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return walk(kind.value_type, f"{path}.list.element")
        return [(path, kind)]
    return [c for f in schema for c in walk(f.type, f.name)]


def parquet_rows(paths: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in paths)


@dataclass
class Change:
    """A partition's next state: new files written locally (`adds`), existing files they supersede."""
    adds: list[str]
    removes: list[str]
    before: int
    after: int


def plan_partition(con: duckdb.DuckDBPyConnection, run: str, table: str, existing: list[str],
                   new: dict[str, int], out_dir: Path, rows: Callable[[list[str]], int],
                   fragment: int) -> Change | None:
    """Decide a partition's next file set, writing as little as possible; shared by the local and S3 lakes.

    New part files (already final: sorted, zstd) are moved into `out_dir`, only a new file holding
    duplicates is rewritten without them, and new files under `fragment` rows are merged into one file. Past
    MAX_FILES_PER_PARTITION small files, those are compacted into one new file, superseding the existing
    ones among them. None when every new row is already there. `new` maps each new file to the rows its
    worker wrote, so no new file's footer is read (three reads each: ~0.2 s of a 1M-event commit).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    losers: dict[str, list[int]] = {}
    for filename, row in con.execute(losers_sql(table, existing, sorted(new))).fetchall():
        losers.setdefault(filename, []).append(row)
    counts: dict[str, int] = {}  # rows of each file the partition gains
    small = []
    for f in sorted(new):
        dest = str(out_dir / Path(f).name)
        if f not in losers:
            os.replace(f, dest)
        elif len(losers[f]) < new[f]:
            write_part(con, without_rows_sql(f, losers[f]), table, dest)
        else:
            continue  # every row of it was already in the lake
        counts[dest] = new[f] - len(losers.get(f, ()))
        if counts[dest] < fragment:
            small.append(dest)
    if len(small) > 1:  # fragments (late deliveries into a neighbouring day) become one file
        merged = str(out_dir / f"part-{run}-small.parquet")
        write_part(con, merged_sql(table, small), table, merged)
        for f in small:
            os.unlink(f)
        counts[merged] = sum(counts.pop(f) for f in small)
    if not counts:
        return None
    held = {f: rows([f]) for f in existing}  # each footer read once (a request each on S3)
    removes: list[str] = []
    if len(existing) + len(counts) > MAX_FILES_PER_PARTITION:
        small = [f for f, n in (held | counts).items() if n < SMALL_FILE_ROWS]
        if len(small) > MAX_FILES_PER_PARTITION:  # at most ~32 × 4K rows: one bounded sort
            compacted = str(out_dir / f"part-{run}-compacted.parquet")
            write_part(con, merged_sql(table, small), table, compacted)
            for f in [f for f in counts if f in small]:
                os.unlink(f)
            counts[compacted] = sum(counts.pop(f) if f in counts else held[f] for f in small)
            removes = [f for f in existing if f in small]
    kept = sum(n for f, n in held.items() if f not in removes)
    return Change(sorted(counts), removes, sum(held.values()), kept + sum(counts.values()))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


@dataclass
class Lock:
    path: Path

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def open_lake(url: str, s3: S3Options):  # -> Lake | S3Lake
    """The lake at a local path or an s3:// URL (jobs/s3lake.py)."""
    if is_s3(url):
        from jobs.s3lake import S3Lake

        return S3Lake(url, s3)
    if "://" in url and not url.startswith("file://"):
        raise UsageError(f"the lake must be a local directory or an s3:// URL (got {url})")
    return Lake(url)


class StateReader:
    """What a run reads back of a lake's state, the same for every lake: each lake yields its state files'
    batches (`_state_batches`, in run order)."""

    def state_folders(self) -> dict[str, bool]:
        """One url of each folder the lake's state holds → whether any of its inputs was read (`state_folders`)."""
        return state_folders(self._state_batches(["url", "status"]))

    def ingested(self, folders: list[str]) -> dict[bytes, bytes]:
        """What every input of these folders was when last ingested or quarantined (`latest_versions`)."""
        return latest_versions(self._state_batches(STATE_READ), folders)

    def _state_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError


class Lake(StateReader):
    """A lake directory on a local (or network) filesystem: partitions are swapped in atomically."""

    def __init__(self, root: str) -> None:
        self.root = Path(root.removeprefix("file://")).absolute()
        self.url = str(self.root)
        self.created, self._made = False, []  # whether this run made the lake, and which folders (`prepare`)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB read the lake's files (nothing to do on a local disk)."""

    # --- layout ---------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_dir(self, table: str, day: str) -> Path:
        return self.table_dir(table) / f"{PARTITION}={day}"

    def staging(self, run: str) -> Path:
        return self.root / "_staging" / run

    def tmp(self, run: str) -> Path:
        return self.root / "_tmp" / run

    @property
    def state_dir(self) -> Path:
        return self.root / "_state"

    def partitions(self, table: str) -> list[str]:
        d = self.table_dir(table)
        if not d.is_dir():
            return []
        return sorted(p.name.split("=", 1)[1] for p in d.iterdir() if p.name.startswith(PARTITION + "="))

    def partition_files(self, table: str, day: str) -> list[str]:
        """A partition's part files; a folder that cannot be listed raises (Path.glob would see it empty, and the
        partition would be rebuilt without them, or a compaction skip it without a word)."""
        try:
            with os.scandir(self.partition_dir(table, day)) as entries:
                return sorted(e.path for e in entries if e.name.endswith(".parquet"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def rows(self, files: list[str]) -> int:
        return parquet_rows(files)

    def size(self, files: list[str]) -> int:
        return sum(os.path.getsize(f) for f in files)

    # --- set-up, lock and schema version ----------------------------------------------
    def prepare(self) -> None:
        self.created = not self.state_dir.exists()
        self._made = _missing(self.root)  # the lake's folder and the parents it makes, outermost first
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"lake {self.root} is not writable: {exc.strerror or exc}") from None

    def lock(self, command: str = "ingest") -> Lock:
        """One run (ingest or compact) per lake at a time; a lock left by a dead process on this host is taken over."""
        path = self.state_dir / "lock"
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": command}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_json(path)
                if holder and holder.get("host") == me["host"] and not pid_alive(int(holder.get("pid", 0))):
                    path.unlink(missing_ok=True)
                    continue
                who = f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" if holder else "?"
                raise RunError(f"another {holder.get('command', 'ingest') if holder else 'ingest'} is running on "
                               f"this lake ({who}); wait for it, or remove "
                               f"{path} if that process is gone") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            return Lock(path)
        raise RunError(f"could not take the lake lock {path}")

    def check_version(self, full_refresh: bool, some_days: bool = False) -> bool:
        """Whether the run's commit writes the schema-version marker (`version_outdated`)."""
        return version_outdated(_read_json(self.marker), any(self.partitions(t) for t in TABLES), full_refresh,
                                some_days)

    @property
    def marker(self) -> Path:
        return self.state_dir / "lake.json"

    def tidy(self) -> None:
        """A lake this run created and did not commit to is not left behind as empty folders (a run that failed
        before its commit: an unreachable Dask scheduler, a refused full refresh, Ctrl-C). Only the folders it
        made go, and only if empty: a folder the user gave (`--lake .`) and anything in it stay."""
        if not self.created:
            return
        for folder in (self.root / "_tmp", self.root / "_staging", self.state_dir, *reversed(self._made)):
            with contextlib.suppress(OSError):  # only empty folders go: anything in one keeps it
                os.rmdir(folder)

    # --- state ----------------------------------------------------------------------
    def _state_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        # listed with iterdir, which raises when the folder cannot be read: Path.glob would see no state at all
        files = self.state_dir / "files"
        for f in sorted(p for p in files.iterdir() if p.suffix == ".parquet") if files.is_dir() else []:
            yield from parquet_batches(open(f, "rb"), columns, str(f))

    # --- commit ---------------------------------------------------------------------
    def build_partition(self, con: duckdb.DuckDBPyConnection, run: str, table: str, day: str,
                        new: dict[str, int], replace: bool, fragment: int) -> tuple[int, int] | None:
        """Assemble the partition's next file set aside: kept files hard-linked, new ones moved in.

        Returns (rows before, rows after), or None when every new row was a duplicate and the
        partition stays as it is.
        """
        existing = self.partition_files(table, day)
        out_dir = self.tmp(run) / table / f"{PARTITION}={day}"
        change = plan_partition(con, run, table, [] if replace else existing, new, out_dir, self.rows,
                                fragment)
        if change is None:
            shutil.rmtree(out_dir, ignore_errors=True)
            return None
        if not replace:
            for f in existing:
                if f not in change.removes:
                    os.link(f, out_dir / Path(f).name)
        return change.before, change.after

    def stage(self, run: str, table: str, day: str, adds: list[str], removes: list[str], kept: list[str]) -> None:
        """A partition's next file set aside, from files written into its folder under tmp (a compaction):
        the kept ones are hard-linked next to them, the removed ones simply left out."""
        out_dir = self.tmp(run) / table / f"{PARTITION}={day}"
        for f in kept:
            os.link(f, out_dir / Path(f).name)

    def commit(self, run: str, replace: list[tuple[str, str]], remove: list[tuple[str, str]],
               reset_state: bool, mark_version: bool = False) -> None:
        """Everything is written aside: record the journal, then apply it. The schema-version marker is part of
        the commit, so a run that fails leaves the lake's version as it was."""
        journal = {"run": run, "replace": replace, "remove": remove, "reset_state": reset_state,
                   "schema_version": LAKE_SCHEMA_VERSION if mark_version else None}
        path = self._journal(run)
        failpoint("before-journal")
        signals.hold()  # SIGTERM from here on waits for the run's end: the swap is milliseconds
        _write_json_atomic(path, journal)
        failpoint("after-journal")
        with interrupted_commit():
            self._apply(journal)
        failpoint("after-apply")
        path.unlink()
        self._cleanup(run)

    def _apply(self, journal: dict) -> None:
        """Idempotent: safe to run again after a crash at any point inside it."""
        run = journal["run"]
        tmp = self.tmp(run)
        for table, day in journal["replace"]:
            new = tmp / table / f"{PARTITION}={day}"
            live = self.partition_dir(table, day)
            if not new.exists():
                continue  # swapped and its aside copy removed
            if live.exists() and any(p.name.startswith(f"part-{run}") for p in live.iterdir()):
                continue  # already exchanged: `new` now holds the old partition
            if live.exists():
                if not _exchange(new, live):
                    old = tmp / "old" / table / f"{PARTITION}={day}"
                    old.parent.mkdir(parents=True, exist_ok=True)
                    live.rename(old)
                    new.rename(live)
            else:
                live.parent.mkdir(parents=True, exist_ok=True)
                new.rename(live)
            failpoint("partition-swapped")
        for table, day in journal["remove"]:
            live = self.partition_dir(table, day)
            if live.exists():
                old = tmp / "old" / table / f"{PARTITION}={day}"
                old.parent.mkdir(parents=True, exist_ok=True)
                live.rename(old)
        if journal["reset_state"]:
            for f in (self.state_dir / "files").glob("*.parquet"):
                if f.stem != run:
                    f.unlink()
        for name, dest in (("files.parquet", self.state_dir / "files" / f"{run}.parquet"),
                           ("run.json", self.state_dir / "runs" / f"{run}.json"),
                           ("quarantine.jsonl", self.root / "quarantine" / f"{run}.jsonl")):
            src = tmp / name
            if src.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                src.replace(dest)
        if journal.get("schema_version"):
            _write_json_atomic(self.marker, {"schema_version": journal["schema_version"]})

    def _journal(self, run: str) -> Path:
        return self.state_dir / "journal" / f"{run}.json"

    def _cleanup(self, run: str) -> None:
        if self._journal(run).exists():
            return  # a commit interrupted while applied: the next run finishes it from these files
        shutil.rmtree(self.tmp(run), ignore_errors=True)
        shutil.rmtree(self.staging(run), ignore_errors=True)

    def recover(self) -> list[str]:
        """Finish commits a crashed run journaled; drop work areas of runs that never got that far."""
        finished = []
        for path in sorted((self.state_dir / "journal").glob("*.json")):
            journal = _read_json(path)
            if journal:
                self._apply(journal)
                finished.append(journal["run"])
            path.unlink()
        for area in ("_tmp", "_staging"):
            d = self.root / area
            if d.is_dir():
                for run_dir in d.iterdir():
                    shutil.rmtree(run_dir, ignore_errors=True)
        return finished


def _missing(path: Path) -> list[Path]:
    """The folders of `path` that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


@contextlib.contextmanager
def interrupted_commit() -> Iterator[None]:
    """Ctrl-C once the journal is written does not undo the commit: it is said as such (SIGTERM waits, `hold`)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise CommitInterrupted() from exc


def version_outdated(marker: dict | None, has_data: bool, full_refresh: bool, some_days: bool = False) -> bool:
    """Whether the lake's schema-version marker must be written (by the run's commit); a lake of another version
    that holds data is refused unless the run rebuilds it. Written at the run's start instead, a full
    refresh that then failed would leave an old lake marked as new, and the next run would merge into it."""
    found = (marker or {}).get("schema_version")
    if marker and found != LAKE_SCHEMA_VERSION and has_data and (not full_refresh or some_days):
        fix = ("rerun the --full-refresh without --since/--until: a rebuild of some days leaves the others at "
               f"version {found}") if full_refresh else "rerun with --full-refresh"
        raise UsageError(f"the lake was written with schema version {found}, this trailhouse writes version "
                         f"{LAKE_SCHEMA_VERSION}: {fix}")
    return found != LAKE_SCHEMA_VERSION


#: The state columns a run reads back to know what it has ingested.
STATE_READ = ["url", "size", "version", "status"]
#: State status of an input that could not be downloaded (not the file's fault): tried again by the next run.
UNREADABLE = "unreadable"
#: State status of an input the run read in part: some of its events were outside the run's scope
#: (--since/--until/--account/--region) and left out. It is not done: a later run that lists it reads it again
#: and keeps what it left out, the dedup dropping what the lake already holds (a backfill in monthly windows
#: read the first day of the next month's folder under the earlier window, and lost that day's events).
PARTIAL = "partial"
#: The statuses of inputs a later run reads again instead of skipping.
NOT_DONE = (UNREADABLE, PARTIAL)


def parquet_batches(fh: BinaryIO, columns: list[str], name: str) -> Iterator[pa.RecordBatch]:
    """A state file's columns, a bounded batch at a time; the file is closed when done. A damaged one is named,
    with what to do: without it, a run reads again the inputs it recorded, whose events the lake already holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fh:
        try:
            yield from pq.ParquetFile(fh).iter_batches(batch_size=65_536, columns=columns)
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:  # not Parquet, truncated, or without those columns
            raise UsageError(f"{name}, a record of the files a run ingested, cannot be read ({exc}): remove it "
                             "and run again (its files are read again, and their events, already in the lake, "
                             "are not added twice), or rebuild with --full-refresh") from None


def _folder(url: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """The folder of each url: all of it up to its last "/"."""
    return url.str.replace(r"/[^/]*$", "")


def state_folders(batches: Iterable[pa.RecordBatch]) -> dict[str, bool]:
    """One url of each folder in the state → whether any input of the folder was read (not only failed
    downloads, which the next run retries), read batch by batch: a lake of years holds millions of inputs but
    thousands of folders (stream × day), and the folders decide which inputs a run needs (listed_again)."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:  # a fresh lake: the driver loads no engine (docs/performance.md)
        return {}
    import polars as pl

    folders: dict[str, tuple[str, bool]] = {}
    for batch in itertools.chain([first], batches):
        frame = (pl.from_arrow(batch).group_by(_folder(pl.col("url")).alias("folder"))
                 .agg(pl.col("url").first(), (pl.col("status") != UNREADABLE).any().alias("read")))
        for folder, url, read in frame.iter_rows():
            seen = folders.get(folder)
            folders[folder] = (seen[0], seen[1] or read) if seen else (url, read)
    return dict(folders.values())


def input_key(url: str) -> bytes:
    """A url in 16 bytes (BLAKE2b, 128 bits: no two urls share one in practice). A run holds the state it skips
    by under these, since a source listed whole (a local tree) needs the state of every file it ever listed."""
    return hashlib.blake2b(url.encode("utf-8", "surrogateescape"), digest_size=16).digest()  # a raw local name too


def version_key(size: int, version: str | None) -> bytes:
    """An input's size and version in 8 bytes, only ever compared with another of the same url."""
    return hashlib.blake2b(f"{size}\0{version}".encode(), digest_size=8).digest()


def latest_versions(batches: Iterable[pa.RecordBatch], folders: list[str]) -> dict[bytes, bytes]:
    """input_key → version_key of the latest record of each input in the folders of these urls (one each, from
    `state_folders`), except inputs whose latest download failed or that were read in part (read again):
    ~140 bytes an input instead of ~800 for the urls and versions themselves. Batches come in run order (one
    state file per run, named by its time-ordered id); the other folders' rows are dropped batch by batch,
    never held."""
    import polars as pl

    done: dict[bytes, bytes] = {}
    if not folders:
        return done
    wanted = _folder(pl.Series(folders, dtype=pl.String)).unique().implode()
    for batch in batches:
        frame = pl.from_arrow(batch).filter(_folder(pl.col("url")).is_in(wanted))
        for url, size, version, status in frame.select("url", "size", "version", "status").iter_rows():
            if status in NOT_DONE:
                done.pop(input_key(url), None)
            else:
                done[input_key(url)] = version_key(size, version)
    return done


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
