"""trailhouse dashboards: tidy datasets that reconcile with the events view, valid PNGs, an offline report."""

from __future__ import annotations

import csv
import re
import struct

import duckdb
import pytest

from jobs.cli import main
from jobs.dashboards import DASHBOARDS
from queries import HERE as QUERIES
from tests.conftest import SAMPLE, ingest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    lake, out = tmp / "lake", tmp / "out"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    assert main(["dashboards", "--lake", str(lake), "--out", str(out)]) == 0
    return lake, out


def _one(con: duckdb.DuckDBPyConnection, q: str):
    return con.sql(q).fetchall()[0][0]


def _events(lake) -> duckdb.DuckDBPyConnection:
    from queries import connect

    return connect(str(lake))


def declared_columns(view: str) -> list[str]:
    """The `-- Columns:` line of the view's header: the contract the BI tool loads."""
    text = (QUERIES / f"{view}.sql").read_text()
    line = re.search(r"^-- Columns: (.+?)\.?$", text, re.MULTILINE).group(1)
    return [c.split(" (")[0].strip() for c in re.split(r",\s*(?![^()]*\))", line)]


def test_every_dataset_has_its_declared_columns_in_parquet_and_csv(built):
    lake, out = built
    con = duckdb.connect()
    assert len(DASHBOARDS) == 10
    for d in DASHBOARDS:
        parquet, csv_file = out / "datasets" / f"{d.view}.parquet", out / "datasets" / f"{d.view}.csv"
        cols = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM '{parquet}'").fetchall()]
        assert cols == declared_columns(d.view), d.view
        with open(csv_file) as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == cols and len(rows) - 1 == _one(con, f"SELECT count(*) FROM '{parquet}'") > 0, d.view


def test_totals_reconcile_with_the_calls_view(built):
    """The dashboards count calls: every event of the lake but the sample's Insights notices."""
    lake, out = built
    ev = _events(lake)
    ds = duckdb.connect()

    def total(view: str, col: str, where: str = "") -> int:
        return _one(ds, f"SELECT sum({col}) FROM '{out}/datasets/{view}.parquet' {where}")

    notices = _one(ev, "SELECT count(*) FROM events WHERE aws.cloudtrail.event_type = 'AwsCloudTrailInsight'")
    everything = _one(ev, "SELECT count(*) FROM api_calls")
    assert everything == 3016 - notices and notices > 0
    for view in ("dashboard_events_by_day_and_action", "dashboard_events_by_day_and_outcome",
                 "dashboard_activity_by_account_region"):
        assert total(view, "events") == everything, view
    assert total("dashboard_iam_events_by_action", "events") == _one(
        ev, "SELECT count(*) FROM api_calls WHERE event.provider = 'iam.amazonaws.com'")
    assert total("dashboard_console_logins_by_day", "logins") == _one(
        ev, "SELECT count(*) FROM api_calls WHERE event.action = 'ConsoleLogin'")
    failures = _one(ev, "SELECT count(*) FROM console_login_failure")
    assert failures > 0
    assert total("dashboard_console_logins_by_day", "logins", "WHERE event_outcome = 'failure'") == failures
    assert total("dashboard_failed_logins_by_user", "failures") == failures
    assert total("dashboard_denied_calls", "calls") == _one(
        ev, "SELECT count(*) FROM api_calls WHERE aws.cloudtrail.error_code IN (SELECT code FROM denial_codes)") > 0
    assert total("dashboard_ec2_changes_by_day", "events") == _one(
        ev, "SELECT count(*) FROM api_calls WHERE event.provider = 'ec2.amazonaws.com' AND NOT aws.cloudtrail.read_only")
    # the brute-force user of the sample tops the failed logins
    assert _one(ds, f"SELECT user_name FROM '{out}/datasets/dashboard_failed_logins_by_user.parquet' LIMIT 1") \
        == "mallory"
    # top lists: the first row is the real maximum, and at most 25 rows
    top_ip, n = ds.sql(f"SELECT source_ip, events FROM '{out}/datasets/dashboard_top_source_ips.parquet' "
                       "LIMIT 1").fetchall()[0]
    assert n == _one(ev, "SELECT max(n) FROM (SELECT count(*) n FROM api_calls WHERE source.ip IS NOT NULL "
                         "GROUP BY source.ip)") == _one(ev, f"SELECT count(*) FROM api_calls WHERE source.ip = '{top_ip}'")
    assert _one(ds, f"SELECT count(*) FROM '{out}/datasets/dashboard_top_user_agents.parquet'") <= 25


def test_charts_are_valid_pngs_and_the_report_opens_offline(built):
    _, out = built
    for d in DASHBOARDS:
        data = (out / "charts" / f"{d.view}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 300 and height > 200 and len(data) > 5000, d.view
    page = (out / "index.html").read_text()
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page)  # no URL of any kind
    assert "<script" not in page and page.count("data:image/png;base64,") == len(DASHBOARDS)
    assert "console_login_break_in" in page and "calls in range: 3,000" in page  # findings summary, call count


def test_a_time_range_limits_every_dataset(built, tmp_path):
    lake, _ = built
    out = tmp_path / "day2"
    assert main(["dashboards", "--lake", str(lake), "--out", str(out), "--since", "2026-11-02",
                 "--until", "2026-11-02"]) == 0
    ds = duckdb.connect()
    days = {r[0] for r in ds.sql(f"SELECT DISTINCT day FROM '{out}/datasets/dashboard_events_by_day_and_outcome"
                                 ".parquet'").fetchall()}
    assert [str(d) for d in days] == ["2026-11-02"]
    in_range = _one(_events(lake), "SELECT count(*) FROM api_calls WHERE event_date = DATE '2026-11-02'")
    assert _one(ds, f"SELECT sum(events) FROM '{out}/datasets/dashboard_activity_by_account_region.parquet'") \
        == in_range
    assert "2026-11-02 to 2026-11-02" in (out / "index.html").read_text()


def test_dashboards_argument_errors(tmp_path, capsys, built):
    assert main(["dashboards", "--lake", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no events" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "out"  # cannot be made: its parent is a file
    assert main(["dashboards", "--lake", str(built[0]), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"trailhouse: cannot write to {out}: Not a directory; choose another directory\n"


def test_an_output_folder_with_a_quote_and_a_stray_folder_in_the_lake(built, tmp_path, capsys):
    """`--out "d'q"` ended the COPY's string literal (internal error); a folder someone put beside the partitions
    (a dashboards' output once written into the lake) made every view fail with "Hive partition mismatch"."""
    lake, first = built
    stray = lake / "events" / "backup"
    stray.mkdir()
    (stray / "x.parquet").write_bytes((next((lake / "events").glob("event_date=*/*.parquet"))).read_bytes())
    try:
        out = tmp_path / "analyst's report"
        assert main(["dashboards", "--lake", str(lake), "--out", str(out)]) == 0
        for d in DASHBOARDS:  # the same datasets as without the stray folder
            for ext in ("csv", "parquet"):
                assert (out / "datasets" / f"{d.view}.{ext}").read_bytes() == \
                    (first / "datasets" / f"{d.view}.{ext}").read_bytes(), (d.view, ext)
        assert _one(_events(lake), "SELECT count(*) FROM events") == \
            _one(duckdb.connect(), f"SELECT count(*) FROM '{lake}/events/event_date=*/*.parquet'")
    finally:
        (stray / "x.parquet").unlink()
        stray.rmdir()
