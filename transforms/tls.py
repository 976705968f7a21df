"""ECS `tls.*`: the TLS session of the call (tlsDetails).

Some events carry placeholder tlsDetails whose values are their own key names
("tlsVersion": "tlsVersion"); those say nothing and are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def real(path: str) -> pl.Expr:
    """The tlsDetails value, unless it is the placeholder (its own key name)."""
    value = pl.col(path)
    return pl.when(value != path.rsplit(".", 1)[1]).then(value)


def version() -> pl.Expr:
    """"TLSv1.2" → "1.2"; a bare "1.3" stays "1.3"."""
    v = real("tlsDetails.tlsVersion")
    return pl.coalesce(v.str.extract(r"^[A-Za-z]+v?(\d[\d.]*)$"), v)


def version_protocol() -> pl.Expr:
    return real("tlsDetails.tlsVersion").str.extract(r"^([A-Za-z]+?)v?\d").str.to_lowercase()


RULES: dict[str, Callable[[], pl.Expr]] = {
    "tls.version": version,
    "tls.version_protocol": version_protocol,
    "tls.cipher": lambda: real("tlsDetails.cipherSuite"),
    "tls.client.server_name": lambda: real("tlsDetails.clientProvidedHostHeader"),
    "aws.cloudtrail.tls_details.key_exchange": lambda: real("tlsDetails.keyExchange"),
}
