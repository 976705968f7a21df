"""ECS `source.*`: where the call came from.

sourceIPAddress is an IP for most calls, but AWS writes service hostnames
(`lambda.amazonaws.com`), "AWS Internal" and, in anonymised data, garbage there.
Only a real address may become `source.ip` (or IP-typed queries and joins break),
and only a real hostname `source.domain`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable

import polars as pl
import tldextract

from transforms.unique import per_unique, struct_field

PARSED = "_source"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*$")
_DTYPE = pl.Struct({k: pl.String() for k in ("ip", "domain", "registered_domain", "subdomain", "top_level_domain")})


@functools.cache
def _splitter() -> tldextract.TLDExtract:
    """The bundled public suffix list only: never fetched, never cached to disk."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def canonical_ip(value: str) -> str | None:
    """An address in one spelling, so that equal addresses compare equal in SQL: IPv6 compressed and lower case,
    and an IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, a dual-stack client) as the IPv4 address it is, as
    Elasticsearch's ip type shows it (Python 3.11 spelled it `::ffff:cb00:7107`, which no analyst searches for)."""
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return str(getattr(ip, "ipv4_mapped", None) or ip)


@functools.lru_cache(maxsize=2**16)
def classify(value: str) -> dict[str, str | None]:
    """An address → its ip, or its hostname and the hostname's parts; garbage → nothing.

    Remembered per process: the same few hundred addresses come back in every batch (~10 µs each to parse)."""
    ip = canonical_ip(value)
    if ip or not _HOSTNAME.match(value):
        return {"ip": ip, "domain": None, "registered_domain": None, "subdomain": None, "top_level_domain": None}
    parts = _splitter()(value)
    return {"ip": None, "domain": value.lower(), "registered_domain": parts.top_domain_under_public_suffix or None,
            "subdomain": parts.subdomain or None, "top_level_domain": parts.suffix or None}


def parsed() -> pl.Expr:
    return per_unique(pl.col("sourceIPAddress"), classify, _DTYPE).alias(PARSED)


PREPARE: list[Callable[[], pl.Expr]] = [parsed]
RULES: dict[str, Callable[[], pl.Expr]] = {
    "source.ip": struct_field(PARSED, "ip"),
    "source.domain": struct_field(PARSED, "domain"),
    "source.registered_domain": struct_field(PARSED, "registered_domain"),
    "source.subdomain": struct_field(PARSED, "subdomain"),
    "source.top_level_domain": struct_field(PARSED, "top_level_domain"),
}
