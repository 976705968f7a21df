"""ECS `event.*`: what happened, of which kind, and whether it worked."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from transforms.categories import DEFAULT_CATEGORY, VERB_TYPES, tables
from transforms.unique import per_distinct, struct_field

#: The lookup tables' answers, worked out once per distinct (eventSource, eventName) of a batch (see PREPARE).
CLASSIFIED = "_event"
_CLASSIFIED_DTYPE = pl.Struct({"category": pl.List(pl.String()), "type": pl.List(pl.String())})


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


def _category() -> pl.Expr:
    """The event-name table, else the source's default made consistent with the verb, else api."""
    t = tables()
    by_name = _named().replace_strict({k: v[0] for k, v in t.by_name.items()}, default=None, return_dtype=pl.String)
    by_source = pl.concat_str([pl.col("eventSource"), _verb_type()], separator=" ").replace_strict(
        t.by_source_and_type, default=None, return_dtype=pl.String)
    return pl.coalesce(by_name, by_source, pl.lit(DEFAULT_CATEGORY)).str.split("|")


def _type() -> pl.Expr:
    """The event-name table, else the verb."""
    t = tables()
    by_name = _named().replace_strict({k: v[1] for k, v in t.by_name.items()}, default=None, return_dtype=pl.String)
    return pl.coalesce(by_name, _verb_type()).str.split("|")


def classified() -> pl.Expr:
    """Both lookups per distinct API call: a batch of thousands of events calls a few dozen APIs, and the
    tables (hundreds of entries) are hashed per evaluation."""
    return per_distinct(pl.struct(category=_category(), type=_type()), _CLASSIFIED_DTYPE).alias(CLASSIFIED)


def type_() -> pl.Expr:
    """The API call's type; a console login also says whether it was allowed."""
    login = pl.when(outcome() == "success").then(_listed("start", "allowed")).otherwise(_listed("start", "denied"))
    return pl.when(pl.col("eventName") == "ConsoleLogin").then(login).otherwise(
        pl.col(CLASSIFIED).struct.field("type"))


def _listed(*values: str) -> pl.Expr:
    return pl.lit(pl.Series([list(values)], dtype=pl.List(pl.String())))


def record_hash() -> pl.Expr:
    """The reader hashes only records without an eventID; the hash is their dedup key."""
    return pl.col("_hash")


PREPARE: list[Callable[[], pl.Expr]] = [classified]
RULES: dict[str, Callable[[], pl.Expr]] = {
    "event.kind": lambda: pl.lit("event"),
    "event.outcome": outcome,
    "event.category": struct_field(CLASSIFIED, "category"),
    "event.type": type_,
    "event.hash": record_hash,
}
