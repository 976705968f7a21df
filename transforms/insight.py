"""CloudTrail Insights events carry no top-level eventName/eventSource: the API they
are about is in insightDetails, so `event.action`/`event.provider` fall back to it."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def action() -> pl.Expr:
    return pl.coalesce(pl.col("eventName"), pl.col("insightDetails.eventName"))


def provider() -> pl.Expr:
    return pl.coalesce(pl.col("eventSource"), pl.col("insightDetails.eventSource"))


RULES: dict[str, Callable[[], pl.Expr]] = {
    "event.action": action,
    "event.provider": provider,
}
