"""How a pool's worker processes start and end (the ingest's and the compaction's)."""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import sys


def worker_init(*preload: str) -> None:
    """Set up a pool's worker process. It leaves Ctrl-C and SIGTERM to its driver, which stops the run (a terminal
    sends Ctrl-C to every process), and it ends without tearing its interpreter down (`_end_now`).

    `preload` are imported first: Polars, when imported, sets a SIGINT handler of its own (it turns a signal
    during a query into KeyboardInterrupt) in place of the ignored one. Imported after, by the first batch, it
    had a worker's batch fail as interrupted whenever a signal meant for the driver landed in a Polars query,
    and the run end with exit 130 though its driver was never interrupted."""
    for module in preload:
        importlib.import_module(module)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # sent to the whole group (systemd, `kill -- -PGID`): the same
    atexit.register(_end_now)


def _end_now() -> None:
    """A worker's last exit handler: flush its output and end the process, skipping the module teardown.

    The driver waits for its workers to exit before it commits (so its engines never sit beside theirs), and
    a worker's teardown of Polars, DuckDB and Arrow took ~0.17 s of a 9 s 1M-event run (docs/performance.md).
    Registered first, it runs after every exit handler of the libraries a worker imports later. A worker has
    nothing left to save by then: its results went back to the driver and its part files are closed. The
    exit code is 0; a pool does not read it (a worker that dies is seen by its pipe, and a batch's failure
    travels as the batch's exception)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
