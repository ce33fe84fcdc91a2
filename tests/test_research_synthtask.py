"""The research wing's synthetic few-shot tasks: task draws, scoring, cached rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.heads import cosine_prototypes
from fsad.recipe import Group
from fsad.synth import TextureSource
from research.synthtask import SynthTaskConfig, draw_tasks, synthetic_rows, task_accuracy
from tests.test_recipe import RECIPE, SMALL


def test_tasks_are_seeded_disjoint_and_balanced() -> None:
    labels = np.repeat(np.arange(6), 8)  # 6 classes x 8 sources
    cfg = SynthTaskConfig(n_way=4, shots=5, n_tasks=20, seed=3)
    tasks = draw_tasks(labels, cfg)
    assert len(tasks) == 20
    for support, query in tasks:
        assert not set(support) & set(query)  # support never in query
        classes, counts = np.unique(labels[support], return_counts=True)
        assert len(classes) == 4 and set(counts) == {5}
        assert set(labels[query]) == set(classes) and len(query) == 4 * 3
    again = draw_tasks(labels, cfg)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(tasks, again, strict=True))
    other = draw_tasks(labels, replace(cfg, seed=4))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(tasks, other, strict=True))


def test_task_accuracy_on_known_heads() -> None:
    labels = np.repeat(np.arange(5), 6)
    rows = np.eye(5)[labels] + 0.01 * np.random.default_rng(0).normal(size=(30, 5))
    tasks = draw_tasks(labels, SynthTaskConfig(n_sources=6, n_way=3, shots=2, n_tasks=10))

    def proto(xs, ys, xq, n):
        return cosine_prototypes(xs[0], ys, xq[0], n)

    assert task_accuracy([rows], labels, tasks, proto) == 1.0
    # a constant head always picks the task's first class: 1 / n_way of balanced queries
    const = lambda xs, ys, xq, n: np.zeros((len(xq[0]), n))  # noqa: E731
    assert task_accuracy([rows], labels, tasks, const) == pytest.approx(1 / 3)


@pytest.mark.parametrize("bad", [{"shots": 0}, {"shots": 8}, {"n_way": 1}, {"n_tasks": 0}])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SynthTaskConfig(**bad)


def test_config_key_names_the_generator_only_when_not_the_default() -> None:
    """Rows written before ``generator`` existed keep their hash; "shapes" gets another."""
    plain, shapes = SynthTaskConfig(), SynthTaskConfig(generator="shapes")
    assert "generator" not in plain.key() and plain.key()["shots"] == 5
    assert shapes.key() == {**plain.key(), "generator": "shapes"}


def test_too_few_classes_for_a_task() -> None:
    with pytest.raises(ConfigError, match="fewer than n_way=4"):
        draw_tasks(np.repeat(np.arange(3), 8))


def test_synthetic_rows_are_labelled_grouped_and_cached(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    textures = TextureSource.procedural(n_classes=3, size=64)
    cfg = SynthTaskConfig(n_sources=3, shots=1, n_way=2, size=96)
    x, y = synthetic_rows(eng, RECIPE, textures, cfg)
    assert len(x) == len(RECIPE.groups) and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(g.shape[0] == 9 and np.isfinite(g).all() for g in x)
    assert len(list((tmp_path / "synthtask").glob("*.pt"))) == 1
    x2, _ = synthetic_rows(eng, RECIPE, textures, cfg)
    assert all(np.array_equal(a, b) for a, b in zip(x, x2, strict=True))
    assert len(list((tmp_path / "synthtask").glob("*.pt"))) == 1
    # another recipe or synthetic seed is another entry, never the stale one
    reweighted = replace(RECIPE, groups=(*RECIPE.groups[:-1], Group(RECIPE.groups[-1].block)))
    synthetic_rows(eng, reweighted, textures, cfg)
    synthetic_rows(eng, RECIPE, textures, replace(cfg, seed=1))
    assert len(list((tmp_path / "synthtask").glob("*.pt"))) == 3


def test_more_sources_than_normal_images(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    textures = TextureSource.procedural(n_classes=2, size=64)
    with pytest.raises(ConfigError, match="widget has 4 normal training images"):
        synthetic_rows(eng, RECIPE, textures, SynthTaskConfig(n_sources=5, shots=1))
