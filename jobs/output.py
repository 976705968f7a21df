"""Query results out of DuckDB: a readable table, CSV or JSON written by DuckDB itself, or Parquet written from
DuckDB's Arrow result."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import TextIO

import duckdb

from jobs.errors import UsageError, lake_file_problem
from jobs.sql import sql_string

_COPY = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true"}


def write(con: duckdb.DuckDBPyConnection, query: str, fmt: str, output: str | None, max_rows: int = 200,
          stream: TextIO | None = None) -> None:
    """Run one query and write its result; a SQL mistake is a one-line usage error. A table goes to the terminal
    (`stream`), a file format to `output` or standard output (the CLI settles which, cli._check_output)."""
    try:
        rel = con.sql(query)
        if rel is None:  # a statement without a result (SET, CREATE …)
            return
        if fmt == "table":
            (stream or sys.stdout).write(rel.__str__() if max_rows <= 0 else _table(rel, max_rows))
            return
        with _destination(output) as path:
            if fmt == "parquet":
                _write_parquet(rel, path)
            else:  # DuckDB writes straight into `path` (its own temporary file would replace a pipe), and
                # compresses as the name says (.csv.gz, .json.zst): `path` ends as the output's name does
                rel.create_view("_result", replace=True)
                con.execute(f"COPY (SELECT * FROM _result) TO {sql_string(path)} ({_COPY[fmt]}, USE_TMP_FILE false)")
    except duckdb.Error as exc:
        raise UsageError(lake_file_problem(exc) or str(exc).strip().splitlines()[0]) from None


@contextmanager
def _destination(output: str | None) -> Iterator[str]:
    """Where to write a result so that a query that fails (at once or after its first rows) leaves what was
    there as it was:
    - a file (or nothing yet): a hidden file beside it, renamed onto it once complete, with the old file's
      permissions; through a symbolic link, onto the file it names (the link stays);
    - a pipe or device (`/dev/stdout`, a FIFO): written into as the result streams (a rename would have put a
      regular file in its place);
    - standard output: a temporary file, then copied out (a reader that leaves early, `| head`, is no error).
    """
    if output is None:
        fd, path = tempfile.mkstemp(suffix=".result")
        os.close(fd)
        try:
            yield path
            _copy_to_stdout(path)
        finally:
            os.unlink(path)
        return
    target = os.path.realpath(output)
    if os.path.islink(target):
        raise UsageError(f"cannot write to {output}: its symbolic links loop; choose another file")
    if os.path.exists(target) and not os.path.isfile(target):  # not a directory: the CLI refused those
        try:
            yield target
        except (BrokenPipeError, duckdb.Error) as exc:
            if not _reader_left(exc):
                raise
        return
    path = _beside(target)
    try:
        open(path, "wb").close()
    except OSError as exc:
        folder = os.path.dirname(target)
        raise UsageError(f"cannot write to {output}: {exc.strerror or exc} in {folder}; choose another file or "
                         "folder") from None
    try:
        yield path
        if os.path.exists(target):
            shutil.copymode(target, path)
        os.replace(path, target)
    except BaseException:
        if os.path.exists(path):
            os.unlink(path)
        raise


def _beside(target: str) -> str:
    """A hidden name beside `target` that ends as its name does (DuckDB compresses by the name's end), short
    enough for any file system's 255 bytes when `target`'s own name is."""
    folder, name = os.path.split(target)
    prefix = f".{os.getpid()}-partial-"
    if len((prefix + name).encode()) > 255:
        name = "".join(PurePath(name).suffixes)[-200:]
    return os.path.join(folder, prefix + name)


def _reader_left(exc: Exception) -> bool:
    """A pipe's reader that stopped reading (Python's write, or DuckDB's, says Broken pipe): the reader had what
    it wanted, as `| head` on standard output, not an error."""
    return isinstance(exc, BrokenPipeError) or "Broken pipe" in str(exc)


def _write_parquet(rel: duckdb.DuckDBPyRelation, path: str) -> None:
    """A result as Parquet, streamed through Arrow: DuckDB's own writer stores its JSON columns (the payloads)
    with no Arrow schema, which Polars then reads as binary; through Arrow they are text to every reader. A type
    Parquet has no place for, or a query failing after its first rows, is the user's mistake (exit 2)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = rel.to_arrow_reader(65_536)
    with open(path, "wb") as sink:
        try:
            writer = pq.ParquetWriter(sink, reader.schema, compression="zstd")
        except pa.ArrowNotImplementedError as exc:  # an interval …
            raise UsageError(f"the result cannot be written as Parquet ({exc}): cast that column (e.g. to "
                             "VARCHAR), or choose --format csv") from None
        with writer:
            for batch in _batches(reader):
                writer.write_batch(batch)


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
    """A complete result streamed to standard output: a reader that leaves early (`| head`) ends it as it ends
    any output (cli.main)."""
    with open(path, "rb") as fh:
        sys.stdout.flush()
        shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _table(rel: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rel.show(max_width=240, max_rows=max_rows)
    return buf.getvalue()
