"""The normalized schema, declared once.

Every output column of the lake is one `Field` below: its ECS (or aws.cloudtrail.*)
name, its type, the CloudTrail inputs it reads and the rule that derives it. The
reader extracts exactly the declared `INPUTS`, the transforms build exactly these
fields in this order, the Parquet schema and `docs/schema.md` are generated from it,
and the conformance tests check it. To add a field, add a row here and, when it is
not a plain copy of one input, its expression in the module of its field group.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

# The declaration is plain data: Polars and Arrow are imported only where their types are built, so the ingest
# driver reads the schema constants without loading either engine (docs/performance.md).
if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

#: Bumped whenever a stored column changes; a lake written with another version
#: must be rebuilt with `trailhouse ingest --full-refresh`.
LAKE_SCHEMA_VERSION = 2
#: A lake table's folders are PARTITION=YYYY-MM-DD (the UTC date of "@timestamp"): the writers make only those,
#: and the views read only those, so a folder someone put beside them is not taken for a partition.
PARTITION = "event_date"

InputKind = Literal["text", "json", "time", "shaped"]


@dataclass(frozen=True)
class Input:
    """A value the reader extracts from each raw CloudTrail record.

    kind: `text` is the value as a string (objects as compact JSON), `json` is the
    compact JSON text of the value exactly as typed (a string stays quoted), `time`
    is parsed to a UTC timestamp (unparseable → null, which validation reports),
    `shaped` is decoded to `shape` (a DuckDB JSON structure), leniently: a value of
    the wrong type becomes null instead of failing the batch.
    """

    path: str
    kind: InputKind = "text"
    shape: str | None = None


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

_RESOURCE_SHAPE = '[{"ARN": "VARCHAR", "accountId": "VARCHAR", "type": "VARCHAR"}]'
_LOG_FILE_SHAPE = ('[{"s3Bucket": "VARCHAR", "s3Object": "VARCHAR", "hashValue": "VARCHAR", "hashAlgorithm": '
                   '"VARCHAR", "newestEventTime": "VARCHAR", "oldestEventTime": "VARCHAR"}]')

_UI = "userIdentity."
_SC = "userIdentity.sessionContext."
EVENT_INPUTS: tuple[Input, ...] = (
    Input("eventTime", "time"),
    *(Input(p) for p in (
        "eventID", "eventName", "eventSource", "eventVersion", "eventType", "eventCategory", "apiVersion",
        "requestID", "readOnly", "managementEvent", "awsRegion", "sourceIPAddress", "userAgent", "errorCode",
        "errorMessage", "recipientAccountId", "sharedEventID", "sharedEventId", "vpcEndpointId",
        "vpcEndpointAccountId", "sessionCredentialFromConsole",
        "responseElements.ConsoleLogin", "responseElements.user.userId", "responseElements.group.groupId",
        "requestParameters.instanceId", "requestParameters.userName", "requestParameters.newUserName",
        "requestParameters.groupName", "serviceEventDetails.sourceIpAddress",
        "insightDetails.eventName", "insightDetails.eventSource", "insightDetails.errorCode",
        "additionalEventData.UserName", "additionalEventData.LoginTo", "additionalEventData.MFAUsed",
        "additionalEventData.MobileVersion",
        "tlsDetails.tlsVersion", "tlsDetails.cipherSuite", "tlsDetails.clientProvidedHostHeader",
        "tlsDetails.keyExchange",
        "addendum.reason", "addendum.updatedFields", "addendum.originalRequestID", "addendum.originalEventID",
        _UI + "type", _UI + "arn", _UI + "principalId", _UI + "accountId", _UI + "accessKeyId", _UI + "userName",
        _UI + "invokedBy", _UI + "onBehalfOf.userId", _UI + "onBehalfOf.identityStoreArn",
        _SC + "attributes.mfaAuthenticated", _SC + "sourceIdentity", _SC + "sessionIssuer.type",
        _SC + "sessionIssuer.principalId", _SC + "sessionIssuer.arn", _SC + "sessionIssuer.accountId",
        _SC + "sessionIssuer.userName",
    )),
    Input(_SC + "attributes.creationDate", "time"),
    *(Input(p, "json") for p in (
        "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails", "insightDetails",
        "edgeDeviceDetails",
    )),
    Input("resources", "shaped", _RESOURCE_SHAPE),
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
    Input("logFiles", "shaped", _LOG_FILE_SHAPE),
)

_E = "events"
_D = "digests"
_CT = "aws.cloudtrail."


def _copy(name: str, source: str, table: str = _E, type_: str = "keyword") -> Field:
    """A field that is one input, unchanged."""
    return Field(name, type_, (source,), source, table)


FIELDS: tuple[Field, ...] = (
    # --- events: event.* (transforms/event.py, transforms/insight.py) ---------------
    Field("@timestamp", "timestamp", ("eventTime",), "eventTime, UTC"),
    _copy("event.id", "eventID"),
    Field("event.kind", "keyword", (), 'constant "event"'),
    Field("event.action", "keyword", ("eventName", "insightDetails.eventName"),
          "eventName; insight events: insightDetails.eventName"),
    Field("event.provider", "keyword", ("eventSource", "insightDetails.eventSource"),
          "eventSource; insight events: insightDetails.eventSource"),
    Field("event.category", "keyword[]", ("eventSource", "eventName"),
          "per-eventName table (transforms/event_names.csv), else per-eventSource default "
          "(transforms/event_sources.csv), else api"),
    Field("event.type", "keyword[]", ("eventSource", "eventName", "errorCode", "responseElements.ConsoleLogin"),
          "per-eventName table, else the verb (Create*→creation, Delete*/Terminate*→deletion, "
          "Describe*/Get*/List*/Head*→info, Put*/Update*/Modify*/Attach*/Detach*/Set*→change), else info; "
          "ConsoleLogin: start plus allowed/denied by outcome"),
    Field("event.outcome", "keyword", ("errorCode", "errorMessage", "eventName", "responseElements.ConsoleLogin"),
          "ConsoleLogin: lower-cased responseElements.ConsoleLogin; else failure when errorCode or "
          "errorMessage is present, success otherwise"),
    Field("event.code", "keyword", ("errorCode", "insightDetails.errorCode"),
          "errorCode; insight events: insightDetails.errorCode"),
    _copy("event.reason", "errorMessage"),
    Field("event.original", "keyword", (RAW,),
          "the record's JSON text exactly as received; null with --no-original"),
    Field("event.hash", "keyword", (RAW, "eventID"),
          "md5 of the record text, only for records without eventID (their dedup key)"),
    # --- cloud.* (transforms/cloud.py) ------------------------------------------------
    Field("cloud.provider", "keyword", (), 'constant "aws"'),
    _copy("cloud.region", "awsRegion"),
    Field("cloud.account.id", "keyword", (_UI + "accountId", "recipientAccountId"),
          "userIdentity.accountId, else recipientAccountId"),
    Field("cloud.service.name", "keyword", ("eventSource",),
          'the service part of an eventSource ending in .amazonaws.com ("ec2", "iam", "signin")'),
    _copy("cloud.instance.id", "requestParameters.instanceId"),
    # --- source.* (transforms/source.py) ----------------------------------------------
    Field("source.address", "keyword", ("sourceIPAddress",), "sourceIPAddress as is"),
    Field("source.ip", "ip", ("sourceIPAddress",),
          "sourceIPAddress when it is a valid IPv4/IPv6 address (canonical form; IPv4-mapped IPv6 as its IPv4)"),
    Field("source.domain", "keyword", ("sourceIPAddress",),
          'sourceIPAddress when it is a hostname (AWS service principals included; not "AWS Internal", '
          "not garbage)"),
    Field("source.registered_domain", "keyword", ("sourceIPAddress",),
          "registered domain of source.domain (tldextract, bundled public suffix list)"),
    Field("source.subdomain", "keyword", ("sourceIPAddress",), "subdomain part of source.domain"),
    Field("source.top_level_domain", "keyword", ("sourceIPAddress",), "public suffix of source.domain"),
    # --- user.*, group.* (transforms/user.py) -----------------------------------------
    Field("user.id", "keyword", (_UI + "arn", _UI + "principalId", _UI + "onBehalfOf.userId"),
          "userIdentity.arn, else principalId, else onBehalfOf.userId (Identity Center)"),
    Field("user.name", "keyword",
          (_UI + "type", _UI + "userName", _SC + "sessionIssuer.userName", "additionalEventData.UserName",
           _UI + "onBehalfOf.userId"),
          "IAMUser: userName; AssumedRole/FederatedUser: the session issuer's userName (role name); "
          'Root: "root"; else userName, else additionalEventData.UserName, else onBehalfOf.userId'),
    Field("user.email", "keyword", (_UI + "type", _UI + "arn"),
          "the session name (last part of an assumed-role/federated ARN) when it is an e-mail, else user.name "
          "when it is one"),
    _copy("user.target.id", "responseElements.user.userId"),
    _copy("user.target.name", "requestParameters.userName"),
    _copy("user.changes.name", "requestParameters.newUserName"),
    _copy("group.id", "responseElements.group.groupId"),
    _copy("group.name", "requestParameters.groupName"),
    # --- user_agent.* (transforms/user_agent.py) --------------------------------------
    _copy("user_agent.original", "userAgent"),
    Field("user_agent.name", "keyword", ("userAgent",), "ua-parser family (Other when unknown)"),
    Field("user_agent.version", "keyword", ("userAgent",), "ua-parser major.minor.patch.patch_minor, as present"),
    Field("user_agent.os.name", "keyword", ("userAgent",), "ua-parser OS family; null when Other"),
    Field("user_agent.os.version", "keyword", ("userAgent",), "ua-parser OS major.minor.patch, as present"),
    Field("user_agent.os.full", "keyword", ("userAgent",), "OS name and version"),
    Field("user_agent.device.name", "keyword", ("userAgent",), "ua-parser device family (Other when unknown)"),
    # --- tls.* (transforms/tls.py) ----------------------------------------------------
    Field("tls.version", "keyword", ("tlsDetails.tlsVersion",), 'number of tlsVersion ("TLSv1.2" → "1.2")'),
    Field("tls.version_protocol", "keyword", ("tlsDetails.tlsVersion",), 'protocol of tlsVersion ("tls")'),
    Field("tls.cipher", "keyword", ("tlsDetails.cipherSuite",), "cipherSuite"),
    Field("tls.client.server_name", "keyword", ("tlsDetails.clientProvidedHostHeader",), "clientProvidedHostHeader"),
    # --- related.* (transforms/related.py) --------------------------------------------
    Field("related.ip", "keyword[]", ("sourceIPAddress", "serviceEventDetails.sourceIpAddress"),
          "source.ip and serviceEventDetails.sourceIpAddress when it is an IP; distinct"),
    Field("related.hosts", "keyword[]", ("sourceIPAddress", "tlsDetails.clientProvidedHostHeader",
                                         "requestParameters", "responseElements"),
          "source.domain, tls.client.server_name, EC2 instance ids (i-…) in request and response; distinct"),
    Field("related.user", "keyword[]", (_UI + "arn", _UI + "principalId", "requestParameters.userName",
                                        "requestParameters.newUserName", "responseElements.user.userId"),
          "user.name, the session name (and its e-mail local part), target and changed user names, "
          "target user id, principal id; distinct"),
    # --- log.* -----------------------------------------------------------------------
    Field("log.file.path", "keyword", (FILE,), "the source file: local path or s3:// URL"),
    # --- aws.cloudtrail.* (transforms/aws_cloudtrail.py) -------------------------------
    _copy(_CT + "event_version", "eventVersion"),
    _copy(_CT + "event_type", "eventType"),
    _copy(_CT + "event_category", "eventCategory"),
    _copy(_CT + "api_version", "apiVersion"),
    _copy(_CT + "request_id", "requestID"),
    Field(_CT + "read_only", "boolean", ("readOnly",), "readOnly as a boolean"),
    Field(_CT + "management_event", "boolean", ("managementEvent",), "managementEvent as a boolean"),
    _copy(_CT + "recipient_account_id", "recipientAccountId"),
    Field(_CT + "shared_event_id", "keyword", ("sharedEventID", "sharedEventId"), "sharedEventID (either spelling)"),
    _copy(_CT + "vpc_endpoint_id", "vpcEndpointId"),
    _copy(_CT + "vpc_endpoint_account_id", "vpcEndpointAccountId"),
    _copy(_CT + "session_credential_from_console", "sessionCredentialFromConsole"),
    _copy(_CT + "error_code", "errorCode"),
    _copy(_CT + "error_message", "errorMessage"),
    Field(_CT + "resources", "resource[]", ("resources",),
          "resources as a list of {arn, account_id, type}, duplicates removed; a non-list is null "
          "(kept in event.original)"),
    _copy(_CT + "user_identity.type", _UI + "type"),
    _copy(_CT + "user_identity.arn", _UI + "arn"),
    _copy(_CT + "user_identity.principal_id", _UI + "principalId"),
    _copy(_CT + "user_identity.account_id", _UI + "accountId"),
    _copy(_CT + "user_identity.access_key_id", _UI + "accessKeyId"),
    _copy(_CT + "user_identity.user_name", _UI + "userName"),
    _copy(_CT + "user_identity.invoked_by", _UI + "invokedBy"),
    _copy(_CT + "user_identity.session_context.creation_date", _SC + "attributes.creationDate", type_="timestamp"),
    Field(_CT + "user_identity.session_context.mfa_authenticated", "boolean", (_SC + "attributes.mfaAuthenticated",),
          "sessionContext.attributes.mfaAuthenticated as a boolean"),
    _copy(_CT + "user_identity.session_context.source_identity", _SC + "sourceIdentity"),
    _copy(_CT + "user_identity.session_context.session_issuer.type", _SC + "sessionIssuer.type"),
    _copy(_CT + "user_identity.session_context.session_issuer.principal_id", _SC + "sessionIssuer.principalId"),
    _copy(_CT + "user_identity.session_context.session_issuer.arn", _SC + "sessionIssuer.arn"),
    _copy(_CT + "user_identity.session_context.session_issuer.account_id", _SC + "sessionIssuer.accountId"),
    _copy(_CT + "user_identity.session_context.session_issuer.user_name", _SC + "sessionIssuer.userName"),
    _copy(_CT + "user_identity.on_behalf_of.user_id", _UI + "onBehalfOf.userId"),
    _copy(_CT + "user_identity.on_behalf_of.identity_store_arn", _UI + "onBehalfOf.identityStoreArn"),
    _copy(_CT + "addendum.reason", "addendum.reason"),
    _copy(_CT + "addendum.updated_fields", "addendum.updatedFields"),
    _copy(_CT + "addendum.original_request_id", "addendum.originalRequestID"),
    _copy(_CT + "addendum.original_event_id", "addendum.originalEventID"),
    Field(_CT + "tls_details.key_exchange", "keyword", ("tlsDetails.keyExchange",), "tlsDetails.keyExchange"),
    Field(_CT + "console_login.login_to", "keyword", ("eventName", "additionalEventData.LoginTo"),
          "ConsoleLogin only: additionalEventData.LoginTo"),
    Field(_CT + "console_login.mfa_used", "boolean", ("eventName", "additionalEventData.MFAUsed"),
          'ConsoleLogin only: additionalEventData.MFAUsed, "No" → false, any other value → true'),
    Field(_CT + "console_login.mobile_version", "boolean", ("eventName", "additionalEventData.MobileVersion"),
          'ConsoleLogin only: additionalEventData.MobileVersion, "No" → false, any other value → true'),
    Field(_CT + "request_parameters", "json", ("requestParameters",),
          "requestParameters as compact JSON text, values kept exactly"),
    Field(_CT + "response_elements", "json", ("responseElements",),
          "responseElements as compact JSON text, values kept exactly"),
    Field(_CT + "additional_eventdata", "json", ("additionalEventData",), "additionalEventData as JSON text"),
    Field(_CT + "service_event_details", "json", ("serviceEventDetails",), "serviceEventDetails as JSON text"),
    Field(_CT + "insight_details", "json", ("insightDetails",), "insightDetails as JSON text"),
    Field(_CT + "edge_device_details", "json", ("edgeDeviceDetails",), "edgeDeviceDetails as JSON text"),
    # --- digests (transforms/digest.py) ----------------------------------------------
    Field("@timestamp", "timestamp", ("digestEndTime",), "digestEndTime, UTC", _D),
    Field("event.original", "keyword", (RAW,), "the digest's JSON text exactly as received; null with --no-original",
          _D),
    Field("cloud.provider", "keyword", (), 'constant "aws"', _D),
    _copy("cloud.account.id", "awsAccountId", _D),
    Field("file.path", "keyword", ("digestS3Object",), "digestS3Object (the digest's own key)", _D),
    Field("log.file.path", "keyword", (FILE,), "the digest file that was read", _D),
    _copy(_CT + "digest.start_time", "digestStartTime", _D, "timestamp"),
    _copy(_CT + "digest.end_time", "digestEndTime", _D, "timestamp"),
    _copy(_CT + "digest.s3_bucket", "digestS3Bucket", _D),
    _copy(_CT + "digest.s3_object", "digestS3Object", _D),
    _copy(_CT + "digest.newest_event_time", "newestEventTime", _D, "timestamp"),
    _copy(_CT + "digest.oldest_event_time", "oldestEventTime", _D, "timestamp"),
    _copy(_CT + "digest.previous_s3_bucket", "previousDigestS3Bucket", _D),
    _copy(_CT + "digest.previous_s3_object", "previousDigestS3Object", _D),
    _copy(_CT + "digest.previous_hash_algorithm", "previousDigestHashAlgorithm", _D),
    _copy(_CT + "digest.previous_hash_value", "previousDigestHashValue", _D),
    _copy(_CT + "digest.previous_signature", "previousDigestSignature", _D),
    Field(_CT + "digest.public_key_fingerprint", "keyword", ("digestPublicKeyFingerprint", "publicKeyFingerprint"),
          "digestPublicKeyFingerprint, else publicKeyFingerprint", _D),
    _copy(_CT + "digest.signature_algorithm", "digestSignatureAlgorithm", _D),
    Field(_CT + "digest.log_files", "log_file[]", ("logFiles",),
          "logFiles as a list of {s3_bucket, s3_object, hash_value, hash_algorithm, newest_event_time, "
          "oldest_event_time}", _D),
)

TABLES = {_E: EVENT_INPUTS, _D: DIGEST_INPUTS}

#: Columns every table is sorted by inside each part file. Events: the use-case views filter on the action, so
#: row groups split there first; within an action, each caller's calls from one client and address sit together,
#: which is what makes the identity, agent and address columns (and `event.original`) compress 6-8 % better
#: than time order alone (docs/performance.md).
SORT_KEYS = {
    _E: ("cloud.account.id", "cloud.region", "event.provider", "event.action", "aws.cloudtrail.user_identity.arn",
         "user_agent.original", "source.ip", "@timestamp", "event.id"),
    _D: ("cloud.account.id", "@timestamp", "file.path"),
}
#: What makes two rows the same event (first non-null wins).
DEDUP_KEYS = {_E: ("event.id", "event.hash"), _D: ("file.path", "log.file.path")}

_RESOURCE = {"arn": "keyword", "account_id": "keyword", "type": "keyword"}
_LOG_FILE = {"s3_bucket": "keyword", "s3_object": "keyword", "hash_value": "keyword", "hash_algorithm": "keyword",
             "newest_event_time": "timestamp", "oldest_event_time": "timestamp"}
#: List-of-object types: their element's fields and scalar types.
COMPOSITES: dict[str, dict[str, str]] = {"resource[]": _RESOURCE, "log_file[]": _LOG_FILE}

@functools.cache
def _polars_types() -> dict[str, pl.DataType]:
    import polars as pl

    types: dict[str, pl.DataType] = {
        "keyword": pl.String(),
        "ip": pl.String(),
        "json": pl.String(),
        "timestamp": pl.Datetime("us", "UTC"),
        "boolean": pl.Boolean(),
        "long": pl.Int64(),
        "keyword[]": pl.List(pl.String()),
    }
    for name, members in COMPOSITES.items():
        types[name] = pl.List(pl.Struct({k: types[t] for k, t in members.items()}))
    return types


@functools.cache
def _arrow_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    types: dict[str, pa.DataType] = {
        "keyword": pa.string(),
        "ip": pa.string(),
        "json": pa.json_(pa.string()),
        "timestamp": pa.timestamp("us", "UTC"),
        "boolean": pa.bool_(),
        "long": pa.int64(),
        "keyword[]": pa.list_(pa.string()),
    }
    for name, members in COMPOSITES.items():
        types[name] = pa.list_(pa.struct([(k, types[t]) for k, t in members.items()]))
    return types


def fields(table: str) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS if f.table == table)


def inputs(table: str) -> tuple[Input, ...]:
    return TABLES[table]


def polars_type(field: Field) -> pl.DataType:
    return _polars_types()[field.type]


def _nest(items: list[tuple[list[str], pa.DataType]]) -> list[pa.Field]:
    """Turn dotted paths into nested Arrow struct fields, keeping declaration order."""
    import pyarrow as pa

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
    import pyarrow as pa

    return pa.schema(_nest([(f.name.split("."), _arrow_types()[f.type]) for f in fields(table)]))
