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
from collections.abc import Iterator

from jobs.errors import RunError, UsageError

#: Times Dask runs a batch again after an exception in it (a worker that dies is retried by Dask itself,
#: up to its `distributed.scheduler.allowed-failures`).
TASK_RETRIES = 2


def scheduler_address(given: str | None) -> str:
    address = given or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        raise UsageError("--executor dask needs --scheduler tcp://HOST:PORT (or DASK_SCHEDULER_ADDRESS)")
    return address


def dask_results(batches: list, opts, staging: str) -> Iterator:
    """Submit every batch, yield each BatchResult as its task finishes."""
    from distributed import Client, as_completed

    from jobs.ingest import process_batch

    address = scheduler_address(opts.scheduler)
    try:
        client = Client(address, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    run = os.path.basename(staging.rstrip("/"))
    try:
        futures = [client.submit(process_batch, n, b, opts, staging, key=f"trailhouse-{run}-batch-{n}",
                                 retries=TASK_RETRIES, pure=False) for n, b in enumerate(batches)]
        for fut in as_completed(futures, loop=client.loop):
            try:
                yield fut.result()
            except Exception as exc:
                client.cancel(futures)
                if isinstance(exc, OSError):
                    raise
                raise RunError(f"a batch failed on the Dask cluster: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
