"""ECS `cloud.*`: which account, region and service the call was made in."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def provider() -> pl.Expr:
    return pl.lit("aws")


def service_name() -> pl.Expr:
    """`ec2.amazonaws.com` → `ec2`; sources outside amazonaws.com name no AWS service."""
    return pl.col("eventSource").str.extract(r"^([^.]+)\.amazonaws\.com$")


RULES: dict[str, Callable[[], pl.Expr]] = {
    "cloud.provider": provider,
    "cloud.service.name": service_name,
}
