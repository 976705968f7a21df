"""ECS `cloud.*`: which account and region the call was made in."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def provider() -> pl.Expr:
    return pl.lit("aws")


RULES: dict[str, Callable[[], pl.Expr]] = {
    "cloud.provider": provider,
}
