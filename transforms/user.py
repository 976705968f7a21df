"""ECS `user.*`: who made the call.

For assumed roles the session name is chosen by the caller and often random; the
role (the session issuer's userName) is the stable identity analysts search for.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


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
        .otherwise(pl.coalesce(user_name, pl.col("additionalEventData.UserName")))
    )


RULES: dict[str, Callable[[], pl.Expr]] = {
    "user.name": name,
}
