"""Query results out of DuckDB: a readable table, CSV or JSON written by DuckDB itself, or Parquet written from
DuckDB's Arrow result."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO

import duckdb

from jobs.errors import UsageError, lake_file_problem
from jobs.sql import sql_string

_COPY = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true"}


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
        if fmt == "parquet":
            _write_parquet(rel, output)
            return
        rel.create_view("_result", replace=True)
        target = output or tempfile.mktemp(suffix="." + fmt)
        con.execute(f"COPY (SELECT * FROM _result) TO {sql_string(target)} ({_COPY[fmt]})")
    except duckdb.Error as exc:
        raise UsageError(lake_file_problem(exc) or str(exc).strip().splitlines()[0]) from None
    if not output:
        _copy_to_stdout(target)


def _write_parquet(rel: duckdb.DuckDBPyRelation, path: str) -> None:
    """A result as Parquet, streamed through Arrow: DuckDB's own writer stores its JSON columns (the payloads)
    with no Arrow schema, which Polars then reads as binary; through Arrow they are text to every reader.

    Written beside `path` and renamed onto it once complete, so a query that fails (at once or after its
    first rows) leaves the file that was there as it was; its mistake is one line (exit 2), as in any format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.isdir(path):
        raise UsageError(f"cannot write to {path}: Is a directory; choose another file")
    reader = rel.to_arrow_reader(65_536)
    partial = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.partial")
    try:
        sink = open(partial, "wb")
    except PermissionError:
        raise  # said as every local permission error is, with what to do (jobs/storage.denied)
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}; choose another file") from None
    try:
        with sink:
            try:
                writer = pq.ParquetWriter(sink, reader.schema, compression="zstd")
            except pa.ArrowNotImplementedError as exc:  # a type Parquet has no place for (an interval …)
                raise UsageError(f"the result cannot be written as Parquet ({exc}): cast that column (e.g. to "
                                 "VARCHAR), or choose --format csv") from None
            with writer:
                for batch in _batches(reader):
                    writer.write_batch(batch)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


def _batches(reader) -> Iterator:
    """The result's batches; a query that fails after its first rows is the user's SQL mistake, as one that
    fails at once (Arrow hands DuckDB's error on as an OSError)."""
    batches = iter(reader)
    while True:
        try:
            yield next(batches)
        except StopIteration:
            return
        except OSError as exc:
            raise UsageError(str(exc).strip().splitlines()[0]) from None


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
