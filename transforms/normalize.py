"""Assemble the normalized table from the schema declaration and the field-group rules."""

from __future__ import annotations

import functools
from collections.abc import Callable

import polars as pl

from transforms import (aws_cloudtrail, cloud, digest, event, insight, related, source, tls, user, user_agent)
from transforms.schema import RAW, Field, fields, polars_type

_GROUPS = (event, insight, cloud, source, user, user_agent, tls, related, aws_cloudtrail, digest)
RULES: dict[str, Callable[[], pl.Expr]] = {k: v for g in _GROUPS for k, v in g.RULES.items()}
#: Helper columns computed once per batch before the fields (split addresses, parsed user agents, the API
#: call's category and type), each from the distinct values of its inputs.
PREPARE: dict[str, list[Callable[[], pl.Expr]]] = {
    "events": [*source.PREPARE, *user_agent.PREPARE, *event.PREPARE], "digests": []}


def field_expr(field: Field) -> pl.Expr:
    """A declared rule, else the first non-null of the field's sources."""
    if field.name in RULES:
        expr = RULES[field.name]()
    elif len(field.sources) == 1:
        expr = pl.col(field.sources[0])
    else:
        expr = pl.coalesce([pl.col(s) for s in field.sources])
    return expr.cast(polars_type(field)).alias(field.name)


def _nested(names: list[str], prefix: str = "") -> list[pl.Expr]:
    """Flat dotted columns → nested structs, in declaration order."""
    groups: dict[str, list[str]] = {}
    for name in names:
        head, _, rest = name.partition(".")
        groups.setdefault(head, [])
        if rest:
            groups[head].append(rest)
    out = []
    for head, rests in groups.items():
        full = prefix + head
        if rests:
            out.append(pl.struct(_nested(rests, full + ".")).alias(head))
        else:
            out.append(pl.col(full).alias(head))
    return out


def normalize(raw: pl.LazyFrame, table: str, keep_original: bool = True) -> pl.LazyFrame:
    """Raw reader columns (one per declared input) → the table's nested schema."""
    prepare, flat, nested = _steps(table, keep_original)
    return raw.with_columns(prepare).select(flat).select(nested)


@functools.cache
def _steps(table: str, keep_original: bool) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]:
    """The normalize's ~250 expressions, built once per process: building them took ~4 ms, paid by every
    batch, and expressions are immutable."""
    declared = fields(table)
    flat = []
    for f in declared:
        if f.sources == (RAW,) and not keep_original:
            flat.append(pl.lit(None, pl.String()).alias(f.name))
        else:
            flat.append(field_expr(f))
    return [p() for p in PREPARE[table]], flat, _nested([f.name for f in declared])
