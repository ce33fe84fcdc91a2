"""Where the grid's (category, seed) groups run: a Dask cluster, local or remote.

``fsad run --workers N`` (N > 1) starts a :class:`distributed.LocalCluster` of N worker
processes on this machine; ``--scheduler ADDRESS`` connects to a running cluster (``dask
scheduler`` / ``dask worker`` on other machines, or dask-jobqueue on Slurm). Each task is a
whole (category, seed) group: it builds the group's engine once, runs its jobs in order and
*returns* their rows; only the client writes the results folder.

A worker process runs one group at a time (a lock, whatever its Dask thread count: the runs
seed the process-wide random generators) and gives it ``cores / worker processes on its
host`` compute threads (torch, BLAS), so N workers x threads = the machine's cores.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fsad.config import RunConfig
from fsad.errors import FsadError
from fsad.evaluate.execute import Finished, run_sequential
from fsad.evaluate.plan import Job, Plan
from fsad.evaluate.sources import EngineFactory

#: read by BLAS and OpenMP when a worker process starts (Dask's nannies set them to 1)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: how long a client waits for a remote scheduler before giving up
CONNECT_TIMEOUT = "20s"
#: one group at a time per worker process: runs seed the process-wide generators
_GROUP_LOCK = threading.Lock()


@dataclass(frozen=True)
class Cluster:
    """Where the groups run.

    Attributes:
        workers: local worker processes (1: in this process, no cluster is started).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); when set,
            ``workers`` is ignored and the cluster's own workers run the groups.
    """

    workers: int = 1
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise FsadError(f"workers must be an integer of at least 1, got {self.workers!r}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise FsadError("the scheduler address is empty (expected e.g. tcp://host:8786)")

    @property
    def in_process(self) -> bool:
        """True when no cluster is needed: one local worker, no scheduler."""
        return self.scheduler is None and self.workers == 1


def cores() -> int:
    """CPU cores this process may use (the Slurm / cgroup allocation where there is one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def open_client(cluster: Cluster) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``cluster.scheduler``, or to a LocalCluster of
    ``cluster.workers`` processes with one Dask thread each (closed on exit).

    Raises:
        FsadError: the scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    if cluster.scheduler is not None:
        try:
            client = Client(cluster.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise FsadError(
                f"cannot reach the Dask scheduler at {cluster.scheduler}: {exc}"
            ) from None
        with client:
            yield client
        return
    threads = str(max(1, cores() // cluster.workers))
    environ = {"MALLOC_TRIM_THRESHOLD_": "65536", **dict.fromkeys(THREAD_VARIABLES, threads)}
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        local = LocalCluster(
            n_workers=cluster.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0" if has_dashboard() else None,
            silence_logs=logging.ERROR,
        )
    with local, Client(local) as client:
        yield client


def has_dashboard() -> bool:
    """Whether Dask's dashboard can be served (it needs bokeh: ``pip install fsad[cluster]``)."""
    return importlib.util.find_spec("bokeh") is not None


def describe(client: Any, local: bool) -> str:
    """One line: the workers, the scheduler and the dashboard address when there is one (a
    remote scheduler serves one when bokeh is installed there)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    hosts = len({w["host"] for w in workers.values()})
    line = f"dask: {len(workers)} worker(s) on {hosts} host(s), scheduler {info.get('address')}"
    if local and not has_dashboard():
        return line + "; no dashboard (it needs bokeh: pip install 'fsad[cluster]')"
    return line + f"; dashboard {client.dashboard_link}"


def workers_per_host(client: Any) -> dict[str, int]:
    """Number of worker processes on each host of the cluster, by host address."""
    workers = client.scheduler_info().get("workers", {})
    return dict(Counter(w["host"] for w in workers.values()))


def submit_groups(
    client: Any,
    config: RunConfig,
    plan: Plan,
    groups: list[list[Job]],
    engine_factory: EngineFactory,
    context: dict[str, str],
) -> Iterator[list[Finished]]:
    """Run each group as one task on the cluster; yield each group's rows as it finishes.

    When a group fails, the groups not finished yet are cancelled (a rerun computes them)
    and the first failure is raised after the finished groups were yielded. A worker that
    dies is replaced and its group rerun elsewhere (Dask's ``allowed-failures``).
    """
    from distributed import as_completed

    per_host = workers_per_host(client)
    futures = [
        client.submit(
            run_group_task,
            per_host,
            config,
            plan.for_category(group[0].category),
            group,
            engine_factory,
            context,
            key=f"fsad-{group[0].category}-seed{group[0].seed}-{i}",
            pure=False,
        )
        for i, group in enumerate(groups)
    ]
    try:
        for future in as_completed(futures):
            if future.status == "error":
                raise future.exception()
            yield future.result()
    finally:
        client.cancel([f for f in futures if not f.done()])


def run_group_task(
    per_host: dict[str, int],
    config: RunConfig,
    plan: Plan,
    jobs: list[Job],
    engine_factory: EngineFactory,
    context: dict[str, str],
) -> list[Finished]:
    """On a worker: every job of one (category, seed) group, one group at a time per
    process, with ``cores / worker processes on this host`` compute threads."""
    threads = max(1, cores() // per_host.get(_worker_host(), 1))
    with _GROUP_LOCK, thread_limit(threads):
        return list(run_sequential(config, plan, jobs, engine_factory, context))


def _worker_host() -> str:
    """The host address of the Dask worker running this task ("" outside a worker)."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    try:
        return get_address_host(get_worker().address)
    except ValueError:
        return ""


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Limit torch and the BLAS / OpenMP pools to ``threads`` for the ``with`` block."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
