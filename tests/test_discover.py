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


def test_a_local_glob_walks_its_matched_folders_in_path_order_each_file_once(tmp_path):
    """`AWSLogs/*/CloudTrail` (as the benchmark lists a bucket) is walked folder by folder like a folder source,
    and a pattern matching a folder and files inside it (`**`) still lists each file once."""
    for acct in ("111122223333", "444455556666"):
        for region, day in (("us-east-1", "2026-11-01"), ("eu-west-1", "2026-11-02")):
            for name in ("a", "b"):
                write(trail_path(tmp_path, acct, region, day, name), [record()])
    write(tmp_path / "AWSLogs" / "111122223333-old" / "CloudTrail" / "x.json", [record()])  # sorts between
    by_glob = [f.url for f in discover([str(tmp_path / "AWSLogs" / "*" / "CloudTrail")], Scope())]
    by_folder = [f.url for f in discover([str(tmp_path / "AWSLogs")], Scope())]
    assert len(by_glob) == 9 and by_glob == by_folder
    everything = [f.url for f in discover([str(tmp_path / "AWSLogs" / "**")], Scope())]
    assert sorted(everything) == sorted(by_folder) and len(set(everything)) == 9


def test_linked_folders_are_walked_each_real_folder_once(tmp_path):
    """A trail tree assembled from symlinks (a region's folder linked in from another disk) is read whole, by
    a folder source and a glob alike; a link back up the tree, or a second link to a folder already walked,
    does not list its files again, nor loop."""
    elsewhere = write(trail_path(tmp_path / "disk2", "111122223333", "eu-west-1", "2026-11-01", "b"), [record()])
    write(trail_path(tmp_path / "trail", "111122223333", "us-east-1", "2026-11-01", "a"), [record()])
    region = tmp_path / "trail" / "AWSLogs" / "111122223333" / "CloudTrail" / "eu-west-1"
    region.symlink_to(elsewhere.parents[3], target_is_directory=True)  # …/disk2/…/CloudTrail/eu-west-1
    (region.parent / "us-east-1" / "loop").symlink_to(tmp_path / "trail", target_is_directory=True)
    (tmp_path / "trail" / "again").symlink_to(region, target_is_directory=True)
    for source in (tmp_path / "trail", tmp_path / "trail" / "AWSLogs" / "*" / "CloudTrail", tmp_path / "trail" / "**"):
        found = discover([str(source)], Scope())
        assert sorted((f.region, f.url.rsplit("_", 1)[1]) for f in found) == \
            [("eu-west-1", "b.json.gz"), ("us-east-1", "a.json.gz")], source
        assert str(region) in found[0].url or str(region) in found[1].url  # by the path as linked in the trail


def test_missing_source_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="source not found"):
        discover([str(tmp_path / "nope")], Scope())


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path):
    write(tmp_path / "a" / ".hidden.json", [record()])
    for pattern in ("typo/*", "a/*", "a/*/x", "**/nothing.json"):
        with pytest.raises(UsageError, match="nothing matches"):
            discover([str(tmp_path / pattern)], Scope())


def test_a_local_glob_matches_as_fsspec_does(tmp_path):
    """The local glob is trailhouse's own (fsspec's passes over a folder it cannot list in silence): the same
    matches for `*`, `?`, `[…]` and `**` anywhere in the pattern, hidden names left out."""
    from fsspec.implementations.local import LocalFileSystem

    from jobs.discover import _local_glob

    for acct in ("111122223333", "444455556666"):
        for day in ("2026-11-01", "2026-11-02", "2026-12-01"):
            write(trail_path(tmp_path, acct, "us-east-1", day, "a"), [record()])
    write(tmp_path / "AWSLogs" / "x.json", [record()])
    fs = LocalFileSystem()
    for pattern in ("AWSLogs/*", "AWSLogs/*/CloudTrail/*/2026/1?/0[12]", "AWSLogs/**", "AWSLogs/**/*.json.gz",
                    "AWSLogs/*/**/11/*", "**/x.json", "AWSLogs/1*/CloudTrail/us-east-1/2026/*/01/*", "*/*.json"):
        unlisted: list[OSError] = []
        ours = sorted(_local_glob(f"{tmp_path}/{pattern}", unlisted))
        assert ours == sorted(fs.glob(f"{tmp_path}/{pattern}")), pattern
        assert unlisted == []


def test_nested_sources_are_listed_once_without_remembering_every_file(tmp_path):
    """A folder and its subfolder (no glob): the subfolder is dropped up front, not deduplicated per file."""
    from jobs import discover as discover_mod

    inner = write(trail_path(tmp_path, "111122223333", "us-east-1", "2026-11-01", "a"), [record()])
    write(trail_path(tmp_path, "111122223333", "eu-west-1", "2026-11-01", "b"), [record()])
    sources = [str(inner.parent), str(tmp_path), str(tmp_path) + "/"]
    assert discover_mod._outermost(sources, discover_mod.S3Options()) == [str(tmp_path)]
    found = discover(sources, Scope())
    assert sorted(f.region for f in found) == ["eu-west-1", "us-east-1"]


def test_the_plan_is_cut_while_the_listing_streams(tmp_path):
    """The driver pulls files only as batches are needed: a few batches ahead, never the whole listing."""
    from jobs import ingest as ingest_mod

    pulled = []
    per_batch = ingest_mod.BATCH_BYTES // (10_000 * ingest_mod.GZIP_RATIO)

    def listing():
        for n in range(100_000):
            pulled.append(n)
            day = 1 + n // (300 * per_batch + per_batch * 2 // 3)  # the day changes in a batch over half full
            yield classify(f"/t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/{day:02d}/f{n:06d}.json.gz",
                           10_000, "v")

    batches = ingest_mod.plan(listing(), workers=2)
    first = next(batches)
    ahead = ingest_mod.BATCH_BYTES * 2 * 4 // (10_000 * ingest_mod.GZIP_RATIO)  # the read-ahead, in files
    assert len(first.files) == per_batch
    assert len(pulled) <= ahead + 1 < 100_000
    rest = list(batches)
    assert sum(len(b.files) for b in [first, *rest]) == 100_000 == len(pulled)
    # a batch never spans the two folder dates once it is at least half full
    assert all(len({f.folder_date for f in b.files}) == 1 for b in [first, *rest])
    assert [b.context[0].url for b in rest[:1]] == [first.files[-1].url]  # the stream continues: context


def test_the_plan_sizes_later_batches_by_what_the_run_learnt_of_its_files():
    """Files turn out to hold 16× their gzip size, not the 8× assumed: the batches cut from then on hold half
    as many files, so a worker's JSON stays near BATCH_BYTES."""
    from jobs import ingest as ingest_mod

    listing = (classify(f"/t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/f{n:05d}.json.gz", 10_000, "v")
               for n in range(20_000))
    inflation = ingest_mod.Inflation()
    batches = ingest_mod.plan(listing, workers=2, inflation=inflation)
    assumed = 10_000 * ingest_mod.GZIP_RATIO
    assert len(next(batches).files) == ingest_mod.BATCH_BYTES // assumed
    inflation.learn(ingest_mod.BatchResult(gzip_bytes=3_000_000, json_bytes=48_000_000))
    # the file that ended the first batch was sized before: it opens the second
    assert len(next(batches).files) == 1 + (ingest_mod.BATCH_BYTES - assumed) // 160_000
    assert len(next(batches).files) == ingest_mod.BATCH_BYTES // 160_000
    assert ingest_mod.Inflation().estimate(classify("/t/events.json", 5_000, "")) == 5_000  # plain JSON as it is


def test_a_run_needs_the_state_of_the_folders_its_listing_can_yield_again():
    from jobs.listing import listed_again

    stream = "trail/AWSLogs/111122223333/CloudTrail/us-east-1"
    known = {stream: dt.date(2026, 11, 20), "trail/x/AWSLogs/111122223333/CloudTrail/us-east-1": dt.date(2026, 11, 20)}

    def url(day: str, at: str = stream) -> str:
        return f"s3://{at}/{day.replace('-', '/')}/f.json.gz"

    def again(u: str, sources: list[str], scope: Scope = Scope(), lookback: int = 2) -> bool:
        return listed_again(u, sources, scope, known, lookback, dt.date(2026, 11, 21))

    # the trail lister, from the bucket, the account or the stream, lists the known stream's 11-18 … 11-22
    for source in ("s3://trail", "s3://trail/", "s3://trail/AWSLogs/111122223333", f"s3://{stream}"):
        assert again(url("2026-11-18"), [source]) and again(url("2026-11-21"), [source])
        assert not again(url("2026-11-17"), [source]) and not again(url("2025-01-01"), [source])
    assert again(url("2026-11-15"), ["s3://trail"], lookback=5)
    assert not again(url("2026-11-17"), ["s3://elsewhere"])  # no source of this run holds it
    assert not again(url("2026-11-17"), ["s3a://trail"])
    # an organization trail, and a digest stream, have windows of their own
    org = "trail/AWSLogs/o-abcdefghij/111122223333/CloudTrail/us-east-1"
    digest = "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1"
    known.update({org: dt.date(2026, 11, 20), digest: dt.date(2026, 11, 20)})
    for at in (org, digest):
        assert again(url("2026-11-18", at), ["s3://trail"]) and not again(url("2026-11-17", at), ["s3://trail"])
    assert not again(url("2026-11-17", org), ["s3://trail/AWSLogs/o-abcdefghij"])
    assert not again(url("2026-11-17", digest), [f"s3://{stream}"])  # a source that does not hold it
    # a date range lists its own window, whatever the lake has read
    assert again(url("2025-01-01"), ["s3://trail"], Scope(since=dt.date(2024, 12, 31)))
    assert not again(url("2026-11-17"), ["s3://trail"], Scope(since=dt.date(2026, 11, 19), until=dt.date(2026, 11, 20)))
    assert again(url("2026-11-17"), ["s3://trail"], Scope(until=dt.date(2026, 11, 19)))  # from the oldest year
    assert not again(url("2026-11-17"), ["s3://trail"], Scope(since=dt.date(2026, 11, 19)))
    # listed whole, so every folder's state is needed: a stream the lake never read, a source below the stream
    # folder, a glob beside it, a single file, a tree not right under the source, a local tree
    assert again(url("2026-11-17", "trail/AWSLogs/111122223333/CloudTrail/eu-west-1"), ["s3://trail"])
    assert again(url("2026-11-17"), [f"s3://{stream}/2026/11"])
    assert again(url("2026-11-17"), ["s3://trail", "s3://trail/AWSLogs/*/CloudTrail"])
    assert again(url("2026-11-17"), [url("2026-11-17")])
    assert again(url("2026-11-17"), [url("2026-11-17").replace("/f.json.gz", "/g.json.gz")])  # another file there
    assert again(url("2026-11-17"), ["s3://trail/AWSLogs/*/CloudTrail"])
    assert not again(url("2026-11-17"), ["s3://trail", "/data/*/CloudTrail"])  # a local glob holds no S3 object
    assert again(url("2026-11-17", "trail/x/AWSLogs/111122223333/CloudTrail/us-east-1"), ["s3://trail"])
    assert again("/data/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/17/f.json.gz", ["/data"])
