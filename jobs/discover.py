"""Find CloudTrail files under the sources and prune them by their S3-layout folders.

Works on anything fsspec opens (local paths, globs, s3:// URLs); nothing here
assumes a local disk. Folder dates are delivery dates, which lag event time, so a
date range keeps one extra day on each side and the exact filter happens on
eventTime later.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs

from jobs.errors import UsageError

# …/AWSLogs/[o-org/]<account>/CloudTrail[-Digest|-Insight]/<region>/YYYY/MM/DD/<file>
_AWSLOGS = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/"
    r"(?P<kind>CloudTrail(?:-Digest|-Insight)?)/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+$"
)
# any other tree with date folders, e.g. an `aws s3 sync` of one region: <region>/YYYY/MM/DD/<file>
_DATED = re.compile(r"(?:^|/)(?:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)/)?(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class SourceFile:
    url: str
    size: int
    version: str  # mtime (local) or ETag (S3): a changed file is ingested again
    account: str | None = None
    region: str | None = None
    folder_date: dt.date | None = None
    digest: bool = False


@dataclass(frozen=True)
class Scope:
    since: dt.date | None = None
    until: dt.date | None = None
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()


def classify(url: str, size: int, version: str) -> SourceFile:
    """Read what the path says: account, region, delivery date, digest or not."""
    m = _AWSLOGS.search(url)
    if m:
        return SourceFile(url, size, version, m["account"], m["region"], _date(m), m["kind"] == "CloudTrail-Digest")
    m = _DATED.search(url)
    if m:
        return SourceFile(url, size, version, None, m["region"], _date(m), "CloudTrail-Digest" in url)
    return SourceFile(url, size, version, digest="CloudTrail-Digest" in url)


def _date(m: re.Match[str]) -> dt.date | None:
    try:
        return dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None


def in_scope(f: SourceFile, scope: Scope) -> bool:
    """Prune by path only; a file whose path says nothing is always kept."""
    if scope.accounts and f.account and f.account not in scope.accounts:
        return False
    if scope.regions and f.region and f.region not in scope.regions:
        return False
    if f.folder_date:
        one_day = dt.timedelta(days=1)
        if scope.since and f.folder_date < scope.since - one_day:
            return False
        if scope.until and f.folder_date > scope.until + one_day:
            return False
    return True


def _version(info: dict) -> str:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/")[-1:])


def list_source(source: str) -> list[SourceFile]:
    """Every file under one source (directory, file, glob or URL), sorted by path."""
    fs, path = url_to_fs(source)
    try:
        if _GLOB_CHARS & set(path):
            found: dict[str, dict] = {}
            for p, info in fs.glob(path, detail=True).items():
                if info.get("type") == "directory":
                    found.update(fs.find(p, detail=True))
                else:
                    found[p] = info
        elif fs.isdir(path):
            found = fs.find(path, detail=True)
        elif fs.isfile(path):
            found = {path: fs.info(path)}
        else:
            raise UsageError(f"source not found: {source}")
    except PermissionError as exc:
        raise UsageError(f"cannot list {source}: permission denied ({exc})") from None
    out = []
    for p, info in sorted(found.items()):
        if info.get("type", "file") != "file" or _hidden(p):
            continue
        out.append(classify(_url(fs, p), int(info.get("size") or 0), _version(info)))
    return out


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def discover(sources: list[str], scope: Scope) -> list[SourceFile]:
    """All files of all sources in scope, each once."""
    seen: dict[str, SourceFile] = {}
    for source in sources:
        for f in list_source(source):
            if in_scope(f, scope):
                seen.setdefault(f.url, f)
    return list(seen.values())
