"""The reader: every input format detected by content, and bad input rejected with a reason."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile

import polars as pl
import pytest

from jobs import read
from tests.conftest import extractor, record

EVENTS = [record("RunInstances", eid="e1"), record("StopInstances", eid="e2")]


def _records(parsed: read.Parsed) -> list[dict]:
    return [json.loads(bytes(r)) for r in parsed.records]


@pytest.mark.parametrize("fmt", ["records", "array", "ndjson", "pretty"])
@pytest.mark.parametrize("gz", [False, True])
def test_formats_give_the_same_records(fmt, gz):
    if fmt == "records":
        text = json.dumps({"Records": EVENTS})
    elif fmt == "array":
        text = json.dumps(EVENTS, indent=2)
    elif fmt == "ndjson":
        text = "\n".join(json.dumps(e) for e in EVENTS) + "\n"
    else:
        text = json.dumps({"Records": EVENTS}, indent=4)
    data = gzip.compress(text.encode()) if gz else text.encode()
    parsed = read.split(data)
    assert parsed.table == "events"
    assert _records(parsed) == EVENTS
    assert parsed.bad == {}


def test_single_event_object_and_bom():
    data = b"\xef\xbb\xbf" + json.dumps(EVENTS[0], indent=2).encode()
    assert _records(read.split(data)) == [EVENTS[0]]


def test_original_text_is_kept_byte_for_byte():
    raw = b'{"eventTime": "2026-11-01T10:00:00Z",\n   "eventName":"X", "u":"\\u00e9\xc3\xa9", "n": 1.50}'
    parsed = read.split(b'{"Records": [' + raw + b"]}")
    assert [bytes(r) for r in parsed.records] == [raw]


def test_digest_object_goes_to_the_digest_table():
    digest = {"awsAccountId": "111122223333", "digestStartTime": "2026-11-01T00:00:00Z",
              "digestEndTime": "2026-11-01T01:00:00Z", "digestS3Object": "AWSLogs/x.json.gz", "logFiles": []}
    assert read.split(json.dumps(digest).encode()).table == "digests"


def test_lookup_events_export_is_unwrapped():
    export = {"Events": [{"EventId": e["eventID"], "EventName": e["eventName"], "CloudTrailEvent": json.dumps(e)}
                         for e in EVENTS]}
    assert _records(read.split(json.dumps(export).encode())) == EVENTS


def test_raw_wrapped_events_are_unwrapped():
    wrapped = [{"_raw": json.dumps(e), "sourcetype": "aws:cloudtrail"} for e in EVENTS]
    assert _records(read.split(json.dumps(wrapped).encode())) == EVENTS


def test_ndjson_bad_line_is_rejected_alone():
    text = json.dumps(EVENTS[0]) + "\n{not json\n" + json.dumps(EVENTS[1]) + "\n"
    parsed = read.split(text.encode())
    assert len(parsed.records) == 3
    assert list(parsed.bad) == [1] and "invalid JSON" in parsed.bad[1]
    assert json.loads(bytes(parsed.records[2])) == EVENTS[1]


@pytest.mark.parametrize("layout", ["records", "array", "pretty", "gzip"])
def test_a_record_holding_nan_or_infinity_is_rejected_alone(layout):
    """JSON has no NaN or Infinity, so no parser reads a file holding them; the file's other records are kept,
    each as its own bytes, as NDJSON lines are (a delivered file was quarantined whole)."""
    texts = [json.dumps(EVENTS[0]), '{"eventID": "inf", "x": -Infinity}', json.dumps({**EVENTS[1], "u": "é"}),
             '{"eventID": "nan", "y": [NaN]}']
    body = "[" + ", ".join(texts) + "]"
    data = {"records": '{"Records": ' + body + "}", "array": body,
            "pretty": '{\n  "Records": [\n    ' + ",\n    ".join(texts) + "\n  ]\n}\n",
            "gzip": '{"Records":' + body + "}"}[layout].encode()
    parsed = read.split(gzip.compress(data) if layout == "gzip" else data)
    assert [bytes(r).decode() for r in parsed.records] == texts
    assert sorted(parsed.bad) == [1, 3] and all(r.startswith("invalid JSON record:") for r in parsed.bad.values())
    table = read.records_table(["f"], [parsed])
    assert table.column("_reject").to_pylist() == [None, parsed.bad[1], None, parsed.bad[3]]
    assert table.column("_bytes").to_pylist()[1] == texts[1].encode()


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"  \n\t ", "empty file"),
    (gzip.compress(b'{"Records": [{"a": 1}]}')[:-12], "gzip"),
    (b"\x1f\x8bnot really gzip", "gzip"),
    (b'{"Records": null}', '"Records" is null'),
    (b'{"Records": {"eventName": "x"}}', '"Records" is not a list'),
    (b'{"Records": [{"eventTime": "2026-11-01T00:00:00Z"', "invalid JSON"),
    (b'{"Records": [{"eventTime": NaN}, junk]}', "invalid JSON"),  # no way to walk past it: the whole file
    (b'{"Records": [{"eventTime": NaN}', "invalid JSON"),
    (b"eventTime,eventName\n2026,x\n", "not JSON"),
])
def test_bad_files_are_rejected_with_a_reason(data, reason):
    with pytest.raises(read.BadFile, match=reason.replace("(", r"\(")):
        read.split(data)


def test_zip_and_tar_given_by_mistake():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.json", json.dumps({"Records": EVENTS}))
    with pytest.raises(read.BadFile, match="zip archive"):
        read.split(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.json")
        body = json.dumps({"Records": EVENTS}).encode()
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    with pytest.raises(read.BadFile, match="tar archive"):
        read.split(buf.getvalue())
    with pytest.raises(read.BadFile, match="tar archive"):
        read.split(gzip.compress(buf.getvalue()))


def _extract(records: list[bytes]) -> tuple[pl.DataFrame, pl.DataFrame]:
    table = read.records_table(["f"], [read.Parsed("events", records)])
    return read.validate(extractor().extract(table, "events"), "events")


def test_record_level_validation_reasons():
    good, bad = _extract([
        json.dumps(EVENTS[0]).encode(),
        b"[1, 2]",
        b'{"eventName": "X"}',
        b'{"eventName": "X", "eventTime": "yesterday"}',
        b'{"eventName": "X", "eventTime": 1700000000}',
        b'{"eventTime": "2026-11-01T10:00:00Z", "eventSource": "ec2.amazonaws.com"}',
        b'{"Type": "Notification", "Message": "hello"}',
        b'{"eventName": "X", "eventTime": "2026-11-01T10:00:00Z", "bad": "\xff\xfe"}',
    ])
    assert good["eventID"].to_list() == ["e1"]
    reasons = dict(zip(bad["_ord"].to_list(), bad["reason"].to_list()))
    assert reasons == {
        1: "record is not a JSON object",
        2: "missing eventTime",
        3: "eventTime is not a valid timestamp: yesterday",
        4: "eventTime is not a valid timestamp: 1700000000",
        5: "missing eventName",
        6: "not a CloudTrail event: no eventTime, eventName or eventSource",
        7: "record is not valid UTF-8",
    }
    assert bad.filter(pl.col("_ord") == 7)["_bytes"][0].endswith(b'"\xff\xfe"}')


def test_payloads_stay_exact_json_whatever_their_type():
    recs = [dict(EVENTS[0], eventID=f"p{n}", requestParameters=v)
            for n, v in enumerate([{"a": [1, 2, {"z": None}], "s": "é\u2603", "big": 12345678901234567890}, "text",
                                   [1, "2"], 7, None, {"empty": "", "dash": "-", "none": "none"}])]
    good, bad = _extract([json.dumps(r, ensure_ascii=False).encode() for r in recs])
    assert bad.height == 0
    got = good["requestParameters"].to_list()
    assert [json.loads(g) if g is not None else None for g in got] == [r["requestParameters"] for r in recs]
    assert got[1] == '"text"' and got[4] is None


def test_wrong_types_in_nested_objects_do_not_break_the_batch():
    odd = dict(EVENTS[0], eventID="odd", userIdentity="just a string", awsRegion=42, responseElements=[1])
    good, bad = _extract([json.dumps(odd).encode(), json.dumps(EVENTS[1]).encode()])
    assert bad.height == 0 and good.height == 2
    row = good.filter(pl.col("eventID") == "odd").row(0, named=True)
    assert row["userIdentity.type"] is None and row["awsRegion"] == "42" and row["responseElements"] == "[1]"


def test_a_key_differing_from_a_sibling_only_by_case_is_read_at_its_own_level():
    """sharedEventId cannot sit beside sharedEventID in DuckDB's struct, so it is read from the record's text:
    only at the top level, whatever its JSON type, and null where the record does not hold it."""
    upper = dict(EVENTS[0], eventID="upper", sharedEventID="S-UP")
    lower = dict(EVENTS[0], eventID="lower", sharedEventId="s-low")
    both = dict(EVENTS[0], eventID="both", sharedEventID="S-1", sharedEventId="s-1")
    nested = dict(EVENTS[0], eventID="nested", requestParameters={"sharedEventId": "inner"})
    number = dict(EVENTS[0], eventID="number", sharedEventId=7)
    good, bad = _extract([json.dumps(r).encode() for r in (upper, lower, both, nested, number)])
    assert bad.height == 0
    got = {r["eventID"]: (r["sharedEventID"], r["sharedEventId"]) for r in good.iter_rows(named=True)}
    assert got == {"upper": ("S-UP", None), "lower": (None, "s-low"), "both": ("S-1", "s-1"),
                   "nested": (None, None), "number": (None, "7")}


def test_json_size_is_known_from_the_gzip_trailer_before_decompressing():
    text = json.dumps({"Records": EVENTS * 50}).encode()
    packed = gzip.compress(text)
    assert read.json_size(packed) == len(text) > 10 * len(packed)
    assert read.json_size(text) == len(text)  # a plain file is its own size
    assert read.json_size(b"\x1f\x8b") == 2  # too short to hold a trailer: counted as it is


def test_one_extractor_reads_each_batch_it_is_given_not_the_one_before():
    """The extraction queries are prepared once per worker over one registered feed: each batch, of either table
    and any size, must come back as itself (a prepared statement over a registered Arrow table would not)."""
    one = read.Extractor()

    def ids(names: list[str]) -> list[str]:
        table = read.records_table(["f"], [read.Parsed("events", [json.dumps(record(eid=n)).encode() for n in names])])
        return one.extract(table, "events")["eventID"].to_list()
    assert ids(["a", "b"]) == ["a", "b"]
    assert ids(["c", "d", "e"]) == ["c", "d", "e"]
    digest = read.records_table(["d"], [read.Parsed("digests", [json.dumps(
        {"digestEndTime": "2026-11-01T01:00:00Z", "digestS3Object": "x/y.json.gz"}).encode()])])
    assert one.extract(digest, "digests")["digestS3Object"].to_list() == ["x/y.json.gz"]
    assert ids(["f"]) == ["f"]
    columns = one.extract(read.records_table(["f"], [read.Parsed("events", [b"{}"])]), "events").columns
    assert "sharedEventId" in columns and not any(c.endswith("_1") for c in columns)
