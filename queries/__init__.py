"""DuckDB views over the lake, one per .sql file, registered in dependency order.

The order is read from the SQL itself (a view depends on the views it selects FROM or
JOINs), so adding a view is adding a file. A lake on S3 is read through s3fs,
registered as a DuckDB filesystem: no DuckDB extension is downloaded.
"""

from __future__ import annotations

import os
import re
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
from fsspec.core import url_to_fs

from transforms.schema import PARTITION, arrow_schema

HERE = Path(__file__).parent
#: Tables of the lake that a view reads directly; each is an empty view while the lake has no data for it.
TABLES = ("events", "digests")


class LakeError(Exception):
    """The lake cannot be queried as it stands; the message says why and what to do."""


class LakeNotFound(LakeError):
    """The lake has no events to query."""


class LakeUnreadable(LakeError):
    """A directory of the lake cannot be listed, so a query would silently miss what it holds."""


def view_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.sql"))


def view_sql(name: str, lake: str) -> str:
    """A view's SQL with the lake location filled in."""
    return (HERE / f"{name}.sql").read_text().replace("{lake}", lake.rstrip("/").replace("'", "''"))


def dependencies() -> dict[str, set[str]]:
    names = view_names()
    deps = {}
    for name in names:
        body = re.sub(r"--[^\n]*", "", (HERE / f"{name}.sql").read_text())
        deps[name] = {other for other in names if other != name
                      and re.search(rf"\b(?:FROM|JOIN)\s+{re.escape(other)}\b", body, re.IGNORECASE)}
    return deps


def creation_order() -> list[str]:
    return list(TopologicalSorter(dependencies()).static_order())


def _location(lake: str, fs: fsspec.AbstractFileSystem | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the absolute lake location (s3://… or a local absolute path)."""
    if fs is None:
        fs, path = url_to_fs(lake)
    else:
        path = fs._strip_protocol(lake)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return fs, str(Path(path).absolute())
    return fs, fs.unstrip_protocol(path)


def _duck_type(t: pa.DataType) -> str:
    if isinstance(t, pa.ExtensionType):
        return "JSON"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in t) + ")"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT", pa.int32(): "INTEGER"}[t]


def empty_table_sql(table: str) -> str:
    """A view with the table's columns and no rows, for a lake that has no data for it yet."""
    cols = ", ".join(f'NULL::{_duck_type(f.type)} AS "{f.name}"' for f in arrow_schema(table))
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {cols}, NULL::DATE AS event_date WHERE false"


def connect(lake: str, database: str = ":memory:",
            fs: fsspec.AbstractFileSystem | None = None) -> duckdb.DuckDBPyConnection:
    """A connection with every view registered over the lake (`fs`: how to reach it, when not the default)."""
    fs, root = _location(lake, fs)
    if root.startswith("/"):
        _entries(root)  # a lake that cannot be read at all is named as such, not taken for one without events
    present = {t for t in TABLES if _has_parts(fs, root, t)}
    if "events" not in present:
        raise LakeNotFound(f"no events in {lake}: run `trailhouse ingest … --lake {lake}` first")
    con = duckdb.connect(database, config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    if not root.startswith("/"):
        con.register_filesystem(fs)
    missing = set(TABLES) - present
    for name in creation_order():
        con.execute(empty_table_sql(name) if name in missing else view_sql(name, root))
    return con


def _has_parts(fs: fsspec.AbstractFileSystem, root: str, table: str) -> bool:
    """Whether the table has a part file.

    A glob skips a directory it cannot list, fsspec's as DuckDB's in the views: a query would answer from the
    other partitions as if they were the whole lake. So a local lake is listed here partition by partition, and
    one that cannot be listed is an error. (S3 grants access by prefix, not by directory: it keeps the glob.)
    """
    if not root.startswith("/"):
        return bool(fs.glob(f"{root}/{table}/{PARTITION}=*/*.parquet"))
    parts = [e.name.endswith(".parquet") for d in _entries(f"{root}/{table}")
             if d.is_dir() and d.name.startswith(f"{PARTITION}=") for e in _entries(d.path)]
    return any(parts)


def _entries(path: str) -> list[os.DirEntry]:
    """A local directory's entries: none when it does not exist, LakeUnreadable when it cannot be listed."""
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise LakeUnreadable(f"cannot read {path} ({exc.strerror or exc}): a query would silently leave out what "
                             "it holds; give the user running trailhouse read access to it, then run again") from None
