"""ECS `related.*`: every IP, host and user an event mentions, for one-field pivots."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from transforms import source, tls, user
from transforms.unique import per_distinct, per_unique

_INSTANCE_ID = r'"i-[0-9a-f]{8}(?:[0-9a-f]{9})?"'


#: Joins an event's values into one string, split once into the list: much cheaper than concat_list.
#: The ASCII unit separator does not occur in real user names, addresses or hosts (a value holding one
#: would be listed as two).
_SEP = "\x1f"


def distinct(*values: pl.Expr, lists: tuple[pl.Expr, ...] = ()) -> pl.Expr:
    """Values, then the items of lists → one list without nulls, empty strings or repeats (first seen first).

    An event with none is null, not an empty list: nothing joined is an empty string, made null before the split.
    """
    parts = [pl.when(v != "").then(v) for v in values]
    parts += [pl.when(lst.list.len() > 0).then(lst.list.join(_SEP)) for lst in lists]
    joined = pl.concat_str(parts, separator=_SEP, ignore_nulls=True).replace("", None)
    return joined.str.split(_SEP).list.unique(maintain_order=True)


def ips() -> pl.Expr:
    service_ip = per_unique(pl.col("serviceEventDetails.sourceIpAddress"), source.canonical_ip, pl.String())
    return distinct(pl.col(source.PARSED).struct.field("ip"), service_ip)


def instance_ids() -> pl.Expr:
    payloads = pl.concat_str([pl.col("requestParameters"), pl.col("responseElements")], separator=" ",
                             ignore_nulls=True)
    return payloads.str.extract_all(_INSTANCE_ID).list.eval(pl.element().str.strip_chars('"'))


def hosts() -> pl.Expr:
    return distinct(pl.col(source.PARSED).struct.field("domain"), tls.real("tlsDetails.clientProvidedHostHeader"),
                    lists=(instance_ids(),))


def users() -> pl.Expr:
    session = user.session_name()
    local_part = pl.when(session.str.contains(user.EMAIL)).then(session.str.extract(r"^([^@]+)@"))
    listed = distinct(user.name(), session, local_part, pl.col("requestParameters.userName"),
                      pl.col("requestParameters.newUserName"), pl.col("responseElements.user.userId"),
                      pl.col("userIdentity.principalId"))
    return per_distinct(listed, pl.List(pl.String()))  # a batch holds a few hundred identities


RULES: dict[str, Callable[[], pl.Expr]] = {
    "related.ip": ips,
    "related.hosts": hosts,
    "related.user": users,
}
