"""The lake on S3: the same layout as on disk, committed without renames.

S3 has no rename and no directory swap, so a commit adds and removes objects under a journal:

1. the journal `_state/journal/<run>.json` lists the objects the run will add and remove;
2. new part files are uploaded under names no other run uses (`part-<run>-…`), then the run's
   quarantine and summary, and last the run's state file `_state/files/<run>.parquet`: the commit point
   (a compaction, which has no state, commits with its summary `_state/runs/<run>.json`);
3. superseded objects (rewritten or compacted partitions, old state on --full-refresh) are deleted;
4. the journal is deleted.

A run that dies is settled by the next one (under the lock): if its commit point is there, the
deletes are finished (roll forward); if not, whatever it uploaded is deleted (roll back) and its
inputs, never marked ingested, are read again. Readers listing a partition during steps 2–3 may
see old and new files side by side; once the run returns, never.

Workers stage their part files on local disk (a work directory under the system temp dir),
and partitions are planned there as for a local lake (jobs/lake.py: plan_partition).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs import signals
from jobs.errors import RunError, UsageError
from jobs.failpoints import failpoint
from jobs.lake import (PARTITION, TABLES, StateReader, interrupted_commit, parquet_batches, pid_alive,
                       plan_partition, version_outdated)
from jobs.storage import S3Options, explain, s3_filesystem, s3_url
from transforms.schema import LAKE_SCHEMA_VERSION

if TYPE_CHECKING:  # imported where used, as in jobs/lake.py: no engine in the driver while its workers read
    import duckdb
    import pyarrow as pa

#: A lock older than this, held by a process on another host, is taken over (a crashed host's run).
LOCK_STALE_SECONDS = 12 * 3600


@dataclass
class S3Lock:
    fs: object
    path: str

    def release(self) -> None:
        try:
            self.fs.rm(self.path)
        except FileNotFoundError:
            pass


class S3Lake(StateReader):
    """A lake under s3://bucket/prefix."""

    def __init__(self, url: str, s3: S3Options) -> None:
        self.fs = s3_filesystem(s3)
        self.path = url.split("://", 1)[1].rstrip("/")
        self.url = s3_url(self.path)
        work = hashlib.sha1(self.url.encode()).hexdigest()[:12]
        self.work = Path(os.environ.get("TRAILHOUSE_WORK_DIR") or tempfile.gettempdir()) / "trailhouse" / work
        self._changes: dict[tuple[str, str], tuple[list[str], list[str]]] = {}

    # --- layout ---------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join((self.path, *parts))

    def staging(self, run: str) -> Path:
        return self.work / "_staging" / run

    def tmp(self, run: str) -> Path:
        return self.work / "_tmp" / run

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        con.register_filesystem(self.fs)

    def partitions(self, table: str) -> list[str]:
        try:
            names = [e.rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(self._key(table), detail=False)]
        except FileNotFoundError:
            return []
        return sorted(n.split("=", 1)[1] for n in names if n.startswith(PARTITION + "="))

    def partition_files(self, table: str, day: str) -> list[str]:
        return sorted(s3_url(p) for p in self.fs.glob(self._key(table, f"{PARTITION}={day}", "*.parquet")))

    def rows(self, urls: list[str]) -> int:
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(u.split("://", 1)[1], filesystem=self.fs).num_rows for u in urls)

    def size(self, urls: list[str]) -> int:
        return sum(self.fs.size(u.split("://", 1)[1]) for u in urls)

    # --- set-up, lock and schema version ----------------------------------------------
    def prepare(self) -> None:
        probe = self._key("_state", f".probe-{socket.gethostname()}-{os.getpid()}")
        try:
            self.fs.pipe_file(probe, b"")
            self.fs.rm(probe)
        except Exception as exc:
            raise UsageError(explain(exc, self.url) or f"the lake {self.url} is not writable: {exc}") from None
        self.work.mkdir(parents=True, exist_ok=True)

    def lock(self, command: str = "ingest") -> S3Lock:
        """One run (ingest or compact) per lake at a time: an exclusive create (If-None-Match) of `_state/lock`."""
        path = self._key("_state", "lock")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": command}
        for _ in range(2):
            try:
                self.fs.pipe_file(path, json.dumps(me).encode(), mode="create")
                return S3Lock(self.fs, path)
            except FileExistsError:
                holder = self._read_json(path) or {}
                same_host_dead = holder.get("host") == me["host"] and not pid_alive(int(holder.get("pid", 0)))
                if same_host_dead or time.time() - float(holder.get("since", 0)) > LOCK_STALE_SECONDS:
                    self.fs.rm(path)
                    continue
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(holder.get("since", 0))))
                raise RunError(f"another {holder.get('command', 'ingest')} is running on this lake (pid {holder.get('pid')} on "
                               f"{holder.get('host')} since {since}); wait for it, or delete {s3_url(path)} "
                               "if that run is gone") from None
        raise RunError(f"could not take the lake lock {s3_url(path)}")

    def check_version(self, full_refresh: bool, some_days: bool = False) -> bool:
        """Whether the run's commit writes the schema-version marker (`version_outdated`)."""
        return version_outdated(self._read_json(self._key("_state", "lake.json")),
                                any(self.partitions(t) for t in TABLES), full_refresh, some_days)

    def tidy(self) -> None:
        """Nothing to tidy: a run writes nothing to the bucket before its commit (its lock is gone)."""

    def _state_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        try:
            files = sorted(self.fs.glob(self._key("_state", "files", "*.parquet")))
        except Exception as exc:
            reason = explain(exc, self.url)
            if reason:
                raise UsageError(reason) from None
            raise
        for f in files:
            yield from parquet_batches(self.fs.open(f, "rb"), columns, s3_url(f))

    # --- commit ---------------------------------------------------------------------
    def build_partition(self, con: duckdb.DuckDBPyConnection, run: str, table: str, day: str,
                        new: dict[str, int], replace: bool, fragment: int) -> tuple[int, int] | None:
        existing = self.partition_files(table, day)
        out_dir = self.tmp(run) / table / f"{PARTITION}={day}"
        change = plan_partition(con, run, table, [] if replace else existing, new, out_dir, self.rows,
                                fragment)
        if change is None:
            shutil.rmtree(out_dir, ignore_errors=True)
            return None
        removes = existing if replace else change.removes
        self._changes[(table, day)] = (change.adds, removes)
        return change.before, change.after

    def stage(self, run: str, table: str, day: str, adds: list[str], removes: list[str], kept: list[str]) -> None:
        """A partition's next file set (a compaction): uploads and deletes, made by the commit."""
        self._changes[(table, day)] = (adds, removes)

    def commit(self, run: str, replace: list[tuple[str, str]], remove: list[tuple[str, str]],
               reset_state: bool, mark_version: bool = False) -> None:
        tmp = self.tmp(run)
        uploads: list[tuple[str, str]] = []  # (local file, key)
        deletes: list[str] = []
        for table, day in replace:
            adds, removes = self._changes[(table, day)]
            uploads += [(a, self._key(table, f"{PARTITION}={day}", Path(a).name)) for a in adds]
            deletes += [r.split("://", 1)[1] for r in removes]
        for table, day in remove:
            deletes += [p.split("://", 1)[1] for p in self.partition_files(table, day)]
        if reset_state:
            deletes += [p for p in self.fs.glob(self._key("_state", "files", "*.parquet"))
                        if not p.endswith(f"/{run}.parquet")]
        for name, key in (("quarantine.jsonl", self._key("quarantine", f"{run}.jsonl")),
                          ("run.json", self._key("_state", "runs", f"{run}.json")),
                          ("files.parquet", self._key("_state", "files", f"{run}.parquet"))):
            if (tmp / name).exists():
                uploads.append((str(tmp / name), key))
        # the last upload is the commit point: an ingest's state file, or a compaction's summary (it has no state)
        *data, (marker_src, marker) = uploads
        journal = {"run": run, "adds": [k for _, k in uploads], "removes": deletes, "marker": marker,
                   "schema_version": LAKE_SCHEMA_VERSION if mark_version else None}
        journal_key = self._key("_state", "journal", f"{run}.json")
        # SIGTERM from here on waits for the run's end (the uploads too: an orchestrator that will not wait kills
        # the run, and the next run settles the journal); Ctrl-C stops the uploads, and the next run undoes them
        signals.hold()
        self.fs.pipe_file(journal_key, json.dumps(journal, indent=1).encode())
        failpoint("after-journal")
        with interrupted_commit():
            if data:
                self.fs.put([s for s, _ in data], [k for _, k in data])
            failpoint("after-upload")
            self.fs.put_file(marker_src, marker)
            failpoint("after-marker")
            self._finish(journal)
        self.fs.rm(journal_key)
        self._cleanup(run)

    def _finish(self, journal: dict) -> None:
        """Roll a journaled commit forward (its state file is there) or back (it is not). Idempotent."""
        if self.fs.exists(journal["marker"]):
            gone = journal["removes"]
            if journal.get("schema_version"):  # the lake's version changes only with a commit that stands
                self.fs.pipe_file(self._key("_state", "lake.json"),
                                  json.dumps({"schema_version": journal["schema_version"]}).encode())
        else:
            gone = journal["adds"]
        present = [k for k in gone if self.fs.exists(k)]
        if present:
            self.fs.rm(present)

    def _cleanup(self, run: str) -> None:
        shutil.rmtree(self.tmp(run), ignore_errors=True)
        shutil.rmtree(self.staging(run), ignore_errors=True)

    def recover(self) -> list[str]:
        """Settle runs that died mid-commit; drop local work areas of runs that never got that far."""
        settled = []
        for key in sorted(self.fs.glob(self._key("_state", "journal", "*.json"))):
            journal = self._read_json(key)
            if journal:
                self._finish(journal)
                settled.append(journal["run"])
            self.fs.rm(key)
        for area in ("_tmp", "_staging"):
            shutil.rmtree(self.work / area, ignore_errors=True)
        return settled

    def _read_json(self, key: str) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(key))
        except (FileNotFoundError, ValueError):
            return None

