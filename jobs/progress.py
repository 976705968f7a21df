"""What a person (or a cron log) sees: a live bar on a terminal, always a final summary."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from jobs.ingest import Summary


class Progress:
    """A rich progress bar on a TTY; silent otherwise (cron and CI logs stay clean)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._task = None
        self._start = time.perf_counter()

    @classmethod
    def for_terminal(cls) -> Progress:
        return cls(sys.stderr.isatty())

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("files"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("ingest", total=None, rate="")
        return self

    def update(self, files_done: int, files_total: int | None, events: int) -> None:
        """`files_total` is None while the listing is still streaming in: the bar counts without an end."""
        if self._bar is None:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.update(self._task, completed=files_done, total=files_total,
                         rate=f"{events:,} events · {events / elapsed:,.0f} events/s")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


def print_summary(s: Summary, lake: str) -> None:
    c = s.counts
    lines = [
        f"trailhouse ingest · run {s.run_id}",
        f"  files       seen {c.files_seen:,} · skipped as already ingested {c.files_skipped:,} · "
        f"read {c.files_read:,} · quarantined {c.files_quarantined:,}" + (
            f" · {c.files_partial:,} read in part (events outside the scope: read again by a later run)"
            if c.files_partial else ""),
        f"  events      read {c.events_read:,} · written {c.events_written:,} · duplicates dropped {c.duplicates:,} · "
        f"quarantined {c.events_quarantined:,} · outside --since/--until/--account/--region {c.events_filtered:,}",
    ]
    if c.digests_read:
        lines.append(f"  digests     read {c.digests_read:,} · written {c.digests_written:,} · "
                     f"duplicates {c.digest_duplicates:,} · quarantined {c.digests_quarantined:,} · "
                     f"outside --since/--until/--account {c.digests_filtered:,}")
    shown = ", ".join(s.partitions[:4]) + (f", … ({len(s.partitions) - 4} more)" if len(s.partitions) > 4 else "")
    lines.append(f"  partitions  {len(s.partitions):,} touched{': ' + shown if shown else ''}")
    lines.append(f"  time        {s.seconds:,.2f} s · {s.events_per_second:,.0f} events/s")
    if len(s.workers) > 1:
        shown = [f"{name} {w['batches']:,} batches, {w['events']:,} events, "
                 f"{w['events'] / w['seconds'] if w['seconds'] else 0:,.0f} events/s busy"
                 for name, w in list(s.workers.items())[:8]]
        more = f" · … {len(s.workers) - 8} more" if len(s.workers) > 8 else ""
        lines.append(f"  workers     {len(s.workers)}: " + " · ".join(shown) + more)
    if busy := sum(s.steps.values()):
        lines.append(f"  worker time {busy:,.2f} s: " + " · ".join(
            f"{step} {seconds / busy:.0%}" for step, seconds in s.steps.items() if seconds >= 0.005 * busy))
    if s.recovered:
        lines.append(f"  recovered   finished the interrupted commit of run(s) {', '.join(s.recovered)}")
    if s.exit_code == 3:
        lines.append(f"  exit 3: some input was quarantined; reasons in {lake.rstrip('/')}/quarantine/{s.run_id}.jsonl")
    print("\n".join(lines))
