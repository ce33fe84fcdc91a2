"""``--jobs``: whole (category, seed) groups of jobs in spawned worker processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from fsad.config import RunConfig
from fsad.evaluate.execute import Finished, run_sequential
from fsad.evaluate.plan import Job, Plan
from fsad.evaluate.sources import EngineFactory
from fsad.utils import environment

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def run_parallel(
    config: RunConfig,
    plan: Plan,
    groups: list[list[Job]],
    engine_factory: EngineFactory,
    context: dict[str, str],
    jobs: int,
) -> Iterator[Finished]:
    """Run groups in ``jobs`` spawned worker processes; yields rows group by group.

    When a group fails, no new group starts; the groups already running finish and their
    rows are yielded, then the first failure is raised.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        # the workers start during these submits and read the thread counts of numpy's BLAS
        # and numba at import time
        with environment({k: str(threads) for k in _THREAD_VARIABLES}):
            pending = {
                pool.submit(_run_group, config, plan, g, engine_factory, context, threads)
                for g in groups
            }
        failure: BaseException | None = None
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                if future.exception() is None:
                    yield from future.result()
                elif failure is None:  # start nothing new; keep what is running
                    failure = future.exception()
                    for other in pending:
                        other.cancel()
        if failure is not None:
            raise failure
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_group(
    config: RunConfig,
    plan: Plan,
    jobs: list[Job],
    engine_factory: EngineFactory,
    context: dict[str, str],
    threads: int,
) -> list[Finished]:
    """Worker process: every job of one (category, seed) group, with ``threads`` threads."""
    import torch  # only the workers need it, and only to set their thread count

    torch.set_num_threads(threads)
    return list(run_sequential(config, plan, jobs, engine_factory, context))
