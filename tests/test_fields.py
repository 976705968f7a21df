"""The field rules of the full schema, each on hand-made records with known answers."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from tests.conftest import ROOT, record
from tests.test_transforms import normalized
from transforms.categories import ECS_EXPECTED_TYPES, ECS_TYPES


def one(**overrides) -> dict:
    (row,) = normalized([record(**overrides)])
    return row


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["event"]["id"]: r for r in normalized(records)}


def test_event_basics_and_error_fields():
    r = one(eid="x", errorCode="AccessDenied", errorMessage="User: x is not authorized")
    assert r["event"]["kind"] == "event"
    assert (r["event"]["code"], r["event"]["reason"]) == ("AccessDenied", "User: x is not authorized")
    assert r["aws"]["cloudtrail"]["error_code"] == "AccessDenied"


@pytest.mark.parametrize("source, name, category, type_", [
    ("iam.amazonaws.com", "CreateUser", ["iam"], ["user", "creation"]),
    ("iam.amazonaws.com", "AttachUserPolicy", ["iam"], ["user", "change"]),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", ["network"], ["access"]),
    ("s3.amazonaws.com", "GetObject", ["file"], ["info"]),
    ("sts.amazonaws.com", "AssumeRole", ["authentication"], ["info"]),
    ("lambda.amazonaws.com", "ListFunctions20150331", ["package"], ["info"]),
    # not in the name table: the source default, made consistent with the verb
    ("iam.amazonaws.com", "CreateServiceSpecificCredentialX", ["iam"], ["creation"]),
    ("newservice.amazonaws.com", "DeleteWidget", ["api"], ["deletion"]),
    ("newservice.amazonaws.com", "FrobnicateWidget", ["api"], ["info"]),
])
def test_category_and_type(source, name, category, type_):
    r = one(eventSource=source, eventName=name)
    assert (r["event"]["category"], r["event"]["type"]) == (category, type_)


def test_console_login_type_carries_the_outcome():
    rows = by_id([
        record("ConsoleLogin", eid="ok", eventSource="signin.amazonaws.com", responseElements={"ConsoleLogin": "Success"},
               additionalEventData={"LoginTo": "https://console", "MobileVersion": "No", "MFAUsed": "Yes"}),
        record("ConsoleLogin", eid="bad", eventSource="signin.amazonaws.com", responseElements={"ConsoleLogin": "Failure"},
               errorMessage="Failed authentication", additionalEventData={"MFAUsed": "No"}),
    ])
    assert rows["ok"]["event"]["category"] == ["authentication"]
    assert rows["ok"]["event"]["type"] == ["start", "allowed"] and rows["bad"]["event"]["type"] == ["start", "denied"]
    assert rows["ok"]["aws"]["cloudtrail"]["console_login"] == {"login_to": "https://console", "mfa_used": True,
                                                               "mobile_version": False}
    assert rows["bad"]["aws"]["cloudtrail"]["console_login"]["mfa_used"] is False


def test_category_tables_are_valid_ecs():
    names = list(csv.DictReader(open(ROOT / "transforms" / "event_names.csv")))
    sources = list(csv.DictReader(open(ROOT / "transforms" / "event_sources.csv")))
    assert len({(r["event_source"], r["event_name"]) for r in names}) == len(names) > 300
    for r in names:
        cats, types = r["category"].split("|"), r["type"].split("|")
        assert set(cats) <= set(ECS_EXPECTED_TYPES) and set(types) <= ECS_TYPES, r
        assert all(any(t in ECS_EXPECTED_TYPES[c] for c in cats) for t in types), r
    assert all(set(r["category"].split("|")) <= set(ECS_EXPECTED_TYPES) for r in sources)
    assert {r["event_source"] for r in names} <= {r["event_source"] for r in sources}


def test_cloud_service_and_instance():
    r = one(eventSource="ec2-instance-connect.amazonaws.com", requestParameters={"instanceId": "i-0abc"})
    assert r["cloud"]["service"]["name"] == "ec2-instance-connect" and r["cloud"]["instance"]["id"] == "i-0abc"
    assert one(eventSource="custom.example.com")["cloud"]["service"]["name"] is None


def test_source_hostnames_are_split_offline():
    rows = by_id([record(eid=str(n), sourceIPAddress=v) for n, v in enumerate(
        ["lambda.amazonaws.com", "s3.eu-west-1.amazonaws.com", "host.example.co.uk", "aws.internal", "AWS Internal",
         "00.000.000.00", "203.0.113.9"])])
    got = {r["source"]["address"]: {k: v for k, v in r["source"].items() if k != "address" and v} for r in rows.values()}
    assert got == {
        "lambda.amazonaws.com": {"domain": "lambda.amazonaws.com", "registered_domain": "amazonaws.com",
                                 "subdomain": "lambda", "top_level_domain": "com"},
        "s3.eu-west-1.amazonaws.com": {"domain": "s3.eu-west-1.amazonaws.com", "registered_domain": "amazonaws.com",
                                       "subdomain": "s3.eu-west-1", "top_level_domain": "com"},
        "host.example.co.uk": {"domain": "host.example.co.uk", "registered_domain": "example.co.uk",
                               "subdomain": "host", "top_level_domain": "co.uk"},
        "aws.internal": {"domain": "aws.internal", "subdomain": "aws"},
        "AWS Internal": {}, "00.000.000.00": {}, "203.0.113.9": {"ip": "203.0.113.9"},
    }


def test_user_agents_are_parsed():
    rows = by_id([record(eid=str(n), userAgent=v) for n, v in enumerate([
        "aws-cli/1.18.87 Python/3.7.3 Linux/4.19.0-6-amd64 botocore/1.17.30",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36",
        "signin.amazonaws.com"])])
    ua = [rows[str(n)]["user_agent"] for n in range(3)]
    assert (ua[0]["name"], ua[0]["version"], ua[0]["os"]["full"], ua[0]["device"]["name"]) == (
        "aws-cli", "1.18.87", "Linux 4.19.0", "Spider")
    assert ua[1]["os"] == {"name": "Windows", "version": "10", "full": "Windows 10"} and ua[1]["version"] == "134.0.0.0"
    assert (ua[2]["name"], ua[2]["device"]["name"], ua[2]["os"]["name"]) == ("Other", "Other", None)


def test_identity_fields():
    rows = by_id([
        record("CreateUser", eid="create", requestParameters={"userName": "bob"},
               responseElements={"user": {"userId": "AIDABOB", "userName": "bob"}}),
        record("UpdateUser", eid="rename", requestParameters={"userName": "bob", "newUserName": "robert"}),
        record("AddUserToGroup", eid="group", requestParameters={"groupName": "admins", "userName": "bob"}),
        record("CreateGroup", eid="newgroup", requestParameters={"groupName": "ops"},
               responseElements={"group": {"groupId": "AGPA1", "groupName": "ops"}}),
        record("GetObject", eid="sso", userIdentity={
            "type": "AssumedRole", "principalId": "AROA1:jane@example.com",
            "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin/jane@example.com", "accountId": "1",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "AWSReservedSSO_Admin",
                                                 "arn": "arn:aws:iam::1:role/AWSReservedSSO_Admin"},
                               "attributes": {"creationDate": "2026-11-01T09:00:00Z", "mfaAuthenticated": "true"}}}),
        record("ListBuckets", eid="idc", userIdentity={
            "type": "IdentityCenterUser", "accountId": "1",
            "onBehalfOf": {"userId": "9067-abcd", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"}}),
    ])
    assert rows["create"]["user"]["target"] == {"id": "AIDABOB", "name": "bob"}
    assert rows["rename"]["user"]["changes"]["name"] == "robert"
    assert set(rows["rename"]["related"]["user"]) >= {"alice", "bob", "robert"}
    assert rows["group"]["group"] == {"id": None, "name": "admins"}
    assert rows["newgroup"]["group"] == {"id": "AGPA1", "name": "ops"}
    sso = rows["sso"]
    assert (sso["user"]["name"], sso["user"]["email"]) == ("AWSReservedSSO_Admin", "jane@example.com")
    assert sso["user"]["id"] == "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin/jane@example.com"
    assert sso["related"]["user"] == ["AWSReservedSSO_Admin", "jane@example.com", "jane", "AROA1:jane@example.com"]
    ctx = sso["aws"]["cloudtrail"]["user_identity"]["session_context"]
    assert ctx["mfa_authenticated"] is True
    assert ctx["creation_date"] == dt.datetime(2026, 11, 1, 9, tzinfo=dt.timezone.utc)
    assert ctx["session_issuer"]["arn"] == "arn:aws:iam::1:role/AWSReservedSSO_Admin"
    idc = rows["idc"]
    assert (idc["user"]["id"], idc["user"]["name"]) == ("9067-abcd", "9067-abcd")
    assert idc["aws"]["cloudtrail"]["user_identity"]["on_behalf_of"] == {
        "user_id": "9067-abcd", "identity_store_arn": "arn:aws:identitystore::1:identitystore/d-1"}


def test_related_ips_and_hosts():
    r = one(sourceIPAddress="198.51.100.4", serviceEventDetails={"sourceIpAddress": "2001:db8::7"},
            tlsDetails={"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                        "clientProvidedHostHeader": "ec2.us-east-1.amazonaws.com"},
            requestParameters={"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"}]}},
            responseElements={"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"},
                                                         {"instanceId": "i-01234567"}]}})
    assert r["related"]["ip"] == ["198.51.100.4", "2001:db8::7"]
    assert r["related"]["hosts"] == ["ec2.us-east-1.amazonaws.com", "i-0123456789abcdef0", "i-01234567"]
    assert r["tls"] == {"version": "1.3", "version_protocol": "tls", "cipher": "TLS_AES_128_GCM_SHA256",
                        "client": {"server_name": "ec2.us-east-1.amazonaws.com"}}


def test_related_lists_skip_empty_values_and_are_null_when_nothing_is_mentioned():
    rows = by_id([
        record(eid="blank", userIdentity={"type": "IAMUser", "userName": "", "principalId": "AIDA1"},
               requestParameters={"userName": "bob"}, sourceIPAddress="AWS Internal"),
        record(eid="none", userIdentity={"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
               sourceIPAddress="not an address!", requestParameters=None),
        record(eid="repeat", userIdentity={"type": "IAMUser", "userName": "bob", "principalId": "bob"},
               requestParameters={"userName": "bob", "newUserName": "Bob"}),
    ])
    assert rows["blank"]["related"]["user"] == ["bob", "AIDA1"]
    assert rows["none"]["related"] == {"ip": None, "hosts": None, "user": None}
    assert rows["repeat"]["related"]["user"] == ["bob", "Bob"]


def test_tls_placeholders_are_dropped():
    r = one(tlsDetails={"tlsVersion": "tlsVersion", "cipherSuite": "cipherSuite",
                        "clientProvidedHostHeader": "clientProvidedHostHeader", "keyExchange": "keyExchange"})
    assert r["tls"] == {"version": None, "version_protocol": None, "cipher": None, "client": {"server_name": None}}
    assert r["aws"]["cloudtrail"]["tls_details"]["key_exchange"] is None
    assert one(tlsDetails={"tlsVersion": "1.3"})["tls"]["version"] == "1.3"


def test_cloudtrail_envelope_fields():
    r = one(eventCategory="Management", apiVersion="2016-11-15", requestID="req-1", readOnly=True,
            managementEvent=False, sharedEventId="shared-lower", vpcEndpointId="vpce-1",
            vpcEndpointAccountId="444455556666", sessionCredentialFromConsole="true",
            addendum={"reason": "DELIVERY_DELAY", "updatedFields": "errorCode", "originalRequestID": "r0",
                      "originalEventID": "e0"},
            resources=[{"ARN": "arn:aws:s3:::b", "accountId": "1", "type": "AWS::S3::Bucket"},
                       {"ARN": "arn:aws:s3:::b", "accountId": "1", "type": "AWS::S3::Bucket"}, "junk"],
            edgeDeviceDetails={"deviceID": "d-1"}, additionalEventData={"bytesTransferredOut": 10},
            insightDetails=None)
    ct = r["aws"]["cloudtrail"]
    assert (ct["event_category"], ct["api_version"], ct["request_id"]) == ("Management", "2016-11-15", "req-1")
    assert (ct["read_only"], ct["management_event"]) == (True, False)
    assert (ct["shared_event_id"], ct["vpc_endpoint_id"], ct["vpc_endpoint_account_id"]) == (
        "shared-lower", "vpce-1", "444455556666")
    assert ct["session_credential_from_console"] == "true"
    assert ct["addendum"] == {"reason": "DELIVERY_DELAY", "updated_fields": "errorCode", "original_request_id": "r0",
                              "original_event_id": "e0"}
    assert ct["resources"] == [{"arn": "arn:aws:s3:::b", "account_id": "1", "type": "AWS::S3::Bucket"}]
    assert json.loads(ct["edge_device_details"]) == {"deviceID": "d-1"}
    assert json.loads(ct["additional_eventdata"]) == {"bytesTransferredOut": 10}
    assert ct["insight_details"] is None
    assert one(resources={"ARN": "not a list"})["aws"]["cloudtrail"]["resources"] is None


def test_payload_values_are_never_dropped_or_capped():
    big = "x" * 200_000
    payload = {"empty": "", "dash": "-", "none": "none", "null": None, "unicode": "é☃𝄞", "big": big}
    r = one(requestParameters=payload)
    assert json.loads(r["aws"]["cloudtrail"]["request_parameters"]) == payload
    assert json.loads(r["event"]["original"])["requestParameters"] == payload


def test_unknown_and_future_fields_survive_in_the_original():
    rec = record(eid="future", eventVersion="9.99", brandNewField={"nested": [1, 2]},
                 userIdentity={"type": "FutureType", "newThing": True})
    r = one(**{k: v for k, v in rec.items() if k != "eventName"}, eventName=rec["eventName"])
    assert json.loads(r["event"]["original"])["brandNewField"] == {"nested": [1, 2]}
    assert r["aws"]["cloudtrail"]["user_identity"]["type"] == "FutureType"
    assert r["aws"]["cloudtrail"]["event_version"] == "9.99"


def _non_null_counts(lake, table: str) -> dict[str, int]:
    from tests.conftest import sql
    from transforms.schema import fields

    names = [f.name for f in fields(table)]
    exprs = ", ".join("count(" + ".".join(f'"{p}"' for p in n.split(".")) + ")" for n in names)
    return dict(zip(names, sql(lake, f"SELECT {exprs} FROM {table.upper()}")[0]))


def test_the_sample_fills_every_declared_field(tmp_path):
    from tests.conftest import SAMPLE, ingest

    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    for table in ("events", "digests"):
        empty = [name for name, n in _non_null_counts(lake, table).items() if n == 0]
        # CloudTrail always writes an eventID: the id-less dedup hash is covered by test_ingest
        assert empty == ([] if table == "digests" else ["event.hash"]), f"{table}: never filled: {empty}"


def test_every_event_of_every_dataset_has_valid_ecs_categorization(tmp_path):
    """The sample, the real trails and the peer inputs: category/type pairs ECS expects (ConsoleLogin aside)."""
    from tests.conftest import SAMPLE, ingest, shared_path, sql

    datasets, peers = shared_path("datasets"), shared_path("peers")
    src = tmp_path / "peers"
    src.mkdir()
    for p in (peers / "sekoia").glob("*.json"):
        (src / p.name).write_text(json.loads(p.read_text())["input"]["message"])
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, datasets, src, "--lake", lake) == 3  # edge-cases holds broken files on purpose
    pairs = sql(lake, "SELECT DISTINCT event.action, event.category, event.type FROM EVENTS")
    assert len(pairs) > 200
    for action, categories, types in pairs:
        assert categories and types and set(types) <= ECS_TYPES, (action, categories, types)
        if action == "ConsoleLogin":
            assert categories == ["authentication"] and types[0] == "start" and types[1] in ("allowed", "denied")
            continue
        for t in types:
            assert any(t in ECS_EXPECTED_TYPES[c] for c in categories), (action, categories, types)


def test_transform_needs_no_network(monkeypatch):
    """tldextract and ua-parser use their bundled data: any connection attempt fails this test."""
    import socket

    from transforms import source

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    source._splitter.cache_clear()
    r = one(sourceIPAddress="api.example.co.uk", userAgent="Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10")
    assert r["source"]["registered_domain"] == "example.co.uk" and r["user_agent"]["name"]
