"""`aws.cloudtrail.*`: CloudTrail's own fields, typed; payloads stay JSON text."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

_CT = "aws.cloudtrail."


def boolean(path: str) -> pl.Expr:
    """JSON true/false (or their strings) → boolean; anything else → null (kept in event.original)."""
    value = pl.col(path).str.to_lowercase()
    return pl.when(value == "true").then(True).when(value == "false").then(False)


def console_flag(path: str) -> pl.Expr:
    """ConsoleLogin's "Yes"/"No" flags: "No" is false, any other value true (as Elastic reads them)."""
    value = pl.col(path)
    return pl.when((pl.col("eventName") == "ConsoleLogin") & value.is_not_null()).then(value != "No")


def console_only(path: str) -> pl.Expr:
    return pl.when(pl.col("eventName") == "ConsoleLogin").then(pl.col(path))


def resources() -> pl.Expr:
    """[{ARN, accountId, type}] → [{arn, account_id, type}], without duplicates or non-objects."""
    e = pl.element().struct
    item = pl.struct(e.field("ARN").alias("arn"), e.field("accountId").alias("account_id"), e.field("type"))
    keep = e.field("ARN").is_not_null() | e.field("accountId").is_not_null() | e.field("type").is_not_null()
    return pl.col("resources").list.eval(item.filter(keep).unique(maintain_order=True))


RULES: dict[str, Callable[[], pl.Expr]] = {
    _CT + "read_only": lambda: boolean("readOnly"),
    _CT + "management_event": lambda: boolean("managementEvent"),
    _CT + "user_identity.session_context.mfa_authenticated":
        lambda: boolean("userIdentity.sessionContext.attributes.mfaAuthenticated"),
    _CT + "console_login.login_to": lambda: console_only("additionalEventData.LoginTo"),
    _CT + "console_login.mfa_used": lambda: console_flag("additionalEventData.MFAUsed"),
    _CT + "console_login.mobile_version": lambda: console_flag("additionalEventData.MobileVersion"),
    _CT + "resources": resources,
}
