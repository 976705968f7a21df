"""ECS `user.*` and `group.*`: who made the call, and whom it was about.

For assumed roles the session name is chosen by the caller and often random; the
role (the session issuer's userName) is the stable identity analysts search for,
so it is `user.name`, and the session name goes to `related.user` (and `user.email`
when it is an address, as with Identity Center sessions).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def name() -> pl.Expr:
    kind = pl.col("userIdentity.type")
    user_name = pl.col("userIdentity.userName")
    issuer = pl.col("userIdentity.sessionContext.sessionIssuer.userName")
    return (
        pl.when(kind == "IAMUser")
        .then(user_name)
        .when(kind.is_in(["AssumedRole", "FederatedUser"]))
        .then(pl.coalesce(issuer, user_name))
        .when(kind == "Root")
        .then(pl.lit("root"))
        .otherwise(pl.coalesce(user_name, pl.col("additionalEventData.UserName"),
                               pl.col("userIdentity.onBehalfOf.userId")))
    )


def session_name() -> pl.Expr:
    """The last part of an assumed-role or federated-user ARN."""
    return pl.col("userIdentity.arn").str.extract(r":(?:assumed-role/[^/]+|federated-user)/([^/]+)$")


def email() -> pl.Expr:
    session, user_name = session_name(), name()
    return (pl.when(session.str.contains(EMAIL)).then(session)
            .when(user_name.str.contains(EMAIL)).then(user_name))


RULES: dict[str, Callable[[], pl.Expr]] = {
    "user.name": name,
    "user.email": email,
}
