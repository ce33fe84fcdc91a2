"""The results folder: file names, column order, reading rows and writing them atomically.

A results folder holds ``results.csv`` (one row per run), ``predictions.csv.gz`` (one row per
query image of every run) and ``config.yaml`` (the latest run configuration). Every write
replaces a whole file atomically, so an interruption never leaves a half-written table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fsad.config import RunConfig, load_config
from fsad.errors import ConfigError, FsadError
from fsad.utils import atomic_write_csv, atomic_write_text

RESULTS_FILE = "results.csv"
PREDICTIONS_FILE = "predictions.csv.gz"
#: the uncompressed name of earlier versions: still read, replaced by the .gz on the next write
LEGACY_PREDICTIONS_FILE = "predictions.csv"
CONFIG_FILE = "config.yaml"

#: a result row is identified by these columns; a rerun skips rows whose key exists
KEY_COLUMNS = ["dataset", "category", "method", "shots", "seed", "config_hash"]
RESULT_COLUMNS = KEY_COLUMNS + [
    "accuracy",
    "macro_f1",
    "n_query",
    "n_support",
    "n_classes",
    "chance",
    "include_good",
    "seconds",
    "bank_source",
    "data_hash",
    "backbone",
    "worker_host",
    "git_commit",
    "fsad_version",
    "timestamp",
    "info",
]
PREDICTION_COLUMNS = KEY_COLUMNS + ["query", "true_label", "predicted_label"]


def read_results(out: str | os.PathLike) -> pd.DataFrame:
    """Rows of ``<out>/results.csv`` (an empty frame with the result columns when absent).

    Raises:
        FsadError: the file exists but is not an fsad results table.
    """
    path = Path(out) / RESULTS_FILE
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    try:
        frame = pd.read_csv(path, dtype={"config_hash": str, "data_hash": str, "git_commit": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FsadError(f"cannot read results file {path}: {exc}") from None
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise FsadError(
            f"{path} is not an fsad results file (missing columns: {', '.join(missing)})"
        )
    return frame


def read_predictions(out: str | os.PathLike) -> pd.DataFrame:
    """The per-query predictions of a results folder (``predictions.csv.gz``, or the plain
    ``predictions.csv`` of earlier versions); an empty table when there are none yet."""
    out = Path(out)
    for name in (PREDICTIONS_FILE, LEGACY_PREDICTIONS_FILE):
        if (out / name).exists():
            return pd.read_csv(out / name, dtype={"config_hash": str, "query": str})
    return pd.DataFrame(columns=PREDICTION_COLUMNS)


def row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The :data:`KEY_COLUMNS` values of a row, as strings (what a rerun compares)."""
    return tuple(str(row[c]) for c in KEY_COLUMNS)


class ResultStore:
    """The rows of a results folder, grown one finished run at a time.

    Args:
        out: the results folder.
        existing: the rows already in its ``results.csv``.
    """

    def __init__(self, out: Path, existing: pd.DataFrame) -> None:
        self.out = out
        self.rows: list[dict[str, Any]] = existing.to_dict("records")
        self.preds = read_predictions(out)

    def add(self, row: dict[str, Any], pred_rows: pd.DataFrame) -> None:
        """Append a finished run's result row and prediction rows (see :meth:`add_many`)."""
        self.add_many([(row, pred_rows)])

    def add_many(self, finished: list[tuple[dict[str, Any], pd.DataFrame]]) -> None:
        """Append finished runs (a whole (category, seed) group at once): each file is
        rewritten once, atomically, so a group's rows appear together or not at all."""
        if not finished:
            return
        # predictions first: a run whose result row is missing is redone and its old
        # prediction rows replaced, so the two files never disagree for a finished row
        self.preds = _replace_predictions(self.preds, finished)
        atomic_write_csv(self.out / PREDICTIONS_FILE, self.preds)
        # the plain file of earlier versions: its rows are in the .gz now
        (self.out / LEGACY_PREDICTIONS_FILE).unlink(missing_ok=True)
        self.rows.extend(row for row, _ in finished)
        frame = pd.DataFrame(self.rows, columns=_columns(self.rows))
        atomic_write_csv(self.out / RESULTS_FILE, frame)

    def write_config(self, config: RunConfig) -> None:
        """Save ``config`` as the folder's ``config.yaml``, its grid widened to the previous
        file's (see :func:`widened_config`)."""
        path = self.out / CONFIG_FILE
        atomic_write_text(path, widened_config(path, config).to_yaml())


def widened_config(path: Path, config: RunConfig) -> RunConfig:
    """``config`` with its grid lists widened to those of the folder's previous config.yaml.

    A folder filled by several calls of one configuration (a seed or a category at a time)
    then records the whole grid it holds. A previous file with other settings (engine,
    options, dataset...) is replaced: config.yaml describes the latest configuration, and
    rows of an earlier one keep their own config hash.
    """
    if not path.is_file():
        return config
    try:
        old = load_config(path)
    except ConfigError:  # an unreadable previous file is simply replaced
        return config
    if _settings(old) != _settings(config):
        return config
    merged = {k: [*getattr(old, k), *getattr(config, k)] for k in ("categories", "methods")}
    merged.update({k: sorted({*getattr(old, k), *getattr(config, k)}) for k in ("shots", "seeds")})
    return config.replace(**{k: tuple(dict.fromkeys(v)) for k, v in merged.items()})


def _settings(config: RunConfig) -> dict[str, Any]:
    """Everything of a configuration but its name, description and grid lists."""
    grid = ("name", "description", "categories", "methods", "shots", "seeds")
    return {k: v for k, v in config.to_dict().items() if k not in grid}


def _replace_predictions(
    preds: pd.DataFrame, finished: list[tuple[Mapping[str, Any], pd.DataFrame]]
) -> pd.DataFrame:
    """``preds`` without the rows of the finished runs' keys, then their new rows."""
    new = [frame for _, frame in finished]
    if not preds.empty:
        keys = {row_key(row) for row, _ in finished}
        old = zip(*(preds[c].astype(str) for c in KEY_COLUMNS), strict=True)
        preds = preds.loc[[key not in keys for key in old]]
    frames = [f for f in (preds, *new) if not f.empty]
    if not frames:
        return new[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """:data:`RESULT_COLUMNS`, then any extra keys of the rows in first-seen order."""
    extra = [k for r in rows for k in r if k not in RESULT_COLUMNS]
    return RESULT_COLUMNS + list(dict.fromkeys(extra))
