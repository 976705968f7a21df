"""S3 as source and lake, against a real S3 endpoint: moto's server on loopback, spoken to over HTTP by s3fs.

Nothing of boto is mocked in process: the requests go over the wire, the server records them
(to check which prefixes were listed) and injects throttling and errors (tests/s3server.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from queries import connect
from transforms.schema import LAKE_SCHEMA_VERSION
from tests.conftest import SAMPLE, ingest, last_run, record, s3_put_dies_at, s3fs_client, sql, trail_path, write

A1, A2, A3 = "111122223333", "444455556666", "777788889999"
ORG = "o-abcdefghij"


def upload(local: Path, bucket: str, prefix: str = "") -> None:
    fs = s3fs_client()
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.put_file(str(f), "/".join(x for x in (bucket, prefix, str(f.relative_to(local))) if x))


def lake_rows(url: str, query: str) -> list[tuple]:
    return connect(url, fs=s3fs_client()).sql(query).fetchall()


def runs(url: str) -> list[dict]:
    fs = s3fs_client()
    return [json.loads(fs.cat_file(p)) for p in sorted(fs.glob(url.removeprefix("s3://") + "/_state/runs/*.json"))]


def day_files(root: Path, account: str, region: str, days: list[str], org: str | None = None,
              per_day: int = 2) -> list[str]:
    """One file per day of the stream with `per_day` events dated that day; returns the event ids."""
    ids = []
    for day in days:
        recs = [record(time=f"{day}T12:00:0{n}Z", eid=f"{account}-{region}-{day}-{n}", account=account,
                       region=region, awsRegion=region) for n in range(per_day)]
        write(trail_path(root, account, region, day, "f", org=org), recs)
        ids += [r["eventID"] for r in recs]
    return ids


def days(first: str, n: int) -> list[str]:
    d = dt.date.fromisoformat(first)
    return [str(d + dt.timedelta(days=i)) for i in range(n)]


# --- reading ---------------------------------------------------------------------------
def test_ingest_from_s3_equals_ingest_from_disk(s3, tmp_path):
    upload(SAMPLE, "trail", "logs")
    s3_lake, disk_lake = tmp_path / "s3", tmp_path / "disk"
    assert ingest("s3://trail/logs", "--lake", s3_lake, "--workers", "2") == 0
    assert ingest(SAMPLE, "--lake", disk_lake, "--workers", "1") == 0
    query = "SELECT event.id, event.original FROM EVENTS ORDER BY 1"
    assert sql(s3_lake, query) == sql(disk_lake, query)
    paths = {r[0] for r in sql(s3_lake, "SELECT DISTINCT log.file.path FROM EVENTS")}
    assert all(p.startswith("s3://trail/logs/AWSLogs/") for p in paths)
    # folder by folder: never a listing of the whole bucket or of everything under AWSLogs/
    flat = [r for r in s3.requests if r.is_list and r.query.get("delimiter", [""])[0] != "/"]
    assert flat and all("/CloudTrail" in r.prefix for r in flat)
    # the state keeps each key's ETag: an unchanged bucket is skipped and nothing is written
    assert ingest("s3://trail/logs", "--lake", s3_lake) == 0
    assert len(list((s3_lake / "_state" / "runs").glob("*.json"))) == 1
    # a glob that matches nothing is a usage error, as a missing prefix is
    assert ingest("s3://trail/logs/AWSLogs/*/CloudTrial/*", "--lake", s3_lake) == 2
    assert len(list((s3_lake / "_state" / "runs").glob("*.json"))) == 1


def test_standard_and_organization_layouts_with_account_and_region_pruning(s3, tmp_path):
    src = tmp_path / "src"
    ids = day_files(src, A1, "us-east-1", ["2026-11-01"]) + day_files(src, A1, "eu-west-1", ["2026-11-01"])
    ids += day_files(src, A2, "us-east-1", ["2026-11-01"], org=ORG) + day_files(src, A2, "eu-west-1", ["2026-11-01"],
                                                                               org=ORG)
    ids += day_files(src, A3, "eu-west-1", ["2026-11-01"], org=ORG)
    upload(src, "trails")
    lake = tmp_path / "lake"
    assert ingest("s3://trails", "--lake", lake, "--workers", "1") == 0
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == sorted(ids)
    # one account and one region: only their folders are listed below the account level
    s3.clear()
    pruned = tmp_path / "pruned"
    assert ingest("s3://trails", "--lake", pruned, "--account", A2, "--region", "eu-west-1") == 0
    assert sorted(r[0] for r in sql(pruned, "SELECT event.id FROM EVENTS")) == [
        i for i in sorted(ids) if i.startswith(f"{A2}-eu-west-1")]
    listed = s3.lists()
    assert not [p for p in listed if A1 in p or A3 in p or "us-east-1" in p]
    assert any(f"AWSLogs/{ORG}/{A2}/CloudTrail/eu-west-1/" in p for p in listed)


def test_streams_are_listed_a_few_at_a_time_and_yielded_in_path_order(s3, tmp_path, monkeypatch):
    """More streams than listing threads: listed in chunks as the caller reads, every file once, in path order."""
    from jobs import listing
    from jobs.discover import Scope, iter_files

    monkeypatch.setattr(listing, "LIST_THREADS", 2)
    src = tmp_path / "src"
    for account in (A1, A2):
        for region in ("eu-west-1", "us-east-1", "us-west-2"):
            day_files(src, account, region, ["2026-11-01", "2026-11-02"])
    upload(src, "many")
    s3.clear()
    files = iter_files(["s3://many"], Scope())
    first = next(files)
    assert first.url.endswith(".json.gz") and f"/{A1}/CloudTrail/eu-west-1/2026/11/01/" in first.url
    # the delimiter listings down to the regions come first; then only the first chunk of streams is listed
    # (its second stream's listing may still be on its way to the server when the first file is yielded)
    inside = {p.split("/CloudTrail/", 1)[0].rsplit("/", 1)[-1] + "/" + p.split("/CloudTrail/", 1)[1].split("/")[0]
              for p in s3.lists() if "/CloudTrail/" in p and p.split("/CloudTrail/", 1)[1]}
    assert {f"{A1}/eu-west-1"} <= inside <= {f"{A1}/eu-west-1", f"{A1}/us-east-1"}
    urls = [first.url, *(f.url for f in files)]
    assert len(urls) == 12 == len(set(urls)) and urls == sorted(urls)


def test_a_date_range_lists_only_the_folders_in_range(s3, tmp_path):
    src = tmp_path / "src"
    day_files(src, A1, "us-east-1", days("2026-10-20", 30))
    upload(src, "trail")
    s3.clear()
    lake = tmp_path / "lake"
    assert ingest("s3://trail", "--lake", lake, "--since", "2026-11-05", "--until", "2026-11-06") == 0
    assert sorted({r[0] for r in sql(lake, "SELECT CAST(event_date AS VARCHAR) FROM EVENTS")}) == [
        "2026-11-05", "2026-11-06"]
    stream = f"trail/AWSLogs/{A1}/CloudTrail/us-east-1/"
    dated = sorted(p.removeprefix(stream) for p in s3.lists() if p.startswith(stream) and p != stream)
    # one day of slack each side (folders are delivery dates): 4 day folders, nothing else of the 30 days
    assert dated == ["2026/11/04/", "2026/11/05/", "2026/11/06/", "2026/11/07/"]
    assert len(s3.lists()) <= 4 + 4  # bucket, AWSLogs/, account, kind, then the four days


def test_a_late_file_for_a_past_day_is_picked_up_by_the_next_run(s3, tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    ids = day_files(src, A1, "us-east-1", days("2026-11-01", 5))
    upload(src, "trail")
    assert ingest("s3://trail", "--lake", lake) == 0
    # CloudTrail delivers a file into the 11-04 folder after 11-05 was ingested
    late = [record(time="2026-11-04T23:59:00Z", eid="late-1", account=A1)]
    write(trail_path(tmp_path / "late", A1, "us-east-1", "2026-11-04", "late"), late)
    upload(tmp_path / "late", "trail")
    s3.clear()
    assert ingest("s3://trail", "--lake", lake) == 0
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == sorted(ids + ["late-1"])
    # only the lookback window was listed: 2 days before the newest folder (11-05), up to today
    stream = f"trail/AWSLogs/{A1}/CloudTrail/us-east-1/"
    dated = [p.removeprefix(stream) for p in s3.lists() if p.startswith(stream) and p != stream]
    assert dated and dated[0] == "2026/11/03/" and "2026/11/02/" not in dated and "2026/11/" not in dated
    run = json.loads(sorted((lake / "_state" / "runs").glob("*.json"))[-1].read_text())
    assert (run["files_read"], run["events_written"]) == (1, 1)
    # a file delivered older than the lookback is found by a run given --since, never skipped forever
    write(trail_path(tmp_path / "later", A1, "us-east-1", "2026-11-01", "later"),
          [record(time="2026-11-01T08:00:00Z", eid="late-2", account=A1)])
    upload(tmp_path / "later", "trail")
    assert ingest("s3://trail", "--lake", lake, "--lookback-days", "10") == 0
    assert "late-2" in {r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")}


def test_a_nightly_run_loads_the_state_of_its_window_not_of_every_file_ever_read(s3, tmp_path):
    from jobs import ingest as ingest_mod
    from jobs.discover import newest_folders
    from jobs.lake import input_key, open_lake, version_key
    from jobs.storage import S3Options

    src, lake = tmp_path / "src", tmp_path / "lake"
    day_files(src, A1, "us-east-1", days("2026-10-01", 30))
    day_files(src, A2, "eu-west-1", days("2026-10-21", 5))
    upload(src, "trail")
    assert ingest("s3://trail", "--lake", lake) == 0
    state = open_lake(str(lake), S3Options())
    folders = list(state.state_folders())
    assert len(folders) == 35  # one url of each stream × day folder
    opts = ingest_mod.Options(sources=["s3://trail"], lake=str(lake))
    known = newest_folders(folders)
    done = ingest_mod.ingested(state, folders, opts, known, dt.date(2026, 10, 31))
    # each stream's newest folder is 10-30 (A1) or 10-25 (A2): 2 days of lookback before it, nothing older
    inputs = pq.read_table(next((lake / "_state" / "files").glob("*.parquet"))).to_pylist()
    by_folder = {r["url"].split("/CloudTrail/")[1].rsplit("/", 1)[0]: r for r in inputs}
    window = ["eu-west-1/2026/10/23", "eu-west-1/2026/10/24", "eu-west-1/2026/10/25",
              "us-east-1/2026/10/28", "us-east-1/2026/10/29", "us-east-1/2026/10/30"]
    assert done == {input_key(r["url"]): version_key(r["size"], r["version"]) for f, r in by_folder.items()
                    if f in window}
    # the next night: the stream's new day is read, exactly the window's files are skipped, nothing is read again
    day_files(tmp_path / "night", A1, "us-east-1", ["2026-10-31"])
    upload(tmp_path / "night", "trail")
    assert ingest("s3://trail", "--lake", lake) == 0
    run = last_run(lake)
    assert (run["files_seen"], run["files_skipped"], run["files_read"], run["events_written"]) == (7, 6, 1, 2)
    # given a glob, a run lists the trail whole and needs every file's state
    glob = ingest_mod.Options(sources=["s3://trail/AWSLogs/*/CloudTrail"], lake=str(lake))
    assert len(ingest_mod.ingested(state, folders, glob, known, dt.date(2026, 10, 31))) == 35


def test_an_object_rewritten_with_a_new_etag_is_read_again(s3, tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    path = trail_path(src, A1, "us-east-1", "2026-11-01", "f")
    write(path, [record(eid="a"), record(eid="b")])
    upload(src, "trail")
    assert ingest("s3://trail", "--lake", lake) == 0
    write(path, [record(eid="a"), record(eid="b"), record(eid="c")])  # same key, new content and ETag
    upload(src, "trail")
    assert ingest("s3://trail", "--lake", lake) == 0
    run = json.loads(sorted((lake / "_state" / "runs").glob("*.json"))[-1].read_text())
    assert (run["files_read"], run["events_read"], run["events_written"], run["duplicates"]) == (1, 3, 1, 2)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["a", "b", "c"]


def test_throttling_is_retried_and_an_object_that_keeps_failing_is_quarantined_then_retried(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")  # fewer backoff rounds before the broken object is given up
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, A1, "us-east-1", "2026-11-01", "slow"), [record(eid="s")])
    write(trail_path(src, A1, "us-east-1", "2026-11-01", "broken"), [record(eid="b")])
    upload(src, "trail")
    s3.faults.update({"_slow.json.gz": 2, "_broken.json.gz": -1})
    s3.hard.add("_broken.json.gz")
    assert ingest("s3://trail", "--lake", lake, "--workers", "1") == 3
    gets = Counter(r.path.rsplit("_", 1)[-1] for r in s3.requests if r.method == "GET" and not r.is_list)
    assert gets["slow.json.gz"] >= 3 and gets["broken.json.gz"] >= 3  # retried with backoff
    assert [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")] == ["s"]
    (entry,) = [json.loads(line) for f in (lake / "quarantine").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert entry["source"].endswith("_broken.json.gz") and entry["reason"].startswith("cannot read the file")
    # not the file's fault: the next run tries it again
    s3.faults.clear()
    assert ingest("s3://trail", "--lake", lake, "--workers", "1") == 0
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["b", "s"]


def test_a_stream_whose_every_download_failed_is_listed_whole_by_the_next_run(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    src, lake = tmp_path / "src", tmp_path / "lake"
    ids = day_files(src, A1, "us-east-1", days("2026-11-01", 5))  # five days, one file each, all named …_f
    upload(src, "trail")
    s3.faults.update({"_f.json.gz": -1})
    s3.hard.add("_f.json.gz")
    assert ingest("s3://trail", "--lake", lake, "--workers", "1") == 3  # nothing could be read
    s3.faults.clear()
    # the stream counts as never read: no lookback window, every day is listed and read again
    assert ingest("s3://trail", "--lake", lake, "--workers", "1") == 0
    assert last_run(lake)["files_read"] == 5
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == sorted(ids)


def test_requester_pays_is_sent(s3, tmp_path):
    write(trail_path(tmp_path / "src", A1, "us-east-1", "2026-11-01"), [record(eid="r")])
    upload(tmp_path / "src", "trail")
    s3.clear()
    assert ingest("s3://trail", "--lake", tmp_path / "lake", "--requester-pays", "--workers", "1") == 0
    reads = [r for r in s3.requests if r.is_list or r.path.endswith(".json.gz")]
    assert len(reads) >= 6 and all(r.payer == "requester" for r in reads)


# --- credentials -------------------------------------------------------------------------
def test_missing_or_wrong_credentials_are_one_line_and_exit_2(s3, tmp_path, monkeypatch, capsys):
    import moto.settings

    upload(SAMPLE, "trail")
    lake = tmp_path / "lake"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert ingest("s3://trail", "--lake", lake) == 2
    assert ingest(SAMPLE, "--lake", "s3://lake-bucket/lake") == 2
    assert main(["sql", "--lake", "s3://lake-bucket/lake", "SELECT 1"]) == 2
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server checks signatures now
    assert ingest("s3://trail", "--lake", lake) == 2
    assert ingest("s3://trail", "--lake", lake, "--profile", "nobody") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("trailhouse: ") for line in err), err
    assert all("no AWS credentials" in line for line in err[:3])
    assert "S3 refused access" in err[3] and "InvalidAccessKeyId" in err[3]
    assert "nobody" in err[4] and "profile" in err[4]
    assert "Traceback" not in "".join(err) and not lake.exists()


# --- the lake on S3 --------------------------------------------------------------------------
def test_a_lake_on_s3_is_written_incrementally_and_queried(s3, tmp_path, capsys):
    upload(SAMPLE, "trail")
    fs = s3fs_client()
    fs.mkdir("lakes")
    url = "s3://lakes/prod"
    assert ingest("s3://trail", "--lake", url, "--workers", "2") == 0
    local = tmp_path / "local"
    assert ingest(SAMPLE, "--lake", local, "--workers", "1") == 0
    query = "SELECT event.id, event.original FROM events ORDER BY 1"
    assert lake_rows(url, query) == sql(local, query.replace("events", "EVENTS"))
    # the same layout as on disk, and nothing left behind by the commit
    keys = fs.find("lakes/prod")
    assert all(k.startswith(("lakes/prod/events/event_date=", "lakes/prod/digests/event_date=", "lakes/prod/_state/"))
               for k in keys), keys
    assert not [k for k in keys if "/journal/" in k or k.endswith("/lock")]
    # trailhouse sql and findings read it through s3fs
    capsys.readouterr()
    assert main(["sql", "--lake", url, "--format", "csv", "SELECT count(*) FROM events"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == str(len(lake_rows(url, query)))
    assert main(["findings", "--lake", url, "--format", "csv"]) == 0
    # a rerun writes nothing; a new file is merged into its partition without duplicates
    before = sorted(keys)
    assert ingest("s3://trail", "--lake", url) == 0
    assert sorted(fs.find("lakes/prod")) == before
    extra = tmp_path / "extra"
    write(trail_path(extra, "154335349840", "us-east-1", "2026-11-02", "extra"),
          [record(time="2026-11-02T10:00:00Z", eid="new-1"), json.loads(sql(local, "SELECT event.original FROM EVENTS "
                                                                               "ORDER BY event.id LIMIT 1")[0][0])])
    upload(extra, "trail")
    assert ingest("s3://trail", "--lake", url) == 0
    ids = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    assert len(ids) == len(set(ids)) == len(before_ids := {r[0] for r in sql(local, "SELECT event.id FROM EVENTS")}) + 1
    assert "new-1" in ids and before_ids < set(ids)


def test_a_commit_that_dies_before_its_state_is_rolled_back(s3, tmp_path, monkeypatch):
    upload(SAMPLE, "trail")
    url = "s3://lakes/crash"
    s3fs_client().mkdir("lakes")
    undo = s3_put_dies_at(monkeypatch, "/_state/files/")  # the data files are up, the commit point is not
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 1
    fs = s3fs_client()
    assert fs.glob("lakes/crash/events/*/*.parquet") and fs.glob("lakes/crash/_state/journal/*.json")
    undo()
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0
    last = runs(url)[-1]
    assert len(last["recovered_runs"]) == 1 and last["files_read"] == last["files_seen"]  # read again
    ids = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    local = tmp_path / "clean"
    assert ingest(SAMPLE, "--lake", local, "--workers", "1") == 0
    assert sorted(ids) == sorted(r[0] for r in sql(local, "SELECT event.id FROM EVENTS"))
    assert not fs.glob("lakes/crash/_state/journal/*")


def test_a_commit_that_dies_after_its_state_is_finished_by_the_next_run(s3, tmp_path, monkeypatch):
    upload(SAMPLE, "trail")
    url = "s3://lakes/crash"
    s3fs_client().mkdir("lakes")
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0
    from jobs.s3lake import S3Lake

    real_finish = S3Lake._finish
    monkeypatch.setattr(S3Lake, "_finish", lambda self, journal: (_ for _ in ()).throw(RuntimeError("crash")))
    assert ingest("s3://trail", "--lake", url, "--full-refresh", "--workers", "1") == 1
    ids = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    assert len(ids) == 2 * len(set(ids))  # old and new files side by side until the run is settled
    monkeypatch.setattr(S3Lake, "_finish", real_finish)
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0
    ids2 = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    assert sorted(ids2) == sorted(set(ids))
    assert len(s3fs_client().glob("lakes/crash/_state/files/*.parquet")) == 1  # the full refresh's state only


def test_an_s3_lake_is_marked_with_a_new_schema_version_by_the_commit_that_stands(s3, monkeypatch):
    """The version marker is written with the commit, rolled forward with it: a refused full refresh of an older
    lake leaves its marker, one that died after its state file marks it once the next run settles it."""
    upload(SAMPLE, "trail")
    fs = s3fs_client()
    fs.mkdir("lakes")
    url, marker = "s3://lakes/old", "lakes/old/_state/lake.json"
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0
    assert json.loads(fs.cat(marker)) == {"schema_version": LAKE_SCHEMA_VERSION}
    fs.pipe(marker, json.dumps({"schema_version": LAKE_SCHEMA_VERSION - 1}).encode())
    broken = sorted(fs.glob("trail/AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"))[3]
    good = fs.cat(broken)
    fs.pipe(broken, b"not gzip at all")
    assert ingest("s3://trail", "--lake", url, "--workers", "1", "--full-refresh") == 1
    assert json.loads(fs.cat(marker))["schema_version"] == LAKE_SCHEMA_VERSION - 1
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 2  # still refused: nothing was rebuilt
    fs.pipe(broken, good)
    from jobs.s3lake import S3Lake

    real_finish = S3Lake._finish
    monkeypatch.setattr(S3Lake, "_finish", lambda self, journal: (_ for _ in ()).throw(RuntimeError("crash")))
    assert ingest("s3://trail", "--lake", url, "--full-refresh", "--workers", "1") == 1
    assert json.loads(fs.cat(marker))["schema_version"] == LAKE_SCHEMA_VERSION - 1
    monkeypatch.setattr(S3Lake, "_finish", real_finish)
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0  # settles the refresh, then runs
    assert json.loads(fs.cat(marker)) == {"schema_version": LAKE_SCHEMA_VERSION}
    ids = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    assert ids and len(ids) == len(set(ids))  # the refresh's files only, its old ones deleted


@pytest.mark.parametrize("point", ["after-journal", "after-upload", "after-marker"])
def test_sigterm_during_an_s3_commit_waits_for_its_end(s3, monkeypatch, capsys, point):
    """Once the journal is up, SIGTERM waits for the commit's end, uploads included (an orchestrator that will
    not wait kills the run, and the next run settles the journal, as the crash tests show): exit 143, said so,
    the lake holds each event once, no journal and no lock are left, and the next run has nothing to do."""
    upload(SAMPLE, "trail")
    s3fs_client().mkdir("lakes")
    url = "s3://lakes/stopped"
    monkeypatch.setenv("TRAILHOUSE_FAILPOINT", f"{point}:1:TERM")
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 143
    err = capsys.readouterr().err
    assert err == "trailhouse: terminated (SIGTERM) while committing; the run finished its commit first\n", err
    assert not s3fs_client().glob("lakes/stopped/_state/journal/*") and not s3fs_client().exists("lakes/stopped/_state/lock")
    ids = [r[0] for r in lake_rows(url, "SELECT event.id FROM events")]
    assert len(ids) > 100 and len(ids) == len(set(ids))
    monkeypatch.delenv("TRAILHOUSE_FAILPOINT")
    assert ingest("s3://trail", "--lake", url, "--workers", "1") == 0
    out = capsys.readouterr().out
    assert "recovered" not in out and "events      read 0 ·" in out, out


def test_a_second_ingest_on_an_s3_lake_is_refused_while_the_first_holds_the_lock(s3, tmp_path, capsys):
    import socket

    fs = s3fs_client()
    fs.mkdir("lakes")
    fs.pipe_file("lakes/busy/_state/lock", json.dumps({"pid": 1, "host": "other-host" + socket.gethostname(),
                                                        "since": __import__("time").time()}).encode())
    upload(SAMPLE, "trail")
    assert ingest("s3://trail", "--lake", "s3://lakes/busy") == 1
    assert "another ingest is running" in capsys.readouterr().err
    assert not fs.glob("lakes/busy/events/*")


def test_past_the_file_bound_an_s3_partitions_small_files_are_compacted(s3, tmp_path, monkeypatch):
    """The compaction counts the rows of the lake's files (on S3) and of the run's new ones (local) alike."""
    from jobs import lake as lake_mod

    monkeypatch.setattr(lake_mod, "SMALL_FILE_ROWS", 3)
    monkeypatch.setattr(lake_mod, "MAX_FILES_PER_PARTITION", 2)
    fs = s3fs_client()
    fs.mkdir("lakes")
    url, src = "s3://lakes/small", tmp_path / "src"
    write(trail_path(src, "111122223333", "us-east-1", "2026-11-01", "big"), [record(eid=f"b{n}") for n in range(5)])
    assert ingest(src, "--lake", url, "--workers", "1") == 0
    for n in range(3):
        write(trail_path(src, "111122223333", "us-east-1", "2026-11-01", f"late{n}"), [record(eid=f"l{n}")])
        assert ingest(src, "--lake", url, "--workers", "1") == 0
    held = sorted(pq.read_metadata(k, filesystem=fs).num_rows
                  for k in fs.find("lakes/small/events/event_date=2026-11-01"))
    assert held == [3, 5]  # the 3 one-event files compacted into one; the 5-event file kept
    assert sorted(r[0] for r in lake_rows(url, "SELECT event.id FROM events")) == ["b0", "b1", "b2", "b3", "b4",
                                                                                   "l0", "l1", "l2"]
