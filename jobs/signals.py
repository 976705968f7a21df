"""How a command answers SIGTERM (an orchestrator stopping the job, `kill`): as Ctrl-C, at once, except once a
commit has begun: then the run finishes (its commit, its lock, its summary) and the command ends with 143.

One state per process, set by the CLI for the length of a command (`handling`): a signal handler can only be
module-level, and DuckDB answers a signal during a query with an error of its own ("Query interrupted"),
dropping the exception the handler raised, so whether SIGTERM came is read here, not from that exception.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from jobs.errors import Terminated

_state = {"received": False, "held": False}


@contextmanager
def handling() -> Iterator[None]:
    """SIGTERM raises `Terminated` (once) in the main thread while the block runs; elsewhere (a command run from
    another thread by an embedding program) the signal is left as it is."""
    _state.update(received=False, held=False)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _terminate(signum: int, frame: object) -> None:
    """Raise once: a second SIGTERM (an orchestrator insisting, DuckDB checking for signals again) must not
    break off the clean-up the first one started; a commit under way is not broken off at all."""
    if _state["received"]:
        return
    _state["received"] = True
    if not _state["held"]:
        raise Terminated()


def hold() -> None:
    """From here to the end of the command, SIGTERM is noted, not raised: called just before a commit's journal
    is written, so a commit that begins also ends, and its run releases its lock and reports."""
    _state["held"] = True


def terminated() -> bool:
    return _state["received"]


def held() -> bool:
    """Whether SIGTERM came while a commit was held to its end."""
    return _state["received"] and _state["held"]
