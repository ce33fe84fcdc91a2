"""Running the grid: plan, compute the pending jobs (in order in this process, or as
(category, seed) groups on a Dask cluster), and append each finished row or group to the
results folder as it comes; only this process (the client) writes the folder."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fsad.config import RunConfig
from fsad.evaluate.cluster import Cluster, describe, open_client, submit_groups
from fsad.evaluate.estimate import Estimate, estimate
from fsad.evaluate.execute import Finished, run_sequential
from fsad.evaluate.plan import Plan, group_jobs
from fsad.evaluate.provenance import run_context
from fsad.evaluate.sources import EngineFactory, default_engine_factory
from fsad.evaluate.store import RESULTS_FILE, ResultStore, read_results
from fsad.methods import MethodFn


@dataclass
class GridResult:
    """What :func:`run_grid` did.

    Attributes:
        out: the output folder.
        results: every row of ``results.csv`` after the run (old and new).
        computed: rows computed by this call.
        skipped: rows of the grid found finished and skipped.
        pending: rows still to compute (non-zero only for a dry run).
        estimate: a dry run's compute-time estimate of the pending rows.
    """

    out: Path
    results: pd.DataFrame
    computed: int
    skipped: int
    pending: int = 0
    estimate: Estimate | None = None


def run_grid(
    config: RunConfig,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    engine_factory: EngineFactory = default_engine_factory,
    methods: Mapping[str, MethodFn] | None = None,
    dry_run: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
) -> GridResult:
    """Run (or resume) the config's grid on the data at ``data_root``, writing into ``out``.

    Args:
        config: the grid and what determines its numbers.
        data_root: dataset root (the folder of categories) or a folder holding
            ``<config.dataset>/``.
        out: output folder (created); finished rows already in it are skipped.
        engine_factory: builds the residual engine of a ``(category, config, seed)``;
            called at most once per (category, seed) and only when that pair has work left.
        methods: optional ``name -> method`` overrides of the registry (tests, notebooks).
        dry_run: check everything, count the pending rows and estimate their compute time
            (:mod:`~fsad.evaluate.estimate`), but compute and write nothing.
        workers: local worker processes. One (the default): the jobs run in order in this
            process and each row is written as it finishes. More: a Dask ``LocalCluster``
            of that many processes (one thread each, ``cores / workers`` compute threads)
            runs whole (category, seed) groups, and a group's rows are written together
            when it finishes, so an interruption loses the groups in progress only.
        scheduler: address of a running Dask scheduler; its workers run the groups
            (``workers`` is then ignored). With a cluster, the engine factory and the
            methods travel to the workers by pickle (cloudpickle).

    Returns:
        :class:`GridResult` with every row now in ``results.csv``.

    Raises:
        FsadError: bad data folder, a shot count too large for a class, an unknown method,
            or an output folder holding rows computed on other images; nothing is written.
    """
    cluster = Cluster(workers, scheduler)
    out = Path(out)
    check = engine_factory is default_engine_factory
    plan = Plan(config, Path(data_root), out, methods, check_engine=check)
    if dry_run:
        pending = len(plan.jobs)
        return GridResult(out, plan.existing, 0, plan.skipped, pending, estimate(config, plan))
    with contextlib.ExitStack() as stack:
        client = _client(stack, cluster, plan)  # before any write: a bad address writes nothing
        store = ResultStore(out, plan.existing)
        context = run_context()
        if plan.jobs or (out / RESULTS_FILE).is_file():
            store.write_config(config)
        bar = stack.enter_context(_progress_bar(len(plan.jobs)))
        for finished in _finished(config, plan, engine_factory, context, client, bar):
            store.add_many(finished)
            bar.update(len(finished))
    return GridResult(
        out=out, results=read_results(out), computed=len(plan.jobs), skipped=plan.skipped
    )


def _client(stack: contextlib.ExitStack, cluster: Cluster, plan: Plan) -> Any:
    """A Dask client when the plan's groups go to a cluster, else None (in this process:
    one local worker, or a single group left for a local cluster)."""
    groups = len(group_jobs(plan.jobs))
    if not plan.jobs or cluster.in_process or (cluster.scheduler is None and groups < 2):
        return None
    client = stack.enter_context(open_client(cluster))
    _say(describe(client, local=cluster.scheduler is None))
    return client


def _finished(
    config: RunConfig,
    plan: Plan,
    engine_factory: EngineFactory,
    context: dict[str, str],
    client: Any,
    bar: Any,
) -> Iterator[list[Finished]]:
    """The plan's finished jobs: one at a time, in order, in this process when there is no
    client, else whole (category, seed) groups as the cluster finishes them."""
    if client is None:
        for finished in run_sequential(config, plan, plan.jobs, engine_factory, context, bar):
            yield [finished]
        return
    groups = group_jobs(plan.jobs)
    for finished in submit_groups(client, config, plan, groups, engine_factory, context):
        row = finished[0][0]
        bar.set_postfix_str(f"{row['category']} seed {row['seed']} on {row['worker_host']}")
        yield finished


def _say(line: str) -> None:
    """A status line on stderr (silent when ``FSAD_NO_PROGRESS`` is set)."""
    if not os.environ.get("FSAD_NO_PROGRESS"):
        print(line, file=sys.stderr, flush=True)


def _progress_bar(total: int) -> Any:
    """A tqdm bar over the grid's tasks (silent when ``FSAD_NO_PROGRESS`` is set)."""
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("FSAD_NO_PROGRESS"))
    return tqdm(total=total, desc="fsad run", unit="task", disable=disable, dynamic_ncols=True)
