"""Named crash points for the reliability harness (tests/reliability.py).

`TRAILHOUSE_FAILPOINT=<name>[:<n>[:<signal>]]` makes the process kill itself with SIGKILL, as a power
cut would, the n-th time it reaches that point (default the first); with a signal name (`TERM`, `INT`)
it sends itself that signal instead, as an orchestrator stopping the job would. Unset, a failpoint costs
one dictionary lookup. The harness also kills at random moments; failpoints make sure the narrow
windows of a commit are hit on every run of it, not by luck.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    spec = os.environ.get("TRAILHOUSE_FAILPOINT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    nth, _, sig = rest.partition(":")
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1) or (not sig and _hits[name] > int(nth or 1)):
        os.kill(os.getpid(), signal.Signals["SIG" + sig] if sig else signal.SIGKILL)
