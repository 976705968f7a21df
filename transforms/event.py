"""ECS `event.*`: what happened, of which kind, and whether it worked."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from transforms.categories import DEFAULT_CATEGORY, VERB_TYPES, tables


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


def _named() -> pl.Expr:
    return pl.concat_str([pl.col("eventSource"), pl.col("eventName")], separator=" ")


def _verb_type() -> pl.Expr:
    verb = pl.col("eventName").str.extract(r"^([A-Z][a-z]+)")
    return pl.coalesce(verb.replace_strict(VERB_TYPES, default=None, return_dtype=pl.String), pl.lit("info"))


def category() -> pl.Expr:
    """The event-name table, else the source's default made consistent with the verb, else api."""
    t = tables()
    by_name = _named().replace_strict({k: v[0] for k, v in t.by_name.items()}, default=None, return_dtype=pl.String)
    by_source = pl.concat_str([pl.col("eventSource"), _verb_type()], separator=" ").replace_strict(
        t.by_source_and_type, default=None, return_dtype=pl.String)
    return pl.coalesce(by_name, by_source, pl.lit(DEFAULT_CATEGORY)).str.split("|")


def type_() -> pl.Expr:
    """The event-name table, else the verb; a console login also says whether it was allowed."""
    t = tables()
    by_name = _named().replace_strict({k: v[1] for k, v in t.by_name.items()}, default=None, return_dtype=pl.String)
    base = pl.coalesce(by_name, _verb_type())
    login = pl.when(outcome() == "success").then(pl.lit("start|allowed")).otherwise(pl.lit("start|denied"))
    return pl.when(pl.col("eventName") == "ConsoleLogin").then(login).otherwise(base).str.split("|")


def record_hash() -> pl.Expr:
    """The reader hashes only records without an eventID; the hash is their dedup key."""
    return pl.col("_hash")


RULES: dict[str, Callable[[], pl.Expr]] = {
    "event.kind": lambda: pl.lit("event"),
    "event.outcome": outcome,
    "event.category": category,
    "event.type": type_,
    "event.hash": record_hash,
}
