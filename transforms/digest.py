"""Digest files (the integrity chain of delivered log files) → the `digests` table."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

_TIME = "%Y-%m-%dT%H:%M:%SZ"


def log_files() -> pl.Expr:
    """logFiles with snake_case keys and parsed times; non-object items are dropped."""
    e = pl.element().struct
    item = pl.struct(
        e.field("s3Bucket").alias("s3_bucket"),
        e.field("s3Object").alias("s3_object"),
        e.field("hashValue").alias("hash_value"),
        e.field("hashAlgorithm").alias("hash_algorithm"),
        e.field("newestEventTime").str.to_datetime(_TIME, strict=False, time_zone="UTC").alias("newest_event_time"),
        e.field("oldestEventTime").str.to_datetime(_TIME, strict=False, time_zone="UTC").alias("oldest_event_time"),
    )
    return pl.col("logFiles").list.eval(item.filter(e.field("s3Object").is_not_null()))


RULES: dict[str, Callable[[], pl.Expr]] = {
    "aws.cloudtrail.digest.log_files": log_files,
}
