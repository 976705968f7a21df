"""Field rules and the schema declaration, checked on frames, plus properties over random records."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import read
from transforms import normalize as norm
from transforms.schema import FIELDS, FILE, RAW, TABLES, arrow_schema, fields
from tests.conftest import extractor, normalized_frame, record


def normalized(records: list[dict | bytes]) -> list[dict]:
    raw = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    return normalized_frame(["f"], [read.Parsed("events", raw)], "events").to_dicts()


def test_outcome_rules():
    rows = normalized([
        record(eid="ok"),
        record(eid="code", errorCode="AccessDenied"),
        record(eid="msg", errorMessage="Failed authentication"),
        record("ConsoleLogin", eid="login-ok", responseElements={"ConsoleLogin": "Success"}),
        record("ConsoleLogin", eid="login-bad", responseElements={"ConsoleLogin": "Failure"},
               errorMessage="Failed authentication"),
        record("ConsoleLogin", eid="login-nothing", responseElements=None, errorMessage="Failed authentication"),
    ])
    assert {r["event"]["id"]: r["event"]["outcome"] for r in rows} == {
        "ok": "success", "code": "failure", "msg": "failure", "login-ok": "success", "login-bad": "failure",
        "login-nothing": "failure"}


def test_user_name_per_identity_type():
    issuer = {"sessionIssuer": {"type": "Role", "userName": "Admin", "arn": "arn:aws:iam::1:role/Admin"}}
    rows = normalized([
        record(eid="iam", user="alice"),
        record(eid="role", userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/Admin/bob",
                                         "sessionContext": issuer}),
        record(eid="root", userIdentity={"type": "Root", "arn": "arn:aws:iam::1:root", "accountId": "1"}),
        record(eid="svc", userIdentity={"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
        record("UserAuthentication", eid="sso", userIdentity={"type": "Unknown"},
               additionalEventData={"UserName": "carol"}),
    ])
    assert {r["event"]["id"]: r["user"]["name"] for r in rows} == {
        "iam": "alice", "role": "Admin", "root": "root", "svc": None, "sso": "carol"}


def test_source_ip_only_for_real_addresses():
    values = ["203.0.113.10", "2001:DB8::1", "lambda.amazonaws.com", "AWS Internal", "00.000.000.00",
              "81.2.69.142, 192.168.10.10", " 198.51.100.7", "::ffff:203.0.113.7", "::FFFF:cb00:7108", "::203.0.113.9"]
    rows = normalized([record(eid=str(n), sourceIPAddress=v) for n, v in enumerate(values)])
    got = {r["source"]["address"]: r["source"]["ip"] for r in rows}
    assert got == {"203.0.113.10": "203.0.113.10", "2001:DB8::1": "2001:db8::1", "lambda.amazonaws.com": None,
                   "AWS Internal": None, "00.000.000.00": None, "81.2.69.142, 192.168.10.10": None,
                   " 198.51.100.7": "198.51.100.7", "::ffff:203.0.113.7": "203.0.113.7", "::FFFF:cb00:7108": "203.0.113.8",
                   "::203.0.113.9": "::cb00:7109"}  # mapped addresses are the IPv4 they map; the deprecated compatible ones not


def test_cloud_account_falls_back_to_recipient():
    rows = normalized([record(eid="a", account="111122223333"),
                       record(eid="b", userIdentity={"type": "AWSService", "invokedBy": "x"},
                              recipientAccountId="444455556666")])
    assert {r["event"]["id"]: r["cloud"]["account"]["id"] for r in rows} == {"a": "111122223333", "b": "444455556666"}


def test_every_field_reads_declared_inputs_and_every_rule_has_a_field():
    for f in FIELDS:
        declared = {i.path for i in TABLES[f.table]} | {RAW, FILE}
        assert set(f.sources) <= declared, f.name
    assert set(norm.RULES) <= {f.name for f in FIELDS}
    # the Parquet schema is what normalize produces, nested the same way
    for table, rec in (("events", record()), ("digests", {"digestEndTime": "2026-11-01T00:00:00Z"})):
        frame = extractor().extract(read.records_table(["f"], [read.Parsed(table, [json.dumps(rec).encode()])]),
                                         table)
        produced = norm.normalize(read.validate(frame, table)[0].lazy(), table)
        assert _polars_paths(produced.collect_schema()) == _arrow_paths(arrow_schema(table))
        assert _arrow_paths(arrow_schema(table)) == [f.name for f in fields(table)]


def _polars_paths(schema, prefix=""):
    out = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Struct):
            out += _polars_paths({f.name: f.dtype for f in dtype.fields}, prefix + name + ".")
        else:
            out.append(prefix + name)
    return out


def _arrow_paths(fields_, prefix=""):
    out = []
    for f in fields_:
        if pa.types.is_struct(f.type):
            out += _arrow_paths(list(f.type), prefix + f.name + ".")
        else:
            out.append(prefix + f.name)
    return out


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({
    "eventName": st.text(min_size=1, max_size=30),
    "userIdentity": _json_values,
    "requestParameters": _json_values,
    "sourceIPAddress": st.one_of(st.ip_addresses().map(str), st.text(max_size=30)),
    "userAgent": st.text(max_size=40),
    "extra": _json_values,
}), min_size=1, max_size=20))
def test_no_event_is_lost_and_the_original_round_trips(parts):
    recs = [dict(p, eventTime="2026-11-01T10:00:00Z", eventID=f"id-{n}") for n, p in enumerate(parts)]
    rows = normalized([json.dumps(r, ensure_ascii=False).encode() for r in recs])
    assert len(rows) == len(recs)
    assert [json.loads(r["event"]["original"]) for r in rows] == recs
    for r, rec in zip(rows, recs):
        rp = r["aws"]["cloudtrail"]["request_parameters"]
        assert (json.loads(rp) if rp is not None else None) == rec["requestParameters"]
        assert r["event"]["action"] == rec["eventName"]


def test_schema_doc_is_current():
    from jobs.schema_doc import render
    from tests.conftest import ROOT

    assert (ROOT / "docs" / "schema.md").read_text() == render(), "run `make schema-doc`"


def test_per_distinct_matches_the_rule_row_by_row():
    """A rule run once per distinct input combination gives every row what the rule gives it directly."""
    from transforms.unique import per_distinct

    frame = pl.DataFrame({"a": ["x", "x", None, "y", None, "x"], "b": ["1", "1", "2", None, None, "3"],
                          "c": [0, 1, 2, 3, 4, 5]})
    rule = pl.concat_list(pl.col("a").str.to_uppercase(), pl.col("b")).list.drop_nulls()
    got = frame.select(direct=rule, distinct=per_distinct(rule, pl.List(pl.String)))
    assert got["distinct"].to_list() == got["direct"].to_list() == [
        ["X", "1"], ["X", "1"], ["2"], ["Y"], [], ["X", "3"]]
    assert frame.head(0).select(per_distinct(rule, pl.List(pl.String))).height == 0


def test_per_unique_parses_each_distinct_value_once_and_keeps_nulls():
    """The parser runs once per distinct value; every row gets its value's answer, a null row null."""
    from transforms.unique import per_unique

    calls: list[str] = []

    def shout(value: str) -> str:
        calls.append(value)
        return value.upper()

    frame = pl.DataFrame({"ua": ["aws-cli", None, "boto3", "aws-cli", "", None, "boto3"]})
    got = frame.select(per_unique(pl.col("ua"), shout, pl.String()))["ua"].to_list()
    assert got == ["AWS-CLI", None, "BOTO3", "AWS-CLI", "", None, "BOTO3"]
    assert sorted(calls) == ["", "aws-cli", "boto3"]
    assert frame.head(0).select(per_unique(pl.col("ua"), shout, pl.String())).height == 0
    assert frame.filter(pl.col("ua").is_null()).select(per_unique(pl.col("ua"), shout, pl.String()))[
        "ua"].to_list() == [None, None]


def test_category_and_type_per_api_call_and_console_login_outcome():
    """The lookups run per distinct API call; a console login's type still follows each event's outcome."""
    rows = normalized([
        record("CreateUser", eid="a", eventSource="iam.amazonaws.com"),
        record("RunInstances", eid="b", eventSource="ec2.amazonaws.com"),
        record("CreateUser", eid="c", eventSource="iam.amazonaws.com", errorCode="AccessDenied"),
        record("ConsoleLogin", eid="ok", eventSource="signin.amazonaws.com",
               responseElements={"ConsoleLogin": "Success"}),
        record("ConsoleLogin", eid="bad", eventSource="signin.amazonaws.com",
               responseElements={"ConsoleLogin": "Failure"}, errorMessage="Failed authentication"),
        record("FrobnicateWidget", eid="odd", eventSource="example.com"),
    ])
    got = {r["event"]["id"]: (r["event"]["category"], r["event"]["type"]) for r in rows}
    assert got["a"] == got["c"] == (["iam"], ["user", "creation"])
    assert got["ok"] == (["authentication"], ["start", "allowed"])
    assert got["bad"] == (["authentication"], ["start", "denied"])
    assert got["odd"] == (["api"], ["info"])
    assert got["b"] == (["host"], ["start"])


def test_booleans_read_true_and_false_in_any_case_and_nothing_else():
    from transforms.aws_cloudtrail import boolean

    frame = pl.DataFrame({"readOnly": ["true", "False", "TRUE", "yes", None, "", "1"]})
    assert frame.select(boolean("readOnly").alias("b"))["b"].to_list() == [True, False, True, None, None, None, None]
