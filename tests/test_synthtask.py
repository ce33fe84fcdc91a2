"""Synthetic few-shot tasks: task draws, scoring, and rows built as the real pipeline's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.descriptors import DescriptorConfig, n_top
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.geometry import GeometryConfig
from fsad.heads import cosine_prototypes
from fsad.methods.anomaly_guided import Recipe, task_descriptors
from fsad.patchsets import PatchSetConfig
from fsad.synth import TextureSource
from fsad.synthtask import (
    SynthTaskConfig,
    draw_tasks,
    image_rows,
    synthetic_rows,
    task_accuracy,
)
from fsad.task import FewShotTask
from fsad.zoom import ZoomConfig

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)
OTHER = replace(SMALL, features=replace(SMALL.features, resize=40, crop=32))
RECIPE = Recipe(
    base=DescriptorConfig(residual_fracs=(0.25,), feature_fracs=(0.5,), feature_centred=True),
    zooms=(ZoomConfig(windows=(0.5,), size=64),),
    zoom_weight=2.0,
    engines=(OTHER,),
)


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
    assert task_accuracy(rows, labels, tasks, cosine_prototypes) == 1.0
    # a constant head always picks the task's first class: 1 / n_way of balanced queries
    const = lambda xs, ys, xq, n: np.zeros((len(xq), n))  # noqa: E731
    assert task_accuracy(rows, labels, tasks, const) == pytest.approx(1 / 3)


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


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"engine_zooms": (ZoomConfig(windows=(0.25,), size=64),)},
        {"geometry": GeometryConfig()},
        {"experts": True, "patchsets": (PatchSetConfig(), PatchSetConfig("feature", 0.1))},
    ],
    ids=["plain", "engine_zooms", "geometry", "patchsets"],
)
def test_image_rows_equal_the_real_pipeline(tiny_category, tmp_path: Path, extra: dict) -> None:
    """Rows of in-memory images equal task_descriptors' rows of the same files (with zoom
    views around the further engine's peak, or the maps' geometry, too)."""
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    test = list(tiny_category.test)
    task = FewShotTask(
        "mvtec_ad", tiny_category, 1, 1, ["scratch"], test, np.zeros(len(test), np.int64), test, eng
    )
    recipe = replace(RECIPE, **extra)
    expected, _ = task_descriptors(task, recipe)
    got = image_rows(eng, recipe, [read_image(s.path) for s in test])
    assert got.shape == expected.shape
    # single patches (patch sets) are not averaged: their float noise is larger
    np.testing.assert_allclose(got, expected, atol=5e-4 if "patchsets" in extra else 1e-4)
    if extra:  # more groups after the others: Lite0 layers 2-4 (472 channels), geometry or
        plain, _ = task_descriptors(task, RECIPE)  # every engine's patch sets
        engines = (eng, *(eng.sibling(c) for c in RECIPE.engines))
        added = 472 if "engine_zooms" in extra else len(engines) * GeometryConfig().dim
        if "patchsets" in extra:
            grids = [e.anomaly_maps(test[:1])[0].numel() for e in engines]
            dims = [e.config.features.dim for e in engines]
            added = sum(n_top(g, p.frac) * d for p in extra["patchsets"]
                        for g, d in zip(grids, dims))  # fmt: skip
        assert expected.shape[1] == plain.shape[1] + added
        np.testing.assert_array_equal(expected[:, : plain.shape[1]], plain)


def test_engine_zooms_need_a_further_engine() -> None:
    with pytest.raises(ConfigError, match="engine_zooms need a further engine"):
        Recipe(engine_zooms=(ZoomConfig(),))


def test_synthetic_rows_are_labelled_and_cached(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    textures = TextureSource.procedural(n_classes=3, size=64)
    cfg = SynthTaskConfig(n_sources=3, shots=1, n_way=2, size=96)
    x, y = synthetic_rows(eng, RECIPE, textures, cfg)
    assert x.shape[0] == 9 and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.isfinite(x).all()
    entries = list((tmp_path / "synthtask").glob("*.pt"))
    assert len(entries) == 1
    x2, _ = synthetic_rows(eng, RECIPE, textures, cfg)
    assert np.array_equal(x, x2) and len(list((tmp_path / "synthtask").glob("*.pt"))) == 1
    # another recipe or synthetic seed is another entry, never the stale one
    synthetic_rows(eng, replace(RECIPE, zoom_weight=1.0), textures, cfg)
    synthetic_rows(eng, RECIPE, textures, replace(cfg, seed=1))
    assert len(list((tmp_path / "synthtask").glob("*.pt"))) == 3


def test_more_sources_than_normal_images(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    textures = TextureSource.procedural(n_classes=2, size=64)
    with pytest.raises(ConfigError, match="widget has 4 normal training images"):
        synthetic_rows(eng, RECIPE, textures, SynthTaskConfig(n_sources=5, shots=1))


def test_fine_views_are_refused(tiny_category, tmp_path: Path) -> None:
    from fsad.fine import FineConfig

    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    with pytest.raises(ConfigError, match="fine views"):
        image_rows(eng, Recipe(fines=(FineConfig(),)), [read_image(tiny_category.test[0].path)])


def test_normal_rows_describe_the_chosen_training_images_once(
    tiny_category, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsad.nuisance.normal_rows: image_rows of evenly spaced training images, then cached."""
    import fsad.synthtask
    from fsad.nuisance import NuisanceConfig, normal_rows, normal_samples

    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    config = NuisanceConfig(n_normals=3)
    rows = normal_rows(eng, RECIPE, config)
    chosen = normal_samples(tiny_category.train, 3)
    assert [s.path.name for s in chosen] == ["000.png", "002.png", "003.png"]
    expected = image_rows(eng, RECIPE, [read_image(s.path) for s in chosen])
    np.testing.assert_allclose(rows, expected, atol=1e-5)

    def fail(*args, **kwargs):
        raise AssertionError("normal rows were computed again")

    monkeypatch.setattr(fsad.synthtask, "image_rows", fail)
    np.testing.assert_array_equal(normal_rows(eng, RECIPE, config), rows)
    with pytest.raises(AssertionError, match="again"):  # another subset: a new entry
        normal_rows(eng, RECIPE, NuisanceConfig(n_normals=2))
