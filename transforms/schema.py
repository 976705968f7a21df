"""The normalized schema, declared once.

Every output column of the lake is one `Field` below: its ECS (or aws.cloudtrail.*)
name, its type, the CloudTrail inputs it reads and the rule that derives it. The
reader extracts exactly the declared `INPUTS`, the transforms build exactly these
fields in this order, the Parquet schema and `docs/schema.md` are generated from it,
and the conformance tests check it. To add a field, add a row here and, when it is
not a plain copy of one input, its expression in the module of its field group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl
import pyarrow as pa

#: Bumped whenever a stored column changes; a lake written with another version
#: must be rebuilt with `trailhouse ingest --full-refresh`.
LAKE_SCHEMA_VERSION = 1

InputKind = Literal["text", "json", "time"]


@dataclass(frozen=True)
class Input:
    """A value the reader extracts from each raw CloudTrail record.

    kind: `text` is the value as a string (objects as compact JSON), `json` is the
    compact JSON text of the value exactly as typed (a string stays quoted), `time`
    is parsed to a UTC timestamp (unparseable → null, which validation reports).
    """

    path: str
    kind: InputKind = "text"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    sources: tuple[str, ...]
    rule: str
    table: str = "events"


# Internal inputs the reader always provides besides the CloudTrail paths.
RAW = "_raw"  # the record's text exactly as received
FILE = "_file"  # the source file (path or URL)

EVENT_INPUTS: tuple[Input, ...] = (
    Input("eventTime", "time"),
    Input("eventID"),
    Input("eventName"),
    Input("eventSource"),
    Input("eventVersion"),
    Input("eventType"),
    Input("awsRegion"),
    Input("sourceIPAddress"),
    Input("userAgent"),
    Input("errorCode"),
    Input("errorMessage"),
    Input("recipientAccountId"),
    Input("requestParameters", "json"),
    Input("responseElements", "json"),
    Input("responseElements.ConsoleLogin"),
    Input("insightDetails.eventName"),
    Input("insightDetails.eventSource"),
    Input("additionalEventData.UserName"),
    Input("userIdentity.type"),
    Input("userIdentity.arn"),
    Input("userIdentity.accountId"),
    Input("userIdentity.userName"),
    Input("userIdentity.sessionContext.sessionIssuer.userName"),
)

DIGEST_INPUTS: tuple[Input, ...] = (
    Input("awsAccountId"),
    Input("digestStartTime", "time"),
    Input("digestEndTime", "time"),
    Input("digestS3Bucket"),
    Input("digestS3Object"),
    Input("newestEventTime", "time"),
    Input("oldestEventTime", "time"),
    Input("previousDigestS3Bucket"),
    Input("previousDigestS3Object"),
    Input("previousDigestHashAlgorithm"),
    Input("previousDigestHashValue"),
    Input("previousDigestSignature"),
    Input("digestPublicKeyFingerprint"),
    Input("publicKeyFingerprint"),
    Input("digestSignatureAlgorithm"),
    Input("logFiles", "json"),
)

_E = "events"
_D = "digests"

FIELDS: tuple[Field, ...] = (
    # --- events -------------------------------------------------------------------
    Field("@timestamp", "timestamp", ("eventTime",), "eventTime, UTC"),
    Field("event.id", "keyword", ("eventID",), "eventID"),
    Field("event.action", "keyword", ("eventName", "insightDetails.eventName"),
          "eventName; insight events: insightDetails.eventName"),
    Field("event.provider", "keyword", ("eventSource", "insightDetails.eventSource"),
          "eventSource; insight events: insightDetails.eventSource"),
    Field("event.outcome", "keyword", ("errorCode", "errorMessage", "eventName", "responseElements.ConsoleLogin"),
          "ConsoleLogin: lower-cased responseElements.ConsoleLogin; else failure when errorCode or "
          "errorMessage is present, success otherwise"),
    Field("event.original", "keyword", (RAW,),
          "the record's JSON text exactly as received; null with --no-original"),
    Field("event.hash", "keyword", (RAW, "eventID"),
          "md5 of the record text, only for records without eventID (their dedup key)"),
    Field("cloud.provider", "keyword", (), 'constant "aws"'),
    Field("cloud.region", "keyword", ("awsRegion",), "awsRegion"),
    Field("cloud.account.id", "keyword", ("userIdentity.accountId", "recipientAccountId"),
          "userIdentity.accountId, else recipientAccountId"),
    Field("source.address", "keyword", ("sourceIPAddress",), "sourceIPAddress as is"),
    Field("source.ip", "ip", ("sourceIPAddress",),
          "sourceIPAddress when it is a valid IPv4/IPv6 address (canonical form)"),
    Field("user.name", "keyword",
          ("userIdentity.type", "userIdentity.userName", "userIdentity.sessionContext.sessionIssuer.userName",
           "additionalEventData.UserName"),
          "IAMUser: userName; AssumedRole/FederatedUser: the session issuer's userName (role name); "
          'Root: "root"; else userName, else additionalEventData.UserName'),
    Field("user_agent.original", "keyword", ("userAgent",), "userAgent"),
    Field("log.file.path", "keyword", (FILE,), "the source file: local path or s3:// URL"),
    Field("aws.cloudtrail.event_version", "keyword", ("eventVersion",), "eventVersion"),
    Field("aws.cloudtrail.event_type", "keyword", ("eventType",), "eventType"),
    Field("aws.cloudtrail.error_code", "keyword", ("errorCode",), "errorCode"),
    Field("aws.cloudtrail.error_message", "keyword", ("errorMessage",), "errorMessage"),
    Field("aws.cloudtrail.recipient_account_id", "keyword", ("recipientAccountId",), "recipientAccountId"),
    Field("aws.cloudtrail.request_parameters", "json", ("requestParameters",),
          "requestParameters as compact JSON text, values kept exactly"),
    Field("aws.cloudtrail.response_elements", "json", ("responseElements",),
          "responseElements as compact JSON text, values kept exactly"),
    Field("aws.cloudtrail.user_identity.type", "keyword", ("userIdentity.type",), "userIdentity.type"),
    Field("aws.cloudtrail.user_identity.arn", "keyword", ("userIdentity.arn",), "userIdentity.arn"),
    # --- digests ------------------------------------------------------------------
    Field("@timestamp", "timestamp", ("digestEndTime",), "digestEndTime, UTC", _D),
    Field("cloud.account.id", "keyword", ("awsAccountId",), "awsAccountId", _D),
    Field("file.path", "keyword", ("digestS3Object",), "digestS3Object (the digest's own key)", _D),
    Field("log.file.path", "keyword", (FILE,), "the digest file that was read", _D),
    Field("aws.cloudtrail.digest.start_time", "timestamp", ("digestStartTime",), "digestStartTime", _D),
    Field("aws.cloudtrail.digest.end_time", "timestamp", ("digestEndTime",), "digestEndTime", _D),
    Field("aws.cloudtrail.digest.s3_bucket", "keyword", ("digestS3Bucket",), "digestS3Bucket", _D),
    Field("aws.cloudtrail.digest.s3_object", "keyword", ("digestS3Object",), "digestS3Object", _D),
    Field("aws.cloudtrail.digest.newest_event_time", "timestamp", ("newestEventTime",), "newestEventTime", _D),
    Field("aws.cloudtrail.digest.oldest_event_time", "timestamp", ("oldestEventTime",), "oldestEventTime", _D),
    Field("aws.cloudtrail.digest.previous_s3_bucket", "keyword", ("previousDigestS3Bucket",),
          "previousDigestS3Bucket", _D),
    Field("aws.cloudtrail.digest.previous_s3_object", "keyword", ("previousDigestS3Object",),
          "previousDigestS3Object", _D),
    Field("aws.cloudtrail.digest.previous_hash_algorithm", "keyword", ("previousDigestHashAlgorithm",),
          "previousDigestHashAlgorithm", _D),
    Field("aws.cloudtrail.digest.previous_hash_value", "keyword", ("previousDigestHashValue",),
          "previousDigestHashValue", _D),
    Field("aws.cloudtrail.digest.previous_signature", "keyword", ("previousDigestSignature",),
          "previousDigestSignature", _D),
    Field("aws.cloudtrail.digest.public_key_fingerprint", "keyword",
          ("digestPublicKeyFingerprint", "publicKeyFingerprint"),
          "digestPublicKeyFingerprint, else publicKeyFingerprint", _D),
    Field("aws.cloudtrail.digest.signature_algorithm", "keyword", ("digestSignatureAlgorithm",),
          "digestSignatureAlgorithm", _D),
    Field("aws.cloudtrail.digest.log_files", "json", ("logFiles",),
          "logFiles as compact JSON text (s3Bucket, s3Object, hashValue, hashAlgorithm, event times)", _D),
)

TABLES = {_E: EVENT_INPUTS, _D: DIGEST_INPUTS}

#: Columns every table is sorted by inside a partition (also the dedup tie-break order).
SORT_KEYS = {
    _E: ("cloud.account.id", "cloud.region", "@timestamp", "event.id"),
    _D: ("cloud.account.id", "@timestamp", "file.path"),
}
#: What makes two rows the same event (first non-null wins).
DEDUP_KEYS = {_E: ("event.id", "event.hash"), _D: ("file.path", "log.file.path")}

_POLARS_TYPES: dict[str, pl.DataType] = {
    "keyword": pl.String(),
    "ip": pl.String(),
    "json": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "boolean": pl.Boolean(),
    "long": pl.Int64(),
    "keyword[]": pl.List(pl.String()),
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "keyword": pa.string(),
    "ip": pa.string(),
    "json": pa.json_(pa.string()),
    "timestamp": pa.timestamp("us", "UTC"),
    "boolean": pa.bool_(),
    "long": pa.int64(),
    "keyword[]": pa.list_(pa.string()),
}


def fields(table: str) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS if f.table == table)


def inputs(table: str) -> tuple[Input, ...]:
    return TABLES[table]


def polars_type(field: Field) -> pl.DataType:
    return _POLARS_TYPES[field.type]


def _nest(items: list[tuple[list[str], pa.DataType]]) -> list[pa.Field]:
    """Turn dotted paths into nested Arrow struct fields, keeping declaration order."""
    out: dict[str, object] = {}
    for parts, typ in items:
        if len(parts) == 1:
            out[parts[0]] = typ
        else:
            out.setdefault(parts[0], []).append((parts[1:], typ))  # type: ignore[union-attr]
    return [
        pa.field(name, pa.struct(_nest(v)) if isinstance(v, list) else v)  # type: ignore[arg-type]
        for name, v in out.items()
    ]


def arrow_schema(table: str) -> pa.Schema:
    """The Parquet schema of a table: nested structs, JSON payloads with the JSON logical type."""
    return pa.schema(_nest([(f.name.split("."), _ARROW_TYPES[f.type]) for f in fields(table)]))
