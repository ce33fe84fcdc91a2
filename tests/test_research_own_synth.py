"""Signal round 1: synthetic tasks on the product's own normals, in support poses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.methods.anomaly_guided import RESIDUAL_PROTO
from fsad.poses import other_poses
from fsad.recipe import image_rows
from fsad.synth import TextureSource
from research import ROUND_BASELINE
from research.own_synth import (
    CHOICE,
    CHOSEN,
    OwnSynthConfig,
    choice_grid,
    choices,
    method_rows,
    restore_aspect,
    synthetic_images,
    task_accuracy,
    texture_subset,
    verdict,
)
from research.synthtask import SynthTaskConfig, draw_tasks
from tests.test_recipe import RECIPE, SMALL

ROT4 = replace(RESIDUAL_PROTO, support_poses=4)


def test_texture_subset_is_seeded_ordered_and_checked(tmp_path: Path) -> None:
    files = {}
    for name in "abcdefgh":
        path = tmp_path / "images" / name / "0.png"
        path.parent.mkdir(parents=True)
        cv2.imwrite(str(path), np.full((8, 8, 3), 9, np.uint8))
        files[name] = [path]
    dtd = TextureSource(classes=list(files), files=files)
    picked = texture_subset(dtd, 4, seed=1)
    assert len(picked.classes) == 4 and picked.classes == sorted(picked.classes)
    assert picked.files == {c: files[c] for c in picked.classes}
    assert texture_subset(dtd, 4, seed=1).classes == picked.classes
    assert {tuple(texture_subset(dtd, 4, seed=s).classes) for s in range(6)} != {
        tuple(picked.classes)
    }
    with pytest.raises(ConfigError, match="9 texture classes asked, the source has 8"):
        texture_subset(dtd, 9, seed=1)


@pytest.mark.parametrize(
    ("shape", "expected"), [((300, 750), (205, 512)), ((750, 300), (512, 205)), ((90, 90), None)]
)
def test_restore_aspect_keeps_the_sources_ratio(shape, expected) -> None:
    square = np.zeros((512, 512, 3), np.uint8)
    out = restore_aspect(square, shape, 512)
    if expected is None:
        assert out is square
    else:
        assert out.shape == (*expected, 3)


def test_config_needs_enough_textures_for_a_task() -> None:
    with pytest.raises(ConfigError, match="n_textures=3 is fewer than n_way=4"):
        OwnSynthConfig(n_textures=3)
    tasks = OwnSynthConfig().tasks(seed=2)
    assert (tasks.seed, tasks.shots, tasks.n_way, tasks.generator) == (2, 5, 4, "shapes")


@pytest.fixture(scope="module")
def elongated(tmp_path_factory: pytest.TempPathFactory):
    """A category whose 6 normal images are 40 x 100 (aspect 0.4), 2 defective."""
    root = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    for split, kind, n in (("train", "good", 6), ("test", "good", 1), ("test", "cut", 2)):
        for i in range(n):
            path = root / "part" / split / kind / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), rng.integers(80, 120, (40, 100, 3), dtype=np.uint8))
    return load_category(root, "mvtec_ad", "part")


def test_synthetic_images_keep_the_sources_aspect_and_labels(elongated) -> None:
    textures = TextureSource.procedural(n_classes=5, size=64)
    config = OwnSynthConfig(n_textures=4, n_sources=3, size=100, n_way=2, shots=1)
    images, labels = synthetic_images(elongated, textures, config, seed=1)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(im.shape == (40, 100, 3) and im.dtype == np.uint8 for im in images)
    again, _ = synthetic_images(elongated, textures, config, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(images, again, strict=True))
    with pytest.raises(ConfigError, match="part has 6 normal images, fewer than n_sources=7"):
        synthetic_images(elongated, textures, replace(config, n_sources=7), seed=1)


def test_method_rows_give_each_images_other_poses_in_order(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (72, 72, 3), dtype=np.uint8) for _ in range(2)]
    out = method_rows(eng, {"plain": RECIPE, "turned": replace(RECIPE, support_poses=4)}, images)
    assert out["plain"][1] is None
    rows, posed = out["turned"]
    assert all(g.shape[0] == 2 for g in rows) and all(g.shape[0] == 6 for g in posed)
    for a, b in zip(out["plain"][0], rows, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # pose j of image i at i * 3 + j, as fsad.poses.posed_images orders them
    alone = image_rows(eng, RECIPE, other_poses(images[1], 4))
    for g, x in enumerate(alone):
        np.testing.assert_allclose(posed[g][3:6], x, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="one number of support poses at a time"):
        two = {"a": replace(RECIPE, support_poses=8), "b": replace(RECIPE, support_poses=4)}
        method_rows(eng, two, images)


def test_task_accuracy_fits_on_the_support_images_other_poses() -> None:
    """Each image's own row points to its class, its turned rows to the other class: the
    head fitted without poses is always right, with them (three to one) always wrong; a
    wrong pose index would mix the classes and land in between."""
    labels = np.tile([0, 1, 2, 3], 6)  # four texture classes, six images each, interleaved
    axis = np.eye(2)[labels % 2]
    rows = [axis + 0.01 * np.random.default_rng(0).normal(size=axis.shape)]
    posed = [np.repeat(axis[:, ::-1], 3, axis=0)]
    tasks = draw_tasks(labels, SynthTaskConfig(n_sources=6, shots=2, n_way=2, n_tasks=20))
    tasks = [(s, q) for s, q in tasks if len(set(labels[s] % 2)) == 2]
    assert tasks
    assert task_accuracy(RESIDUAL_PROTO, rows, None, labels, tasks) == 1.0
    assert task_accuracy(ROT4, rows, posed, labels, tasks) == 0.0


def _records(synth_rot_gain: dict[str, float]) -> pd.DataFrame:
    """Cells whose query order is a > b > without > with (MVTec) and the turned support
    ahead on the suite; the synthetic signal follows it but for the turned support's gain
    per protocol; LOO ranks everything backwards."""
    rows = []
    base = {"a": 0.9, "b": 0.8, CHOICE[0]: 0.6, CHOICE[1]: 0.5}
    for protocol in ("mvtec", "suite_all"):
        for seed in (1, 2, 3):
            for category in ("bottle", "screw"):
                for k, (variant, q) in enumerate(base.items()):
                    synth = q + (synth_rot_gain[protocol] if variant == CHOICE[1] else 0)
                    rows.append({"protocol": protocol, "category": category, "seed": seed,
                                 "variant": variant, "synth_acc": synth, "support_loo": k / 10,
                                 "query_acc": q})  # fmt: skip
    return pd.DataFrame(rows)


def test_verdict_replaces_loo_only_with_the_turned_supports_sign_on_both_protocols() -> None:
    record = pd.DataFrame(
        {"a": [90, 60], "b": [80, 50], CHOICE[0]: [70, 30], CHOICE[1]: [60, 40]},
        index=["mvtec", "suite_all"],
    ).astype(float)
    right = verdict(_records({"mvtec": -0.05, "suite_all": 0.2}), record)
    assert right["signs"] == {"mvtec": True, "suite_all": True}
    assert right["replaces_loo"] and right["synth"] == 12.0 and right["loo"] == 1.0
    assert right["agreement"]["mvtec"]["pairs"] == 6
    wrong = verdict(_records({"mvtec": 0.2, "suite_all": 0.2}), record)
    assert wrong["signs"] == {"mvtec": False, "suite_all": True}
    assert not wrong["replaces_loo"] and wrong["synth"] > wrong["loo"]
    # one protocol alone never replaces the leave-one-out, however well it orders
    records = _records({"mvtec": -0.05, "suite_all": 0.2})
    alone = verdict(records[records["protocol"] == "suite_all"], record)
    assert alone["signs"] == {"suite_all": True} and not alone["replaces_loo"]


def test_choice_picks_the_turned_support_where_its_synthetic_accuracy_is_higher(
    tmp_path: Path,
) -> None:
    """Two categories, two seeds: the pick follows the synthetic signal cell by cell, and
    its query accuracy is that of the picked method's committed row."""
    cells = [("bottle", 1, 0.7), ("bottle", 2, 0.4), ("screw", 1, 0.4), ("screw", 2, 0.4)]
    records = pd.DataFrame(
        [{"protocol": "mvtec", "category": c, "seed": s, "variant": v, "synth_acc": a}
         for c, s, turned in cells for v, a in ((CHOICE[0], 0.5), (CHOICE[1], turned))]
    )  # fmt: skip
    picked = choices(records)
    assert picked.set_index(["category", "seed"])["method"].to_dict() == {
        ("bottle", 1): CHOICE[1], ("bottle", 2): CHOICE[0],
        ("screw", 1): CHOICE[0], ("screw", 2): CHOICE[0],
    }  # fmt: skip
    accuracy = {CHOICE[0]: 0.8, CHOICE[1]: 0.6, ROUND_BASELINE: 0.7}
    rows = pd.DataFrame(
        [{"dataset": "mvtec_ad", "category": c, "seed": s, "method": m, "shots": 5,
          "accuracy": a + (0.02 if s == 2 else 0.0)}
         for c, s, _ in cells for m, a in accuracy.items()]
    )  # fmt: skip
    (tmp_path / "poses" / "mvtec").mkdir(parents=True)
    rows.to_csv(tmp_path / "poses" / "mvtec" / "results.csv", index=False)
    grid = choice_grid(records, tmp_path)["mvtec"]
    # seed 1: (60 + 80) / 2 = 70 against 70; seed 2: (82 + 82) / 2 = 82 against 72
    assert grid[CHOSEN] == "76.00 ± 8.49" and grid["change"] == 5.0 and grid["cells"] == 4
    assert not grid["below_guard"]
