"""Query results out of DuckDB: a readable table, or CSV/JSON/Parquet written by DuckDB itself."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TextIO

import duckdb

from jobs.errors import UsageError, lake_file_problem

_COPY = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true", "parquet": "FORMAT parquet, COMPRESSION zstd"}


def write(con: duckdb.DuckDBPyConnection, query: str, fmt: str, output: str | None, max_rows: int = 200,
          stream: TextIO | None = None) -> None:
    """Run one query and write its result; a SQL mistake is a one-line usage error. Parquet goes to a file only:
    the CLI refuses `--format parquet` without `--output` before any query runs (cli._check_output)."""
    try:
        rel = con.sql(query)
        if rel is None:  # a statement without a result (SET, CREATE …)
            return
        if fmt == "table" and not output:
            (stream or sys.stdout).write(rel.__str__() if max_rows <= 0 else _table(rel, max_rows))
            return
        if fmt == "table":
            fmt = "csv"
        rel.create_view("_result", replace=True)
        target = output or tempfile.mktemp(suffix="." + fmt)
        con.execute(f"COPY (SELECT * FROM _result) TO '{target.replace(chr(39), chr(39) * 2)}' ({_COPY[fmt]})")
    except duckdb.Error as exc:
        raise UsageError(lake_file_problem(exc) or str(exc).strip().splitlines()[0]) from None
    if not output:
        _copy_to_stdout(target)


def _copy_to_stdout(path: str) -> None:
    """Stream a result file to standard output, and remove it even when the reader leaves early (`| head`)."""
    try:
        with open(path, "rb") as fh:
            sys.stdout.flush()
            shutil.copyfileobj(fh, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    finally:
        os.unlink(path)


def _table(rel: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rel.show(max_width=240, max_rows=max_rows)
    return buf.getvalue()
