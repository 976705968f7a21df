"""Find CloudTrail files under the sources and prune them by their S3-layout folders.

Works on anything fsspec opens (local paths, globs, s3:// URLs); nothing here
assumes a local disk. Folder dates are delivery dates, which lag event time, so a
date range keeps one extra day on each side and the exact filter happens on
eventTime later.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import itertools
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs

from jobs.errors import UsageError
from jobs.storage import S3Options, explain, filesystem, is_s3

# …/AWSLogs/[o-org/]<account>/CloudTrail[-Digest|-Insight]/<region>/YYYY/MM/DD/<file>
_AWSLOGS = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/"
    r"(?P<kind>CloudTrail(?:-Digest|-Insight)?)/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+$"
)
# any other tree with date folders, e.g. an `aws s3 sync` of one region: <region>/YYYY/MM/DD/<file>
_DATED = re.compile(r"(?:^|/)(?:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)/)?(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/[^/]+$")
_GLOB_CHARS = set("*?[")
#: What a lister needs to know of the run: scope, newest folder per known stream, lookback days, today.
WindowArgs = tuple["Scope", dict[str, dt.date], int, dt.date]


@dataclass(frozen=True, slots=True)
class SourceFile:
    url: str
    size: int
    version: str  # mtime (local) or ETag (S3): a changed file is ingested again
    account: str | None = None
    region: str | None = None
    folder_date: dt.date | None = None
    digest: bool = False
    #: Why the listing could not look inside this entry (a folder it may not read): the worker quarantines it as
    #: unreadable without opening it, so it is reported, and listed again, every run until it can be read.
    problem: str | None = None

    @property
    def gzipped(self) -> bool:
        """By its name, as the plan must judge it before the file is read; the run learns what such files
        decompress to from the ones its workers read (ingest.Inflation), so both sides judge alike."""
        return self.url.endswith(".gz")


@dataclass(frozen=True)
class Scope:
    since: dt.date | None = None
    until: dt.date | None = None
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()


def classify(url: str, size: int, version: str) -> SourceFile:
    """Read what the path says: account, region, delivery date, digest or not.

    A backfill lists every file before the first batch runs, so the few distinct accounts, regions and dates
    are shared objects, not one copy per file (a third less driver memory per listed file).
    """
    m = _AWSLOGS.search(url)
    if m:
        return SourceFile(url, size, version, sys.intern(m["account"]), sys.intern(m["region"]), _date(m),
                          m["kind"] == "CloudTrail-Digest")
    m = _DATED.search(url)
    if m:
        return SourceFile(url, size, version, None, sys.intern(m["region"]), _date(m), "CloudTrail-Digest" in url)
    return SourceFile(url, size, version, digest="CloudTrail-Digest" in url)


def _date(m: re.Match[str]) -> dt.date | None:
    return _folder_date(m["y"], m["m"], m["d"])


@functools.lru_cache(maxsize=4096)
def _folder_date(year: str, month: str, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), int(month), int(day))
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


def list_source(source: str, s3: S3Options = S3Options(), window: WindowArgs | None = None) -> Iterator[SourceFile]:
    """Every file under one source (directory, file, glob or URL) in path order, as it is listed.

    An S3 source in the CloudTrail layout is listed stream by stream (jobs/listing.py), a local tree
    directory by directory; anything else is listed whole.
    """
    try:
        yield from _list(source, s3, window)
    except UsageError:
        raise
    except Exception as exc:
        reason = explain(exc, source)
        if reason:
            raise UsageError(reason) from None
        raise


def _list(source: str, s3: S3Options, window: WindowArgs | None) -> Iterator[SourceFile]:
    fs, path = filesystem(source, s3)
    found: Iterable[tuple[str, dict]] | None = None
    if is_s3(source) and not is_glob(path):
        from jobs.listing import TrailLister

        scope, known, lookback, today = window or (Scope(), {}, 0, dt.datetime.now(dt.timezone.utc).date())
        found = TrailLister(fs, scope, known, lookback, today).list(path)
    if found is None and _is_local(fs) and is_glob(path):
        unlisted: list[OSError] = []
        matches = _outermost_matches(path, unlisted)
        if not matches and not unlisted:
            raise UsageError(_no_match(source))
        yield from _unlisted(unlisted)
        for match in matches:
            yield from _walk_local(match) if os.path.isdir(match) else [_local_file(match)]
        return
    if found is None and _is_local(fs) and os.path.isdir(path):
        yield from _walk_local(path)
        return
    if found is None and _is_local(fs) and os.path.lexists(path):  # a file, or a FIFO the worker refuses
        yield _local_file(path)
        return
    if found is None:
        found = sorted(_find(fs, path, source).items())
    for p, info in found:
        if info.get("type", "file") != "file" or _hidden(p):
            continue
        yield classify(_url(fs, p), int(info.get("size") or 0), _version(info))


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _walk_local(root: str) -> Iterator[SourceFile]:
    """A local tree, walked with scandir in path order: no per-file detail dict, and no list of the whole tree.

    A folder that cannot be listed (no permission, gone since its parent was listed) is yielded as an entry
    with its problem, where its files would have been: what it holds is unknown, so it is never dropped
    silently (os.walk's default) but quarantined as unreadable, whatever the scope.
    """
    unlisted: list[OSError] = []
    for dirpath, dirnames, filenames in _walk(root, unlisted):
        yield from _unlisted(unlisted)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            yield _local_file(os.path.join(dirpath, name))
    yield from _unlisted(unlisted)


def _walk(root: str, unlisted: list[OSError]) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk of the folders not hidden, in path order, into linked folders too (a trail tree assembled from
    symlinks is read whole, not silently skipped, os.walk's default), each real folder once: a link back up
    the tree or a second link to a folder already walked is not followed again."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            unlisted.append(exc)
            dirnames.clear()
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield dirpath, dirnames, filenames


def _unlisted(errors: list[OSError]) -> Iterator[SourceFile]:
    """The folders os.walk could not list since the last call, as entries carrying why; `errors` is emptied."""
    for exc in errors:
        folder = str(exc.filename)
        reason = explain(exc, folder) or f"{type(exc).__name__}: {exc}"
        yield SourceFile(folder, 0, "", problem=f"cannot list the folder: {reason}")
    errors.clear()


def _local_file(path: str) -> SourceFile:
    try:
        st = os.stat(path)
    except OSError:  # e.g. a dangling link: listed, so the read quarantines it with the reason
        return classify(path, 0, "")
    return classify(path, st.st_size, str(st.st_mtime))


def not_regular(mode: int) -> str | None:
    """What a file that is not a regular file is ("a FIFO", …), else None. Such a file is never opened: opening
    a FIFO waits for a writer forever, a device or a socket holds no file to read."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "of an unknown type"


def _no_match(source: str) -> str:
    return f"nothing matches {source}: check the pattern (hidden files and folders are skipped)"


def _outermost_matches(pattern: str, unlisted: list[OSError]) -> list[str]:
    """A local glob's matches in path order, minus those inside a matched folder (walked with it): the folders
    are then walked as they are read, instead of the whole tree being listed with a detail dict per file."""
    out: list[str] = []
    for match in sorted({p for p in _local_glob(pattern, unlisted) if not _hidden(p)}, key=lambda p: p.split("/")):
        if not out or not match.startswith(out[-1].rstrip("/") + "/"):  # by parts: a folder's contents follow it
            out.append(match)
    return out


def _local_glob(pattern: str, unlisted: list[OSError]) -> list[str]:
    """The paths an absolute local glob matches, segment by segment: `*`, `?` and `[…]` within a name, `**` for
    any number of folders (fsspec's meaning). fsspec's and Python's globs pass over a folder they cannot list
    in silence; here it goes to `unlisted`, to be reported. A hidden name matches only a pattern with its dot."""
    places = [glob_root(pattern)]
    for part in pattern[len(places[0]):].strip("/").split("/"):
        if part == "**":
            places = [path for place in places for path in _below(place, unlisted)]
        elif is_glob(part):
            places = [os.path.join(place, name) for place in places for name in _names(place, unlisted)
                      if fnmatch.fnmatchcase(name, part) and (part.startswith(".") or not name.startswith("."))]
        else:
            places = [child for place in places if _exists(place, child := os.path.join(place, part), unlisted)]
    return places


def _names(folder: str, unlisted: list[OSError]) -> list[str]:
    """The names in a folder (none if it is not one); a folder that cannot be listed goes to `unlisted`."""
    if not os.path.isdir(folder):
        return []
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries]
    except OSError as exc:
        unlisted.append(exc)
        return []


def _below(root: str, unlisted: list[OSError]) -> Iterator[str]:
    """`root` and everything below it that is not hidden (what `**` matches); folders not listable to `unlisted`."""
    if not os.path.isdir(root):
        return
    for dirpath, _, filenames in _walk(root, unlisted):
        yield dirpath
        yield from (os.path.join(dirpath, name) for name in filenames if not name.startswith("."))


def _exists(folder: str, path: str, unlisted: list[OSError]) -> bool:
    """Whether `path` (a literal segment below `folder`) exists; a folder that may not be searched is unlisted."""
    try:
        os.lstat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        unlisted.append(type(exc)(exc.errno, exc.strerror, folder))
        return False


def _find(fs: fsspec.AbstractFileSystem, path: str, source: str) -> dict[str, dict]:
    if is_glob(path):
        found: dict[str, dict] = {}
        matches = fs.glob(path, detail=True)
        if not matches:
            raise UsageError(_no_match(source))
        for p, info in matches.items():
            if info.get("type") == "directory":
                found.update(fs.find(p, detail=True))
            else:
                found[p] = info
        return found
    if fs.isdir(path):
        return fs.find(path, detail=True)
    if fs.isfile(path):
        return {path: fs.info(path)}
    raise UsageError(f"source not found: {source}")


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def is_glob(source: str) -> bool:
    return bool(_GLOB_CHARS & set(source))


def stream_of(url: str) -> str | None:
    """The stream folder of a file in the CloudTrail layout (…/AWSLogs/…/<kind>/<region>), as listed."""
    path = url.split("://", 1)[-1]
    m = _AWSLOGS.search(path)
    return path[: m.start("y")].rstrip("/") if m else None


def newest_folders(urls: list[str]) -> dict[str, dt.date]:
    """Per stream, the newest date folder the lake has ingested from: where a lookback window starts."""
    newest: dict[str, dt.date] = {}
    for url in urls:
        if not is_s3(url):
            continue
        m = _AWSLOGS.search(url)
        day = _date(m) if m else None
        if day:
            stream = stream_of(url)
            if stream and (stream not in newest or day > newest[stream]):
                newest[stream] = day
    return newest


def check_sources(sources: list[str]) -> None:
    """Fail early, before the lake is touched, on a local source that is not there or cannot be read (S3, and
    a glob, are checked by listing): a source the user named is a usage error, unlike a folder deep inside it."""
    for source in sources:
        if is_s3(source) or "://" in source:
            continue
        path = url_to_fs(source)[1]
        if is_glob(path):  # the folder it starts from, if there (else nothing matches, said by the listing)
            _check_local(source, glob_root(path), missing_ok=True)
        else:
            _check_local(source, path)


def glob_root(pattern: str) -> str:
    """The folder an absolute glob starts from: its segments before the first with a wildcard."""
    parts = pattern.split("/")
    return "/".join(parts[:next(n for n, part in enumerate(parts) if is_glob(part))]) or "/"


def _check_local(source: str, path: str, missing_ok: bool = False) -> None:
    """A local source exists and can be read: a folder listed, a regular file opened (without blocking)."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            with os.scandir(path):
                pass
        elif stat.S_ISREG(mode):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        else:
            raise UsageError(f"the source {source} is {not_regular(mode)}: give a folder, a file or a glob")
    except (FileNotFoundError, NotADirectoryError):
        if not missing_ok:
            raise UsageError(f"source not found: {source}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the source: {explain(exc, source) or exc}") from None


def discover(sources: list[str], scope: Scope, s3: S3Options = S3Options(), known: dict[str, dt.date] | None = None,
             lookback_days: int = 2, today: dt.date | None = None) -> list[SourceFile]:
    """All files of all sources in scope, each once."""
    return list(iter_files(sources, scope, s3, known, lookback_days, today))


def iter_files(sources: list[str], scope: Scope, s3: S3Options = S3Options(), known: dict[str, dt.date] | None = None,
               lookback_days: int = 2, today: dt.date | None = None) -> Iterator[SourceFile]:
    """All files of all sources in scope, each once, yielded as they are listed: a backfill of a million files
    is never held as a list. Each source's listing is started here, so a source that cannot be listed (no
    such bucket, access denied) fails the call, before anything else happens."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    window = (scope, known or {}, lookback_days, today)
    listings = [_started(list_source(source, s3, window)) for source in _outermost(sources, s3)]
    # one source lists each file once; several that are not nested can only overlap through a glob: only then is
    # every listed URL remembered
    seen: set[str] | None = set() if len(sources) > 1 and any(map(is_glob, sources)) else None
    return _in_scope_once(itertools.chain.from_iterable(listings), scope, seen)


def _in_scope_once(files: Iterator[SourceFile], scope: Scope, seen: set[str] | None) -> Iterator[SourceFile]:
    for f in files:
        if not in_scope(f, scope):
            continue
        if seen is not None:
            if f.url in seen:
                continue
            seen.add(f.url)
        yield f


def _started(listing: Iterator[SourceFile]) -> Iterator[SourceFile]:
    first = next(listing, None)
    return itertools.chain([first], listing) if first is not None else iter(())


def _outermost(sources: list[str], s3: S3Options) -> list[str]:
    """The sources minus any inside another (a folder and one of its subfolders): listed once, not twice."""
    def where(source: str) -> tuple[str, str]:
        fs, path = filesystem(source, s3)
        return str(fs.protocol), path.rstrip("/")

    places = [where(s) for s in sources]
    out = []
    for n, (source, (protocol, path)) in enumerate(zip(sources, places)):
        inside = any(p == protocol and (path.startswith(q + "/") or (path == q and m < n))
                     for m, (p, q) in enumerate(places) if m != n and not is_glob(q))
        if not inside or is_glob(path):
            out.append(source)
    return out
