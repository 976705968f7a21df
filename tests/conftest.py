"""Shared helpers: CloudTrail records and files in every format, the CLI, and the lake as data."""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

from jobs import read
from jobs.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "data" / "sample"


@functools.cache
def extractor() -> read.Extractor:
    """One extractor for every test, as a worker keeps one for all its batches: each must read its own."""
    return read.Extractor()


def normalized_frame(names: list[str], parsed: list[read.Parsed], table: str):
    """Records through a worker's steps, without its I/O: extracted, validated (every record must pass) and
    normalized, as a Polars frame of the table's schema."""
    from transforms.normalize import normalize

    frame = extractor().extract(read.records_table(names, parsed), table)
    good, bad = read.validate(frame, table)
    assert bad.height == 0, bad["reason"].to_list()
    return normalize(good.lazy(), table).collect()


def shared_path(*parts: str) -> Path:
    """A path under ../shared; the test skips cleanly when shared/ is not there (a user's clone)."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is not available (../shared is only present in the development checkout)")
    return p


def record(name: str = "DescribeInstances", time: str = "2026-11-01T10:00:00Z", *, eid: str | None = None,
           account: str = "111122223333", region: str = "us-east-1", user: str = "alice", **extra) -> dict:
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/{user}",
                         "accountId": account, "userName": user},
        "eventTime": time, "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": region,
        "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/5.15",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"}]}},
        "responseElements": None, "eventID": eid or str(uuid.uuid4()), "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }
    rec.update(extra)
    return rec


def write(path: Path, records: list, fmt: str = "records", gz: bool | None = None) -> Path:
    """Write records as CloudTrail delivers them (`records`) or as other tools export them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "records":
        text = json.dumps({"Records": records})
    elif fmt == "array":
        text = json.dumps(records)
    elif fmt == "single":
        (rec,) = records
        text = json.dumps(rec)
    elif fmt == "ndjson":
        text = "\n".join(json.dumps(r) for r in records) + "\n"
    elif fmt == "pretty":
        text = json.dumps({"Records": records}, indent=4)
    else:
        raise ValueError(fmt)
    data = text.encode()
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def trail_path(root: Path, account: str, region: str, day: str, name: str = "f", org: str | None = None,
               kind: str = "CloudTrail") -> Path:
    y, m, d = day.split("-")
    base = root / "AWSLogs" / (org or "") / account if org else root / "AWSLogs" / account
    return base / kind / region / y / m / d / f"{account}_{kind}_{region}_{y}{m}{d}T0000Z_{name}.json.gz"


def as_a_user(tmp_path: Path) -> list[str]:
    """The command prefix that runs a process without the capabilities that bypass file permissions (root reads
    and writes anything), so a `chmod` is enforced as for a user; the test skips when it cannot be."""
    drop = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv (util-linux): permissions cannot be enforced")
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                "--inh-caps=-dac_override,-dac_read_search,-fowner", "--"]
    probe = tmp_path / ".permission-probe"
    probe.write_text("")
    probe.chmod(0)
    try:
        readable = not subprocess.run([*drop, sys.executable, "-c", f"open({str(probe)!r})"],
                                      capture_output=True).returncode
    finally:
        probe.unlink()
    if readable:
        pytest.skip("this process's capabilities bypass file permissions: they cannot be denied")
    return drop


def trailhouse(tmp_path: Path, *args: object, user: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """`trailhouse ARGS` in its own process, as a user whose file permissions are enforced (see as_a_user)."""
    prefix = as_a_user(tmp_path) if user else []
    return subprocess.run([*prefix, sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def ingest(*args: str) -> int:
    return main(["ingest", *map(str, args)])


def sql(lake: Path, query: str) -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con.sql(query.replace("EVENTS", f"read_parquet('{lake}/events/*/*.parquet', hive_partitioning=true)")
                   .replace("DIGESTS", f"read_parquet('{lake}/digests/*/*.parquet', hive_partitioning=true)")).fetchall()


def lake_files(lake: Path) -> dict[str, bytes]:
    """Every data file of the lake with its bytes, to compare lakes exactly."""
    return {str(p.relative_to(lake)): p.read_bytes() for t in ("events", "digests")
            for p in sorted((lake / t).glob("*/*.parquet"))}


def quarantine(lake: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((lake / "quarantine").glob("*.jsonl")) for line in f.read_text().splitlines()]


def last_run(lake: Path) -> dict:
    return json.loads(sorted((lake / "_state" / "runs").glob("*.json"))[-1].read_text())


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A real S3 endpoint (moto's server over HTTP on loopback) and credentials for it in the environment.

    Worker processes inherit the environment, so they reach the same endpoint. Yields the server,
    which records requests and can inject faults (tests/s3server.py).
    """
    import s3fs
    import urllib.request

    from tests.s3server import S3Server

    server = S3Server()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": server.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "TRAILHOUSE_WORK_DIR": str(tmp_path / "work")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    yield server
    urllib.request.urlopen(urllib.request.Request(server.endpoint + "/moto-api/reset", method="POST")).read()
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def s3_put_dies_at(monkeypatch, part: str):
    """Uploads (`put_file`) of keys holding `part` fail, as a crash between a commit's uploads would (the data
    files up, the commit point not); returns the undo. Clients made before keep their own put_file: dropped."""
    import s3fs

    from jobs import storage

    real = s3fs.S3FileSystem.put_file

    def dying(self, lpath, rpath, *a, **kw):
        if part in rpath:
            raise RuntimeError("simulated crash")
        return real(self, lpath, rpath, *a, **kw)

    def undo() -> None:
        monkeypatch.setattr(s3fs.S3FileSystem, "put_file", real)

    monkeypatch.setattr(s3fs.S3FileSystem, "put_file", dying)
    storage._s3_filesystem.cache_clear()
    s3fs.S3FileSystem.clear_instance_cache()
    return undo


def s3fs_client():
    """A fresh s3fs client for the test's own uploads and checks (no listing cache)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
