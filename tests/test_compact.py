"""`trailhouse compact`: fewer, sorted, smaller files, every event kept, atomic like an ingest."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jobs import compact
from jobs.cli import main
from jobs.generate import Spec, generate
from tests.conftest import (ingest, lake_files, last_run, record, s3_put_dies_at, s3fs_client, sql, trail_path, trailhouse,
                            write)
from transforms.schema import SORT_KEYS

EVERYTHING = "SELECT * FROM EVENTS ORDER BY event.id"


def lake_of_three_runs(tmp_path: Path, days: int = 2) -> Path:
    """A lake of three ingests of different trails: each day holds a file per run (as nightly runs leave it)."""
    lake = tmp_path / "lake"
    for seed in (1, 2, 3):
        src = tmp_path / f"src{seed}"
        generate(Spec(events=3000, seed=seed, accounts=2, regions=2, days=days), str(src))
        assert ingest(src, "--lake", lake, "--workers", "1") == 0
    return lake


def partition_files(lake: Path, table: str = "events") -> dict[str, list[str]]:
    return {d.name: sorted(p.name for p in d.glob("*.parquet")) for d in sorted((lake / table).iterdir())}


def row_groups_sorted(path: Path, table: str = "events") -> bool:
    keys = [(pc.field(*k.split(".")), "ascending") for k in SORT_KEYS[table]]
    f = pq.ParquetFile(path)
    return all(pc.sort_indices(rg := f.read_row_group(i), sort_keys=keys).to_pylist() == list(range(rg.num_rows))
               for i in range(f.num_row_groups))


def size(lake: Path, tables: tuple[str, ...] = ("events",)) -> int:
    return sum(p.stat().st_size for t in tables for p in (lake / t).rglob("*.parquet"))


def test_each_partition_becomes_one_sorted_smaller_file_holding_every_event(tmp_path, capsys):
    lake = lake_of_three_runs(tmp_path)
    before, bytes_before = sql(lake, EVERYTHING), size(lake)
    both_before = size(lake, ("events", "digests"))
    assert all(len(files) >= 3 for files in partition_files(lake).values())
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "trailhouse compact" in out and "rows" in out
    after = partition_files(lake)
    assert all(len(files) == 1 and "-compact-" in files[0] for files in after.values())
    assert all(len(files) == 1 for files in partition_files(lake, "digests").values())
    assert sql(lake, EVERYTHING) == before  # every column of every event, unchanged
    assert size(lake) < bytes_before
    for day, (name,) in after.items():
        assert row_groups_sorted(lake / "events" / day / name)
    run = last_run(lake)
    assert run["command"] == "compact" and run["rows"] == len(before) + sql(lake, "SELECT count(*) FROM DIGESTS")[0][0]
    assert run["files_after"] < run["files_before"] and run["bytes_after"] < run["bytes_before"]
    assert (run["bytes_before"], run["bytes_after"]) == (both_before, size(lake, ("events", "digests")))
    assert not list((lake / "_tmp").iterdir()) and not (lake / "_state" / "lock").exists()


def test_a_second_compaction_writes_nothing_and_a_later_ingest_is_compacted_with_the_part_filled_file(tmp_path,
                                                                                                       capsys):
    lake = lake_of_three_runs(tmp_path)
    assert main(["compact", "--lake", str(lake)]) == 0
    files = lake_files(lake)
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake)]) == 0
    assert "nothing to compact" in capsys.readouterr().out
    assert lake_files(lake) == files
    src = tmp_path / "src4"
    generate(Spec(events=2000, seed=4, accounts=2, regions=2, days=2), str(src))
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    before = sql(lake, EVERYTHING)
    assert any(len(f) > 1 for f in partition_files(lake).values())
    assert main(["compact", "--lake", str(lake)]) == 0
    assert all(len(f) == 1 for f in partition_files(lake).values())
    assert sql(lake, EVERYTHING) == before


def test_only_partitions_in_since_until_are_rewritten(tmp_path):
    lake = lake_of_three_runs(tmp_path, days=3)
    before = partition_files(lake)
    days = sorted(before)
    first = days[0].split("=")[1]
    assert main(["compact", "--lake", str(lake), "--until", first]) == 0
    after = partition_files(lake)
    assert len(after[days[0]]) == 1 and "-compact-" in after[days[0]][0]
    assert all(after[d] == before[d] for d in days[1:])
    assert main(["compact", "--lake", str(lake), "--since", "2026-10-01", "--until", "2026-09-01"]) == 2


def test_files_an_older_commit_rewrote_and_files_a_worker_wrote_are_compacted_together(tmp_path):
    """Commits before `lake.write_part` rewrote files with DuckDB's writer, which marks `@timestamp` required
    and stores no Arrow schema; a worker's file does not mark it: the two are one table all the same (the SANS
    lab trail, which re-delivers, found it), and the compacted lake is one Polars reads whole."""
    import duckdb
    import polars as pl

    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, "111122223333", "us-east-1", "2026-11-01", "a"), [record(eid=f"a{n}") for n in range(5)])
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    write(trail_path(src, "111122223333", "us-east-1", "2026-11-01", "b"),
          [record(eid="a4"), *(record(eid=f"b{n}", name="RunInstances") for n in range(3))])
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    files = sorted((lake / "events").rglob("*.parquet"))
    older = files[-1].with_name("older.parquet")  # b's file as an older commit wrote it
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{files[-1]}', hive_partitioning = false)) TO '{older}' "
               "(FORMAT parquet, COMPRESSION zstd)")
    os.replace(older, files[-1])
    assert sorted(pq.read_schema(f).field("@timestamp").nullable for f in files) == [False, True]
    with pytest.raises(pl.exceptions.SchemaError):  # b's JSON payloads read as binary, a's as JSON
        pl.scan_parquet(lake / "events", hive_partitioning=True).collect()
    before = sql(lake, EVERYTHING)
    assert main(["compact", "--lake", str(lake)]) == 0
    assert sql(lake, EVERYTHING) == before and len(before) == 8
    assert len(list((lake / "events").rglob("*.parquet"))) == 1
    assert pl.scan_parquet(lake / "events", hive_partitioning=True).collect().height == 8


def test_files_are_cut_at_their_row_bound_and_sorts_at_theirs_full_compacted_files_are_kept():
    held = {"part-a-b000.parquet": 30, "part-a-b001.parquet": 30, "part-a-b002.parquet": 30,
            "part-x-compact-000.parquet": 100, "part-y-compact-000.parquet": 40}
    plan = compact.rewrites("events", "2026-11-01", held, "r", Path("/out"), file_rows=100, sort_rows=60)
    # the full compacted file is kept; the part-filled one is rewritten with the new files
    assert [j.units for j in plan] == [[["part-a-b000.parquet", "part-a-b001.parquet"], ["part-a-b002.parquet"]],
                                       [["part-y-compact-000.parquet"]]]
    assert [j.rows for j in plan] == [90, 40] and plan[0].out == "/out/part-r-compact-000.parquet"
    # nothing new: a lone compacted file or only full ones; a lone batch file is compacted
    assert compact.rewrites("events", "d", {"part-y-compact-000.parquet": 40}, "r", Path("/o")) == []
    assert compact.rewrites("events", "d", {"part-x-compact-000.parquet": 100}, "r", Path("/o"), file_rows=100) == []
    assert len(compact.rewrites("events", "d", {"part-a-b000.parquet": 5}, "r", Path("/o"))) == 1


def test_a_big_day_is_written_as_several_files_of_several_sorted_row_groups(tmp_path, monkeypatch):
    lake = lake_of_three_runs(tmp_path, days=1)
    before = sql(lake, EVERYTHING)
    monkeypatch.setattr(compact, "COMPACT_ROWS", 4000)
    monkeypatch.setattr(compact, "SORT_ROWS", 2500)
    assert main(["compact", "--lake", str(lake), "--workers", "1"]) == 0
    files = [p for p in (lake / "events").rglob("*.parquet")]
    rows = {p.name: pq.read_metadata(p).num_rows for p in files}
    assert len(files) > 2 and all("-compact-" in n for n in rows)
    assert sum(rows.values()) == len(before) and sql(lake, EVERYTHING) == before
    assert any(pq.ParquetFile(p).num_row_groups > 1 for p in files)
    assert all(row_groups_sorted(p) for p in files)
    # a later ingest of the day: the full compacted files are kept as they are, and counted as they are
    monkeypatch.setattr(compact, "COMPACT_ROWS", min(rows.values()))  # every compacted file counts as full
    full = {p.name: p.stat().st_size for p in files}
    generate(Spec(events=1000, seed=4, accounts=2, regions=2, days=1), str(tmp_path / "src4"))
    assert ingest(tmp_path / "src4", "--lake", lake, "--workers", "1") == 0
    assert main(["compact", "--lake", str(lake), "--workers", "1"]) == 0
    after = {p.name: p.stat().st_size for p in (lake / "events").rglob("*.parquet")}
    assert {n: after[n] for n in full} == full and len(after) > len(full)
    run = last_run(lake)
    assert run["bytes_after"] == size(lake, ("events", "digests"))
    assert run["files_after"] == len(after) + len(list((lake / "digests").rglob("*.parquet")))


def test_a_compaction_waits_for_an_ingest_and_says_which_run_holds_the_lake(tmp_path, capsys):
    lake = lake_of_three_runs(tmp_path, days=1)
    files = lake_files(lake)
    lock = lake / "_state" / "lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}))
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake)]) == 1
    assert "another ingest is running on this lake" in capsys.readouterr().err
    assert lake_files(lake) == files
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now",
                                "command": "compact"}))
    assert ingest(tmp_path / "src1", "--lake", lake) == 1
    assert "another compact is running on this lake" in capsys.readouterr().err


@pytest.mark.parametrize("point", ["before-journal", "after-journal", "partition-swapped"])
def test_a_compaction_killed_in_its_commit_leaves_the_old_or_the_new_lake_and_the_next_run_settles_it(tmp_path,
                                                                                                       point):
    lake = lake_of_three_runs(tmp_path)
    before = sql(lake, EVERYTHING)
    env = {**os.environ, "TRAILHOUSE_FAILPOINT": point}
    import subprocess
    import sys

    from tests.conftest import ROOT

    died = subprocess.run([sys.executable, "-m", "jobs.cli", "compact", "--lake", str(lake), "--workers", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert died.returncode == -9, died.stderr
    assert sql(lake, EVERYTHING) == before  # readers see every event, whichever side of the swap they are on
    done = trailhouse(tmp_path, "compact", "--lake", lake, user=False)
    assert done.returncode == 0, done.stderr
    assert ("recovered" in done.stdout) == (point != "before-journal")
    assert all(len(f) == 1 for f in partition_files(lake).values())
    assert sql(lake, EVERYTHING) == before


def test_an_s3_lake_is_compacted_and_its_old_objects_deleted_and_a_crash_before_its_summary_rolls_back(
        s3, tmp_path, monkeypatch, capsys):
    fs = s3fs_client()
    fs.mkdir("lakes")
    url = "s3://lakes/c"
    for seed in (1, 2):
        src = tmp_path / f"src{seed}"
        generate(Spec(events=1500, seed=seed, accounts=1, regions=1, days=1), str(src))
        assert ingest(src, "--lake", url, "--workers", "1") == 0
    local = tmp_path / "local"
    for seed in (1, 2):
        assert ingest(tmp_path / f"src{seed}", "--lake", local, "--workers", "1") == 0
    objects = sorted(fs.find("lakes/c/events"))
    assert len(objects) > 2
    undo = s3_put_dies_at(monkeypatch, "/_state/runs/")  # the compacted files are up, the commit point is not
    assert main(["compact", "--lake", url, "--workers", "1"]) == 1
    undo()
    assert fs.glob("lakes/c/_state/journal/*.json")
    assert main(["compact", "--lake", url, "--workers", "2"]) == 0
    assert "recovered" in capsys.readouterr().out
    fs = s3fs_client()
    after = sorted(fs.find("lakes/c/events"))
    assert len(after) == 1 and "-compact-" in after[0] and not set(after) & set(objects)
    assert not fs.glob("lakes/c/_state/journal/*") and not fs.exists("lakes/c/_state/lock")
    from tests.test_s3 import lake_rows

    query = "SELECT event.id, event.original FROM events ORDER BY 1"
    assert lake_rows(url, query) == sql(local, query.replace("events", "EVENTS"))


def test_no_lake_or_a_damaged_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["compact", "--lake", str(tmp_path / "nowhere")]) == 2
    assert "there is no lake at" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()
    lake = lake_of_three_runs(tmp_path, days=1)
    damaged = sorted((lake / "events").rglob("*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-100])
    files = lake_files(lake)
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{damaged} is not a valid Parquet file" in err
    assert lake_files(lake) == files and not (lake / "_state" / "lock").exists()


def test_a_partition_that_cannot_be_listed_stops_an_ingest_and_a_compaction_before_anything_is_written(tmp_path):
    """Path.glob saw an unreadable partition as empty: a compaction skipped it without a word (exit 0), and an
    ingest rebuilt it aside without its files, journaled that, and failed only when applying it."""
    lake = lake_of_three_runs(tmp_path, days=1)
    src = tmp_path / "late"
    generate(Spec(events=500, seed=9, accounts=1, regions=1, days=1), str(src))
    (day,) = (lake / "events").iterdir()
    files, state = lake_files(lake), sorted(p.name for p in (lake / "_state" / "files").iterdir())
    before, reference = sql(lake, "SELECT event.id FROM EVENTS"), tmp_path / "reference"
    shutil.copytree(lake, reference)
    day.chmod(0o300)  # writable and enterable, not listable
    try:
        for args in (("compact", "--lake", lake), ("ingest", src, "--lake", lake, "--workers", "1")):
            proc = trailhouse(tmp_path, *args)
            assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout)
            assert proc.stderr == f"trailhouse: permission denied: {day}: check its permissions and owner " \
                                  "(chmod/chown) for the user running trailhouse\n", args
            assert not list((lake / "_state" / "journal").glob("*")) and not (lake / "_state" / "lock").exists()
    finally:
        day.chmod(0o755)
    assert lake_files(lake) == files and sorted(p.name for p in (lake / "_state" / "files").iterdir()) == state
    assert trailhouse(tmp_path, "ingest", src, "--lake", lake, "--workers", "1").returncode == 0
    assert ingest(src, "--lake", reference, "--workers", "1") == 0
    ids = "SELECT event.id FROM EVENTS ORDER BY 1"
    assert sql(lake, ids) == sql(reference, ids) and len(sql(lake, ids)) > len(before)  # none lost, the new added
