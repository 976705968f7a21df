"""ECS `event.*`: what happened and whether it worked."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def outcome() -> pl.Expr:
    """ConsoleLogin reports its result in responseElements; every other call fails by carrying an error."""
    console = pl.col("responseElements.ConsoleLogin").str.to_lowercase()
    errored = pl.col("errorCode").is_not_null() | pl.col("errorMessage").is_not_null()
    return (
        pl.when((pl.col("eventName") == "ConsoleLogin") & console.is_not_null())
        .then(console)
        .when(errored)
        .then(pl.lit("failure"))
        .otherwise(pl.lit("success"))
    )


def record_hash() -> pl.Expr:
    """The reader hashes only records without an eventID; the hash is their dedup key."""
    return pl.col("_hash")


RULES: dict[str, Callable[[], pl.Expr]] = {
    "event.outcome": outcome,
    "event.hash": record_hash,
}
