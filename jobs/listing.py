"""List an S3 trail folder by folder, never more of the bucket than the run needs.

CloudTrail writes `AWSLogs/[o-org/]<account>/CloudTrail[-Digest|-Insight]/<region>/YYYY/MM/DD/`.
A delimiter listing at each level finds organizations, accounts, kinds and regions (pruned by
--account/--region); below a region only the date folders of the run's window are listed.

The window is --since/--until (one day of slack each side: folders are delivery dates), or,
for a stream the lake already has, the last `lookback_days` before the newest folder it
ingested up to today: CloudTrail can deliver a file for a day long after that day, and the
state (every key with its ETag) decides what is new, never a "last key seen" mark.
A stream the lake has never seen is listed whole.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import fsspec

from jobs.discover import Scope, classify, is_glob, stream_of
from jobs.storage import is_s3

_ORG = re.compile(r"o-[a-z0-9]{10,32}")
_ACCOUNT = re.compile(r"\d{12}")
#: Streams listed at once: listing is latency-bound, not bandwidth-bound.
LIST_THREADS = 16


@dataclass(frozen=True)
class Stream:
    path: str  # bucket/…/AWSLogs/[org/]account/kind/region
    account: str
    region: str


def window(stream: Stream, scope: Scope, known: dict[str, dt.date], lookback_days: int,
           today: dt.date) -> tuple[dt.date | None, dt.date | None] | None:
    """The folder dates to list for a stream; None means all of them."""
    one = dt.timedelta(days=1)
    if scope.since or scope.until:
        return (scope.since - one if scope.since else None, scope.until + one if scope.until else None)
    newest = known.get(stream.path)
    if newest is None:
        return None
    return newest - dt.timedelta(days=lookback_days), max(today, newest) + one


def listed_again(url: str, sources: list[str], scope: Scope, known: dict[str, dt.date], lookback_days: int,
                 today: dt.date) -> bool:
    """Whether this run's listing can yield files of `url`'s folder again (`url`: any file of the folder), so
    the run needs their state.

    False only for a folder of an S3 trail stream outside the stream's window, when every source holding it is
    one the trail lister lists at or above that stream: a nightly run into a years-old lake then loads the state
    of its window, not of every file ever ingested. An S3 glob source, or one listed whole (below the stream
    folder, a single object), keeps every folder it may hold.
    """
    if not is_s3(url):
        return True
    f, stream = classify(url, 0, ""), stream_of(url)
    if stream is None or f.folder_date is None or f.account is None or f.region is None:
        return True
    span = window(Stream(stream, f.account, f.region), scope, known, lookback_days, today)
    if span is None:
        return True
    start, end = span
    if (start is None or f.folder_date >= start) and (end is None or f.folder_date <= end):
        return True
    folder = url.split("://", 1)[1].rsplit("/", 1)[0]
    for source in sources:
        if not is_s3(source):
            continue
        if is_glob(source):
            return True
        root = source.split("://", 1)[1].rstrip("/")
        holds = folder == root or folder.startswith(root + "/") or root.startswith(folder + "/")
        if holds and not _lists_by_window(root, stream):
            return True
    return False


def _lists_by_window(root: str, stream: str) -> bool:
    """Whether the trail lister, given the source `root`, lists `stream` folder by folder in its window: the
    source is at or above the stream folder, inside the AWSLogs tree or right above it (TrailLister.list)."""
    if not (stream == root or stream.startswith(root + "/")):
        return False
    return "AWSLogs" in root.split("/")[1:] or stream[len(root):].startswith("/AWSLogs/")


def date_prefixes(start: dt.date, end: dt.date) -> list[str]:
    """The fewest YYYY/, YYYY/MM/ and YYYY/MM/DD/ folders that cover [start, end] exactly."""
    out = []
    d = start
    while d <= end:
        year_end = dt.date(d.year, 12, 31)
        next_month = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        if d.month == 1 and d.day == 1 and year_end <= end:
            out.append(f"{d.year:04d}/")
            d = year_end + dt.timedelta(days=1)
        elif d.day == 1 and next_month - dt.timedelta(days=1) <= end:
            out.append(f"{d.year:04d}/{d.month:02d}/")
            d = next_month
        else:
            out.append(f"{d.year:04d}/{d.month:02d}/{d.day:02d}/")
            d += dt.timedelta(days=1)
    return out


class TrailLister:
    """Delimiter listings down to the regions, then the date folders in each stream's window."""

    def __init__(self, fs: fsspec.AbstractFileSystem, scope: Scope, known: dict[str, dt.date],
                 lookback_days: int, today: dt.date) -> None:
        self.fs, self.scope, self.known, self.lookback_days, self.today = fs, scope, known, lookback_days, today

    def _dirs(self, path: str) -> list[str]:
        return [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(path, detail=True)
                if e.get("type") == "directory"]

    def awslogs_root(self, path: str) -> tuple[str, list[str]] | None:
        """(…/AWSLogs, the segments of `path` below it), or None when `path` is not in a CloudTrail tree."""
        parts = path.rstrip("/").split("/")
        if "AWSLogs" in parts[1:]:
            i = parts.index("AWSLogs", 1)
            return "/".join(parts[: i + 1]), parts[i + 1:]
        if "AWSLogs" in self._dirs(path):
            return path.rstrip("/") + "/AWSLogs", []
        return None

    def streams(self, awslogs: str, below: list[str]) -> list[Stream] | None:
        """Every account/kind/region folder under AWSLogs/ that the scope keeps; None if `below` is too deep."""
        accounts: list[tuple[str, str]] = []  # (path, account)
        rest = list(below)
        if rest and _ORG.fullmatch(rest[0]):
            roots = [f"{awslogs}/{rest.pop(0)}"]
        else:
            roots = [awslogs]
        if rest:
            if not _ACCOUNT.fullmatch(rest[0]):
                return None
            accounts = [(f"{roots[0]}/{rest[0]}", rest[0])]
            rest = rest[1:]
        else:
            for root in roots:
                for name in self._dirs(root):
                    if _ORG.fullmatch(name) and root == awslogs:
                        accounts += [(f"{root}/{name}/{a}", a) for a in self._dirs(f"{root}/{name}")
                                     if _ACCOUNT.fullmatch(a)]
                    elif _ACCOUNT.fullmatch(name):
                        accounts.append((f"{root}/{name}", name))
        if len(rest) > 2:
            return None
        accounts = [(p, a) for p, a in accounts if not self.scope.accounts or a in self.scope.accounts]
        out = []
        for path, account in accounts:
            kinds = [rest[0]] if rest else [k for k in self._dirs(path) if k.startswith("CloudTrail")]
            for kind in kinds:
                regions = [rest[1]] if len(rest) > 1 else self._dirs(f"{path}/{kind}")
                out += [Stream(f"{path}/{kind}/{r}", account, r) for r in regions
                        if not self.scope.regions or r in self.scope.regions]
        return out

    def files(self, stream: Stream) -> dict[str, dict]:
        """The objects of one stream inside its window."""
        span = window(stream, self.scope, self.known, self.lookback_days, self.today)
        if span is None:
            return self.fs.find(stream.path, detail=True)
        start, end = span
        if start is None:  # only --until: start at the oldest year folder there is
            years = sorted(y for y in self._dirs(stream.path) if y.isdigit())
            if not years:
                return {}
            start = dt.date(int(years[0]), 1, 1)
        if end is None:  # folders are delivery dates: none is later than tomorrow, whatever the clock skew
            end = max(self.today, start) + dt.timedelta(days=1)
        found: dict[str, dict] = {}
        for prefix in date_prefixes(start, end):
            found.update(self.fs.find(f"{stream.path}/{prefix}", detail=True))
        return found

    def list(self, path: str) -> Iterator[tuple[str, dict]] | None:
        """Every object of the trail under `path` in scope, stream by stream in path order; None when `path`
        is not a CloudTrail tree. The streams are listed LIST_THREADS at a time, as the caller reads."""
        root = self.awslogs_root(path)
        if root is None:
            return None
        streams = self.streams(*root)
        if streams is None:
            return None
        return self._objects(streams)

    def _objects(self, streams: list[Stream]) -> Iterator[tuple[str, dict]]:
        with ThreadPoolExecutor(LIST_THREADS) as pool:
            for at in range(0, len(streams), LIST_THREADS):
                for found in pool.map(self.files, streams[at:at + LIST_THREADS]):
                    yield from sorted(found.items())
