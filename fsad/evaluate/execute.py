"""Running jobs: one job into its result row and prediction rows, and a list of jobs in
order with one lazily built engine per (category, seed)."""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsad.config import RunConfig
from fsad.data import FewShotSplit
from fsad.evaluate.plan import Job, Plan, build_task
from fsad.evaluate.sources import EngineFactory, LazyEngine
from fsad.evaluate.store import KEY_COLUMNS, PREDICTION_COLUMNS
from fsad.task import Prediction
from fsad.utils import seed_everything

#: a finished job: its result row and its prediction rows
Finished = tuple[dict[str, Any], pd.DataFrame]


def score(true: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Micro accuracy and macro F1 of predicted class indices.

    Args:
        true: true class index per query ``(Q,)``.
        pred: predicted class index per query ``(Q,)``.
        n_classes: C; F1 is averaged over all C classes (absent predictions count as 0).
    """
    from sklearn.metrics import f1_score

    true, pred = np.asarray(true), np.asarray(pred)
    return {
        "accuracy": float(np.mean(true == pred)) if len(true) else float("nan"),
        "macro_f1": float(
            f1_score(true, pred, labels=list(range(n_classes)), average="macro", zero_division=0)
        ),
    }


def run_sequential(
    config: RunConfig,
    plan: Plan,
    jobs: list[Job],
    engine_factory: EngineFactory,
    context: dict[str, str],
    bar: Any = None,
) -> Iterator[Finished]:
    """Run jobs in order, one engine per (category, seed); yields each finished row."""
    engine: LazyEngine | None = None
    for job in jobs:
        if bar is not None:
            bar.set_postfix_str(f"{job.category} {job.method} {job.shots}-shot seed {job.seed}")
        if engine is None or engine.key != (job.category, job.seed):
            # one engine per (category, seed), built on first use: banks are large, and
            # methods that never touch the engine (random) cost nothing
            engine = LazyEngine(
                (job.category, job.seed),
                functools.partial(engine_factory, plan.categories[job.category], config, job.seed),
            )
        yield run_job(config, plan, job, engine, context)


def run_job(
    config: RunConfig, plan: Plan, job: Job, engine: Any, context: dict[str, str]
) -> Finished:
    """Hand one job's task to its method and score the predictions.

    Returns:
        the result row (columns of :data:`~fsad.evaluate.store.RESULT_COLUMNS`) and the
        job's prediction rows.

    Raises:
        RuntimeError: the method returned labels of the wrong shape or range.
    """
    category = plan.categories[job.category]
    split = plan.splits[(job.category, job.shots)]
    task = build_task(config, category, split, job.seed, engine, job.method, plan.textures)
    seed_everything(job.seed)  # network initialisation depends on the seed only, not on order
    start = time.perf_counter()
    prediction = plan.methods[job.method](task)
    seconds = time.perf_counter() - start
    labels = _check_prediction(prediction, job.method, len(split.query), split.n_classes)
    row = {
        "dataset": config.dataset,
        **job.__dict__,
        **score(split.query_labels, labels, split.n_classes),
        "n_query": len(split.query),
        "n_support": len(split.support),
        "n_classes": split.n_classes,
        "chance": split.chance,
        "include_good": config.include_good,
        "seconds": round(seconds, 3),
        "bank_source": category.bank_source,
        "data_hash": plan.data_hashes[job.category],
        "backbone": _backbone(engine, config),
        "worker_host": socket.gethostname(),
        **context,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "info": json.dumps(prediction.info or {}, sort_keys=True, default=str),
    }
    return row, _prediction_rows(row, split, labels, plan.root)


def _prediction_rows(
    row: dict[str, Any], split: FewShotSplit, labels: np.ndarray, root: Path
) -> pd.DataFrame:
    """One row per query image: the run's key, its path under ``root``, true and predicted
    class names."""
    return pd.DataFrame(
        {
            **{c: row[c] for c in KEY_COLUMNS},
            "query": [_relative(s.path, root) for s in split.query],
            "true_label": [split.classes[i] for i in split.query_labels],
            "predicted_label": [split.classes[i] for i in labels],
        },
        columns=PREDICTION_COLUMNS,
    )


def _check_prediction(pred: Prediction, method: str, n_query: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(pred.labels)
    if labels.shape != (n_query,):
        raise RuntimeError(
            f"method '{method}' returned labels of shape {labels.shape}, expected ({n_query},)"
        )
    if n_query and (labels.min() < 0 or labels.max() >= n_classes):
        raise RuntimeError(f"method '{method}' returned a class index outside 0..{n_classes - 1}")
    return labels.astype(np.int64)


def _relative(path: Path, root: Path) -> str:
    """``path`` under ``root`` as posix text; symbolic links are not followed first (a folder
    of links into a dataset keeps its own names), resolved paths are the fallback."""
    for p, r in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))),
                 (path.resolve(), root.resolve())):  # fmt: skip
        try:
            return p.relative_to(r).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def _backbone(engine: Any, config: RunConfig) -> str:
    real = engine
    if isinstance(engine, LazyEngine):  # never build an engine just to name its backbone
        real = engine.get() if engine.built else None
    cfg = getattr(real, "config", None) if real is not None else None
    value = getattr(cfg, "backbone", None)
    if value is None:  # the engine config may nest the backbone in its feature settings
        value = getattr(getattr(cfg, "features", None), "backbone", None)
    return str(value or config.engine.get("backbone") or "unknown")
