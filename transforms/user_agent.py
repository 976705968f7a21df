"""ECS `user_agent.*`: which client made the call, parsed by ua-parser on distinct values only."""

from __future__ import annotations

import functools
from collections.abc import Callable

import polars as pl
import ua_parser

from transforms.unique import per_unique, struct_field

PARSED = "_user_agent"
_FIELDS = ("name", "version", "os_name", "os_version", "os_full", "device_name")
_DTYPE = pl.Struct({f: pl.String() for f in _FIELDS})


def _version(*parts: str | None) -> str | None:
    present = [p for p in parts if p]
    return ".".join(present) or None


@functools.lru_cache(maxsize=2**16)
def parse(value: str) -> dict[str, str | None]:
    """One user agent string → the ECS parts; "Other" marks what uap-core does not recognise.

    Remembered per process, as the addresses are (source.classify): every batch sees the same clients."""
    r = ua_parser.parse(value)
    ua, os_, device = r.user_agent, r.os, r.device
    os_name = os_.family if os_ and os_.family != "Other" else None
    os_version = _version(os_.major, os_.minor, os_.patch) if os_name and os_ else None
    return {
        "name": ua.family if ua else "Other",
        "version": _version(ua.major, ua.minor, ua.patch, ua.patch_minor) if ua else None,
        "os_name": os_name,
        "os_version": os_version,
        "os_full": " ".join(p for p in (os_name, os_version) if p) or None,
        "device_name": device.family if device else "Other",
    }


def parsed() -> pl.Expr:
    return per_unique(pl.col("userAgent"), parse, _DTYPE).alias(PARSED)


PREPARE: list[Callable[[], pl.Expr]] = [parsed]
RULES: dict[str, Callable[[], pl.Expr]] = {
    "user_agent.name": struct_field(PARSED, "name"),
    "user_agent.version": struct_field(PARSED, "version"),
    "user_agent.os.name": struct_field(PARSED, "os_name"),
    "user_agent.os.version": struct_field(PARSED, "os_version"),
    "user_agent.os.full": struct_field(PARSED, "os_full"),
    "user_agent.device.name": struct_field(PARSED, "device_name"),
}
