"""Real CloudTrail from ../shared: the SANS lab trail, Stratus Red Team detonations, edge cases."""

from __future__ import annotations

import duckdb
import polars as pl

from tests.conftest import ingest, last_run, quarantine, shared_path, sql


def test_sans_trail_ingests_fully(tmp_path):
    src = shared_path("datasets", "sans-504-s3-ransomware")
    lake = tmp_path / "lake"
    assert ingest(src, "--lake", lake, "--workers", "2") == 0
    # the truth, computed by DuckDB straight from the delivered files
    records, distinct = duckdb.connect().sql(
        f"SELECT count(*), count(DISTINCT e.eventID) FROM (SELECT unnest(Records) e FROM read_json("
        f"'{src}/*/*/*/*/*.json.gz', columns={{'Records': 'STRUCT(eventID VARCHAR)[]'}}))").fetchall()[0]
    assert records == 30477
    run = last_run(lake)
    assert (run["files_seen"], run["files_read"], run["files_quarantined"]) == (3872, 3872, 0)
    assert (run["events_read"], run["events_written"], run["duplicates"]) == (records, distinct, records - distinct)
    (n, ids, regions, denied, root_failures) = sql(lake, """
        SELECT count(*), count(DISTINCT event.id), count(DISTINCT cloud.region),
               count(*) FILTER (aws.cloudtrail.error_code = 'AccessDenied'),
               count(*) FILTER (event.action = 'ConsoleLogin' AND event.outcome = 'failure' AND user.name = 'root')
        FROM EVENTS""")[0]
    assert n == ids == distinct and regions == 13 and denied > 5000 and root_failures == 1


def test_stratus_red_team_detonations_ingest(tmp_path):
    src = shared_path("datasets", "stratus-red-team")
    lake = tmp_path / "lake"
    assert ingest(src, "--lake", lake) == 0
    run = last_run(lake)
    assert run["files_read"] == 35 and run["events_quarantined"] == 0
    assert run["events_read"] == run["events_written"] + run["duplicates"]
    actions = {r[0] for r in sql(lake, "SELECT DISTINCT event.action FROM EVENTS")}
    assert {"StopLogging", "CreateLoginProfile", "ConsoleLogin", "AuthorizeSecurityGroupIngress"} <= actions


def test_edge_cases_quarantine_the_broken_and_keep_the_rest(tmp_path):
    src = shared_path("datasets", "edge-cases")
    lake = tmp_path / "lake"
    assert ingest(src, "--lake", lake) == 3
    run = last_run(lake)
    q = quarantine(lake)
    assert run["events_read"] == run["events_written"] + run["duplicates"] + run["events_quarantined"]
    assert run["files_quarantined"] + run["events_quarantined"] == len(q)
    reasons = {e["source"].split("edge-cases/")[1]: e["reason"] for e in q}
    assert "invalid JSON" in reasons["aws-processing-library/SerializerTestFileBadJsonFormat.json"]
    assert "invalid JSON" in reasons["cloudgrep/bad_cloudtrail.json"]
    assert reasons["aws-processing-library/SQSMessageBody"].startswith("not a CloudTrail event")
    assert all(e["reason"] and e["time"] for e in q)
    # exports that wrap the event (lookup-events' CloudTrailEvent, Cribl's _raw) are unwrapped, not rejected
    files = {r[0].split("edge-cases/")[1] for r in sql(lake, "SELECT DISTINCT log.file.path FROM EVENTS")}
    assert "plaso/test_data/jsonl/aws_cloudtrail.jsonl" in files
    assert "cribl/data/samples/BeVTW2.json" in files
    # the gzip copy holds the same events as its plain twin: read, and every event a duplicate
    state = pl.read_parquet(lake / "_state" / "files" / "*.parquet")
    gz = state.filter(pl.col("url").str.ends_with("SerializerTestFileCompact.json.gz")).row(0, named=True)
    assert gz["status"] == "ingested" and gz["records"] > 0 and gz["rejected"] == 0
