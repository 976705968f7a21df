"""Sources on S3: a real S3 endpoint (moto's server on loopback) spoken to over HTTP by s3fs."""

from __future__ import annotations

import pytest
import s3fs
from moto.server import ThreadedMotoServer

from tests.conftest import SAMPLE, ingest, last_run, sql


@pytest.fixture
def s3_endpoint(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    yield endpoint
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_ingest_from_s3_equals_ingest_from_disk(s3_endpoint, tmp_path):
    fs = s3fs.S3FileSystem()
    fs.mkdir("trail")
    fs.put(str(SAMPLE / "AWSLogs"), "trail/logs/AWSLogs", recursive=True)
    s3_lake, disk_lake = tmp_path / "s3", tmp_path / "disk"
    assert ingest("s3://trail/logs", "--lake", s3_lake, "--workers", "2") == 0
    assert ingest(SAMPLE, "--lake", disk_lake, "--workers", "1") == 0
    query = "SELECT event.id, event.original FROM EVENTS ORDER BY 1"
    assert sql(s3_lake, query) == sql(disk_lake, query)
    paths = {r[0] for r in sql(s3_lake, "SELECT DISTINCT log.file.path FROM EVENTS")}
    assert all(p.startswith("s3://trail/logs/AWSLogs/") for p in paths)
    # the state keeps the ETag, so an unchanged object is skipped and a rewritten one is read again
    assert ingest("s3://trail/logs", "--lake", s3_lake) == 0
    runs = sorted((s3_lake / "_state" / "runs").glob("*.json"))
    assert len(runs) == 1  # the rerun found nothing new and wrote nothing


def test_lake_inside_the_source_is_not_read_back(tmp_path):
    import shutil

    src = tmp_path / "trail"
    shutil.copytree(SAMPLE, src)
    assert ingest(src, "--lake", src / "lake", "--workers", "1") == 0
    assert ingest(src, "--lake", src / "lake", "--workers", "1") == 0
    assert last_run(src / "lake")["files_quarantined"] == 0
