"""The use-case views, findings and the query CLI, on hand-made trails with known answers."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import gzip
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from queries import connect, creation_order, dependencies, view_names
from tests.conftest import (ROOT, SAMPLE, as_a_user, ingest, lake_files, record, s3fs_client, shared_path, sql, trail_path,
                            write)

ACCT, OTHER = "111122223333", "444455556666"
T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def login(user: str, seconds: float, ok: bool = False, ip: str = "198.51.100.1", account: str = ACCT,
          error_code: str | None = None, eid: str | None = None) -> dict:
    rec = record("ConsoleLogin", at(seconds), account=account, user=user, eid=eid, eventSource="signin.amazonaws.com",
                 sourceIPAddress=ip, requestParameters=None,
                 responseElements={"ConsoleLogin": "Success" if ok else "Failure"})
    if not ok:
        rec["errorMessage"] = "Failed authentication"
    if error_code:
        rec["errorCode"] = error_code
    return rec


def lake_of(tmp_path, records: list[dict]):
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01"), records)
    assert ingest(src, "--lake", lake) == 0
    return connect(str(lake))


def rows(con, query: str) -> list[tuple]:
    return con.sql(query).fetchall()


def test_break_in_needs_five_failures_within_360_seconds(tmp_path):
    events = (
        [login("four", 10 * i) for i in range(4)]  # 4 failures: not enough
        + [login("five", s, ip=f"198.51.100.{i % 3 + 1}") for i, s in enumerate((0, 90, 180, 270, 360))]  # 360 s: in
        + [login("spread", s) for s in (0, 90, 180, 270, 361)]  # 361 s: out
        + [login("d", 1000 + 20 * i) for i in range(0, 6, 2)] + [login("e", 1000 + 20 * i) for i in range(1, 6, 2)]
        + [login("coded", 2000 + i, error_code="AccessDenied") for i in range(3)] + [login("coded", 2003 + i)
                                                                                      for i in range(2)]
        + [login("twice", 5000 + 30 * i) for i in range(5)] + [login("twice", 9000 + 30 * i) for i in range(6)]
        + [login("five", 10 * i, account=OTHER) for i in range(4)]  # same name, other account: its own count
        + [login("five", 400, ok=True)]
    )
    con = lake_of(tmp_path, events)
    got = rows(con, """SELECT user_name, account_id, failures, strftime(window_start, '%H:%M:%S'),
                              strftime(window_end, '%H:%M:%S'), source_ips FROM console_login_break_in ORDER BY 1, 4""")
    assert got == [
        ("coded", ACCT, 5, "10:33:20", "10:33:24", ["198.51.100.1"]),
        ("five", ACCT, 5, "10:00:00", "10:06:00", ["198.51.100.1", "198.51.100.2", "198.51.100.3"]),
        ("twice", ACCT, 5, "11:23:20", "11:25:20", ["198.51.100.1"]),
        ("twice", ACCT, 6, "12:30:00", "12:32:30", ["198.51.100.1"]),
    ]
    # interleaved users d and e: 6 failures in 100 s together, which Wazuh 80255 would count as a break-in
    assert rows(con, "SELECT count(*) FROM console_login_failure WHERE user.name IN ('d', 'e')") == [(6,)]
    assert rows(con, "SELECT count(*) FROM console_login_success") == [(1,)]
    assert rows(con, "SELECT count(*) FROM console_login_failure") == [(len(events) - 1,)]


def test_spray_is_many_users_from_one_address(tmp_path):
    events = ([login(u, 60 * i, ip="203.0.113.66") for i, u in enumerate(["u1", "u2", "u1", "u3"])]
              + [login(u, 60 * i, ip="203.0.113.77") for i, u in enumerate(["v1", "v2", "v1", "v2"])]
              + [login(u, 700 * i, ip="203.0.113.88") for i, u in enumerate(["w1", "w2", "w3"])])
    con = lake_of(tmp_path, events)
    assert rows(con, "SELECT source_ip, users, failures, user_names FROM console_login_spray") == [
        ("203.0.113.66", 3, 4, ["u1", "u2", "u3"])]


def test_ec2_and_iam_use_cases(tmp_path):
    def ec2(name: str, eid: str, code: str | None = None) -> dict:
        rec = record(name, at(len(eid)), eid=eid)
        if code:
            rec.update(errorCode=code, errorMessage="You are not authorized to perform this operation.")
        return rec

    def iam(eid: str, code: str | None = None) -> dict:
        rec = record("CreateUser", at(1), eid=eid, eventSource="iam.amazonaws.com",
                     requestParameters={"userName": "backdoor"})
        if code:
            rec.update(errorCode=code, errorMessage="denied or failed")
        return rec

    con = lake_of(tmp_path, [
        ec2("RunInstances", "run-ok"), ec2("RunInstances", "run-denied", "Client.UnauthorizedOperation"),
        ec2("RunInstances", "run-throttled", "Client.RequestLimitExceeded"),
        ec2("RunInstances", "run-dryrun", "Client.DryRunOperation"),
        ec2("StartInstances", "start-ok"), ec2("StartInstances", "start-denied", "UnauthorizedOperation"),
        ec2("StopInstances", "stop-ok"), ec2("CreateSecurityGroup", "sg-ok"),
        ec2("CreateSecurityGroup", "sg-denied", "Client.UnauthorizedOperation"),
        ec2("AllocateAddress", "eip-ok"), ec2("AssociateAddress", "assoc-ok"),
        ec2("TerminateInstances", "term-denied", "Client.UnauthorizedOperation"),  # not one of the six
        iam("user-ok"), iam("user-denied", "AccessDenied"), iam("user-exists", "EntityAlreadyExists"),
    ])
    expected = {
        "ec2_instance_run": ["run-ok"], "ec2_instance_start": ["start-ok"], "ec2_instance_stop": ["stop-ok"],
        "ec2_security_group_created": ["sg-ok"], "ec2_address_allocated": ["eip-ok"],
        "ec2_address_associated": ["assoc-ok"], "ec2_denied": ["run-denied", "sg-denied", "start-denied"],
        "iam_user_created": ["user-ok"], "iam_user_creation_denied": ["user-denied"],
    }
    for view, ids in expected.items():
        assert [r[0] for r in rows(con, f"SELECT event.id FROM {view} ORDER BY 1")] == ids, view
    found = rows(con, "SELECT rule, wazuh_rule_id, level, event_id, user_name FROM findings ORDER BY rule, event_id")
    assert found == [
        ("ec2_address_allocated", 80202, 3, "eip-ok", "alice"), ("ec2_address_associated", 80202, 3, "assoc-ok", "alice"),
        ("ec2_denied", 80203, 4, "run-denied", "alice"), ("ec2_denied", 80203, 4, "sg-denied", "alice"),
        ("ec2_denied", 80203, 4, "start-denied", "alice"), ("ec2_instance_run", 80202, 3, "run-ok", "alice"),
        ("ec2_instance_start", 80202, 3, "start-ok", "alice"), ("ec2_instance_stop", 80202, 3, "stop-ok", "alice"),
        ("ec2_security_group_created", 80202, 3, "sg-ok", "alice"),
        ("iam_user_created", 80202, 3, "user-ok", "alice"), ("iam_user_creation_denied", 80250, 5, "user-denied", "alice"),
    ]
    assert rows(con, "SELECT title FROM findings WHERE rule = 'iam_user_creation_denied'") == [
        ("IAM user creation denied: backdoor",)]


def insight(name: str, source: str, kind: str, eid: str, error_code: str | None = None) -> dict:
    """A CloudTrail Insights notice about a call: the call's name in insightDetails, no eventName of its own."""
    details = {"state": "Start", "eventSource": source, "eventName": name, "insightType": kind,
               "insightContext": {"statistics": {"baseline": {"average": 0.1}, "insight": {"average": 9.0}}}}
    if error_code:
        details["errorCode"] = error_code
    return {"eventVersion": "1.08", "eventTime": at(1), "awsRegion": "us-east-1", "eventID": eid,
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": ACCT, "sharedEventID": eid + "-shared",
            "insightDetails": details, "eventCategory": "Insight"}


def test_insights_notices_are_events_but_not_calls_in_any_use_case(tmp_path):
    """A notice that RunInstances ran at an unusual rate launched nothing; one about denied CreateUser calls
    created no user: the use-case views, the findings and the dashboards read api_calls, which leaves them out."""
    notices = [insight("RunInstances", "ec2.amazonaws.com", "ApiCallRateInsight", "n-run"),
               insight("StopInstances", "ec2.amazonaws.com", "ApiCallRateInsight", "n-stop"),
               insight("AllocateAddress", "ec2.amazonaws.com", "ApiErrorRateInsight", "n-eip",
                       "Client.UnauthorizedOperation"),
               insight("CreateUser", "iam.amazonaws.com", "ApiErrorRateInsight", "n-user", "AccessDenied"),
               insight("ConsoleLogin", "signin.amazonaws.com", "ApiCallRateInsight", "n-login")]
    con = lake_of(tmp_path, [*notices, record("RunInstances", at(2), eid="run-ok"), login("bob", 3, ok=True, eid="login-ok")])
    assert rows(con, "SELECT event.action, event.provider FROM events WHERE event.id = 'n-run'") == [
        ("RunInstances", "ec2.amazonaws.com")]  # what made them look like calls
    assert rows(con, "SELECT count(*) FROM events") == [(7,)]
    assert rows(con, "SELECT event.id FROM api_calls ORDER BY 1") == [("login-ok",), ("run-ok",)]
    assert rows(con, "SELECT rule, event_id FROM findings ORDER BY rule") == [
        ("console_login_success", "login-ok"), ("ec2_instance_run", "run-ok")]
    for view in view_names():
        if view not in ("events", "findings", "digests") and not view.startswith(("dashboard_", "console_login_b",
                                                                                   "console_login_sp", "denial")):
            assert rows(con, f"SELECT count(*) FROM {view} WHERE event.id LIKE 'n-%'") == [(0,)], view
    assert rows(con, "SELECT sum(events) FROM dashboard_events_by_day_and_action") == [(2,)]


def test_findings_dates_are_utc_whatever_the_session_time_zone(tmp_path):
    """A burst ending 00:01:40 UTC on Nov 2nd is dated Nov 2nd, also for a DuckDB client in California."""
    midnight = (dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc) - T0).total_seconds()
    con = lake_of(tmp_path, [login("mallory", midnight + 20 * i, ip="192.0.2.9") for i in range(6)])
    con.execute("SET TimeZone = 'America/Los_Angeles'")
    dates = rows(con, "SELECT rule, CAST(event_date AS VARCHAR) FROM findings GROUP BY ALL ORDER BY 1")
    assert dates == [("console_login_break_in", "2026-11-02"), ("console_login_failure", "2026-11-02")]


def test_findings_levels_for_logins_and_bursts(tmp_path):
    con = lake_of(tmp_path, [login("mallory", 20 * i, ip="192.0.2.9") for i in range(6)] + [login("ok", 0, ok=True)])
    got = rows(con, "SELECT rule, wazuh_rule_id, level, count(*) FROM findings GROUP BY ALL ORDER BY rule")
    assert got == [("console_login_break_in", 80255, 10, 1), ("console_login_failure", 80254, 5, 6),
                   ("console_login_success", 80253, 3, 1)]
    (title, source) = rows(con, "SELECT title, source_ip FROM findings WHERE level = 10")[0]
    assert title == "Possible break-in: 6 failed console logins for mallory within 100 s" and source == "192.0.2.9"


def test_a_day_query_reads_one_partition_of_thirty(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    start = dt.date(2026, 10, 1)
    for n in range(30):
        day = (start + dt.timedelta(days=n)).isoformat()
        write(trail_path(src, ACCT, "us-east-1", day), [record("RunInstances", day + "T12:00:00Z"),
                                                         login("x", 0, ok=True) | {"eventTime": day + "T13:00:00Z"}])
    assert ingest(src, "--lake", lake) == 0
    con = connect(str(lake))
    for query in ("SELECT count(*) FROM events WHERE event_date = DATE '2026-10-15'",
                  "SELECT count(*) FROM ec2_instance_run WHERE event_date = DATE '2026-10-15'",
                  "SELECT count(*) FROM findings WHERE event_date = DATE '2026-10-15' AND level < 10"):
        plan = con.sql("EXPLAIN ANALYZE " + query).fetchall()[0][1]
        files = [int(n) for n in re.findall(r"Total Files Read: (\d+)", plan)]
        assert files and all(n == 1 for n in files), (query, files)
    assert rows(con, "SELECT count(*) FROM findings WHERE event_date = DATE '2026-10-15'") == [(2,)]


def test_views_load_in_dependency_order_with_headers():
    order = creation_order()
    assert set(order) == set(view_names()) and len(view_names()) >= 17
    for view, deps in dependencies().items():
        assert all(order.index(d) < order.index(view) for d in deps), view
    assert dependencies()["findings"] >= {"ec2_denied", "console_login_break_in", "console_login_spray"}
    from queries import HERE

    for name in view_names():
        text = (HERE / f"{name}.sql").read_text()
        assert text.startswith(f"-- {name}: "), name
        assert "-- Wazuh rule:" in text and "-- Columns:" in text and f"VIEW {name} AS" in text, name


def test_views_run_over_the_sample_and_the_shared_datasets(tmp_path):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    con = connect(str(lake))
    counts = {v: rows(con, f"SELECT count(*) FROM {v}")[0][0] for v in view_names()}
    assert counts["events"] > 3000 and counts["findings"] > 50 and counts["console_login_break_in"] == 1
    shared_lake = tmp_path / "shared"
    ingest(shared_path("datasets"), "--lake", shared_lake)
    con = connect(str(shared_lake))
    shared = {v: rows(con, f"SELECT count(*) FROM {v}")[0][0] for v in view_names()}
    assert shared["console_login_failure"] >= 1 and shared["events"] > 24000 and shared["digests"] == 0
    assert [d[0] for d in con.sql("DESCRIBE digests").fetchall()][:3] == ["@timestamp", "event", "cloud"]


def test_sql_formats(tmp_path, capsys):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    capsys.readouterr()
    query = ("SELECT event.id, event.action, cloud, \"@timestamp\", aws.cloudtrail.request_parameters AS rp "
             "FROM events WHERE event.action = 'CreateUser' ORDER BY event.id")
    assert main(["sql", "--lake", str(lake), "--format", "json", query]) == 0
    data = json.loads(capsys.readouterr().out)
    n = connect(str(lake)).sql("SELECT count(*) FROM events WHERE event.action = 'CreateUser'").fetchall()[0][0]
    assert len(data) == n > 0 and data[0]["cloud"]["provider"] == "aws" and data[0]["action"] == "CreateUser"
    assert "userName" in (data[0]["rp"] if isinstance(data[0]["rp"], dict) else json.loads(data[0]["rp"]))
    assert main(["sql", "--lake", str(lake), "--format", "csv", query]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["id", "action", "cloud", "@timestamp", "rp"] and len(table) == n + 1
    out = tmp_path / "x.parquet"
    assert main(["sql", "--lake", str(lake), "--format", "parquet", "--output", str(out), query]) == 0
    assert pq.read_table(out).num_rows == n
    import polars as pl  # the payloads are text to Polars too (DuckDB's writer left them binary there)

    exported = pl.read_parquet(out)
    assert exported.schema["rp"] == pl.String and "userName" in json.loads(exported["rp"][0])
    assert exported.schema["@timestamp"] == pl.Datetime("us", "UTC") and exported["cloud"][0]["provider"] == "aws"
    assert main(["sql", "--lake", str(lake), "SELECT count(*) AS n FROM iam_user_created"]) == 0
    assert "│" in capsys.readouterr().out
    assert main(["sql", "--lake", str(lake), "--format", "parquet", query]) == 2


def test_sql_errors_are_one_line_and_exit_2(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert main(["sql", "--lake", str(lake), "SELECT 1"]) == 2
    assert "no events in" in capsys.readouterr().err
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    capsys.readouterr()
    for bad in ("SELEC 1", "SELECT nope FROM events", "SELECT * FROM no_such_view"):
        assert main(["sql", "--lake", str(lake), bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("trailhouse: ") and "\n" not in err and "Traceback" not in err
    # an output that cannot be made is refused as the command is read, before any query runs
    for target, said in ((tmp_path / "missing" / "x.parquet", "there is no directory"), (tmp_path, "it is a directory")):
        with pytest.raises(SystemExit) as exc:
            main(["sql", "--lake", str(lake), "--format", "parquet", "--output", str(target), "SELECT 1"])
        assert exc.value.code == 2 and f"argument --output: cannot write {target}: {said}" in capsys.readouterr().err
    # a query failing as it runs: one line, no file left behind
    out = tmp_path / "out.parquet"
    assert main(["sql", "--lake", str(lake), "--format", "parquet", "--output", str(out),
                 "SELECT CAST(event.id AS INTEGER) FROM events"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trailhouse: ") and "Conversion Error" in err and err.count("\n") == 1
    assert not out.exists()
    # a file already there is replaced only by a complete result: a query failing at once, after its first rows
    # (past the first batch streamed), or a type Parquet cannot hold leaves it as it was, and nothing beside it
    out.write_bytes(b"the analyst's earlier export")
    for query, said in (("SELECT CAST(event.id AS INTEGER) FROM events", "Conversion Error"),
                        ("SELECT CASE WHEN range > 200000 THEN error('boom') ELSE range END FROM range(300000)",
                         "boom"),
                        ("SELECT max(\"@timestamp\") - min(\"@timestamp\") AS span FROM events", "cast that column")):
        assert main(["sql", "--lake", str(lake), "--format", "parquet", "--output", str(out), query]) == 2
        err = capsys.readouterr().err
        assert err.startswith("trailhouse: ") and said in err and err.count("\n") == 1, err
        assert out.read_bytes() == b"the analyst's earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "out.parquet"]
    assert main(["sql", "--lake", str(lake), "--format", "parquet", "--output", str(out),
                 "SELECT count(*) AS n FROM events"]) == 0
    assert pq.read_table(out).column("n").to_pylist() == [sql(lake, "SELECT count(*) FROM EVENTS")[0][0]]


def test_findings_command_filters_by_day(tmp_path, capsys):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    capsys.readouterr()
    assert main(["findings", "--lake", str(lake), "--since", "2026-11-02", "--until", "2026-11-02",
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    found = json.loads(captured.out)
    assert found and all(f["@timestamp"].startswith("2026-11-02") for f in found)
    assert "console_login_break_in" in captured.err  # the summary goes to the terminal
    con = connect(str(lake))
    assert len(found) == con.sql("SELECT count(*) FROM findings WHERE event_date = DATE '2026-11-02'").fetchall()[0][0]
    assert main(["findings", "--lake", str(lake)]) == 0
    assert "wazuh_rule_id" in capsys.readouterr().out


def test_catalog_is_a_duckdb_database_of_views(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    monkeypatch.chdir(tmp_path)
    assert main(["catalog", "--lake", "lake", "--db", "trail.duckdb"]) == 0
    con = duckdb.connect(str(tmp_path / "trail.duckdb"), read_only=True)
    views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == set(view_names())
    assert con.sql("SELECT count(*) FROM iam_user_created").fetchall()[0][0] > 0


def test_s3_lake_is_queried_through_s3fs(tmp_path, s3, capsys):
    lake = tmp_path / "lake"
    ingest(SAMPLE, "--lake", lake, "--workers", "1")
    fs = s3fs_client()
    fs.mkdir("lakes")
    fs.put(str(lake / "events"), "lakes/prod/events", recursive=True)
    capsys.readouterr()
    query = "SELECT count(*) AS n, count(DISTINCT event.id) AS ids FROM events"
    assert main(["sql", "--lake", "s3://lakes/prod", "--format", "csv", query]) == 0
    remote = capsys.readouterr().out
    assert main(["sql", "--lake", str(lake), "--format", "csv", query]) == 0
    assert remote == capsys.readouterr().out and remote.splitlines()[1].split(",")[0] != "0"
    assert main(["findings", "--lake", "s3://lakes/prod", "--format", "csv"]) == 0


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory) -> Path:
    """The sample ingested once; a test that damages a lake damages its own copy."""
    lake = tmp_path_factory.mktemp("sample") / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    return lake


def cli(*args: str | Path, prefix: list[str] | tuple[str, ...] = (), **kwargs) -> subprocess.CompletedProcess:
    """trailhouse as a user runs it: its own process, its exit status, its stderr."""
    return subprocess.run([*prefix, sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, **kwargs)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trailhouse: ") and "Traceback" not in err, err
    return lines[0]


def buffered_env() -> dict[str, str]:
    """The environment with standard output buffered, as a user's is (PYTHONUNBUFFERED would hide a failed
    flush at exit)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("args", [("sql", "--format", "csv", "SELECT * FROM events"),
                                  ("sql", "--format", "json", "SELECT * FROM events"), ("findings",)])
def test_a_reader_that_stops_reading_ends_the_command_quietly(sample_lake, tmp_path, args):
    work = tmp_path / "tmp"
    work.mkdir()
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # one page: the output cannot fit before the reader leaves
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", args[0], "--lake", str(sample_lake), *args[1:]],
                            cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True,
                            env={**buffered_env(), "TMPDIR": str(work)})
    os.close(write_end)
    assert os.read(read_end, 100)  # `| head -c 100`
    os.close(read_end)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""  # no "internal error", no "Exception ignored … BrokenPipeError" at exit
    assert list(work.iterdir()) == []  # the result file written for the copy is gone too


@pytest.mark.parametrize("args", [("sql", "SELECT 42"), ("sql", "--format", "csv", "SELECT 42"), ("findings",)])
def test_a_reader_gone_before_any_output_ends_the_command_quietly(sample_lake, args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| true`: what is still buffered at exit must not fail a second time
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", args[0], "--lake", str(sample_lake), *args[1:]],
                          cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, env=buffered_env())
    os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_an_unreadable_partition_or_lake_is_an_error_not_a_partial_answer(sample_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(sample_lake, lake)
    day = lake / "events" / "event_date=2026-11-01"
    day.chmod(0)
    try:
        user = as_a_user(tmp_path)
        for args in (("sql", "--lake", lake, "SELECT count(*) FROM events"), ("findings", "--lake", lake),
                     ("dashboards", "--lake", lake, "--out", tmp_path / "out"),
                     ("catalog", "--lake", lake, "--db", tmp_path / "trail.duckdb")):
            proc = cli(*args, prefix=user)
            assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout)
            line = one_line(proc.stderr)
            assert f"cannot read {day} (Permission denied)" in line and "read access" in line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]  # no report, no catalog, no .tmp
        day.chmod(0o755)
        lake.chmod(0)
        proc = cli("sql", "--lake", lake, "SELECT count(*) FROM events", prefix=user)
        assert proc.returncode == 2 and "no events" not in proc.stderr
        assert f"cannot read {lake} (Permission denied)" in one_line(proc.stderr)
    finally:
        lake.chmod(0o755)
        day.chmod(0o755)


def test_a_corrupted_lake_file_is_one_line_naming_it_and_the_fix(sample_lake, tmp_path, capsys):
    lake = tmp_path / "lake"
    shutil.copytree(sample_lake, lake)
    broken = sorted((lake / "events" / "event_date=2026-11-01").glob("*.parquet"))[0]  # the one the views bind to
    os.truncate(broken, 1000)
    for args in (("sql", "SELECT count(*) FROM events"), ("sql", "--format", "csv", "SELECT * FROM findings"),
                 ("findings",), ("dashboards", "--out", tmp_path / "out"), ("catalog", "--db", tmp_path / "t.duckdb")):
        assert main([args[0], "--lake", str(lake), *map(str, args[1:])]) == 2, args
        captured = capsys.readouterr()
        line = one_line(captured.err)
        assert f"{broken} is not a valid Parquet file" in line and "--full-refresh" in line, line
    assert not (tmp_path / "t.duckdb.tmp").exists() and not (tmp_path / "t.duckdb").exists()

    # an ingest that merges into that partition stops the same way, the lake as it was
    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    for f in src.glob("AWSLogs/*/CloudTrail/*/2026/11/01/*"):
        os.utime(f, (1e9, 1e9))  # changed: read again, merged into 2026-11-01
    before = lake_files(lake)
    assert ingest(src, "--lake", lake, "--workers", "1") == 2
    assert f"{broken} is not a valid Parquet file" in one_line(capsys.readouterr().err)
    assert lake_files(lake) == before
    # and the fix the message gives works
    assert ingest(src, "--lake", lake, "--workers", "1", "--full-refresh") == 0
    assert connect(str(lake)).sql("SELECT count(*) FROM events").fetchall() == \
        connect(str(sample_lake)).sql("SELECT count(*) FROM events").fetchall()


def test_an_output_file_is_written_in_the_format_its_name_says_or_the_one_asked_for(sample_lake, tmp_path, capsys):
    """`--output` takes the format its extension names, else CSV; a table is for the terminal; a file inside the
    lake would be read as the lake's data. A rename onto the output replaced a device (`--output /dev/stdout`)
    or a symbolic link with a regular file: those are written into."""
    query = "SELECT event.action AS action, count(*) AS n FROM events GROUP BY ALL ORDER BY n DESC, action LIMIT 3"
    rows = sql(sample_lake, query.replace("events", "EVENTS"))
    as_csv = "action,n\n" + "".join(f"{a},{n}\n" for a, n in rows)
    as_dicts = [{"action": a, "n": n} for a, n in rows]
    for name in ("top.csv", "top.json", "top.parquet", "top.CSV", "top.txt", "top.csv.gz", "top.json.zst"):
        assert main(["sql", "--lake", str(sample_lake), "--output", str(tmp_path / name), query]) == 0
    assert (tmp_path / "top.csv").read_text() == (tmp_path / "top.CSV").read_text() == as_csv
    assert (tmp_path / "top.txt").read_text() == as_csv
    assert gzip.decompress((tmp_path / "top.csv.gz").read_bytes()).decode() == as_csv  # compressed as named
    assert duckdb.sql(f"SELECT action, n FROM read_json('{tmp_path / 'top.json.zst'}')").fetchall() == rows
    assert json.loads((tmp_path / "top.json").read_text()) == as_dicts
    assert pq.read_table(tmp_path / "top.parquet").to_pylist() == as_dicts
    assert main(["sql", "--lake", str(sample_lake), "--format", "json", "--output", str(tmp_path / "t.txt"),
                 query]) == 0
    assert json.loads((tmp_path / "t.txt").read_text()) == as_dicts
    # through a link: the file it names is replaced, the link stays
    (tmp_path / "link.json").symlink_to(tmp_path / "t.txt")
    assert main(["sql", "--lake", str(sample_lake), "--output", str(tmp_path / "link.json"),
                 f"SELECT * FROM ({query}) OFFSET 1"]) == 0
    assert (tmp_path / "link.json").is_symlink() and json.loads((tmp_path / "t.txt").read_text()) == as_dicts[1:]
    # a file's permissions are kept; links that loop are not replaced
    (tmp_path / "top.csv").chmod(0o600)
    assert main(["sql", "--lake", str(sample_lake), "--output", str(tmp_path / "top.csv"), query]) == 0
    assert stat.S_IMODE((tmp_path / "top.csv").stat().st_mode) == 0o600
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop.csv")
    assert main(["sql", "--lake", str(sample_lake), "--output", str(tmp_path / "loop.csv"), query]) == 2
    assert "its symbolic links loop" in capsys.readouterr().err and (tmp_path / "loop.csv").is_symlink()
    # into a pipe (as /dev/stdout is one): streamed into it, still a pipe; a reader that leaves early is no error
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = "SELECT i, repeat('x', 100) AS s FROM range(2000000) t(i)"
    for fmt, q, reads in (("csv", query, None), ("parquet", query, None), ("csv", big, 100), ("parquet", big, 100)):
        got = []
        reader = threading.Thread(target=lambda n=reads: got.append(fifo.open("rb").read(n or -1)))
        reader.start()
        assert main(["sql", "--lake", str(sample_lake), "--format", fmt, "--output", str(fifo), q]) == 0, (fmt, reads)
        reader.join(10)
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        if reads:
            assert len(got[0]) == 100
        else:
            assert (got[0].decode() == as_csv) if fmt == "csv" else pq.read_table(io.BytesIO(got[0])).to_pylist() == as_dicts
    # `-` is standard output
    capsys.readouterr()
    assert main(["sql", "--lake", str(sample_lake), "--format", "csv", "--output", "-", query]) == 0
    assert capsys.readouterr().out == as_csv
    capsys.readouterr()
    refused = {"--format table is for the terminal: write --output FILE as --format csv, json or parquet":
               ["--format", "table", "--output", str(tmp_path / "t.csv")],
               f"--output {sample_lake}/events/x.parquet is inside the lake's tables, where it would be read as the "
               "lake's own data: write it elsewhere": ["--output", f"{sample_lake}/events/x.parquet"]}
    for said, args in refused.items():
        assert main(["sql", "--lake", str(sample_lake), *args, query]) == 2
        assert main(["findings", "--lake", str(sample_lake), *args]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == 2 * f"trailhouse: {said}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.json", "loop.csv", "loop2", "pipe", "t.txt", "top.CSV", "top.csv", "top.csv.gz", "top.json",
        "top.json.zst", "top.parquet", "top.txt"]
    assert not list((sample_lake / "events").glob("x*"))


def test_a_catalog_never_replaces_a_file_that_is_not_a_duckdb_database(sample_lake, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("the analyst's notes")
    assert main(["catalog", "--lake", str(sample_lake), "--db", str(notes)]) == 2
    assert capsys.readouterr().err == (f"trailhouse: --db {notes} exists and is not a DuckDB database: give a new "
                                       "file (e.g. trail.duckdb), or remove that one first\n")
    assert notes.read_text() == "the analyst's notes"
    db = tmp_path / "trail.duckdb"
    for _ in range(2):  # a catalog replaces the catalog it wrote
        assert main(["catalog", "--lake", str(sample_lake), "--db", str(db)]) == 0
    assert duckdb.connect(str(db), read_only=True).sql("SELECT count(*) FROM events").fetchall() == \
        sql(sample_lake, "SELECT count(*) FROM EVENTS")


def test_findings_parquet_without_output_is_refused_before_anything_is_printed(sample_lake, capsys):
    assert main(["findings", "--lake", str(sample_lake), "--format", "parquet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "trailhouse: --format parquet needs --output FILE\n"


def test_a_catalog_db_that_cannot_be_written_is_one_line_and_leaves_nothing(sample_lake, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    for db, says in ((tmp_path / "no-such-dir" / "t.duckdb", "No such file or directory"),
                     (folder, "is a directory")):
        proc = cli("catalog", "--lake", sample_lake, "--db", db)
        assert proc.returncode == 2 and says in one_line(proc.stderr), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and list(folder.iterdir()) == []
    folder.chmod(0o555)
    try:
        user = as_a_user(tmp_path)
        proc = cli("catalog", "--lake", sample_lake, "--db", folder / "t.duckdb", prefix=user)
        assert proc.returncode == 2 and "Permission denied" in one_line(proc.stderr), proc.stderr
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
