"""The grid on Dask: 1 vs 2 local workers from an empty cache, and the per-task overhead of a
simulated cluster (several 1-thread workers sharing one cache folder).

Part 1 runs the committed grid of ``hires_poe_proto`` (the descriptor rounds' pick; the paper
config's engine) on a slice of the shared data, each time from a new, empty ``FSAD_CACHE``: in this
process (``--workers 1``), then on a LocalCluster of 2 workers. It reports wall seconds and
CPU seconds (this process and its reaped children, i.e. the worker processes), and checks
that the two runs gave the same rows.

Part 2 starts a LocalCluster of ``--sim-workers`` 1-thread workers on one shared cache folder
and measures what scheduling costs: empty Dask tasks (round trip per task), and fsad groups
that do almost nothing (``random`` on the real category: the plan is pickled, the group
runs, the client writes its rows) against the cost of a real group from part 1.

Usage (about 10 minutes on 2 cores)::

    FSAD_DATA=/path/to/data nice -n 10 python benchmarks/bench_cluster.py \\
        [--category bottle] [--seeds 1 2] [--shots 1 5] [--sim-workers 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("FSAD_NO_PROGRESS", "1")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and its CPU seconds (children included once reaped)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = fn()
    return value, time.perf_counter() - wall, cpu_seconds() - cpu


def cold_runs(config: Any, data: Path, workers_list: list[int]) -> dict[int, Any]:
    """The grid from an empty cache once per worker count; prints wall and CPU seconds."""
    from fsad.evaluate import KEY_COLUMNS, run_grid

    results = {}
    for workers in workers_list:
        with tempfile.TemporaryDirectory(prefix="fsad-bench-") as tmp:
            os.environ["FSAD_CACHE"] = str(Path(tmp) / "cache")
            res, wall, cpu = measured(
                lambda w=workers, t=tmp: run_grid(config, data, Path(t) / "out", workers=w)
            )
        rows = res.results.sort_values(KEY_COLUMNS, ignore_index=True)
        results[workers] = (rows, wall, cpu)
        print(
            f"cold, {workers} worker(s): {wall:7.1f} s wall, {cpu:7.1f} s CPU "
            f"(CPU/wall {cpu / wall:.2f}), {len(rows)} rows",
            flush=True,
        )
    return results


def same_rows(results: dict[int, Any]) -> bool:
    """Whether every run gave the same accuracies, row by row."""
    from fsad.evaluate import KEY_COLUMNS

    cols = KEY_COLUMNS + ["accuracy", "macro_f1", "n_query"]
    frames = [rows[cols] for rows, _, _ in results.values()]
    return all(f.equals(frames[0]) for f in frames[1:])


def noop(i: int) -> int:
    """An empty task."""
    return i


def import_fsad() -> None:
    """Import what a group task needs (torch, the methods), as a worker's first group does."""
    import fsad.evaluate  # noqa: F401
    import fsad.methods

    fsad.methods.available_methods()


def simulated_cluster(config: Any, data: Path, n_workers: int, n_tasks: int) -> None:
    """Per-task overhead on a LocalCluster of 1-thread workers sharing one cache folder."""
    from distributed import Client, LocalCluster

    from fsad.evaluate import run_grid

    with tempfile.TemporaryDirectory(prefix="fsad-sim-") as tmp:
        os.environ["FSAD_CACHE"] = str(Path(tmp) / "shared-cache")
        with (
            LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None) as lc,
            Client(lc) as client,
        ):
            client.gather(client.map(noop, range(n_workers)))  # workers up
            client.run(import_fsad)  # and warm: a worker imports torch once, for its first group
            _, wall, _ = measured(lambda: client.gather(client.map(noop, range(n_tasks))))
            print(
                f"simulated cluster, {n_workers} x 1 thread: {n_tasks} empty Dask tasks in "
                f"{wall:.2f} s = {1000 * wall / n_tasks:.1f} ms per task",
                flush=True,
            )
            seeds = tuple(range(1, n_tasks // 5 + 1))
            tiny = config.replace(methods=("random",), shots=(1, 2, 3, 4, 5), seeds=seeds)
            res, wall, cpu = measured(
                lambda: run_grid(tiny, data, Path(tmp) / "out", scheduler=lc.scheduler_address)
            )
            groups = len(seeds) * len(tiny.categories)
            print(
                f"simulated cluster: {groups} fsad groups of 5 'random' runs ({res.computed} "
                f"rows, plan pickled, rows written by the client) in {wall:.1f} s wall = "
                f"{wall / groups:.3f} s per group ({cpu:.1f} s CPU in this process)",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[1, 2], help="cold runs (none: skip them)"
    )
    parser.add_argument("--sim-workers", type=int, default=4)
    parser.add_argument("--sim-tasks", type=int, default=200)
    args = parser.parse_args(argv)
    data = os.environ.get("FSAD_DATA")
    if not data:
        print("bench_cluster needs FSAD_DATA (the shared real images)", file=sys.stderr)
        return 2
    from fsad.config import load_config
    from fsad.evaluate.cluster import cores

    config = load_config("paper").replace(
        categories=(args.category,), methods=("hires_poe_proto",), shots=args.shots,
        seeds=args.seeds,
    )  # fmt: skip
    print(
        f"machine: {socket.gethostname()}, {cores()} cores, no GPU; grid: {args.category}, "
        f"hires_poe_proto, shots {args.shots}, seeds {args.seeds}, engine of configs/paper.yaml",
        flush=True,
    )
    if args.workers:
        results = cold_runs(config, Path(data), args.workers)
        print(f"rows equal across worker counts: {same_rows(results)}", flush=True)
    simulated_cluster(config, Path(data), args.sim_workers, args.sim_tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
