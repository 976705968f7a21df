"""ECS `source.*`: where the call came from.

sourceIPAddress is an IP for most calls, but AWS writes service hostnames
(`lambda.amazonaws.com`), "AWS Internal" and, in anonymised data, garbage there.
Only a real address may become `source.ip`, or IP-typed queries and joins break.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import polars as pl

from transforms.unique import per_unique


def canonical_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def ip() -> pl.Expr:
    return per_unique(pl.col("sourceIPAddress"), canonical_ip, pl.String())


RULES: dict[str, Callable[[], pl.Expr]] = {
    "source.ip": ip,
}
