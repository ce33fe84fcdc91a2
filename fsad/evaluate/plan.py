"""The grid's plan: everything checked before the first computation.

Categories are read, splits made, methods looked up and the results folder compared with
the data, so a bad request fails before anything is computed or written; what is left is the
list of jobs (one per result row still missing) and how many rows were found finished.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsad.cache import fingerprint
from fsad.config import RunConfig
from fsad.data import CategoryData, FewShotSplit, Sample, few_shot_split, load_category
from fsad.errors import DataError, FsadError
from fsad.evaluate.sources import (
    engine_config_from_dict,
    resolve_categories,
    resolve_dataset_root,
    resolve_textures,
)
from fsad.evaluate.store import RESULTS_FILE, read_results, row_key
from fsad.methods import MethodFn, get_method
from fsad.task import FewShotTask

#: the label a method sees on every query sample
HIDDEN = "?"


@dataclass
class Job:
    """One result row to compute."""

    category: str
    method: str
    shots: int
    seed: int
    config_hash: str


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


class Plan:
    """Everything checked before the first computation: categories, splits, methods, jobs.

    Args:
        config: the grid.
        root: dataset root, or a folder holding ``<config.dataset>/``.
        out: the results folder (rows found there are skipped).
        methods: optional ``name -> method`` overrides of the registry.
        check_engine: check the config's engine settings too.

    Raises:
        FsadError: see :func:`fsad.evaluate.run_grid`.
    """

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
        self.jobs, self.skipped = self._pending(config, names)

    def for_category(self, category: str) -> Plan:
        """This plan cut down to what one category's jobs need on a worker: its data,
        splits and hash, the methods; no existing rows and no job list."""
        part = copy.copy(self)
        part.categories = {category: self.categories[category]}
        part.splits = {k: v for k, v in self.splits.items() if k[0] == category}
        part.data_hashes = {category: self.data_hashes[category]}
        part.existing = self.existing.iloc[0:0]
        part.jobs = []
        return part

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
            rows = (old["dataset"] == dataset) & (old["category"] == c)
            prev = set(old.loc[rows, "data_hash"].astype(str))
            if prev and prev != {h}:
                raise FsadError(
                    f"{out / RESULTS_FILE} holds {dataset}/{c} rows computed on other images "
                    f"(data hash {', '.join(sorted(prev))}, now {h}); use another --out folder"
                )

    def _pending(self, config: RunConfig, names: list[str]) -> tuple[list[Job], int]:
        """The jobs whose rows are not in the results folder yet, and how many are."""
        done = {row_key(r) for r in self.existing.to_dict("records")}
        jobs: list[Job] = []
        skipped = 0
        for c in names:
            for seed in config.seeds:
                for m in config.methods:
                    for n in config.shots:
                        job = Job(c, m, n, seed, config.config_hash(m))
                        if row_key({"dataset": config.dataset, **job.__dict__}) in done:
                            skipped += 1
                        else:
                            jobs.append(job)
        return jobs, skipped


def group_jobs(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by (category, seed), groups interleaved by category.

    A group shares one engine. Interleaving starts concurrent workers on different
    categories, so two workers rarely compute one category's cached features at once.
    """
    by_key: dict[tuple[str, int], list[Job]] = {}
    for job in jobs:
        by_key.setdefault((job.category, job.seed), []).append(job)
    per_category: dict[str, list[list[Job]]] = {}
    for (category, _), group in by_key.items():
        per_category.setdefault(category, []).append(group)
    queues = list(per_category.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
