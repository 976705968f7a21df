"""The worker task: one batch of files → read, validated, normalized, deduplicated, sorted part files.

Runs in worker processes (or Dask workers); it writes only staged files in the run's work area and returns
what it did, so the driver alone decides what is committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import socket
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from jobs import read
from jobs.discover import Scope, SourceFile, not_regular
from jobs.ingest import Batch, BatchResult, Options, _bump, arrow_uses_malloc, with_context
from jobs.lake import PARTIAL, PARTITION, UNREADABLE, parquet_options
from jobs.storage import S3_CONCURRENT_GETS, S3Options, explain, is_s3, s3_filesystem
from transforms.normalize import normalize
from transforms.schema import DEDUP_KEYS, FILE, SORT_KEYS, arrow_schema

_extractor: read.Extractor | None = None
#: The most decompressed JSON a worker turns into columns at once (see `chunks`): a little above the plan's
#: BATCH_BYTES, which is estimated from gzip sizes before the files are read.
CHUNK_JSON_BYTES = 16 * 2**20


def _get_extractor() -> read.Extractor:
    global _extractor
    if _extractor is None:
        _extractor = read.Extractor(threads=1)
    return _extractor


def fetch_all(urls: list[str], s3: S3Options) -> dict[str, bytes | Exception]:
    """The bytes of each file, or why it could not be read. S3 objects come in parallel, a bounded number at
    a time, each retried with backoff (jobs/storage.py) before it counts as failed."""
    out: dict[str, bytes | Exception] = {}
    remote = [u for u in urls if is_s3(u)]
    for url in urls:
        if is_s3(url):
            continue
        try:
            if "://" in url:
                fs, path = url_to_fs(url)
                with fs.open(path, "rb") as fh:
                    out[url] = fh.read()
            else:  # a local path, as listed: without fsspec's per-file set-up
                out[url] = read_local(url)
        except OSError as exc:
            out[url] = exc
    if remote:
        fs = s3_filesystem(s3)

        def get(url: str) -> bytes | Exception:
            try:
                return fs.cat_file(url.split("://", 1)[1])
            except Exception as exc:  # kept as the file's reason; the batch goes on
                return exc

        with ThreadPoolExecutor(S3_CONCURRENT_GETS) as pool:
            out.update(zip(remote, pool.map(get, remote)))
    return out


class NotRegularFile(OSError):
    """A listed path that is a FIFO, a socket, a device: never opened, quarantined as the file's own fault."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file ({kind}): only regular files are read; move it out of the source")


def read_local(path: str) -> bytes:
    """A local regular file's bytes. Anything else is refused before it is opened (opening a FIFO waits for a
    writer forever); the open does not block and is checked again, in case the file was replaced meanwhile."""
    if kind := not_regular(os.stat(path).st_mode):
        raise NotRegularFile(kind)
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY), "rb") as fh:
        if kind := not_regular(os.fstat(fh.fileno()).st_mode):
            raise NotRegularFile(kind)
        return fh.read()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def process_batch(batch_no: int, batch: Batch, opts: Options, staging: str) -> BatchResult:
    """Read, validate, normalize and stage one batch of files. Never raises on bad input."""
    started = time.perf_counter()
    arrow_uses_malloc()  # once per process, before its first batch allocates anything
    result = BatchResult(worker=f"{socket.gethostname()}:{os.getpid()}")
    state = {f.url: {"url": f.url, "size": f.size, "version": f.version, "status": "ingested", "records": 0,
                     "rejected": 0} for f in batch.files}
    # never opened, both quarantined as UNREADABLE (never skipped as done) until they can be read: a folder the
    # listing could not look into, and a local file whose name cannot be the lake's text (log.file.path, the state)
    unopened = {f.url: f.problem or "the file name is not valid UTF-8: rename the file"
                for f in batch.files if f.problem or not _utf8(f.url)}
    if unopened:
        batch = Batch([f for f in batch.files if f.url not in unopened],
                      [f for f in batch.context if f.url not in unopened])
    for url, reason in unopened.items():
        state[url]["url"] = _shown(url)
        _quarantine_file(result, state[url], _shown(reason), UNREADABLE)
    with _step(result, "fetch"):
        contents = fetch_all([f.url for f in batch.files + batch.context], opts.s3)
    sizes = [read.json_size(d) if isinstance(d := contents[f.url], bytes) else 0 for f in batch.files]
    for f, size in zip(batch.files, sizes):
        if f.gzipped and size:  # what the plan estimates from: the run learns it (ingest.Inflation)
            result.gzip_bytes += len(contents[f.url])
            result.json_bytes += size
    for chunk_no, chunk in enumerate(chunks(batch, sizes)):
        _process_chunk(f"b{batch_no:06d}-{chunk_no:02d}", chunk, contents, opts, Path(staging), result, state)
    result.files = list(state.values())
    result.counts.files_partial = sum(f["status"] == PARTIAL for f in result.files)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _shown(text: str) -> str:
    """Text holding a local name that is not UTF-8, as UTF-8: its bad bytes as \\xNN escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utf8(url: str) -> bool:
    """False for a local name that is not UTF-8 (Python holds its bytes as surrogates)."""
    try:
        url.encode()
        return True
    except UnicodeEncodeError:
        return False


def chunks(batch: Batch, sizes: list[int]) -> list[Batch]:
    """The batch as consecutive runs of files of at most CHUNK_JSON_BYTES of JSON each (a larger file alone),
    about equal: the plan sizes a batch from gzip sizes before anyone has read them, and a worker's memory
    follows the JSON it decompresses (docs/performance.md). Each batch context file goes to the run where its
    stream starts, and a run continuing a stream gets the stream's file just before it, as the plan gives a
    batch: a re-delivery across the cut is dropped here, not rewritten at commit."""
    total = sum(sizes)
    if total <= CHUNK_JSON_BYTES:
        return [batch]
    share = total / -(-total // CHUNK_JSON_BYTES)
    groups: list[list[SourceFile]] = []
    current, held, before = [], 0, 0
    for f, size in zip(batch.files, sizes):  # cut where a file's middle passes the next share, or it would not fit
        if current and (held + size > CHUNK_JSON_BYTES or before + size / 2 >= share * (len(groups) + 1)):
            groups.append(current)
            current, held = [], 0
        current.append(f)
        held += size
        before += size
    return list(with_context([*groups, current], batch.context))


def _process_chunk(part: str, chunk: Batch, contents: dict[str, bytes | Exception], opts: Options, staging: Path,
                   result: BatchResult, state: dict) -> None:
    """One run of a batch → its part files. A file that cannot be read is quarantined alone; a context file
    only lends its events for dedup."""
    with _step(result, "split"):
        by_table, context = _split_chunk(chunk, contents, result, state)
    for table in list(by_table):
        names, parts = by_table.pop(table)
        if set(names) - context:
            _process_table(part, table, names, parts, context, opts, staging, result, state)


def _split_chunk(chunk: Batch, contents: dict[str, bytes | Exception], result: BatchResult,
                 state: dict) -> tuple[dict[str, tuple[list[str], list[read.Parsed]]], set[str]]:
    """Each file's records by table, with the context files among them; a file that cannot be read is
    quarantined here."""
    by_table: dict[str, tuple[list[str], list[read.Parsed]]] = {"events": ([], []), "digests": ([], [])}
    for f in chunk.files:
        data = contents[f.url]
        if isinstance(data, NotRegularFile):  # its own fault, as a file that is not JSON: skipped while unchanged
            _quarantine_file(result, state[f.url], str(data))
            continue
        if isinstance(data, Exception):  # not the file's fault: quarantined for now, tried again next run
            reason = explain(data, f.url) or f"{type(data).__name__}: {data}"
            _quarantine_file(result, state[f.url], f"cannot read the file: {reason}", status=UNREADABLE)
            continue
        try:
            parsed = read.split(data)
        except read.BadFile as exc:
            _quarantine_file(result, state[f.url], str(exc))
            continue
        except ValueError as exc:
            _quarantine_file(result, state[f.url], f"cannot read the file: {exc}")
            continue
        result.counts.files_read += 1
        state[f.url]["records"] = len(parsed.records)
        names, parts = by_table[parsed.table]
        names.append(f.url)
        parts.append(parsed)
    context = set()
    for f in chunk.context:  # best effort: a context file that cannot be read only costs a rewrite later
        data = contents[f.url]
        try:
            parsed = read.split(data) if isinstance(data, bytes) else None
        except (read.BadFile, ValueError):
            parsed = None
        if parsed is not None and parsed.table == "events":
            by_table["events"][0].append(f.url)
            by_table["events"][1].append(parsed)
            context.add(f.url)
    return by_table, context


def _quarantine_file(result: BatchResult, state: dict, reason: str, status: str = "quarantined") -> None:
    state["status"] = status
    result.counts.files_quarantined += 1
    result.quarantine.append({"source": state["url"], "record": None, "reason": reason, "time": _now()})


def _process_table(part: str, table: str, names: list[str], parts: list[read.Parsed], context: set[str],
                   opts: Options, staging: Path, result: BatchResult, state: dict) -> None:
    with _step(result, "records"):
        records = read.records_table(names, parts)
        parts.clear()  # the decompressed files are no longer needed: free them before the heavy steps
    with _step(result, "extract"):
        frame = _get_extractor().extract(records, table)
    del records
    with _step(result, "validate"):
        frame = frame.with_columns(pl.col(FILE).cast(pl.String).is_in(list(context)).alias("_context"))
        good, bad = read.validate(frame, table)
    bad = bad.filter(~pl.col("_context"))  # a context file's own batch reports its bad records
    c = result.counts
    _bump(c, table, "read", frame.height - frame["_context"].sum())
    _bump(c, table, "quarantined", bad.height)
    for row in bad.select(FILE, "_ord", "reason", "_raw", "_bytes").iter_rows(named=True):
        result.quarantine.append(_quarantine_record(row))
        state[row[FILE]]["rejected"] += 1
    normalized = normalize(good.lazy(), table, opts.keep_original).with_columns(good["_ord"].alias("_ord"),
                                                                                 good["_context"].alias("_context"))
    normalized = normalized.with_columns(pl.col("@timestamp").dt.date().alias(PARTITION))
    # Polars' default (streaming) engine sets up ~20 ms of pipeline per query: paid per batch, not worth it
    # for a frame already in memory (docs/performance.md)
    with _step(result, "normalize"):
        if opts.scope == Scope():
            kept = normalized.collect(engine="in-memory")
        else:
            # an event without the account or region a scope asks for is outside it (is_in gives null, not false)
            inside = _scope_filter(table, opts.scope).fill_null(False)
            judged = normalized.with_columns(inside.alias("_in")).collect(engine="in-memory")
            _read_in_part(state, good[FILE].filter(~judged["_in"] & ~good["_context"]))
            kept = judged.filter("_in").drop("_in")
    _bump(c, table, "filtered", (good.height - good["_context"].sum()) - (kept.height - kept["_context"].sum()))
    del frame, good, bad, normalized  # the raw inputs are no longer needed
    # Re-deliveries mostly sit in neighbouring files of one stream, which a batch keeps together: the first
    # copy (file order, then record order) wins here, and the commit settles duplicates across batches.
    # Dedup and sort are decided on the key columns and applied to the wide frame in one gather.
    # Rows are ordered by day first, so each day's file is a zero-copy slice of one gathered frame.
    with _step(result, "order"):
        own_rows, ordered_keys = _dedup_and_sort(kept, table)
        ordered = kept.drop("_ord", "_context", PARTITION)[ordered_keys["_i"]]
    _bump(c, table, "duplicates", own_rows - ordered_keys.height)
    del kept
    schema, write_options = _write_options(table)
    with _step(result, "export"):
        # one export for the batch, sliced per day (a cast has a fixed cost per column, ~1.6 ms a file); the
        # Polars frame, whose strings the cast has copied, is freed before the writes. A batch is one day but
        # for a few late events of the day before, so the cast holds about what one day's cast held.
        ordered = _as_arrow(ordered, schema)
    offset = 0
    for day, rows in ordered_keys.group_by("_day", maintain_order=True).len().iter_rows():
        out = staging / table / f"{PARTITION}={day}" / f"part-{staging.name}-{part}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.{socket.gethostname()}-{os.getpid()}")  # a retried batch (another
        with _step(result, "write"):
            pq.write_table(ordered.slice(offset, rows), partial, **write_options)
        os.replace(partial, out)  # worker, after a crash) never leaves a half-written file under the final name
        result.staged.setdefault((table, str(day)), []).append((str(out), rows))
        offset += rows


def _dedup_and_sort(kept: pl.DataFrame, table: str) -> tuple[int, pl.DataFrame]:
    """How many rows are the batch's own (not a context file's), and the order its survivors are written in:
    row numbers (`_i`) by day, then the table's sort keys. Decided on the key columns only, so the wide frame is
    gathered once, and each day's rows are one slice of it."""
    sort_keys = [pl.col(PARTITION).alias("_day"), *(_field(k).alias(f"_s{n}") for n, k in enumerate(SORT_KEYS[table]))]
    narrow = kept.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"), "_context",
                         pl.coalesce([_field(k) for k in DEDUP_KEYS[table]]).alias("_key"), *sort_keys)
    # an event the context file holds (valid, in scope) is written by that file's batch: drop it here
    seen = narrow.filter(pl.col("_context"))["_key"]
    own = narrow.filter(~pl.col("_context"))
    survivors = own.filter(~pl.col("_key").is_in(seen.implode())).unique("_key", keep="first", maintain_order=True)
    return own.height, survivors.sort(["_day", *(f"_s{n}" for n in range(len(sort_keys) - 1))], nulls_last=True)


@contextmanager
def _step(result: BatchResult, name: str) -> Iterator[None]:
    """Adds the time the block takes to the batch's seconds in that step (`BatchResult.steps`): each run says
    where its workers' time went, summed over its batches (README, docs/performance.md)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        result.steps[name] = result.steps.get(name, 0.0) + time.perf_counter() - start


@functools.cache
def _write_options(table: str) -> tuple[pa.Schema, Mapping[str, Any]]:
    """The table's Arrow schema and part-file options, built once per process (~1.5 ms a batch otherwise);
    the options read-only, as every batch shares them."""
    schema = arrow_schema(table)
    return schema, MappingProxyType(parquet_options(table, schema))


def _as_arrow(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """The frame as the lake's Arrow schema: Polars hands its string views over as they are, and Arrow's cast
    writes each string once, into the schema's strings, in pages its allocator hands back after the batch.
    The default export copies the strings into Polars' allocator instead, which keeps its pages: ~3 % faster
    per run, but a worker's peak grows with the run (5M events: tree 943–946 MiB against 890 with views, 1M
    902–922 against 867–898; docs/performance.md). The Parquet writer cannot take nested views, hence the cast."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest()).cast(schema)


def _field(dotted: str) -> pl.Expr:
    """A nested column by its ECS path: "cloud.account.id" → cloud → account → id."""
    head, *rest = dotted.split(".")
    expr = pl.col(head)
    for part in rest:
        expr = expr.struct.field(part)
    return expr


def _read_in_part(state: dict, left_out: pl.Series) -> None:
    """The files whose events the scope left out some of are read in part (lake.PARTIAL), not done."""
    for url in left_out.cast(pl.String).unique().to_list():
        if state[url]["status"] == "ingested":
            state[url]["status"] = PARTIAL


def _quarantine_record(row: dict) -> dict:
    entry = {"source": row[FILE], "record": row["_ord"], "reason": row["reason"], "time": _now()}
    if row["_raw"] is not None:
        entry["original"] = row["_raw"]
    elif row["_bytes"] is not None:
        entry["original_base64"] = base64.b64encode(row["_bytes"]).decode()
    return entry


def _scope_filter(table: str, scope: Scope) -> pl.Expr:
    keep = pl.lit(True)
    if scope.since:
        keep &= pl.col(PARTITION) >= scope.since
    if scope.until:
        keep &= pl.col(PARTITION) <= scope.until
    if table == "events":
        if scope.accounts:
            account = pl.coalesce(pl.col("aws").struct.field("cloudtrail").struct.field("recipient_account_id"),
                                  pl.col("cloud").struct.field("account").struct.field("id"))
            keep &= account.is_in(list(scope.accounts))
        if scope.regions:
            keep &= pl.col("cloud").struct.field("region").is_in(list(scope.regions))
    elif scope.accounts:
        keep &= pl.col("cloud").struct.field("account").struct.field("id").is_in(list(scope.accounts))
    return keep
