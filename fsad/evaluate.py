"""The experiment grid: (dataset x category x method x shots x seed) -> tidy result rows.

For every (category, seed) the runner builds one residual engine (the coreset bank depends on
the seed); for every method and shot count it builds the paper's few-shot split (first n files
per defect type = support, section 4.1.3), hands the method a :class:`~fsad.task.FewShotTask`
*without* query labels, and scores the returned predictions itself.

Output folder (every file written atomically, rows written as they finish)::

    <out>/results.csv         one row per (dataset, category, method, shots, seed,
                              config_hash)
    <out>/predictions.csv.gz  one row per query image of every run (confusion matrices;
                              read it with :func:`read_predictions`)
    <out>/config.yaml         the latest run configuration; its categories, methods, shots
                              and seeds cover every call of that configuration

Rerunning with the same output folder skips finished rows (resumable); everything that can
be checked before the first computation (data folders, splits, method names) is checked
first, so a bad request writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsad.cache import fingerprint
from fsad.config import ALL, RunConfig
from fsad.data import (
    CategoryData,
    FewShotSplit,
    Sample,
    few_shot_split,
    list_categories,
    load_category,
)
from fsad.errors import DataError, FsadError
from fsad.methods import MethodFn, get_method
from fsad.task import FewShotTask, Prediction
from fsad.utils import atomic_write_csv, atomic_write_text, environment, seed_everything

RESULTS_FILE = "results.csv"
PREDICTIONS_FILE = "predictions.csv.gz"
#: the uncompressed name of earlier versions: still read, replaced by the .gz on the next write
LEGACY_PREDICTIONS_FILE = "predictions.csv"
CONFIG_FILE = "config.yaml"

#: the label a method sees on every query sample
HIDDEN = "?"
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
    "git_commit",
    "fsad_version",
    "timestamp",
    "info",
]
PREDICTION_COLUMNS = KEY_COLUMNS + ["query", "true_label", "predicted_label"]

#: ``(category, config, seed) -> engine``; the default builds ``fsad.engine.ResidualEngine``
EngineFactory = Callable[[CategoryData, RunConfig, int], Any]


def engine_config_from_dict(settings: Mapping[str, Any]) -> Any:
    """``fsad.engine.EngineConfig`` from a config's ``engine`` mapping.

    Feature settings may be given flat (``backbone: lite1``, ``crop: 224``) or nested under
    ``features``; everything else must be an ``EngineConfig`` field.

    Raises:
        ConfigError: an unknown setting (the message lists the known ones).
    """
    from fsad.engine import EngineConfig
    from fsad.errors import ConfigError
    from fsad.features import FeatureConfig

    feature_fields = {f.name for f in dataclasses.fields(FeatureConfig)}
    engine_fields = {f.name for f in dataclasses.fields(EngineConfig)} - {"features"}
    settings = dict(settings)
    features = dict(settings.pop("features", None) or {})
    engine = {}
    for key, value in settings.items():
        if key in feature_fields:
            features[key] = value
        elif key in engine_fields:
            engine[key] = value
        else:
            known = ", ".join(sorted(feature_fields | engine_fields))
            raise ConfigError(f"unknown engine setting '{key}' (known: {known})")
    unknown = sorted(set(features) - feature_fields)
    if unknown:
        raise ConfigError(f"unknown feature setting(s) {', '.join(unknown)}")
    if "layers" in features:
        features["layers"] = tuple(features["layers"])
    return EngineConfig(features=FeatureConfig(**features), **engine)


def default_engine_factory(category: CategoryData, config: RunConfig, seed: int) -> Any:
    """The PatchCore residual engine of ``(category, seed)`` with the config's engine settings,
    caching features, banks and residuals in the default :class:`fsad.cache.DiskCache`."""
    from fsad.cache import DiskCache
    from fsad.engine import ResidualEngine

    return ResidualEngine(
        category, engine_config_from_dict(config.engine), seed=seed, cache=DiskCache()
    )


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


class LazyEngine:
    """Stands in for the residual engine of one (category, seed) and builds it on first use.

    Attribute access is forwarded to the real engine, so methods use it as the engine itself.

    Args:
        key: ``(category, seed)`` this engine belongs to.
        build: zero-argument callable returning the engine.
    """

    def __init__(self, key: tuple[str, int], build: Callable[[], Any]) -> None:
        self.key = key
        self._build = build
        self._engine: Any = None

    @property
    def built(self) -> bool:
        """Whether the real engine has been built."""
        return self._engine is not None

    def get(self) -> Any:
        """The real engine (built now if needed)."""
        if self._engine is None:
            self._engine = self._build()
        return self._engine

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("key", "_build", "_engine"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        return f"LazyEngine({self.key}, built={self.built})"


@dataclass
class _Job:
    category: str
    method: str
    shots: int
    seed: int
    config_hash: str


# ----------------------------------------------------------------------------- small pieces


def resolve_dataset_root(root: str | os.PathLike, dataset: str) -> Path:
    """The folder holding the categories: ``root/<dataset>`` when it exists (e.g. ``$FSAD_DATA``
    holds ``mvtec_ad/`` and ``mvtec_3d/``), else ``root`` itself."""
    root = Path(root).expanduser()
    if dataset != "folder" and (root / dataset).is_dir():
        return root / dataset
    if not root.is_dir():
        raise DataError(f"data root not found: {root}")
    return root


def resolve_textures(config: RunConfig, dataset_root: Path) -> str | None:
    """The config's texture folder with ``$VARS`` expanded and ``{data}`` replaced by the
    folder that holds the dataset folder (``$FSAD_DATA`` holds ``mvtec_ad/`` and ``dtd/``).

    Raises:
        DataError: the texture folder does not exist.
    """
    if not config.textures:
        return None
    data = dataset_root.parent
    path = Path(os.path.expandvars(config.textures).replace("{data}", str(data))).expanduser()
    if not path.is_dir():
        raise DataError(f"texture folder not found: {path} (config textures: {config.textures})")
    return str(path)


def resolve_categories(root: Path, config: RunConfig) -> list[str]:
    """The config's categories, with ``all`` expanded to every category under ``root``."""
    if ALL in config.categories:
        return list_categories(root, config.dataset)
    return list(config.categories)


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


def hide_label(sample: Sample) -> Sample:
    """A query sample as a method sees it: label replaced by :data:`HIDDEN`, no mask."""
    return dataclasses.replace(sample, label=HIDDEN, mask_path=None)


def build_task(
    config: RunConfig,
    category: CategoryData,
    split: FewShotSplit,
    seed: int,
    engine: Any,
    method: str,
    textures: str | None = None,
) -> FewShotTask:
    """The method's view of one n-shot task: support with labels, query *without* labels.

    Query samples keep their image path but carry the label :data:`HIDDEN` and no mask, and
    ``task.category.test`` holds only the labelled support images, so no field of the task
    gives a query's class away (the path's folder name still does: methods must not parse it).
    """
    return FewShotTask(
        dataset=config.dataset,
        category=dataclasses.replace(category, test=list(split.support)),
        shots=split.shots,
        seed=seed,
        classes=list(split.classes),
        support=list(split.support),
        support_labels=split.support_labels.copy(),
        query=[hide_label(s) for s in split.query],
        engine=engine,
        options=config.method_options(method),
        textures=textures,
    )


def data_hash(category: CategoryData) -> str:
    """Fingerprint of a category's files (path relative to the category folder and size), so
    a results folder can tell whether its rows were computed on the same images."""
    files = []
    for s in category.train + category.test:
        try:
            rel = s.path.relative_to(category.root).as_posix()
        except ValueError:
            rel = s.path.as_posix()
        files.append((rel, s.path.stat().st_size))
    return fingerprint(sorted(files))[:12]


# what determines results: a change here (not in results/ or docs) makes a run "+dirty"
_CODE_PATHS = (":(top)fsad", ":(top)configs", ":(top)pyproject.toml")


def git_commit(where: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the fsad sources, or ``"unknown"`` outside git.

    ``+dirty`` is appended when the code that produces results (``fsad/``, ``configs/``,
    ``pyproject.toml``) has uncommitted changes; result files being written do not count.
    """
    here = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(here),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                *_CODE_PATHS,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
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


def _check_prediction(pred: Prediction, method: str, n_query: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(pred.labels)
    if labels.shape != (n_query,):
        raise RuntimeError(
            f"method '{method}' returned labels of shape {labels.shape}, expected ({n_query},)"
        )
    if n_query and (labels.min() < 0 or labels.max() >= n_classes):
        raise RuntimeError(f"method '{method}' returned a class index outside 0..{n_classes - 1}")
    return labels.astype(np.int64)


# ----------------------------------------------------------------------------- results files


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


def _key(row: Mapping[str, Any]) -> tuple:
    return tuple(str(row[c]) for c in KEY_COLUMNS)


# ----------------------------------------------------------------------------- the grid


class _Plan:
    """Everything checked before the first computation: categories, splits, methods, jobs."""

    def __init__(
        self,
        config: RunConfig,
        root: Path,
        out: Path,
        methods: Mapping[str, MethodFn] | None,
        check_engine: bool = False,
    ) -> None:
        self.root = resolve_dataset_root(root, config.dataset)
        names = resolve_categories(self.root, config)
        self.textures = resolve_textures(config, self.root)
        if check_engine:
            engine_config_from_dict(config.engine)  # a bad setting fails before any work
        self.categories = {c: load_category(self.root, config.dataset, c) for c in names}
        self.splits = {
            (c, n): self._split(c, n, config.include_good) for c in names for n in config.shots
        }
        self.methods = {m: (methods or {}).get(m) or get_method(m) for m in config.methods}
        self.data_hashes = {c: data_hash(d) for c, d in self.categories.items()}
        self.existing = read_results(out)
        self._check_same_data(config.dataset, out)
        done = {_key(r) for r in self.existing.to_dict("records")}
        self.jobs: list[_Job] = []
        self.skipped = 0
        for c in names:
            for seed in config.seeds:
                for m in config.methods:
                    for n in config.shots:
                        job = _Job(c, m, n, seed, config.config_hash(m))
                        key = _key({"dataset": config.dataset, **job.__dict__})
                        if key in done:
                            self.skipped += 1
                        else:
                            self.jobs.append(job)

    def _split(self, category: str, shots: int, include_good: bool) -> FewShotSplit:
        try:
            return few_shot_split(self.categories[category].test, shots, include_good)
        except DataError as exc:
            raise DataError(f"category '{category}': {exc}") from None

    def _check_same_data(self, dataset: str, out: Path) -> None:
        old = self.existing
        if old.empty or "data_hash" not in old.columns:
            return
        for c, h in self.data_hashes.items():
            prev = set(
                old.loc[(old["dataset"] == dataset) & (old["category"] == c), "data_hash"].astype(
                    str
                )
            )
            if prev and prev != {h}:
                raise FsadError(
                    f"{out / RESULTS_FILE} holds {dataset}/{c} rows computed on other images "
                    f"(data hash {', '.join(sorted(prev))}, now {h}); use another --out folder"
                )


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
    plan = _Plan(config, Path(data_root), out, methods, check_engine=check)
    if dry_run:
        return GridResult(out, plan.existing, 0, plan.skipped, pending=len(plan.jobs))
    rows = plan.existing.to_dict("records")
    preds = read_predictions(out)
    context = {"git_commit": git_commit(), "fsad_version": _version()}
    if plan.jobs or (out / RESULTS_FILE).is_file():
        atomic_write_text(out / CONFIG_FILE, _widened(out / CONFIG_FILE, config).to_yaml())
    bar = _progress_bar(len(plan.jobs))
    groups = _groups(plan.jobs)
    if jobs > 1 and len(groups) > 1:
        finished = _run_parallel(config, plan, groups, engine_factory, context, jobs)
    else:
        finished = _run_sequential(config, plan, plan.jobs, engine_factory, context, bar)
    for row, pred_rows in finished:
        # predictions first: a run whose result row is missing is redone and its old
        # prediction rows replaced, so the two files never disagree for a finished row
        preds = _replace_predictions(preds, pred_rows, row)
        atomic_write_csv(out / PREDICTIONS_FILE, preds)
        (out / LEGACY_PREDICTIONS_FILE).unlink(missing_ok=True)  # its rows are in the .gz now
        rows.append(row)
        atomic_write_csv(out / RESULTS_FILE, pd.DataFrame(rows, columns=_columns(rows)))
        bar.update(1)
    bar.close()
    results = (
        read_results(out) if (out / RESULTS_FILE).exists() else pd.DataFrame(columns=RESULT_COLUMNS)
    )
    return GridResult(out=out, results=results, computed=len(plan.jobs), skipped=plan.skipped)


def _groups(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs grouped by (category, seed), groups interleaved by category.

    A group shares one engine. Interleaving starts concurrent workers on different
    categories, so two workers rarely compute one category's cached features at once.
    """
    by_key: dict[tuple[str, int], list[_Job]] = {}
    for job in jobs:
        by_key.setdefault((job.category, job.seed), []).append(job)
    per_category: dict[str, list[list[_Job]]] = {}
    for (category, _), group in by_key.items():
        per_category.setdefault(category, []).append(group)
    queues = list(per_category.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


Finished = tuple[dict[str, Any], pd.DataFrame]


def _run_sequential(
    config: RunConfig,
    plan: _Plan,
    jobs: list[_Job],
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
        yield _run_one(config, plan, job, engine, context)


def _run_group(
    config: RunConfig,
    plan: _Plan,
    jobs: list[_Job],
    engine_factory: EngineFactory,
    context: dict[str, str],
    threads: int,
) -> list[Finished]:
    """Worker process: every job of one (category, seed) group, with ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    return list(_run_sequential(config, plan, jobs, engine_factory, context))


_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def _run_parallel(
    config: RunConfig,
    plan: _Plan,
    groups: list[list[_Job]],
    engine_factory: EngineFactory,
    context: dict[str, str],
    jobs: int,
) -> Iterator[Finished]:
    """Run groups in ``jobs`` spawned worker processes; yields rows group by group.

    When a group fails, no new group starts; the groups already running finish and their
    rows are yielded, then the first failure is raised.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

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


def _run_one(
    config: RunConfig, plan: _Plan, job: _Job, engine: Any, context: dict[str, str]
) -> tuple[dict[str, Any], pd.DataFrame]:
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
        **context,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "info": json.dumps(prediction.info or {}, sort_keys=True, default=str),
    }
    pred_rows = pd.DataFrame(
        {
            **{c: row[c] for c in KEY_COLUMNS},
            "query": [_relative(s.path, plan.root) for s in split.query],
            "true_label": [split.classes[i] for i in split.query_labels],
            "predicted_label": [split.classes[i] for i in labels],
        },
        columns=PREDICTION_COLUMNS,
    )
    return row, pred_rows


def _widened(path: Path, config: RunConfig) -> RunConfig:
    """``config`` with its grid lists widened to those of the folder's previous config.yaml.

    A folder filled by several calls of one configuration (a seed or a category at a time)
    then records the whole grid it holds. A previous file with other settings (engine,
    options, dataset...) is replaced: config.yaml describes the latest configuration, and
    rows of an earlier one keep their own config hash.
    """
    from fsad.config import load_config
    from fsad.errors import ConfigError

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
    preds: pd.DataFrame, new: pd.DataFrame, row: Mapping[str, Any]
) -> pd.DataFrame:
    if not preds.empty:
        same = np.ones(len(preds), dtype=bool)
        for c in KEY_COLUMNS:
            same &= preds[c].astype(str).to_numpy() == str(row[c])
        preds = preds.loc[~same]
    if preds.empty:
        return new.reset_index(drop=True)
    return pd.concat([preds, new], ignore_index=True)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    extra = [k for r in rows for k in r if k not in RESULT_COLUMNS]
    return RESULT_COLUMNS + list(dict.fromkeys(extra))


def _progress_bar(total: int) -> Any:
    """A tqdm bar over the grid's tasks (silent when ``FSAD_NO_PROGRESS`` is set)."""
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("FSAD_NO_PROGRESS"))
    return tqdm(total=total, desc="fsad run", unit="task", disable=disable, dynamic_ncols=True)


def _version() -> str:
    from fsad import __version__

    return __version__
