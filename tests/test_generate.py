"""The synthetic bucket: deterministic, realistic, and the committed sample is its output."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

from jobs.cli import main
from tests.conftest import SAMPLE


def _tree(root: Path, unzipped: bool = False) -> dict[str, str]:
    """Each file's hash, of its gzip bytes or of the JSON inside (`unzipped`): the gzip bytes of the same JSON
    differ between versions of the compressor (isal 1.9 does not write what the one that wrote the sample did)."""
    def data(p: Path) -> bytes:
        return gzip.decompress(p.read_bytes()) if unzipped else p.read_bytes()

    return {str(p.relative_to(root)): hashlib.sha256(data(p)).hexdigest() for p in sorted(root.rglob("*.json.gz"))}


def _records(root: Path) -> list[dict]:
    out = []
    for p in sorted(root.rglob("*.json.gz")):
        if "/CloudTrail/" in str(p):
            out.extend(json.loads(gzip.decompress(p.read_bytes()))["Records"])
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["generate", "--out", str(tmp_path / name), "--events", "500", "--seed", seed]) == 0
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")


def test_committed_sample_is_the_generator_output(tmp_path):
    main(["generate", "--out", str(tmp_path), "--events", "3000", "--seed", "7", "--accounts", "2",
          "--regions", "2", "--days", "2"])
    assert _tree(tmp_path, unzipped=True) == _tree(SAMPLE, unzipped=True)  # same files, same records
    assert {p.name for p in SAMPLE.iterdir()} == {"AWSLogs"}  # nothing else in it to be ingested


def test_generated_trail_looks_like_cloudtrail(tmp_path):
    main(["generate", "--out", str(tmp_path), "--events", "20000", "--seed", "11", "--accounts", "3",
          "--regions", "3", "--days", "2"])
    recs = _records(tmp_path)
    assert not (tmp_path / "one").exists()
    assert len(recs) >= 20000  # plus re-deliveries
    assert len({r["eventID"] for r in recs}) == 20000
    types = Counter(r["userIdentity"].get("type") for r in recs if r["userIdentity"].get("type"))
    assert set(types) == {"IAMUser", "AssumedRole", "Root", "AWSService", "FederatedUser", "IdentityCenterUser"}
    assert any(r.get("eventType") == "AwsServiceEvent" and r.get("serviceEventDetails") for r in recs)
    insight_files = list(tmp_path.rglob("*CloudTrail-Insight*.json.gz"))
    assert insight_files and all(r["eventType"] == "AwsCloudTrailInsight" for p in insight_files
                                 for r in json.loads(gzip.decompress(p.read_bytes()))["Records"])
    assert len({r["userAgent"] for r in recs}) >= 90
    assert len({r["eventSource"] for r in recs}) >= 12 and len({r["eventName"] for r in recs}) >= 50
    sources = [r["sourceIPAddress"] for r in recs]
    assert any(":" in s for s in sources) and "AWS Internal" in sources
    assert any(s.endswith(".amazonaws.com") for s in sources)
    errors = Counter(r.get("errorCode") for r in recs if "errorCode" in r or "errorMessage" in r)
    assert 0.03 < sum(errors.values()) / len(recs) < 0.08
    assert errors["AccessDenied"] and errors["Client.UnauthorizedOperation"]
    logins = [r for r in recs if r["eventName"] == "ConsoleLogin"]
    assert any(r["responseElements"]["ConsoleLogin"] == "Failure" for r in logins)
    size = sum(len(json.dumps(r)) for r in recs) / len(recs)
    assert 1000 <= size <= 2000
    # files from a few to hundreds of events at this size (thousands at a million events)
    main(["generate", "--out", str(tmp_path / "one"), "--events", "20000", "--seed", "11", "--accounts", "1",
          "--regions", "1", "--days", "1"])
    per_file = [len(json.loads(gzip.decompress(p.read_bytes()))["Records"])
                for p in (tmp_path / "one").rglob("*_CloudTrail_*.json.gz")]
    assert min(per_file) < 10 and max(per_file) > 200
    assert list(tmp_path.rglob("*CloudTrail-Digest*.json.gz"))
    # some events are delivered after midnight into the next day's folder
    late = [p for p in tmp_path.rglob("*_CloudTrail_*.json.gz") if "/2026/11/03/" in str(p)]
    assert late


def test_an_output_directory_that_cannot_be_made_is_one_line_before_any_work(tmp_path, capsys):
    """generate --out and bench --workdir were internal errors (a FileNotFoundError or NotADirectoryError)."""
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "out"
    for argv in (["generate", "--events", "100", "--out", str(out)],
                 ["bench", "--events", "1000", "--workdir", str(out)]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err == f"trailhouse: cannot write to {out}: Not a directory; choose another directory\n"
        assert captured.out == ""
    assert (tmp_path / "a-file").read_text() == ""
