"""Run a rule over the distinct values of its inputs only.

CloudTrail repeats the same user agents, source addresses, identities and API calls
thousands of times per batch; working out each distinct value once and broadcasting
the answers back keeps Python, regexes and lookup tables out of the per-event path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl


def per_unique(expr: pl.Expr, fn: Callable[[str], Any], dtype: pl.DataType) -> pl.Expr:
    """`fn` applied to each distinct non-null value of `expr`, broadcast back to every row (null stays null)."""

    def apply(values: pl.Series) -> pl.Series:
        distinct = values.drop_nulls().unique()
        return pl.Series("v", [*map(fn, distinct.to_list()), None], dtype=dtype).gather(_codes(values, distinct))

    return expr.map_batches(apply, return_dtype=dtype)


def per_distinct(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`expr` evaluated once per distinct combination of the columns it reads, broadcast back to every row.

    For rules over several columns, such as the caller's identity: a batch holds thousands of events from a few
    hundred sessions, so regexes over ARNs and list building run a few hundred times instead of once per event.
    """
    inputs = sorted(set(expr.meta.root_names()))

    def apply(rows: pl.Series) -> pl.Series:
        distinct = rows.unique()
        lookup = pl.DataFrame({"k": distinct, "v": distinct.struct.unnest().select(expr)[:, 0]})
        return pl.DataFrame({"k": rows}).join(lookup, on="k", how="left", nulls_equal=True,
                                              maintain_order="left")["v"]

    return pl.struct(inputs).map_batches(apply, return_dtype=dtype)


def _codes(values: pl.Series, distinct: pl.Series) -> pl.Series:
    """Each row's position among the distinct non-null values; a null row points one past them.

    An Enum cast finds the positions in one hashed pass, ~2× faster than a join back on the text.
    """
    return values.cast(pl.Enum(distinct)).to_physical().cast(pl.UInt32).fill_null(len(distinct))


def struct_field(column: str, name: str) -> Callable[[], pl.Expr]:
    """A rule reading one part of a struct column computed once per batch (see normalize.PREPARE)."""
    return lambda: pl.col(column).struct.field(name)
