"""Run a scalar Python function over the distinct values of a column only.

CloudTrail repeats the same user agents and source addresses millions of times;
parsing each distinct value once and joining the answers back keeps Python out of
the per-event path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl


def per_unique(expr: pl.Expr, fn: Callable[[str], Any], dtype: pl.DataType) -> pl.Expr:
    """`fn` applied to each distinct non-null value of `expr`, broadcast back to every row."""

    def apply(values: pl.Series) -> pl.Series:
        distinct = values.drop_nulls().unique()
        return _broadcast(values, distinct, pl.Series("v", [fn(v) for v in distinct.to_list()], dtype=dtype))

    return expr.map_batches(apply, return_dtype=dtype)


def per_distinct(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`expr` evaluated once per distinct combination of the columns it reads, broadcast back to every row.

    For rules over the caller's identity: a batch holds thousands of events from a few hundred sessions, so
    regexes over ARNs and list building run a few hundred times instead of once per event.
    """
    inputs = sorted(set(expr.meta.root_names()))

    def apply(rows: pl.Series) -> pl.Series:
        distinct = rows.unique()
        return _broadcast(rows, distinct, distinct.struct.unnest().select(expr)[:, 0])

    return pl.struct(inputs).map_batches(apply, return_dtype=dtype)


def _broadcast(values: pl.Series, distinct: pl.Series, answers: pl.Series) -> pl.Series:
    """Each row's answer, looked up by its value among the distinct ones (in row order; null where none)."""
    lookup = pl.DataFrame({"k": distinct, "v": answers})
    return pl.DataFrame({"k": values}).join(lookup, on="k", how="left", nulls_equal=True, maintain_order="left")["v"]


def struct_field(column: str, name: str) -> Callable[[], pl.Expr]:
    """A rule reading one part of a struct column computed once per batch (see normalize.PREPARE)."""
    return lambda: pl.col(column).struct.field(name)
