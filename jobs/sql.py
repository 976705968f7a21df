"""SQL text built in Python: a path or any other text becomes a SQL string literal in one place, so a quote in
a user's path (`--out "d'q"`) is data, not the end of the literal."""

from __future__ import annotations


def sql_string(text: str) -> str:
    """`text` as a single-quoted SQL literal (quotes doubled), for DuckDB statements that take no parameters
    (COPY … TO, read_parquet's file list)."""
    return "'" + str(text).replace("'", "''") + "'"
