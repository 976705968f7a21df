"""Measured scaling of `--executor dask` from 1 to N workers on this machine (docs/scale-out.md).

    python -m tests.dask_scaling BUCKET [--workers 1 2]

BUCKET is a generated trail, e.g. the bench's cached `/tmp/bench/bucket-250000-1-g2`
(`trailhouse bench --events 250000 --workdir /tmp/bench` makes it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from jobs.ingest import WORKER_ENV, Options, run


def main() -> None:
    from distributed import LocalCluster

    ap = argparse.ArgumentParser()
    ap.add_argument("bucket")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    base = None
    for n in args.workers:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, env=dict(WORKER_ENV)) as cluster:
            lake = tempfile.mkdtemp(prefix="trailhouse-scale-")
            start = time.perf_counter()
            s = run(Options(sources=[args.bucket], lake=lake, executor="dask", scheduler=cluster.scheduler_address))
            rate = s.counts.events_read / (time.perf_counter() - start)
            base = base or rate
            busy = " / ".join(f"{w['events'] / w['seconds']:,.0f}" for w in s.workers.values())
            print(f"| {n} | {rate:,.0f} | {busy} | {rate / base:.2f} |", flush=True)
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    main()
