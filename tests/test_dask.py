"""--executor dask: a real scheduler and two worker processes on 127.0.0.1; the lake must equal the local run's."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from jobs.ingest import WORKER_ENV
from tests.conftest import SAMPLE, ingest, last_run, sql

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env=dict(WORKER_ENV)) as c, Client(c, set_as_default=False) as client:
        yield c, client


LAKE_QUERY = "SELECT event.id, event.original, log.file.path FROM EVENTS ORDER BY 1, 3"


def test_a_dask_run_equals_the_local_run(cluster, tmp_path, monkeypatch):
    from jobs import ingest as ingest_mod

    c, client = cluster
    monkeypatch.setattr(ingest_mod, "BATCH_FILES", 6)  # many batches: both workers take some
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert ingest(SAMPLE, "--lake", local, "--workers", "1") == 0
    held, running = [], threading.Event()

    def count_batches_on_the_scheduler() -> None:
        while not running.is_set():
            held.append(client.run_on_scheduler(
                lambda dask_scheduler: sum(str(k).startswith("trailhouse-") for k in dask_scheduler.tasks)))
            time.sleep(0.005)

    t = threading.Thread(target=count_batches_on_the_scheduler)
    t.start()
    try:
        assert ingest(SAMPLE, "--lake", remote, "--executor", "dask", "--scheduler", c.scheduler_address) == 0
    finally:
        running.set()
        t.join()
    # a window of batches, not the whole plan: two per worker thread, plus a finished one not yet let go
    assert 0 < max(held) <= 2 * 2 + 1
    assert sql(remote, LAKE_QUERY) == sql(local, LAKE_QUERY)
    assert sql(remote, "SELECT file.path FROM DIGESTS ORDER BY 1") == sql(local, "SELECT file.path FROM DIGESTS ORDER BY 1")
    run, base = last_run(remote), last_run(local)
    for key in ("files_read", "events_read", "events_written", "duplicates", "digests_written"):
        assert run[key] == base[key], key
    pids = {pid for pid in client.run(os.getpid).values()}
    assert {int(w.rsplit(":", 1)[1]) for w in run["workers"]} == pids  # both workers ran batches
    assert sum(w["batches"] for w in run["workers"].values()) > 10


def test_a_worker_killed_mid_run_still_gives_the_exact_lake(cluster, tmp_path, monkeypatch):
    from jobs import ingest as ingest_mod

    c, client = cluster
    monkeypatch.setattr(ingest_mod, "BATCH_FILES", 3)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert ingest(SAMPLE, "--lake", local, "--workers", "1") == 0
    victims = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker_once_batches_flow() -> None:
        staging = remote / "_staging"
        deadline = time.time() + 60
        while time.time() < deadline and not any(staging.rglob("*.parquet")):
            time.sleep(0.01)
        os.kill(victims[0], signal.SIGKILL)
        killed.append(victims[0])

    t = threading.Thread(target=kill_one_worker_once_batches_flow)
    t.start()
    rc = ingest(SAMPLE, "--lake", remote, "--executor", "dask", "--scheduler", c.scheduler_address)
    t.join()
    assert killed and rc == 0
    assert sql(remote, LAKE_QUERY) == sql(local, LAKE_QUERY)
    ids = [r[0] for r in sql(remote, "SELECT event.id FROM EVENTS")]
    assert len(ids) == len(set(ids)) == 3016
    run = last_run(remote)
    assert run["events_read"] == last_run(local)["events_read"]  # each batch counted once
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker for the next test


def test_dask_without_a_scheduler_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert ingest(SAMPLE, "--lake", tmp_path / "l", "--executor", "dask") == 2
    assert "--scheduler" in capsys.readouterr().err
    assert ingest(SAMPLE, "--lake", tmp_path / "l", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    for address in ("127.0.0.1", "http://127.0.0.1:8786", "tcp://"):  # no port: Dask tried 30 s, then failed
        assert ingest(SAMPLE, "--lake", tmp_path / "l", "--executor", "dask", "--scheduler", address) == 2
        assert capsys.readouterr().err == (f"trailhouse: not a Dask scheduler address: {address!r}; give "
                                           "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)\n")
    assert ingest(SAMPLE, "--lake", tmp_path / "l", "--scheduler", "tcp://127.0.0.1:8786") == 2  # local, silently
    assert capsys.readouterr().err == ("trailhouse: --scheduler is for --executor dask: add --executor dask, or "
                                       "drop --scheduler\n")
    assert not (tmp_path / "l").exists() or not any((tmp_path / "l").glob("events/*"))


def test_a_dask_run_into_an_s3_lake(s3, tmp_path, monkeypatch):
    """Workers stage part files in the shared work directory, the driver commits them to the S3 lake."""
    from distributed import LocalCluster

    from jobs import ingest as ingest_mod
    from queries import connect
    from tests.conftest import s3fs_client

    monkeypatch.setattr(ingest_mod, "BATCH_FILES", 10)
    s3fs_client().mkdir("lakes")
    env = {**WORKER_ENV, **{k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                        "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
                                                        "TRAILHOUSE_WORK_DIR")}}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env=env) as c:
        assert ingest(SAMPLE, "--lake", "s3://lakes/dask", "--executor", "dask", "--scheduler",
                      c.scheduler_address) == 0
    local = tmp_path / "local"
    assert ingest(SAMPLE, "--lake", local, "--workers", "1") == 0
    got = connect("s3://lakes/dask", fs=s3fs_client()).sql(
        "SELECT event.id, event.original FROM events ORDER BY 1").fetchall()
    assert got == sql(local, "SELECT event.id, event.original FROM EVENTS ORDER BY 1")
