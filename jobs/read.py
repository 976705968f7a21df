"""Bytes of one CloudTrail file → raw record texts → one typed frame per batch.

Records are split with msgspec `Raw` (no Python dicts are built) and every declared
input is pulled out of each record by one typed DuckDB `json_transform` (one parse
per record, straight into columns). Payloads stay compact JSON text, exactly typed
(a string stays quoted), so heterogeneous requestParameters never go through schema
inference.
"""

from __future__ import annotations

import json
import re
import zlib
import dataclasses
import itertools
from dataclasses import dataclass

import duckdb
import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip

from transforms.schema import FILE, RAW, Input, inputs

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
_NOT_JSON = {
    b"PK\x03\x04": "a zip archive, not CloudTrail JSON: unzip it and point trailhouse at the files",
    b"BZh": "a bzip2 file, not gzip or JSON: decompress it first",
    b"\xfd7zXZ": "an xz file, not gzip or JSON: decompress it first",
}


class BadFile(Exception):
    """The whole file cannot be read as CloudTrail; the message is the quarantine reason."""


@dataclass
class Parsed:
    table: str  # "events" or "digests"
    records: list[bytes] | list[msgspec.Raw]  # each record's text, as sliced from the file
    #: ordinal → reason, for records already known to be unreadable (bad NDJSON lines)
    bad: dict[int, str] = dataclasses.field(default_factory=dict)


class _Envelope(msgspec.Struct):
    Records: list[msgspec.Raw] | None = None


class _LookupEvent(msgspec.Struct):
    """An item of `aws cloudtrail lookup-events` output: the event is a JSON string inside."""

    CloudTrailEvent: str


class _Wrapped(msgspec.Struct):
    """A log shipper's wrapper (e.g. Cribl): the event text is in `_raw`."""

    raw: str = msgspec.field(name="_raw")


_top_keys = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_envelope = msgspec.json.Decoder(_Envelope)


def decompress(data: bytes) -> bytes:
    """Gunzip by content (not by file name); concatenated gzip members are read whole."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return igzip.decompress(data)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise BadFile(f"corrupt or truncated gzip: {exc}") from None


def json_size(data: bytes) -> int:
    """The bytes a file decompresses to, known before decompressing it: a gzip file's trailer holds its size
    (ISIZE, that of the last member, mod 2^32: exact for CloudTrail's single-member files); any other file is
    read as it is."""
    if data.startswith(GZIP_MAGIC) and len(data) >= 18:
        return int.from_bytes(data[-4:], "little")
    return len(data)


def _is_tar(data: bytes) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


def _json_error(exc: Exception) -> str:
    return f"invalid JSON: {exc}"


def _unwrap(records: list) -> list:
    """Exports that embed each event as a string (lookup-events, `_raw`) → the event texts."""
    if not records or not bytes(records[0]).startswith(b"{"):
        return records
    try:
        keys = _top_keys.decode(records[0])
    except msgspec.DecodeError:
        return records
    if "eventTime" in keys or "digestEndTime" in keys:
        return records
    for struct, key, attr in ((_LookupEvent, "CloudTrailEvent", "CloudTrailEvent"), (_Wrapped, "_raw", "raw")):
        if key in keys:
            try:
                items = msgspec.json.decode(b"[" + b",".join(records) + b"]", type=list[struct])
            except (msgspec.DecodeError, msgspec.ValidationError):
                return records
            return [getattr(i, attr).encode() for i in items]
    return records


def _ndjson(data: bytes) -> Parsed:
    """One event per line; a line that is not JSON is rejected alone, the others are kept."""
    lines = list(filter(None, map(bytes.strip, data.split(b"\n"))))
    try:
        _raw_list.decode(b"[" + b",".join(lines) + b"]")
        return Parsed("events", _unwrap(lines))
    except msgspec.DecodeError:
        pass
    return _each_alone(lines, "line")


def _each_alone(pieces: list[bytes], what: str) -> Parsed:
    """The pieces of a file that is not JSON as a whole (its lines, its records), each parsed on its own: one
    that is not JSON is rejected with the reason, the others are kept, unwrapped as a whole file's would be."""
    bad = {}
    for n, piece in enumerate(pieces):
        try:
            _raw_list.decode(b"[" + piece + b"]")
        except msgspec.DecodeError as exc:
            bad[n] = f"invalid JSON {what}: {exc}"
    good = [piece for n, piece in enumerate(pieces) if n not in bad]
    return Parsed("events", _merge_unwrapped(pieces, bad, _unwrap(good)), bad)


def _merge_unwrapped(lines: list[bytes], bad: dict[int, str], unwrapped: list[bytes]) -> list[bytes]:
    it = iter(unwrapped)
    return [line if n in bad else next(it) for n, line in enumerate(lines)]


#: How a delivered file opens: its records array is the first thing in it.
_RECORDS_OPEN = re.compile(rb'\{\s*"Records"\s*:\s*\[')
_SPACE = re.compile(r"\s*")


def _salvaged(body: bytes, start: int | None, error: Exception) -> Parsed:
    """The records of an array (a delivered file's `Records`, or a bare array, opening at `start`) that is not
    JSON as a whole, each checked alone: a record holding `NaN` or `Infinity` (tokens some exporters write, and
    no JSON parser reads) is rejected alone and the others are kept, as bad NDJSON lines are. Python's JSON
    decoder reads those tokens, so it can find where each record ends; its slices are the record's own bytes.
    When there is no array or it cannot be walked (truncated, garbage in between), the whole file is
    quarantined with the parser's `error`.

    Only on this rare error path, so a decoder call per record is affordable here."""
    parsed = None if start is None else _walked(body, start)
    if parsed is None:
        raise BadFile(_json_error(error)) from None
    return parsed


def _walked(body: bytes, start: int) -> Parsed | None:
    """The array's records, each checked alone (see `_salvaged`); None if it cannot be walked or no record is
    to blame."""
    text = body.decode("utf-8", "surrogateescape")  # a byte that is not UTF-8 stays one character: slices map back
    decoder, records = json.JSONDecoder(), []
    pos = _SPACE.match(text, start + 1).end()  # what precedes the "[" is ASCII: the same offset in text and bytes
    while text[pos:pos + 1] != "]":
        try:
            _, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return None
        records.append(text[pos:end].encode("utf-8", "surrogateescape"))
        pos = _SPACE.match(text, end).end()
        if text[pos:pos + 1] == ",":
            pos = _SPACE.match(text, pos + 1).end()
        elif text[pos:pos + 1] != "]":
            return None
    if text[pos + 1:].strip() not in ("", "}"):
        return None
    parsed = _each_alone(records, "record")
    return parsed if parsed.bad else None  # no record to blame: the trouble is elsewhere in the file


def split(data: bytes) -> Parsed:
    """One file's bytes → its raw records, detecting the format by content.

    Accepted: `{"Records": [...]}` (as delivered), a JSON array of events, a single
    event or digest object, NDJSON, any of them pretty-printed, gzip or not.
    """
    data = decompress(data)
    if data.startswith(BOM):
        data = data[len(BOM):]
    body = data.strip()
    if not body:
        raise BadFile("empty file: no records")
    if _is_tar(data):
        raise BadFile("a tar archive, not CloudTrail JSON: unpack it and point trailhouse at the files")
    for magic, reason in _NOT_JSON.items():
        if body.startswith(magic):
            raise BadFile(reason)
    first = body[:1]
    if first == b"[":
        try:
            return Parsed("events", _unwrap(_raw_list.decode(body)))
        except msgspec.DecodeError as exc:
            return _salvaged(body, 0, exc)
    if first != b"{":
        raise BadFile(f"not JSON: the file starts with {body[:16]!r}")
    delivered = _delivered(body)
    if delivered is not None:
        return Parsed("events", delivered)
    try:
        keys = _top_keys.decode(body)
    except msgspec.DecodeError as exc:
        first_line = body.split(b"\n", 1)[0].strip()
        if b"\n" in body and _starts_as_object(first_line):
            return _ndjson(body)
        opening = _RECORDS_OPEN.match(body)
        return _salvaged(body, opening.end() - 1 if opening else None, exc)
    if "Records" in keys:
        try:
            env = _envelope.decode(body)
        except msgspec.ValidationError as exc:
            raise BadFile(f'"Records" is not a list of events: {exc}') from None
        if env.Records is None:
            raise BadFile('"Records" is null: no events in this file')
        return Parsed("events", env.Records)
    if "Events" in keys and "eventTime" not in keys:
        try:
            return Parsed("events", _unwrap(_raw_list.decode(keys["Events"])))
        except msgspec.DecodeError as exc:
            raise BadFile(f'"Events" is not a list: {exc}') from None
    if "digestEndTime" in keys or "digestS3Object" in keys:
        return Parsed("digests", [body])
    return Parsed("events", _unwrap([body]))


def _delivered(body: bytes) -> list[msgspec.Raw] | None:
    """The records of a file as CloudTrail delivers it (`{"Records": [...]}`), in one parse; None for any other
    shape (a single event, NDJSON, a null or malformed `Records`), which `split` then tells apart."""
    try:
        return _envelope.decode(body).Records
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _starts_as_object(line: bytes) -> bool:
    try:
        _top_keys.decode(line)
        return True
    except msgspec.DecodeError:
        return False


def records_table(files: list[str], parsed: list[Parsed]) -> pa.Table:
    """Raw records of several files as one Arrow table, built without a Python step per record.

    The record texts are joined into one buffer and sliced by offsets computed from
    their lengths. `_raw` is the record text; a record that cannot be read (not
    UTF-8, not JSON) has a null `_raw`, its bytes in `_bytes` and the reason in
    `_reject`, so the validator quarantines exactly that record and nothing else.
    """
    counts = [len(p.records) for p in parsed]
    n = sum(counts)
    records = list(itertools.chain.from_iterable(p.records for p in parsed))
    lengths = pa.array(map(len, records), pa.int64(), size=n)
    offsets = pc.cumulative_sum(pa.concat_arrays([pa.array([0], pa.int64()), lengths]))
    binary = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, offsets.buffers()[1],
                                                                     pa.py_buffer(b"".join(records))])
    file_index = pa.array(itertools.chain.from_iterable([i] * c for i, c in enumerate(counts)), pa.int32(), size=n)
    ords = pa.array(itertools.chain.from_iterable(range(c) for c in counts), pa.int32(), size=n)
    reasons: list[str | None] | None = None
    if any(p.bad for p in parsed):
        reasons = [p.bad.get(i) for p in parsed for i in range(len(p.records))]
    try:
        text = binary.cast(pa.large_string())
    except pa.ArrowInvalid:  # rare: some record is not UTF-8; find which, one by one
        decoded = [_utf8_or_none(r) for r in records]
        text = pa.array(decoded, pa.large_string())
        reasons = [r or (None if d is not None else "record is not valid UTF-8")
                   for r, d in zip(reasons or [None] * n, decoded)]
    if reasons is not None and any(r is not None for r in reasons):
        reject = pa.array(reasons, pa.string())
        text = pc.if_else(reject.is_null(), text, pa.scalar(None, pa.large_string()))
        raw_bytes = pc.if_else(reject.is_null(), pa.scalar(None, pa.large_binary()), binary)
    else:
        reject = pa.nulls(n, pa.string())
        raw_bytes = pa.nulls(n, pa.large_binary())
    names = pa.DictionaryArray.from_arrays(file_index, pa.array(files, pa.string()))
    return pa.table({FILE: names, "_ord": ords, RAW: text, "_bytes": raw_bytes, "_reject": reject})


def _utf8_or_none(data: bytes | msgspec.Raw) -> str | None:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _path(dotted: str) -> str:
    """A JSON path: userIdentity.type → $."userIdentity"."type"."""
    return "$." + _sql_name(dotted)


_DUCKDB_TYPE = {"text": "VARCHAR", "time": "VARCHAR", "json": "JSON"}


@dataclass
class _Plan:
    """Where each declared input comes from in the extraction query.

    Most inputs come out of one typed `json_transform` of the whole record (one parse, straight into
    columns). An input inside a JSON payload that is itself an input (requestParameters.userName) is read
    from that payload's text, which is small. An input whose name differs from a sibling's only by case
    (sharedEventId beside sharedEventID) cannot be a DuckDB struct key, so it is read from the raw text, by
    Polars, only in the records that contain its key (`_loose_column`): a scan of every record's text in the
    query cost ~10 ms of each ~85 ms extraction of ~9K records (docs/performance.md).
    """

    shape: dict
    inside: dict[str, list[Input]]
    loose: list[Input]


def _plan(table: str) -> _Plan:
    declared = inputs(table)
    payloads = {i.path for i in declared if i.kind in ("json", "shaped")}
    plan = _Plan({}, {}, [])
    for i in declared:
        parts = i.path.split(".")
        parent = next((p for p in (".".join(parts[:n]) for n in range(1, len(parts))) if p in payloads), None)
        if parent:
            plan.inside.setdefault(parent, []).append(i)
            continue
        node = plan.shape
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts[-1].lower() in {k.lower() for k in node}:
            if i.kind != "text":
                raise ValueError(f"input {i.path}: a key that differs from a sibling's only by case must be text")
            plan.loose.append(i)
        else:
            node[parts[-1]] = json.loads(i.shape) if i.shape else _DUCKDB_TYPE[i.kind]
    return plan


def _extract_sql(table: str, source: str) -> str:
    """One SELECT that parses each record once into a typed struct, and each payload with wanted keys once."""
    plan = _plan(table)
    value: dict[str, str] = {}
    payload_cols = []
    for n, (parent, children) in enumerate(plan.inside.items(), start=1):
        paths = ", ".join(f"'{_path(c.path[len(parent) + 1:])}'" for c in children)
        payload_cols.append(f"json_extract_string(_j.{_sql_name(parent)}, [{paths}]) AS _p{n}")
        value.update({c.path: f"_p{n}[{k}]" for k, c in enumerate(children, start=1)})
    cols = [f"""left("{RAW}", 1) = '{{' AS "_is_object" """]
    loose = {i.path for i in plan.loose}
    for i in inputs(table):
        if i.path in loose:
            continue
        v = value.get(i.path, f"_j.{_sql_name(i.path)}")
        if i.path == "eventID":
            cols.append(f"""CASE WHEN {v} IS NULL THEN md5("{RAW}") END AS "_hash" """)
        if i.kind == "time":
            cols.append(f"""coalesce(TRY_CAST({v} AS TIMESTAMPTZ), try_strptime({v}, '%Y%m%dT%H%M%SZ')::TIMESTAMPTZ)
                            AS "{i.path}" """)
            if i.path == REQUIRED_TIME[table]:  # its text for the reason a record is rejected; no other time's
                cols.append(f'{v} AS "{i.path}{TEXT}"')
        elif i.kind == "json":
            cols.append(f'{v}::VARCHAR AS "{i.path}"')
        else:
            cols.append(f'{v} AS "{i.path}"')
    shape = json.dumps(plan.shape).replace("'", "''")
    parsed = f"SELECT *, json_transform(\"{RAW}\", '{shape}') AS _j FROM {source}"
    if payload_cols:
        parsed = f"SELECT *, {', '.join(payload_cols)} FROM ({parsed})"
    return f"SELECT {', '.join(cols)} FROM ({parsed})"


def _sql_name(dotted: str) -> str:
    return ".".join(f'"{part}"' for part in dotted.split("."))


TEXT = ".text"  # suffix of the raw text beside a parsed time input
#: Inputs a record cannot do without, per table: (input, what to call it in the reason).
REQUIRED_TIME = {"events": "eventTime", "digests": "digestEndTime"}


def reject_reason(table: str) -> pl.Expr:
    """Why a raw record cannot become a row (null when it can): checked once, here at the edge."""
    when = pl.when(pl.col("_reject").is_not_null()).then(pl.col("_reject"))
    when = when.when(~pl.col("_is_object")).then(pl.lit("record is not a JSON object"))
    time = REQUIRED_TIME[table]
    if table == "events":
        foreign = pl.col(time + TEXT).is_null() & pl.col("eventName").is_null() & pl.col("eventSource").is_null()
        when = when.when(foreign).then(pl.lit("not a CloudTrail event: no eventTime, eventName or eventSource"))
    when = when.when(pl.col(time + TEXT).is_null()).then(pl.lit(f"missing {time}"))
    when = when.when(pl.col(time).is_null()).then(
        pl.format(f"{time} is not a valid timestamp: {{}}", pl.col(time + TEXT).str.slice(0, 80)))
    if table == "events":
        when = when.when(pl.col("eventName").is_null() & pl.col("insightDetails.eventName").is_null()).then(
            pl.lit("missing eventName"))
    return when.otherwise(pl.lit(None, pl.String()))


def validate(frame: pl.DataFrame, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split extracted records into good rows and rejected ones (with `reason`)."""
    marked = frame.with_columns(reject_reason(table).alias("reason"))
    rejected = pl.col("reason").is_not_null()
    if not marked["reason"].is_not_null().any():  # the usual batch: a filter would copy every column for nothing
        return marked.drop("reason", "_bytes", "_reject"), marked.clear()
    return marked.filter(~rejected).drop("reason", "_bytes", "_reject"), marked.filter(rejected)


class _Feed:
    """The records DuckDB's prepared extractions read: registered once, holding each batch in turn.

    DuckDB scans an object with `__arrow_c_stream__` afresh each time a statement runs (a registered Arrow
    table, by contrast, is read as it was when a statement was prepared), so the extraction queries are bound
    and planned once per worker instead of twice per batch: 10–14 ms of each ~10K-record batch
    (docs/performance.md). `test_read.py` checks that each batch is read, not the one before.
    """

    def __init__(self) -> None:
        self.empty = self.records = pa.table({RAW: pa.array([], pa.large_string())})

    def __arrow_c_stream__(self, requested_schema=None):
        return self.records.__arrow_c_stream__(requested_schema)


class Extractor:
    """Holds one DuckDB connection for a worker process; extraction is pure SQL over Arrow."""

    def __init__(self, threads: int = 1) -> None:
        # a low flush threshold returns the extraction's memory after each batch instead of caching it
        self.con = duckdb.connect(config={"threads": threads, "autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False, "allocator_flush_threshold": "16MB"})
        self.con.execute("SET TimeZone = 'UTC'")
        self._feed = _Feed()
        self.con.register("batch", self._feed)
        self._columns: dict[str, list[str]] = {}
        self._loose = {table: _plan(table).loose for table in ("events", "digests")}
        for table in ("events", "digests"):
            sql = _extract_sql(table, "batch")
            self.con.execute(f"PREPARE extract_{table} AS {sql}")
            # EXECUTE would rename columns whose names differ only in case (x_1): keep the query's own
            self._columns[table] = self.con.sql(sql).columns

    def extract(self, records: pa.Table, table: str) -> pl.DataFrame:
        """One row per record: every declared input as a column named by its CloudTrail path.

        DuckDB returns the extracted columns only, in record order (one thread, one scan); the record's own
        columns (its text above all) join them from the Arrow input without a copy through DuckDB.
        """
        self._feed.records = records.select([RAW])
        try:
            out = self.con.sql(f"EXECUTE extract_{table}").arrow().read_all()  # streamed: no second copy in DuckDB
        finally:
            self._feed.records = self._feed.empty
        extracted = pl.from_arrow(out.rename_columns(self._columns[table]))
        assert isinstance(extracted, pl.DataFrame) and extracted.height == records.num_rows
        own = pl.from_arrow(records.select([FILE, "_ord", RAW]))
        assert isinstance(own, pl.DataFrame)
        loose = [_loose_column(own[RAW], i) for i in self._loose[table]]
        return pl.concat([own, extracted], how="horizontal").with_columns(
            *loose, pl.Series("_bytes", records.column("_bytes")), pl.Series("_reject", records.column("_reject")))


def _loose_column(text: pl.Series, loose: Input) -> pl.Series:
    """A text input read from the records whose text holds its key (a few, if any), null elsewhere."""
    key = loose.path.rsplit(".", 1)[-1]
    rows = text.str.contains(f'"{key}"', literal=True).arg_true()
    column = pl.repeat(None, len(text), dtype=pl.String, eager=True).alias(loose.path)
    if rows.is_empty():
        return column
    return column.scatter(rows, text.gather(rows).str.json_path_match("$." + loose.path))
