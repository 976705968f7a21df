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
        answers = pl.Series("v", [fn(v) for v in distinct.to_list()], dtype=dtype)
        lookup = pl.DataFrame({"k": distinct, "v": answers})
        rows = pl.DataFrame({"k": values})
        return rows.join(lookup, on="k", how="left", maintain_order="left")["v"]

    return expr.map_batches(apply, return_dtype=dtype)


def struct_field(column: str, name: str) -> Callable[[], pl.Expr]:
    """A rule reading one part of a struct column computed once per batch (see normalize.PREPARE)."""
    return lambda: pl.col(column).struct.field(name)
