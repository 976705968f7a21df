"""SQL text built in Python: a path or any other text becomes a SQL string literal in one place, so a quote in
a user's path (`--out "d'q"`) is data, not the end of the literal."""

from __future__ import annotations

import datetime as dt


def sql_string(text: str) -> str:
    """`text` as a single-quoted SQL literal (quotes doubled), for DuckDB statements that take no parameters
    (COPY … TO, read_parquet's file list)."""
    return "'" + str(text).replace("'", "''") + "'"


def days_clause(since: dt.date | None, until: dt.date | None) -> str:
    """The WHERE clause keeping the UTC days from `since` to `until` (both inclusive, either open) of a view with
    an `event_date` column; empty when both are open."""
    where = [f"event_date >= DATE '{since}'"] if since else []
    where += [f"event_date <= DATE '{until}'"] if until else []
    return ("WHERE " + " AND ".join(where)) if where else ""
