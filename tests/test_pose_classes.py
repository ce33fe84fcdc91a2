"""Pose sub-classes (``Recipe.pose_classes``, robustness round 6): each (class, pose) of the
support is a sub-class, a class scores the sum (probabilities) or maximum (similarities) of
its sub-classes, and a row's pose is read from its source image."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fsad.errors import ConfigError
from fsad.heads import fold_subclasses
from fsad.inspector import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import pose_of, row_source, with_poses
from fsad.recipe import leave_one_out, recipe_proba
from research.pose_classes_round import CANDIDATE
from research.recipe_round import common_seeds, verdict

COSINE = replace(RECIPES["residual_proto_rot4"], pose_classes=True)


def test_row_source_and_pose_of_follow_the_with_poses_layout() -> None:
    source = row_source(2, 4)
    assert source.tolist() == [0, 1, 0, 0, 0, 1, 1, 1]
    assert pose_of(source).tolist() == [0, 0, 1, 2, 3, 1, 2, 3]
    keep = source != 0  # image 0 left out, with its poses: the others keep their poses
    assert pose_of(source[keep]).tolist() == [0, 1, 2, 3]
    _, src = with_poses([np.zeros((3, 2))], [np.zeros((9, 2))], 4)
    assert np.array_equal(src, row_source(3, 4))


def test_fold_subclasses_sums_or_takes_the_maximum_per_class() -> None:
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.25, 0.25]])
    assert np.allclose(fold_subclasses(scores, 2), [[0.3, 0.7], [0.5, 0.5]])
    assert np.allclose(fold_subclasses(scores, 2, "max"), [[0.2, 0.4], [0.5, 0.25]])
    with pytest.raises(ValueError, match="3 classes"):
        fold_subclasses(scores, 3)
    with pytest.raises(ValueError, match="'mean'"):
        fold_subclasses(scores, 2, "mean")


def _turned_blur() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Class 0 as shot at e1, its turned copies at e3; class 1 at (0.8, 0.6, 0) in all poses."""
    shot = np.array([[1.0, 0, 0], [0.8, 0.6, 0]])
    posed = np.array([[0, 0, 1.0]] * 3 + [[0.8, 0.6, 0]] * 3)
    rows, source = with_poses([shot], [posed], 4)
    return rows, np.array([0, 1])[source], source


def test_a_query_as_shot_finds_its_class_among_the_pose_classes_not_in_the_pooled_mean() -> None:
    rows, labels, source = _turned_blur()
    query = [np.array([[1.0, 0, 0]])]
    pooled = recipe_proba(RECIPES["residual_proto_rot4"], rows, labels, query, 2)
    assert pooled.argmax() == 1  # class 0's mean (1, 0, 3) / 4 is far from the query
    posed = recipe_proba(COSINE, rows, labels, query, 2, source)
    assert posed.shape == (1, 2) and posed.argmax() == 0
    assert np.isclose(posed[0, 0], 1.0)  # the maximum over class 0's sub-classes: as shot


def test_the_candidates_probabilities_sum_to_one_and_its_leave_one_out_runs() -> None:
    rng = np.random.default_rng(0)
    recipe = RECIPES[CANDIDATE]
    labels = np.repeat(np.arange(3), 3)
    shot = [rng.normal(size=(9, 6)) + 2 * np.eye(3, 6)[labels] for _ in recipe.groups]
    posed = [rng.normal(size=(27, 6)) for _ in recipe.groups]
    rows, source = with_poses(shot, posed, 4)
    proba = recipe_proba(recipe, rows, labels[source], [x[:5] for x in shot], 3, source)
    assert proba.shape == (5, 3) and np.allclose(proba.sum(1), 1.0)
    index, scores = leave_one_out(recipe, rows, labels[source], 3, source)
    assert index.tolist() == list(range(9)) and scores.shape == (9, 3)
    assert recipe == replace(RECIPES[DEFAULT_METHOD], pose_classes=True)


def test_pose_classes_need_poses_and_the_rows_sources() -> None:
    with pytest.raises(ConfigError, match="support poses"):
        replace(RECIPES["residual_proto"], pose_classes=True)
    rows, labels, _ = _turned_blur()
    with pytest.raises(ConfigError, match="source image"):
        recipe_proba(COSINE, rows, labels, [rows[0][:1]], 2)


def _record(loo: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = []
    for (protocol, variant), per_seed in loo.items():
        for seed, value in enumerate(per_seed, start=1):
            for category in ("a", "b"):
                rows.append({"protocol": protocol, "variant": variant, "category": category,
                             "seed": seed, "support_loo": value, "query_acc": 0.5})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_needs_the_average_gain_and_both_guards() -> None:
    base = {("mvtec", "baseline"): [0.80, 0.82, 0.84], ("suite_all", "baseline"): [0.5, 0.52, 0.54]}
    win = {("mvtec", "pose_classes"): [0.86, 0.88, 0.90],
           ("suite_all", "pose_classes"): [0.5, 0.52, 0.54]}  # fmt: skip
    assert verdict(_record({**base, **win}))[1]["adopted"].iloc[0]
    # +6 on MVTec, -4 on the suite: the average gains 1 point, the suite's guard (2) fails
    lose = {("mvtec", "pose_classes"): [0.86, 0.88, 0.90],
            ("suite_all", "pose_classes"): [0.46, 0.48, 0.50]}  # fmt: skip
    table, verdicts = verdict(_record({**base, **lose}))
    assert len(table) == 4 and verdicts["gain"].iloc[0] == pytest.approx(1.0)
    assert not verdicts["guard_ok"].iloc[0] and not verdicts["adopted"].iloc[0]


def test_the_verdict_takes_the_seeds_every_cell_holds() -> None:
    base = {("mvtec", "baseline"): [0.80, 0.82, 0.84], ("suite_all", "baseline"): [0.5, 0.52, 0.54]}
    win = {("mvtec", "pose_classes"): [0.86, 0.88, 0.90],
           ("suite_all", "pose_classes"): [0.5, 0.52, 0.54]}  # fmt: skip
    records = _record({**base, **win})
    records = records[~((records["seed"] == 3) & (records["category"] == "a"))]
    assert common_seeds(records) == [1, 2]
    table, _ = verdict(records)
    assert set(table["seeds"]) == {2} and set(table["categories"]) == {2}
