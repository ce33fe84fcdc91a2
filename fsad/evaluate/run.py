"""Running the grid: plan, compute the pending jobs (in order, or in ``--jobs`` worker
processes), and append each finished row to the results folder as it comes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fsad.config import RunConfig
from fsad.errors import FsadError
from fsad.evaluate.execute import Finished, run_sequential
from fsad.evaluate.plan import Plan, group_jobs
from fsad.evaluate.pool import run_parallel
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
    """

    out: Path
    results: pd.DataFrame
    computed: int
    skipped: int
    pending: int = 0


def run_grid(
    config: RunConfig,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    engine_factory: EngineFactory = default_engine_factory,
    methods: Mapping[str, MethodFn] | None = None,
    dry_run: bool = False,
    jobs: int = 1,
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
        dry_run: check everything and count the pending rows, but compute and write nothing.
        jobs: worker processes. With more than one, each worker runs whole (category, seed)
            groups with ``cores / jobs`` threads, and a group's rows are written when it
            finishes, so an interruption loses the groups in progress. The engine factory
            and the methods must then be picklable (module-level functions or classes).

    Returns:
        :class:`GridResult` with every row now in ``results.csv``.

    Raises:
        FsadError: bad data folder, a shot count too large for a class, an unknown method,
            or an output folder holding rows computed on other images; nothing is written.
    """
    if jobs < 1:
        raise FsadError(f"jobs must be at least 1, got {jobs}")
    out = Path(out)
    check = engine_factory is default_engine_factory
    plan = Plan(config, Path(data_root), out, methods, check_engine=check)
    if dry_run:
        return GridResult(out, plan.existing, 0, plan.skipped, pending=len(plan.jobs))
    store = ResultStore(out, plan.existing)
    context = run_context()
    if plan.jobs or (out / RESULTS_FILE).is_file():
        store.write_config(config)
    bar = _progress_bar(len(plan.jobs))
    for row, pred_rows in _finished(config, plan, engine_factory, context, jobs, bar):
        store.add(row, pred_rows)
        bar.update(1)
    bar.close()
    return GridResult(
        out=out, results=read_results(out), computed=len(plan.jobs), skipped=plan.skipped
    )


def _finished(
    config: RunConfig,
    plan: Plan,
    engine_factory: EngineFactory,
    context: dict[str, str],
    jobs: int,
    bar: Any,
) -> Iterator[Finished]:
    """The plan's jobs as they finish: in ``jobs`` worker processes when more than one
    (category, seed) group is left, else in order in this process."""
    groups = group_jobs(plan.jobs)
    if jobs > 1 and len(groups) > 1:
        return run_parallel(config, plan, groups, engine_factory, context, jobs)
    return run_sequential(config, plan, plan.jobs, engine_factory, context, bar)


def _progress_bar(total: int) -> Any:
    """A tqdm bar over the grid's tasks (silent when ``FSAD_NO_PROGRESS`` is set)."""
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("FSAD_NO_PROGRESS"))
    return tqdm(total=total, desc="fsad run", unit="task", disable=disable, dynamic_ncols=True)
