"""DuckDB views over the lake, one per .sql file, registered in dependency order."""

from __future__ import annotations

from pathlib import Path

import duckdb

HERE = Path(__file__).parent
#: Views in the order they must be created (later ones read earlier ones).
VIEWS = ("events", "digests")


def view_sql(name: str, lake: str) -> str:
    """A view's SQL with the lake location filled in."""
    text = (HERE / f"{name}.sql").read_text()
    return text.replace("{lake}", lake.rstrip("/").replace("'", "''"))


def connect(lake: str, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A connection with every view registered; tables with no data yet become empty views."""
    con = duckdb.connect(database, config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    root = Path(lake)
    for name in VIEWS:
        if any(root.glob(f"{name}/*/*.parquet")):
            con.execute(view_sql(name, str(root.absolute())))
    return con
