"""`trailhouse` command line.

Exit status: 0 everything ingested; 3 committed, but some input was quarantined;
2 usage or configuration error, nothing written; 1 failure, nothing half-written;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). A reader that stops reading the output (`| head`) ends
a command quietly, exit 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import glob
import os
import pathlib
import re
import select
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from jobs import signals
from jobs.errors import CommitInterrupted, RunError, UsageError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_QUARANTINE = 0, 1, 2, 3


#: The dates a command takes: none before the Unix epoch (CloudTrail itself began in 2013), and a day either side of
#: each bound must still be a date (a run lists the folders a day around its range, for late deliveries).
FIRST_DATE, LAST_DATE = dt.date(1970, 1, 1), dt.date(9999, 12, 30)


def _date(value: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give a date from {FIRST_DATE} to {LAST_DATE}")
    return day


def _natural(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0: {value!r}")
    return int(value)


MAX_LOOKBACK_DAYS = 3653


def _lookback(value: str) -> int:
    days = _natural(value)
    if days > MAX_LOOKBACK_DAYS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LOOKBACK_DAYS} days (ten years): {value!r}; to re-read an "
                                         "older range, give --since and --until")
    return days


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1: {value!r}")
    return n


#: What DuckDB takes as a memory limit: a number and a unit (1GB, 512 MiB, 1.5g, 2 gigabytes), a share of the RAM
#: (50%), or no limit (-1, none).
_MEMORY = re.compile(r"\s*(?:(?P<none>-1|(?-i:none))|(?P<n>(\d+\.?\d*|\.\d+)(e\d+)?)\s*"
                     r"(?P<unit>%|b|bytes?|(?P<p>[kmgt])(?:(?P<i>i)b|b)?|(?P<w>kilo|mega|giga|tera)bytes?))\s*",
                     re.IGNORECASE)
#: The least the commit's partition merges run in, and the most worth saying (1000 TB: more than any machine has).
MIN_MEMORY, MAX_MEMORY = 64 * 10**6, 10**15


def _memory(value: str) -> str:
    """Checked when the command is read: DuckDB would only refuse it at the commit, after every input was read."""
    m = _MEMORY.fullmatch(value)
    if not m:
        raise argparse.ArgumentTypeError(f"not a memory size (e.g. 1GB, 512MB, 50%): {value!r}")
    if m["none"]:
        return value
    number, unit = float(m["n"]), m["unit"]
    if unit == "%":
        if number > 100:
            raise argparse.ArgumentTypeError(f"a share of the memory is at most 100%: {value!r}")
        size = number / 100 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    else:
        prefix = (m["p"] or (m["w"] or " ")[0]).lower()
        size = number * (1024 if m["i"] else 1000) ** " kmgt".index(prefix)
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise argparse.ArgumentTypeError(f"{value!r} is out of range: give at least 64MB and at most 1000TB "
                                         "(the default, 1GB, suits most runs)")
    return value


def _endpoint(value: str) -> str:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise argparse.ArgumentTypeError(f"not an http(s) URL (e.g. http://127.0.0.1:9000): {value!r}")
    return value


def _local(value: str) -> str:
    """A path the command writes to: local, not a URL (`file:///x` would be made as a folder named `file:`)."""
    if _SCHEME.match(_path(value)):
        raise argparse.ArgumentTypeError(f"{value}: give a local path, not a URL")
    return value


def _directory(value: str) -> str:
    """A directory the command writes into: it may not exist yet, but must not be a file."""
    if os.path.exists(_local(value)) and not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value} is a file, not a directory")
    return value


def _new_file(value: str) -> str:
    """A file the command writes at its end: checked before a long run, not after it."""
    parent = os.path.dirname(os.path.abspath(_local(value)))
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"cannot write {value}: it is a directory")
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot write {value}: there is no directory {parent}")
    return value


def _made_directory(value: str) -> pathlib.Path:
    """The directory a command writes into, made if it is missing: one that cannot be made (below a file, on a
    read-only mount) is one line saying so before any work, not an internal error halfway."""
    out = pathlib.Path(value)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise  # said as every local permission error is, with what to do (jobs/storage.denied)
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}; choose another directory") from None
    return out


def _path(value: str) -> str:
    """A path argument: an empty one would mean the current directory (a lake made of it, or read from it)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty (it would mean the current directory)")
    return value


#: A URL's scheme, as opposed to a local path that happens to hold "://" further on.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def _location(value: str) -> str:
    """A source or a lake: a local path (or file:// URL) or s3://bucket/prefix, the scheme in any case (S3://…
    as some consoles print it). Any other scheme is refused here, before anything is listed or written."""
    _path(value)
    m = _SCHEME.match(value)
    if not m:
        return value
    scheme = m[1].lower()
    if scheme not in ("s3", "s3a", "file"):
        raise argparse.ArgumentTypeError(f"{value}: {m[1]}:// is not supported; give a local path or "
                                         "s3://bucket/prefix (copy the files there first)")
    bucket = value[m.end():].split("/", 1)[0]
    if scheme != "file" and (not bucket or glob.has_magic(bucket)):
        raise argparse.ArgumentTypeError(f"{value}: name the bucket, s3://bucket/prefix (a wildcard may follow it, "
                                         "not stand in it)")
    return scheme + value[len(m[1]):]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trailhouse", description="AWS CloudTrail → a Parquet security lake.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ing = sub.add_parser("ingest", help="load CloudTrail files into the lake")
    ing.add_argument("sources", nargs="+", metavar="SOURCE", type=_location,
                     help="directory, file, glob or s3://bucket/prefix")
    ing.add_argument("--lake", required=True, type=_location, help="lake directory or s3://bucket/prefix")
    ing.add_argument("--since", type=_date, help="first event date to keep (UTC, YYYY-MM-DD)")
    ing.add_argument("--until", type=_date, help="last event date to keep (UTC, YYYY-MM-DD)")
    ing.add_argument("--account", action="append", default=[], metavar="ID", help="keep only this account (repeatable)")
    ing.add_argument("--region", action="append", default=[], metavar="NAME", help="keep only this region (repeatable)")
    ing.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    ing.add_argument("--full-refresh", action="store_true", help="forget what was ingested and rebuild")
    ing.add_argument("--no-original", action="store_true", help="do not store event.original")
    ing.add_argument("--memory-limit", type=_memory, default="1GB",
                     help="DuckDB memory limit for partition merges (default 1GB)")
    ing.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="run batches in local processes (default) or on a Dask cluster")
    ing.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="the Dask scheduler (default: DASK_SCHEDULER_ADDRESS)")
    ing.add_argument("--lookback-days", type=_lookback, default=2, metavar="N",
                     help="S3 sources without --since: re-list N days before the newest folder already ingested, "
                          "for late deliveries (default 2)")
    _s3_options(ing, sources=True)

    cmp = sub.add_parser("compact", help="rewrite the lake's partitions as few sorted files, compressed harder")
    cmp.add_argument("--lake", required=True, type=_location, help="lake directory or s3://bucket/prefix")
    cmp.add_argument("--since", type=_date, help="first partition to compact (YYYY-MM-DD)")
    cmp.add_argument("--until", type=_date, help="last partition to compact (YYYY-MM-DD; nightly: two days back)")
    cmp.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    _s3_options(cmp)

    gen = sub.add_parser("generate", help="write a synthetic CloudTrail bucket in S3 layout")
    gen.add_argument("--out", type=_directory, required=True, help="output directory")
    gen.add_argument("--events", type=_positive, required=True, help="number of events")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--accounts", type=_positive, default=2)
    gen.add_argument("--regions", type=_positive, default=2)
    gen.add_argument("--days", type=_positive, default=2)
    gen.add_argument("--start", type=_date, default=dt.date(2026, 11, 1), help="first day (default 2026-11-01)")

    sql = sub.add_parser("sql", help="run SQL over the lake, with every view of queries/ registered")
    sql.add_argument("--lake", required=True, type=_location)
    _s3_options(sql)
    _output_options(sql)
    sql.add_argument("query", metavar="SQL")

    fnd = sub.add_parser("findings", help="the use-case alerts: counts per rule, then the findings")
    fnd.add_argument("--lake", required=True, type=_location)
    _s3_options(fnd)
    fnd.add_argument("--since", type=_date, help="first day (UTC, YYYY-MM-DD)")
    fnd.add_argument("--until", type=_date, help="last day (UTC, YYYY-MM-DD)")
    _output_options(fnd)

    dash = sub.add_parser("dashboards", help="dashboard datasets (Parquet, CSV), charts (PNG) and an offline report")
    dash.add_argument("--lake", required=True, type=_location)
    dash.add_argument("--out", type=_directory, required=True, metavar="DIR",
                      help="where datasets/, charts/ and index.html go")
    dash.add_argument("--since", type=_date, help="first day (UTC, YYYY-MM-DD)")
    dash.add_argument("--until", type=_date, help="last day (UTC, YYYY-MM-DD)")
    _s3_options(dash)

    bench = sub.add_parser("bench", help="measure ingest against the DuckDB-only load, per-event Python, the floor")
    bench.add_argument("--events", type=_positive, default=1_000_000)
    bench.add_argument("--workdir", type=_directory, default=".bench",
                       help="where the generated bucket is cached (default .bench)")
    bench.add_argument("--workers", type=_positive, default=os.cpu_count() or 1)
    bench.add_argument("--repeat", type=_positive, default=1,
                       help="run each row N times and report the median (the machine's noise is ±10–15 %%)")
    bench.add_argument("--json", type=_new_file, metavar="FILE", help="also write the figures as JSON")

    cat = sub.add_parser("catalog", help="write a DuckDB database whose views read the lake")
    cat.add_argument("--lake", required=True, type=_location)
    cat.add_argument("--db", required=True, type=_path, metavar="FILE.duckdb")
    _s3_options(cat)
    return p


def _s3_options(p: argparse.ArgumentParser, sources: bool = False) -> None:
    g = p.add_argument_group("S3", "the standard AWS credential chain applies: environment, profile, instance role")
    g.add_argument("--profile", default=os.environ.get("AWS_PROFILE"), help="AWS profile (default: AWS_PROFILE)")
    g.add_argument("--endpoint-url", type=_endpoint, default=None, metavar="URL",
                   help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    if sources:
        g.add_argument("--requester-pays", action="store_true", help="the trail bucket is requester-pays")


def _s3(args: argparse.Namespace):
    from jobs.storage import S3Options

    return S3Options(args.profile, args.endpoint_url, getattr(args, "requester_pays", False))


#: What sql and findings write: a table for the terminal, or a file's format.
FORMATS = ("table", "csv", "json", "parquet")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="table (the default), csv, json or parquet; with --output, the default is the file's "
                        "extension (.csv, .json, .parquet), else csv")
    p.add_argument("--output", metavar="FILE", type=_new_file, help="write there instead of standard output")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with signals.handling():
        code = _run(args)
        if code < 128 and signals.held():
            print("trailhouse: terminated (SIGTERM) while committing; the run finished its commit first",
                  file=sys.stderr)
            return 143
        return code


def _run(args: argparse.Namespace) -> int:
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that left (`| head`) is found here, not by the interpreter at exit
        return code
    except BrokenPipeError as exc:
        if not _stdout_closed():
            return _internal(exc)
        _silence_stdout()
        return EXIT_OK
    except UsageError as exc:
        print(f"trailhouse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"trailhouse: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        if _out_of_space(exc):
            print(f"trailhouse: no space left to write ({exc}); nothing was committed: free some space "
                  "(or point TMPDIR/TRAILHOUSE_WORK_DIR elsewhere) and run again", file=sys.stderr)
            return EXIT_FAILURE
        return _internal(exc)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Exception as exc:
        if _query_interrupted(exc):
            return _interrupted(exc)
        return _internal(exc)


def _interrupted(exc: BaseException) -> int:
    """Exit 130 for Ctrl-C, 143 for SIGTERM (as a shell reports a process those signals ended), one line."""
    terminated = signals.terminated()
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    if isinstance(exc, CommitInterrupted):
        print(f"trailhouse: {what} while committing; the next run on this lake completes (or on S3, before its "
              "state file was up, undoes) that commit, losing nothing", file=sys.stderr)
    else:
        print(f"trailhouse: {what}; nothing was committed by this run", file=sys.stderr)
    return 143 if terminated else 130


def _query_interrupted(exc: Exception) -> bool:
    """DuckDB turns a Ctrl-C during a query (a partition merge) into an error of its own, not KeyboardInterrupt."""
    return type(exc).__name__ == "InterruptException" or (
        isinstance(exc, RuntimeError) and str(exc) == "Query interrupted")


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll(2) reports POLLERR on such a pipe's write
    end): the reader had all it wanted, as `head` does, and no worker's or socket's broken pipe is taken for it."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced or closed: not a pipe we write to
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that what is still buffered does not fail again at exit
    ("Exception ignored … BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _out_of_space(exc: BaseException) -> bool:
    text = str(exc)
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or any(
        s in text for s in ("No space left", "File too large", "Disk quota exceeded"))


def _internal(exc: Exception) -> int:
    """A bug: say so in one line, keep the traceback for whoever asks."""
    from jobs.errors import lake_file_problem
    from jobs.storage import explain

    if os.environ.get("TRAILHOUSE_DEBUG"):
        raise exc
    reason = explain(exc) or lake_file_problem(exc)
    if reason:  # S3 credentials, permissions, endpoint, a damaged or locked lake file: the user's to fix
        print(f"trailhouse: {reason}", file=sys.stderr)
        return EXIT_USAGE
    print(f"trailhouse: internal error: {type(exc).__name__}: {exc} "
          "(rerun with TRAILHOUSE_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_FAILURE


def _check_range(args: argparse.Namespace) -> None:
    if args.since and args.until and args.since > args.until:
        raise UsageError(f"--since {args.since} is after --until {args.until}")


def _place(location: str, pattern: bool = False) -> str:
    """Where a source, lake or output is, comparable with another: an absolute real path, or s3://bucket/key. A
    source's glob (`pattern`) stands for the folder it starts from."""
    from jobs.discover import glob_root
    from jobs.storage import is_s3

    s3 = is_s3(location)  # a source's or lake's scheme is lower case by now (`_location`)
    path = "/" + location.split("://", 1)[1].strip("/") if s3 else os.path.abspath(location.removeprefix("file://"))
    if pattern and glob.has_magic(path):
        path = glob_root(path)
    return "s3:/" + path.rstrip("/") if s3 else os.path.realpath(path)


def _within(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or below it (both from `_place`)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _check_apart(sources: list[str], lake: str) -> None:
    """A source that is the lake or inside it would be the lake's own files, which a run never reads back (it
    said "seen 0" and wrote its state into the trail): refused. A lake inside its source is fine."""
    for source in sources:
        if _within(_place(source, pattern=True), _place(lake)):
            raise UsageError(f"the source {source} is inside the lake {lake}, whose own files a run never reads: "
                             "give the trail's folder as the source and keep the lake in a folder or prefix of its own")


def _ingest(args: argparse.Namespace) -> int:
    from jobs.discover import Scope
    from jobs.ingest import Options, run
    from jobs.progress import Progress, print_summary

    _check_range(args)
    _check_apart(args.sources, args.lake)
    if args.full_refresh and (args.account or args.region):
        raise UsageError("--full-refresh rebuilds whole days, every account and region in them: drop "
                         "--account/--region (a refresh of one would delete the others' events of those days)")
    scope = Scope(args.since, args.until, frozenset(args.account), frozenset(args.region))
    opts = Options(list(args.sources), args.lake, scope, args.workers, args.full_refresh,
                   not args.no_original, args.memory_limit, _s3(args), args.lookback_days, args.executor,
                   args.scheduler)
    if args.executor == "dask":
        from jobs.dask_executor import scheduler_address

        scheduler_address(args.scheduler)  # checked again where the run connects; here before anything is written
    elif args.scheduler:
        raise UsageError("--scheduler is for --executor dask: add --executor dask, or drop --scheduler")
    with Progress.for_terminal() as progress:
        summary = run(opts, progress.update)
    print_summary(summary, args.lake)
    return summary.exit_code


def _compact(args: argparse.Namespace) -> int:
    from jobs.compact import Options, run

    _check_range(args)
    s = run(Options(args.lake, args.since, args.until, args.workers, _s3(args)))
    lines = [f"trailhouse compact · run {s.run_id}"]
    if not s.partitions:
        lines.append("  nothing to compact: every partition in range is already compacted")
    else:
        shown = ", ".join(s.partitions[:4]) + (f", … ({len(s.partitions) - 4} more)" if len(s.partitions) > 4 else "")
        lines += [f"  partitions  {len(s.partitions):,} rewritten: {shown}",
                  f"  files       {s.files_before:,} → {s.files_after:,} · {s.rows:,} rows",
                  f"  size        {s.bytes_before / 2**20:,.1f} → {s.bytes_after / 2**20:,.1f} MiB "
                  f"({s.bytes_before / s.rows:,.0f} → {s.bytes_after / s.rows:,.0f} B/row)",
                  f"  time        {s.seconds:,.2f} s · {s.rows / s.seconds if s.seconds else 0:,.0f} rows/s"]
    if s.recovered:
        lines.append(f"  recovered   finished the interrupted commit of run(s) {', '.join(s.recovered)}")
    print("\n".join(lines))
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from jobs.generate import Spec, generate

    try:
        args.start + dt.timedelta(days=args.days + 1)  # deliveries run into the day after
    except OverflowError:
        raise UsageError(f"--start {args.start} with --days {args.days} runs past 9999-12-31: "
                         "choose an earlier --start") from None
    spec = Spec(events=args.events, seed=args.seed, accounts=args.accounts, regions=args.regions,
                days=args.days, start=args.start)
    stats = generate(spec, str(_made_directory(args.out)))
    print(f"wrote {stats['events']:,} events ({stats['insights']:,} of them Insights) in {stats['files']:,} files "
          f"and {stats['digests']:,} digest files to {args.out} ({stats['bytes'] / 2**20:.1f} MiB)")
    return EXIT_OK


def _connect(args: argparse.Namespace, database: str = ":memory:"):
    from jobs.storage import explain, filesystem
    from queries import LakeError, connect

    lake = args.lake
    try:
        fs, _ = filesystem(lake, _s3(args))
        return connect(lake, database, fs)
    except LakeError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:
        reason = explain(exc, lake)
        if reason:
            raise UsageError(reason) from None
        if isinstance(exc, (OSError, ValueError)):
            raise UsageError(f"cannot open the lake {lake}: {exc}") from None
        raise


def _check_output(args: argparse.Namespace) -> None:
    """Settle the format and refuse an output that cannot be written before any query runs (and before a summary
    is printed): a file's format is the one asked for, else the one its extension names, else CSV."""
    if args.output == "-":  # as many tools spell standard output
        args.output = None
    if args.output and args.format is None:
        stem = re.sub(r"\.(gz|zst)$", "", args.output, flags=re.IGNORECASE)  # compressed as the name says
        ext = os.path.splitext(stem)[1].lstrip(".").lower()
        args.format = ext if ext in FORMATS[1:] else "csv"
    args.format = args.format or "table"
    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet needs --output FILE")
    if args.format == "table" and args.output:
        raise UsageError("--format table is for the terminal: write --output FILE as --format csv, json or parquet")
    from jobs.lake import TABLES

    lake = _place(args.lake)
    if args.output and any(_within(_place(args.output), f"{lake}/{table}") for table in TABLES):
        raise UsageError(f"--output {args.output} is inside the lake's tables, where it would be read as the "
                         "lake's own data: write it elsewhere")


def _sql(args: argparse.Namespace) -> int:
    from jobs.output import write

    _check_output(args)
    con = _connect(args)
    write(con, args.query, args.format, args.output)
    return EXIT_OK


def _findings(args: argparse.Namespace) -> int:
    from jobs.output import write
    from jobs.sql import days_clause

    _check_range(args)
    _check_output(args)
    con = _connect(args)
    con.execute(f"CREATE TEMP VIEW selected AS SELECT * FROM findings {days_clause(args.since, args.until)}")
    summary = ("SELECT rule, wazuh_rule_id, level, count(*) AS findings, min(\"@timestamp\") AS first, "
               "max(\"@timestamp\") AS last FROM selected GROUP BY ALL ORDER BY level DESC, rule")
    listing = "SELECT * EXCLUDE (event_date) FROM selected ORDER BY \"@timestamp\", rule"
    if args.format == "table":
        write(con, summary, "table", None)
        write(con, listing, "table", None, max_rows=1000)
    else:  # the findings are the data; the summary goes to the terminal
        write(con, summary, "table", None, stream=sys.stderr)
        write(con, listing, args.format, args.output)
    return EXIT_OK


def _dashboards(args: argparse.Namespace) -> int:
    from jobs.dashboards import build

    _check_range(args)
    if _within(_place(args.out), _place(args.lake)):
        raise UsageError(f"--out {args.out} is inside the lake {args.lake}: write the dashboards outside it "
                         f"(e.g. --out {args.lake.rstrip('/')}-dashboards)")
    con = _connect(args)
    out = _made_directory(args.out)
    done = build(con, out, args.since, args.until, args.lake)
    print(f"wrote {len(done['datasets'])} dashboard datasets (Parquet and CSV) and charts over {done['calls']:,} "
          f"calls, {done['findings']:,} findings, to {out}; the report is {out / 'index.html'}")
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    import json

    from jobs.bench import render, run

    try:
        report = run(args.events, _made_directory(args.workdir), args.workers, args.repeat)
    except RuntimeError as exc:
        raise RunError(str(exc)) from None
    print(render(report))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    return EXIT_OK


def _catalog(args: argparse.Namespace) -> int:
    db = pathlib.Path(args.db)
    tmp = db.with_name(db.name + ".tmp")
    _check_db(db, tmp)
    try:
        con = _connect(args, str(tmp))
        views = [r[0] for r in
                 con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
        con.close()
        tmp.replace(db)
    finally:  # nothing left behind when the lake cannot be read
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    print(f"wrote {db} with {len(views)} views over {args.lake}: {', '.join(views)}")
    from jobs.storage import is_s3

    if is_s3(args.lake):
        print("the lake is on S3: its views read s3:// paths, so open the file where DuckDB can read S3 "
              "(the httpfs extension with credentials), or use trailhouse sql, which reads it through s3fs")
    return EXIT_OK


def _check_db(db: pathlib.Path, tmp: pathlib.Path) -> None:
    """--db must name a file that can be created next to its temporary twin, checked by creating that twin."""
    if db.is_dir():
        raise UsageError(f"--db {db} is a directory: give the database file to write, e.g. {db / 'trail.duckdb'}")
    if db.is_file() and not _is_duckdb(db):
        raise UsageError(f"--db {db} exists and is not a DuckDB database: give a new file (e.g. trail.duckdb), "
                         "or remove that one first")
    try:
        tmp.unlink(missing_ok=True)
        tmp.touch(exist_ok=False)
        tmp.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write --db {db}: {exc.strerror or exc}; give a file in an existing directory "
                         "you can write to") from None


def _is_duckdb(path: pathlib.Path) -> bool:
    """A DuckDB database file: its header holds the magic "DUCK" at byte 8 (an empty file is one DuckDB made
    nothing of yet, so it may be replaced too). A catalog replaces only a catalog, never someone's other file."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    return not head or head[8:12] == b"DUCK"


#: The subcommand → its function (argparse makes a command required, so every key is one of these).
COMMANDS = {"ingest": _ingest, "compact": _compact, "generate": _generate, "sql": _sql, "findings": _findings, "catalog": _catalog,
            "dashboards": _dashboards, "bench": _bench}


if __name__ == "__main__":
    sys.exit(main())
