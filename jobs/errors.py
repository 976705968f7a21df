"""Errors that end a run with a one-line message instead of a traceback."""

from __future__ import annotations

import re


class UsageError(Exception):
    """Bad arguments or configuration; nothing was written (exit 2)."""


class RunError(Exception):
    """The run could not complete; nothing was half-written and a rerun is safe (exit 1)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (an orchestrator stopping the job, `kill`), raised in the main thread: a command stops as on
    Ctrl-C, by the same paths (the pool's batches dropped, the lock released, no output left half-written)."""


class CommitInterrupted(KeyboardInterrupt):
    """Ctrl-C after a commit's journal was written (SIGTERM waits for the run's end there, `signals.hold`): the
    next run finishes (or, on S3, settles) the commit."""


#: DuckDB's messages for a Parquet file it cannot use, with the file's path: they reach the user from any
#: command that reads the lake (a query, a dashboard, an ingest merging into a partition).
_NOT_PARQUET = re.compile(r"No magic bytes found at end of file '(?P<a>[^']+)'"
                          r"|File '(?P<b>[^']+)' too small to be a Parquet file"
                          r"|Failed to read file \"(?P<c>[^\"]+\.parquet)\""
                          r"|Could not read enough bytes from file \"(?P<d>[^\"]+\.parquet)\"")
_NO_ACCESS = re.compile(r"Cannot open file \"(?P<path>[^\"]+)\": Permission denied")


def lake_file_problem(exc: BaseException) -> str | None:
    """A one-line reason and fix for a file DuckDB could not use (not Parquet, no permission); None when the
    error is not that. A damaged or locked lake file is the user's to fix, not a bug: say which file and how."""
    text = str(exc)
    if m := _NOT_PARQUET.search(text):
        return not_parquet(next(p for p in m.groups() if p))
    if m := _NO_ACCESS.search(text):
        return (f"cannot open {m['path']}: permission denied; give the user running trailhouse access to it "
                "(and to the directories above it), then run again")
    return None


def not_parquet(path: str) -> str:
    return (f"{path} is not a valid Parquet file (truncated or corrupted): rebuild the lake from its sources "
            "with `trailhouse ingest SOURCE … --lake LAKE --full-refresh`, or restore that file from a backup "
            "(deleting it loses the events it holds)")
