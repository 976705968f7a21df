"""Reliability: crashes at any moment, hostile input, two ingests at once, a full disk, queries during an ingest.

The kill harness itself is tests/reliability.py (`make reliability` runs it at full size and
rewrites the figures of docs/reliability.md); here it runs at a size CI can afford.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import (ROOT, SAMPLE, as_a_user, ingest, last_run, quarantine, record, sql, trail_path, trailhouse,
                            write)
from tests.reliability import FAILPOINTS, trials

ACCT = "111122223333"


def test_killed_runs_always_leave_a_lake_equal_to_a_clean_run(tmp_path):
    report = trials(kills=len(FAILPOINTS) * 2 + 2, seed=3, work=tmp_path, events=4000)
    assert report["failed"] == [], report["failed"]
    assert report["trials"] == len(FAILPOINTS) * 2 + 2
    # every failpoint trial really died there (the random ones may finish before their kill)
    died = [o for o in report["outcomes"] if o["trial"].startswith("kill at")]
    assert len(died) == len(FAILPOINTS) * 2 and all(o["killed"] for o in died)


# --- hostile and broken input ------------------------------------------------------------
def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


def hostile_corpus(root: Path) -> dict:
    """Files that try to break the reader, with what must come of each: the good events land, the rest is
    quarantined with a reason."""
    good: list[str] = []
    expect_file_quarantine: dict[str, str] = {}  # file name → a word its reason must contain
    expect_record_quarantine: dict[str, int] = {}

    def put(name: str, data: bytes) -> Path:
        path = trail_path(root, ACCT, "us-east-1", "2026-11-01", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def ok(eid: str, **fields) -> dict:
        good.append(eid)
        return record(eid=eid, **fields)

    recs = [ok("t-ok"), record(eid="t-num", eventTime=1700000000), record(eid="t-bad", eventTime="yesterday")]
    put("times", _gz(json.dumps({"Records": recs}).encode()))
    expect_record_quarantine["times"] = 2
    put("types", _gz(json.dumps({"Records": [
        ok("ui-str", userIdentity="root"), ok("rp-str", requestParameters="x=1"), ok("rp-arr", requestParameters=[1, 2]),
        ok("rp-num", requestParameters=7), ok("re-bool", responseElements=True), ok("res-str", resources="arn:aws:s3:::b"),
        ok("ua-num", userAgent=12), ok("ip-obj", sourceIPAddress={"ip": "1.2.3.4"}), ok("tls-list", tlsDetails=[1]),
    ]}).encode()))
    nested: object = "bottom"
    for _ in range(300):
        nested = {"a": nested}
    put("deep", _gz(json.dumps({"Records": [ok("deep", requestParameters=nested)]}).encode()))
    put("big-event", _gz(json.dumps({"Records": [ok("big", requestParameters={"blob": "x" * 256 * 1024})]}).encode()))
    many = [ok(f"m{n}", requestParameters={"pad": "y" * 1200, "n": n}) for n in range(36_000)]
    put("fifty-mb", _gz(json.dumps({"Records": many}).encode()))  # ~50 MB of JSON
    bad_utf8 = json.dumps({"Records": [ok("u-ok"), record(eid="u-bad", userAgent="@@")]}).encode()
    put("utf8", _gz(bad_utf8.replace(b"@@", b"\xff\xfe")))
    expect_record_quarantine["utf8"] = 1
    put("bom", b"\xef\xbb\xbf" + json.dumps({"Records": [ok("bom")]}).encode())
    put("dupkeys", _gz(b'{"Records": [' + json.dumps(ok("dup-1"))[:-1].encode() + b', "eventName": "Second"}]}'))
    put("ndjson-nan", _gz((json.dumps(ok("nd-ok")) + "\n" + '{"eventID": "nd-nan", "x": NaN}\n').encode()))
    expect_record_quarantine["ndjson-nan"] = 1
    put("nan-in-records", _gz(('{"Records": [' + json.dumps(ok("inf-ok")) + ', {"eventID": "n", "x": Infinity}]}')
                              .encode()))
    expect_record_quarantine["nan-in-records"] = 1
    put("plain-named-gz", json.dumps({"Records": [ok("plain")]}).encode())  # a .gz that is not gzip, but JSON
    for name, data, word in [
        ("empty", b"", "empty"), ("zero-gz", _gz(b""), "empty"), ("garbage-gz", b"\x00\x01not gzip at all", "JSON"),
        ("records-null", _gz(b'{"Records": null}'), "Records"), ("records-object", _gz(b'{"Records": {"a": 1}}'), ""),
        ("truncated", _gz(json.dumps({"Records": [record()]}).encode())[:-20], "gzip"),
    ]:
        put(name, data)
        expect_file_quarantine[name] = word
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.json", json.dumps({"Records": [record()]}))
    put("a-zip", buf.getvalue())
    expect_file_quarantine["a-zip"] = "zip"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = json.dumps({"Records": [record()]}).encode()
        info = tarfile.TarInfo("x.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    put("a-tar", buf.getvalue())
    expect_file_quarantine["a-tar"] = "tar"
    return {"good": good, "files": expect_file_quarantine, "records": expect_record_quarantine}


def test_hostile_input_never_crashes_the_job_and_loses_nothing(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    expected = hostile_corpus(src)
    assert ingest(src, "--lake", lake, "--workers", "2") == 3
    ids = [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")]
    assert sorted(ids) == sorted(expected["good"])  # every valid event, once
    q = quarantine(lake)
    by_file: dict[str, list[dict]] = {}
    for entry in q:
        name = entry["source"].rsplit("_", 1)[-1].removesuffix(".json.gz")
        by_file.setdefault(name, []).append(entry)
        assert entry["reason"] and "Traceback" not in entry["reason"]
    for name, word in expected["files"].items():
        (entry,) = by_file.pop(name)
        assert entry["record"] is None and word.lower() in entry["reason"].lower(), (name, entry["reason"])
    for name, n in expected["records"].items():
        entries = by_file.pop(name)
        assert len(entries) == n and all(e["record"] is not None and ("original" in e or "original_base64" in e)
                                         for e in entries), entries
    assert by_file == {}
    run = last_run(lake)
    assert run["events_read"] == run["events_written"] + run["duplicates"] + run["events_quarantined"] \
        + run["events_filtered"]
    assert run["events_quarantined"] == sum(expected["records"].values())
    assert run["files_quarantined"] == len(expected["files"])
    # payloads stay exact: the deep one round-trips, the duplicate-key record keeps its text
    (deep,) = sql(lake, "SELECT event.original FROM EVENTS WHERE event.id = 'deep'")[0]
    assert json.loads(deep)["requestParameters"]["a"]["a"]["a"] is not None
    (dup,) = sql(lake, "SELECT event.original FROM EVENTS WHERE event.id = 'dup-1'")[0]
    assert dup.endswith('"eventName": "Second"}')


# infinite floats too: json.dumps writes them as `Infinity`, which is not JSON; that record alone is quarantined
_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
_FIELDS = ("eventTime", "eventName", "eventSource", "userIdentity", "requestParameters", "responseElements",
           "sourceIPAddress", "userAgent", "resources", "errorCode", "awsRegion", "recipientAccountId", "tlsDetails",
           "readOnly", "eventType", "additionalEventData")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _ANY), min_size=0, max_size=4), st.integers(0, 3))
def test_any_field_with_any_type_is_ingested_or_quarantined_never_lost(tmp_path_factory, mutations, n_good):
    tmp = tmp_path_factory.mktemp("prop")
    hostile = record(eid="hostile")
    for name, value in mutations:
        hostile[name] = value
    good = [record(eid=f"g{n}") for n in range(n_good)]
    write(trail_path(tmp / "src", ACCT, "us-east-1", "2026-11-01"), [*good, hostile])
    rc = ingest(tmp / "src", "--lake", tmp / "lake", "--workers", "1")
    assert rc in (0, 3)
    ids = {r[0] for r in sql(tmp / "lake", "SELECT event.id FROM EVENTS")} if (tmp / "lake" / "events").exists() \
        else set()
    assert {f"g{n}" for n in range(n_good)} <= ids
    q = quarantine(tmp / "lake")
    assert ("hostile" in ids) != bool(q)  # the hostile record landed, or it is quarantined with a reason
    assert all(e["reason"] for e in q)
    run = last_run(tmp / "lake")
    assert run["events_read"] == n_good + 1 == run["events_written"] + run["events_quarantined"]


def test_a_file_that_vanishes_or_grows_after_listing(tmp_path, monkeypatch):
    from jobs import ingest as ingest_mod

    src, lake = tmp_path / "src", tmp_path / "lake"
    gone = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "gone"), [record(eid="v1")])
    grows = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "grows"), [record(eid="g1")])
    listed = ingest_mod.iter_files

    def list_then_change(*args, **kwargs):
        found = list(listed(*args, **kwargs))
        gone.unlink()  # deleted between listing and reading
        write(grows, [record(eid="g1"), record(eid="g2")])  # rewritten bigger
        return iter(found)

    monkeypatch.setattr(ingest_mod, "iter_files", list_then_change)
    assert ingest(src, "--lake", lake, "--workers", "1") == 3
    (entry,) = quarantine(lake)
    assert entry["source"].endswith("_gone.json.gz") and "cannot read the file" in entry["reason"]
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["g1", "g2"]
    monkeypatch.setattr(ingest_mod, "iter_files", listed)
    assert ingest(src, "--lake", lake, "--workers", "1") == 0  # the grown file is read again (new size): no dup
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["g1", "g2"]


# --- concurrency and environment -----------------------------------------------------------
def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, **kwargs)


def test_two_ingests_at_once_one_runs_the_other_is_told_why(tmp_path):
    lake = tmp_path / "lake"
    procs = [subprocess.Popen([sys.executable, "-m", "jobs.cli", "ingest", str(SAMPLE), "--lake", str(lake),
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    if codes == [0, 0]:  # the second started after the first had finished: then it found nothing new
        assert len(list((lake / "_state" / "runs").glob("*.json"))) == 1
    else:
        assert codes == [0, 1]
        (err,) = [e for rc, e in results if rc == 1]
        assert err.count("\n") == 1 and "another ingest is running on this lake" in err
    ids = [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")]
    assert len(ids) == len(set(ids)) == 3016


def test_queries_during_an_ingest_see_the_old_or_the_new_partition_never_a_mix(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    day = "2026-11-01"
    for n in range(4):
        write(trail_path(src, ACCT, "us-east-1", day, f"old{n}"),
              [record(time=f"{day}T0{n}:00:00Z", eid=f"old-{n}-{i}") for i in range(500)])
    assert ingest(src, "--lake", lake, "--workers", "1") == 0
    for n in range(4):
        write(trail_path(src, ACCT, "us-east-1", day, f"new{n}"),
              [record(time=f"{day}T1{n}:00:00Z", eid=f"new-{n}-{i}") for i in range(500)] +
              [record(time=f"{day}T0{n}:00:00Z", eid=f"old-{n}-0")])  # a re-delivery: its file is rewritten
    seen: list[tuple[int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        con = duckdb.connect()
        while not stop.is_set():
            try:
                seen.append(con.sql(f"SELECT count(*), count(DISTINCT event.id) FROM read_parquet("
                                    f"'{lake}/events/event_date={day}/*.parquet')").fetchall()[0])
            except duckdb.Error as exc:  # a file swapped away between DuckDB's glob and its open
                errors.append(str(exc))

    t = threading.Thread(target=reader)
    t.start()
    proc = _cli("ingest", src, "--lake", lake, "--workers", "1")
    stop.set()
    t.join()
    assert proc.returncode == 0, proc.stderr
    assert seen and set(seen) <= {(2000, 2000), (4000, 4000)}, set(seen)  # never a mix, never a duplicate
    assert len(errors) <= len(seen)


def test_a_full_disk_is_one_line_exit_1_and_nothing_half_written(tmp_path):
    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    before = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "_state" not in p.parts}
    extra = tmp_path / "extra"
    write(trail_path(extra, ACCT, "us-east-1", "2026-11-01", "big"),
          [record(eid=f"x{n}", requestParameters={"pad": os.urandom(1000).hex()}) for n in range(3000)])

    def small_disk() -> None:  # every file this process writes is capped at 64 KB: the disk is "full"
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "ingest", str(extra), "--lake", str(lake),
                           "--workers", "1"], cwd=ROOT, capture_output=True, text=True, preexec_fn=small_disk)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trailhouse: ") and "Traceback" not in proc.stderr
    assert "space" in lines[0] or "too large" in lines[0].lower()
    after = {p: p.read_bytes() for p in sorted(lake.rglob("*.parquet")) if "_state" not in p.parts}
    assert after == before  # the lake is as it was
    assert ingest(extra, "--lake", lake, "--workers", "1") == 0  # and a rerun with room succeeds
    assert sql(lake, "SELECT count(*) FROM EVENTS WHERE event.id LIKE 'x%'")[0][0] == 3000


def test_a_folder_that_cannot_be_listed_is_quarantined_and_retried_every_run(tmp_path):
    """A day folder the job may not read: what it holds is unknown, so it is quarantined as unreadable (exit 3)
    instead of being passed over, by a folder source and by a glob alike, every run until it can be read."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "ok"), [record(eid="ok")])
    locked = write(trail_path(src, ACCT, "us-east-1", "2026-11-02", "locked"),
                   [record(time="2026-11-02T10:00:00Z", eid="locked")]).parent
    locked.chmod(0)
    try:
        for source in (src, src / "AWSLogs" / ACCT / "CloudTrail" / "us-east-1" / "2026" / "11" / "*"):
            for _ in range(2):  # the second run has state to skip by: the folder is reported again
                proc = trailhouse(tmp_path, "ingest", source, "--lake", lake, "--workers", "1")
                assert proc.returncode == 3, proc.stderr
                run = last_run(lake)
                assert (run["files_seen"], run["files_quarantined"]) == (2, 1)
                assert quarantine(lake)[-1]["source"] == str(locked)
                assert quarantine(lake)[-1]["reason"] == (
                    f"cannot list the folder: permission denied: {locked}: check its permissions and owner "
                    "(chmod/chown) for the user running trailhouse")
    finally:
        locked.chmod(0o755)
    assert [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")] == ["ok"]
    proc = trailhouse(tmp_path, "ingest", src, "--lake", lake, "--workers", "1")
    assert proc.returncode == 0, proc.stderr  # readable now: its file is read, the one read before skipped
    assert (last_run(lake)["files_read"], last_run(lake)["files_skipped"]) == (1, 1)
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["locked", "ok"]


def test_a_source_that_cannot_be_read_is_one_line_and_exit_2(tmp_path):
    """A source the user named, like a missing one: a folder, a file, the folder a glob starts from."""
    src, lake = tmp_path / "src", tmp_path / "lake"
    file = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "a"), [record()])
    for locked, source in ((src, src), (file, file), (file.parent, file.parent / "*.json.gz")):
        locked.chmod(0)
        try:
            proc = trailhouse(tmp_path, "ingest", source, "--lake", lake)
        finally:
            locked.chmod(0o755)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [f"trailhouse: cannot read the source: permission denied: {locked}: check "
                                            "its permissions and owner (chmod/chown) for the user running trailhouse"]
        assert not lake.exists()


def test_local_permission_errors_say_permission_denied_not_s3(tmp_path):
    """A local path the user may not write or read is named as such, with what to do: S3 has nothing to do
    with it (its credentials and IAM are said only for S3)."""
    lake, readonly = tmp_path / "lake", tmp_path / "readonly"
    write(trail_path(tmp_path / "src", ACCT, "us-east-1", "2026-11-01", "a"), [record()])
    assert ingest(tmp_path / "src", "--lake", lake) == 0
    readonly.mkdir()
    readonly.chmod(0o555)
    (lake / "_state" / "files").chmod(0)
    try:
        cases = [(["generate", "--out", readonly / "g", "--events", "10"], readonly / "g"),
                 (["dashboards", "--lake", lake, "--out", readonly], readonly / "datasets"),
                 (["bench", "--events", "10", "--workdir", readonly / "b"], readonly / "b"),
                 (["ingest", tmp_path / "src", "--lake", lake], lake / "_state" / "files")]
        for args, path in cases:
            proc = trailhouse(tmp_path, *args)
            assert proc.returncode == 2, (args, proc.stderr)
            assert proc.stderr.splitlines() == [f"trailhouse: permission denied: {path}: check its permissions and "
                                                "owner (chmod/chown) for the user running trailhouse"], args
    finally:
        readonly.chmod(0o755)
        (lake / "_state" / "files").chmod(0o755)
    assert list(readonly.iterdir()) == []
    assert len(list((lake / "_state" / "runs").glob("*.json"))) == 1  # the refused ingest wrote nothing


def test_a_fifo_or_socket_in_the_source_is_quarantined_never_opened(tmp_path):
    """Opening a FIFO waits for a writer forever: a file that is not a regular file is quarantined with what
    it is (the file's own fault, so not reported again while unchanged) and the rest lands."""
    import socket

    src, lake = tmp_path / "src", tmp_path / "lake"
    good = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "good"), [record(eid="g")])
    os.mkfifo(good.with_name("fifo.json.gz"))
    os.mkfifo(src / "pipe.json")
    kinds = {"fifo.json.gz": "a FIFO", "pipe.json": "a FIFO"}
    if len(str(src / "s.sock")) < 100:  # AF_UNIX paths are short
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(src / "s.sock"))
            kinds["s.sock"] = "a socket"
    cmd = ["ingest", src, "--lake", lake, "--workers", "1"]
    proc = trailhouse(tmp_path, *cmd, user=False, timeout=120)  # the old code never returned
    assert proc.returncode == 3, proc.stderr
    assert [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")] == ["g"]
    assert {Path(e["source"]).name: e["reason"] for e in quarantine(lake)} == {
        name: f"not a regular file ({kind}): only regular files are read; move it out of the source"
        for name, kind in kinds.items()}
    again = trailhouse(tmp_path, *cmd, user=False, timeout=120)
    assert again.returncode == 0  # unchanged: not reported again
    assert f"seen {len(kinds) + 1} · skipped as already ingested {len(kinds) + 1} · read 0" in again.stdout
    named = trailhouse(tmp_path, "ingest", src / "pipe.json", "--lake", tmp_path / "other", user=False, timeout=120)
    assert named.returncode == 2
    assert named.stderr.splitlines() == [f"trailhouse: the source {src / 'pipe.json'} is a FIFO: give a folder, "
                                         "a file or a glob"]


def test_an_input_that_cannot_be_opened_is_quarantined_and_retried(tmp_path):
    src, lake = tmp_path / "src", tmp_path / "lake"
    write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "ok"), [record(eid="ok")])
    locked = write(trail_path(src, ACCT, "us-east-1", "2026-11-01", "locked"), [record(eid="locked")])
    locked.chmod(0)
    # root reads anything: the job runs without the capabilities that bypass file permissions, as a user would
    cmd = [*as_a_user(tmp_path), sys.executable, "-m", "jobs.cli", "ingest", str(src), "--lake", str(lake),
           "--workers", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    (entry,) = quarantine(lake)
    assert entry["source"].endswith("_locked.json.gz")
    assert entry["reason"] == (f"cannot read the file: permission denied: {locked}: check its permissions and owner "
                               "(chmod/chown) for the user running trailhouse")  # a local file: not S3's
    assert [r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")] == ["ok"]
    locked.chmod(0o644)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # tried again, now that it can be read
    assert sorted(r[0] for r in sql(lake, "SELECT event.id FROM EVENTS")) == ["locked", "ok"]


def _a_run_still_reading(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path, list[int]]:
    """An ingest (2 workers, its own process group) that has written its first part files and is still reading;
    with the pids of its children (the workers, and the resource tracker a spawning pool starts)."""
    import shutil
    import time

    from jobs.generate import Spec, generate

    src, lake = tmp_path / "src", tmp_path / "lake"
    generate(Spec(events=60_000, seed=3, accounts=2, regions=2, days=2), str(src))
    # the same trail under three more roots (hard links: no copy): the run reads 240K events, so it is still
    # reading when the workers are checked. With 60K alone, a fast machine finished every batch within the
    # half second the Ctrl-C test waits, its workers exited as the pool closed, and it failed on their absence.
    for n in range(1, 4):
        shutil.copytree(src / "AWSLogs", src / f"copy{n}" / "AWSLogs", copy_function=os.link)
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "ingest", str(src), "--lake", str(lake),
                             "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((lake / "_staging").rglob("*.parquet")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the workers have written their first part files
    assert proc.poll() is None, "the run ended before it could be stopped"
    workers = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(workers) >= 2
    return proc, src, lake, workers


def test_ctrl_c_while_workers_read_is_one_line_exit_130_and_a_rerun_completes(tmp_path):
    """A terminal's Ctrl-C reaches the driver and its workers (one process group): the driver alone answers,
    with one line, its workers end quietly (a worker that took it as its own printed a traceback and broke the
    pool), and the lake is as it was."""
    import signal
    import time

    proc, src, lake, workers = _a_run_still_reading(tmp_path)
    for pid in workers:  # the workers alone: they leave it to the driver and go on
        os.kill(pid, signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None and all(Path(f"/proc/{pid}").exists() for pid in workers), proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: every process of the group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["trailhouse: interrupted; nothing was committed by this run"], err
    assert not (lake / "events").exists() or not any((lake / "events").iterdir())
    assert ingest(src, "--lake", lake) == 0
    assert last_run(lake)["events_written"] == sql(lake, "SELECT count(DISTINCT event.id) FROM EVENTS")[0][0] > 59_000


@pytest.mark.parametrize("to", ["driver", "group"])
def test_sigterm_stops_a_run_as_ctrl_c_does_exit_143_and_leaves_no_new_lake(tmp_path, to):
    """Orchestrators stop a job with SIGTERM: to the driver alone (`kill PID`, a container's first process) or to
    its whole group (systemd). The run stops as on Ctrl-C: one line, exit 143, its workers end (they leave the
    signal to the driver), its lock is released, and a lake it had just begun is not left behind. Before, the
    driver died at once: its lock stayed (on S3, for 12 hours to a run on another host) with its work areas."""
    import signal
    import time

    proc, src, lake, workers = _a_run_still_reading(tmp_path)
    if to == "driver":
        os.kill(proc.pid, signal.SIGTERM)
    else:
        for pid in workers:  # the workers alone: they leave it to the driver and go on
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None and all(Path(f"/proc/{pid}").exists() for pid in workers), proc.stderr.read()
        os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["trailhouse: terminated (SIGTERM); nothing was committed by this run"], err

    def running(pid: int) -> bool:
        try:
            return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10  # the workers are joined before the driver exits; its resource tracker
    while any(map(running, workers)) and time.monotonic() < deadline:  # ends once it sees the driver gone
        time.sleep(0.05)
    assert not any(map(running, workers))
    assert not lake.exists()  # the lake this run began: no lock, no work areas, no folders
    assert ingest(src, "--lake", lake) == 0
    assert last_run(lake)["events_written"] == sql(lake, "SELECT count(DISTINCT event.id) FROM EVENTS")[0][0] > 59_000


@pytest.mark.parametrize("point", ["after-journal", "partition-swapped:2", "after-apply"])
def test_sigterm_while_a_commit_is_applied_waits_for_its_end(tmp_path, point):
    """Once the commit's journal is written, SIGTERM waits: the run swaps its partitions, releases its lock and
    reports, then ends with 143 and says so. (Raised at once, it said "nothing was committed" of a commit that
    stood, or broke off the lock's release: on S3 a lock that holds off other hosts for 12 hours.)"""
    lake, clean = tmp_path / "lake", tmp_path / "clean"
    n, _, rest = point.partition(":")
    env = {**os.environ, "TRAILHOUSE_FAILPOINT": f"{n}:{rest or 1}:TERM"}
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "ingest", str(SAMPLE), "--lake", str(lake),
                           "--workers", "1"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr == "trailhouse: terminated (SIGTERM) while committing; the run finished its commit first\n"
    assert "events" in proc.stdout  # the summary, as after any run
    assert not list((lake / "_state" / "journal").iterdir()) and not (lake / "_state" / "lock").exists()
    assert ingest(SAMPLE, "--lake", clean, "--workers", "1") == 0
    query = "SELECT event.id, event.action, \"@timestamp\" FROM EVENTS ORDER BY ALL"
    assert sql(lake, query) == sql(clean, query) and len(sql(lake, query)) > 100


def test_ctrl_c_while_a_commit_is_applied_is_finished_by_the_next_run(tmp_path):
    """Ctrl-C between two partition swaps (Polars may own the SIGINT handler by then, so it is not held as
    SIGTERM is): the run says the next run completes its commit (exit 130), keeps what the journal needs (it
    removed its aside partitions before, so the next run's replay found nothing to swap and the lake held half
    the commit until the inputs were read again), and the next run completes it."""
    lake, clean = tmp_path / "lake", tmp_path / "clean"
    env = {**os.environ, "TRAILHOUSE_FAILPOINT": "partition-swapped:2:INT"}
    # Python's own Ctrl-C handler, as from a terminal (a background job inherits SIGINT ignored)
    run = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
           "from jobs.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", run, "ingest", str(SAMPLE), "--lake", str(lake), "--workers", "1"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.startswith("trailhouse: interrupted while committing; the next run on this lake "
                                  "completes") and proc.stderr.count("\n") == 1, proc.stderr
    assert len(list((lake / "_state" / "journal").glob("*.json"))) == 1
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    # the replay moved the stopped run's state in: the next run had nothing to read, and left no run of its own
    assert len(list((lake / "_state" / "runs").glob("*.json"))) == 1 and last_run(lake)["events_written"] > 100
    assert ingest(SAMPLE, "--lake", clean, "--workers", "1") == 0
    query = "SELECT event.id, event.action, \"@timestamp\" FROM EVENTS ORDER BY ALL"
    assert sql(lake, query) == sql(clean, query) and len(sql(lake, query)) > 100
    assert not list((lake / "_tmp").iterdir()) and not list((lake / "_state" / "journal").iterdir())


def test_a_command_run_from_another_thread_leaves_signals_alone(tmp_path, capsys):
    """A program that runs a command in a thread of its own: Python lets only the main thread set a signal's
    handler, so the command runs without one (it raised ValueError before it ran)."""
    from jobs.cli import main

    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    capsys.readouterr()
    codes = []
    t = threading.Thread(target=lambda: codes.append(main(["sql", "--lake", str(lake), "--format", "csv",
                                                           "SELECT count(*) AS n FROM events"])))
    t.start()
    t.join()
    assert codes == [0] and capsys.readouterr().out.splitlines()[1] == str(sql(lake, "SELECT count(*) FROM EVENTS")[0][0])


def test_sigterm_during_a_query_leaves_its_output_file_as_it_was(tmp_path, capsys):
    """SIGTERM during `sql --output FILE`: exit 143, one line, the file as it was, no partial file beside it
    (DuckDB answers the signal with an error of its own, which the CLI counts as the signal it was)."""
    import signal

    from jobs.cli import main

    lake = tmp_path / "lake"
    assert ingest(SAMPLE, "--lake", lake, "--workers", "1") == 0
    out = tmp_path / "result.csv"
    out.write_text("what was there\n")
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = main(["sql", "--lake", str(lake), "--output", str(out),
                     # DuckDB checks for a signal between its tasks: a scan is many (an aggregate over one
                     # range was one task here, and its cancel waited for the end of it)
                     "SELECT range AS x FROM range(100000000000) WHERE hash(range) = 0"])
    finally:
        timer.join()
    assert code == 143
    assert capsys.readouterr().err == "trailhouse: terminated (SIGTERM); nothing was committed by this run\n"
    assert out.read_text() == "what was there\n" and sorted(p.name for p in tmp_path.iterdir()) == ["lake", "result.csv"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the CLI's handler lives as long as a command


def test_ctrl_c_inside_a_duckdb_query_is_an_interrupt_not_an_internal_error(tmp_path):
    """DuckDB answers a Ctrl-C during a query (a partition merge at commit) with an error of its own, which the
    CLI must count as the interrupt it is (exit 130), not as a bug (exit 1)."""
    import signal

    from jobs.cli import _query_interrupted

    con = duckdb.connect(config={"temp_directory": str(tmp_path / "spill")})  # not .tmp/ in the working directory
    # Python's own Ctrl-C handler, as the CLI has from a terminal: a suite started as a shell's background job
    # (as CI was, here) inherits SIGINT ignored, and DuckDB then never sees the signal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        # a sort like a merge's: DuckDB looks for the interrupt between steps
        with pytest.raises(Exception) as caught:
            con.execute(f"COPY (SELECT range AS x, md5(range::VARCHAR) AS m FROM range(3000000) ORDER BY m) "
                        f"TO '{tmp_path / 'merged.parquet'}'")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert _query_interrupted(caught.value)
    threading.Timer(0.2, con.interrupt).start()  # the same asked of the connection
    with pytest.raises(Exception) as caught:
        con.execute("SELECT sum(hash(range)) FROM range(100000000000)").fetchall()
    assert _query_interrupted(caught.value)
    assert not _query_interrupted(RuntimeError("something else"))


def test_a_worker_ignores_ctrl_c_even_inside_a_polars_query(tmp_path):
    """Polars sets a SIGINT handler of its own when imported, in place of the ignored one, and turns a signal
    during a query into KeyboardInterrupt: a worker imports it before it ignores Ctrl-C (`WORKER_PRELOAD`). A
    worker set up as the ingest sets it up runs real batches of the sample while SIGINT reaches it every few
    milliseconds, and every batch completes; its SIGINT stays ignored for the kernel too. (Set up the other
    way round, a batch raised KeyboardInterrupt in Polars' `collect`, and the run ended with exit 130.)"""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from jobs.ingest import WORKER_PRELOAD
    from jobs.pool import worker_init

    (tmp_path / "pestered.py").write_text(
        "import os, signal, threading, time\n"
        "def sigint_disposition():\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())\n"
        "    bit = 1 << (signal.SIGINT - 1)\n"
        "    return {'ignored': bool(int(status['SigIgn'], 16) & bit), 'caught': bool(int(status['SigCgt'], 16) & bit)}\n"
        "def batches(sample, staging):\n"
        "    from jobs import worker\n"
        "    from jobs.discover import Scope, discover\n"
        "    from jobs.ingest import Batch, Options\n"
        "    files = [f for f in discover([sample], Scope()) if not f.digest]\n"
        "    stop = threading.Event()\n"
        "    def pester():\n"
        "        while not stop.is_set():\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "            time.sleep(0.003)\n"
        "    threading.Thread(target=pester, daemon=True).start()\n"
        "    try:\n"
        "        read = [worker.process_batch(n, Batch(files[i:i + 16], []), Options([sample], staging), staging)\n"
        "                .counts.events_read for n, i in enumerate(range(0, len(files), 16))]\n"
        "    finally:\n"
        "        stop.set()\n"
        "    return sum(read), len(read), sigint_disposition()\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=worker_init,
                                 initargs=WORKER_PRELOAD) as pool:
            future = pool.submit(__import__("pestered").batches, str(SAMPLE), str(tmp_path / "staging"))
            try:
                events, batches, disposition = future.result(timeout=300)
            except KeyboardInterrupt:  # the worker's, sent back: this test fails, the session goes on
                pytest.fail("a worker's batch raised KeyboardInterrupt: its SIGINT was Polars', not ignored")
    finally:
        sys.path.remove(str(tmp_path))
    logs = [f for f in SAMPLE.rglob("*.json.gz") if "CloudTrail-Digest" not in str(f)]
    assert batches == -(-len(logs) // 16) > 2
    # every record read, none lost to a signal
    assert events == sum(len(json.loads(gzip.decompress(f.read_bytes()))["Records"]) for f in logs) > 3000
    assert disposition == {"ignored": True, "caught": False}
