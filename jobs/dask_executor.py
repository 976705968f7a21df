"""Run an ingest's batches on a Dask cluster instead of local processes.

The driver lists, plans and commits exactly as for a local run; only `process_batch` (read,
transform, write the batch's part files into the run's staging area) runs on the cluster, as a
Dask task per batch. A task is deterministic and writes its files under fixed names by atomic
rename, so when a worker dies and Dask runs the task again elsewhere, the staging area ends up
the same and the commit, which only the driver does, sees each batch once.

The staging area must be reachable by every worker at the same path: the lake's directory on a
shared filesystem (NFS, EFS, Lustre) for a local-path lake; for an S3 lake, `TRAILHOUSE_WORK_DIR`
on a shared filesystem. Workers should run with POLARS_MAX_THREADS=1 and one thread each
(docs/scale-out.md): parallelism is across batches, as with local worker processes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from itertools import islice

from jobs.errors import RunError, UsageError

#: Times Dask runs a batch again after an exception in it (a worker that dies is retried by Dask itself,
#: up to its `distributed.scheduler.allowed-failures`).
TASK_RETRIES = 2


#: A scheduler's address: an optional scheme of the ones `distributed` connects over, a host (a name, IPv4, or
#: [IPv6]) and a port.
_ADDRESS = re.compile(r"((tcp|tls|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")


def scheduler_address(given: str | None) -> str:
    address = given or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        raise UsageError("--executor dask needs --scheduler tcp://HOST:PORT (or DASK_SCHEDULER_ADDRESS)")
    m = _ADDRESS.fullmatch(address)
    if not m or not 0 < int(m["port"]) < 65536:  # Dask would try for its whole timeout, then fail on the port
        raise UsageError(f"not a Dask scheduler address: {address!r}; give tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    return address


def in_flight(client) -> int:
    """How many batches the cluster may hold at once: two per worker thread, as with local workers, so the
    driver and the scheduler hold a window of the plan, never a million-file backfill's every batch."""
    return 2 * max(1, sum(client.nthreads().values()))


def dask_results(batches: Iterator, opts, staging: str) -> Iterator:
    """Submit batches a bounded window at a time, yield each BatchResult as its task finishes."""
    from distributed import Client, as_completed

    from jobs.ingest import process_batch

    address = scheduler_address(opts.scheduler)
    try:
        client = Client(address, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    run = os.path.basename(staging.rstrip("/"))
    todo = enumerate(batches)

    def submit(n: int) -> list:
        return [client.submit(process_batch, i, b, opts, staging, key=f"trailhouse-{run}-batch-{i}",
                              retries=TASK_RETRIES, pure=False) for i, b in islice(todo, n)]

    try:
        running = set(submit(in_flight(client)))  # the window follows the cluster as workers join or leave
        finished = as_completed(running, loop=client.loop)
        for fut in finished:
            running.discard(fut)
            try:
                result = fut.result()
            except Exception as exc:
                client.cancel(list(running))
                if isinstance(exc, OSError):
                    raise
                raise RunError(f"a batch failed on the Dask cluster: {type(exc).__name__}: {exc}") from exc
            del fut  # let the cluster forget the finished task
            for new in submit(max(0, in_flight(client) - len(running))):
                running.add(new)
                finished.add(new)
            yield result
    finally:
        client.close()
