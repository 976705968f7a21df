"""Discovery: layouts recognised from paths, pruning by date folders, account and region."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.discover import Scope, classify, discover
from jobs.errors import UsageError
from tests.conftest import record, trail_path, write


def test_standard_layout():
    f = classify("s3://b/p/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/02/x.json.gz", 10, "e")
    assert (f.account, f.region, f.folder_date, f.digest) == ("111122223333", "eu-west-1", dt.date(2026, 11, 2), False)


def test_organization_layout():
    f = classify("/t/AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2026/11/02/x.json.gz", 1, "")
    assert (f.account, f.region, f.folder_date) == ("111122223333", "us-east-1", dt.date(2026, 11, 2))


def test_digest_and_insight_layouts():
    d = classify("/t/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/02/x.json.gz", 1, "")
    i = classify("/t/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/02/x.json.gz", 1, "")
    assert d.digest and not i.digest and i.account == "111122223333"


def test_region_sync_layout_and_any_tree():
    f = classify("/copy/ap-southeast-2/2021/07/29/x.json.gz", 1, "")
    assert (f.account, f.region, f.folder_date) == (None, "ap-southeast-2", dt.date(2021, 7, 29))
    g = classify("/somewhere/else/events.json", 1, "")
    assert (g.account, g.region, g.folder_date) == (None, None, None)


def test_date_range_keeps_one_day_of_lookback(tmp_path):
    for day in ("2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"):
        write(trail_path(tmp_path, "111122223333", "us-east-1", day), [record()])
    found = discover([str(tmp_path)], Scope(since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 2)))
    assert sorted(str(f.folder_date) for f in found) == ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]


def test_account_and_region_prune_the_listing(tmp_path):
    for acct in ("111122223333", "444455556666"):
        for region in ("us-east-1", "eu-west-1"):
            write(trail_path(tmp_path, acct, region, "2026-11-01"), [record()])
    write(tmp_path / "loose" / "events.json", [record()])
    found = discover([str(tmp_path)], Scope(accounts=frozenset({"444455556666"}), regions=frozenset({"eu-west-1"})))
    assert sorted((f.account or "", f.region or "") for f in found) == [("", ""), ("444455556666", "eu-west-1")]


def test_glob_file_and_directory_sources_are_merged_once(tmp_path):
    a = write(tmp_path / "a" / "x.json", [record()])
    write(tmp_path / "a" / "y.json", [record()])
    write(tmp_path / "a" / ".hidden.json", [record()])
    found = discover([str(tmp_path / "a"), str(a), str(tmp_path / "a" / "*.json")], Scope())
    assert sorted(f.url.rsplit("/", 1)[1] for f in found) == ["x.json", "y.json"]


def test_missing_source_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="source not found"):
        discover([str(tmp_path / "nope")], Scope())
