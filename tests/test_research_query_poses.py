"""Robustness round 4: the query seen in its poses. The baseline's leave-one-out is exactly
the library's, the posed score is the mean over an image's pose rows, and the harness check
names a cell that disagrees with speed round 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import with_poses
from fsad.recipe import leave_one_out
from research import ROUND_BASELINE
from research.query_poses_round import SPEED_BASELINE, check, pooled, pose_loo

RECIPE = RECIPES[ROUND_BASELINE]
POSES = RECIPE.support_poses  # 4


def _support(rng: np.random.Generator, posed_equal: bool = False):
    """Rows of 3 classes x 3 images in every group of the default recipe, with their poses."""
    labels = np.repeat(np.arange(3), 3)
    centres = rng.normal(size=(3, 8))
    shot = [centres[labels] + 0.6 * rng.normal(size=(9, 8)) for _ in RECIPE.groups]
    posed = [
        np.repeat(x, POSES - 1, axis=0)
        if posed_equal
        else np.repeat(x, POSES - 1, axis=0) + 0.6 * rng.normal(size=(9 * (POSES - 1), 8))
        for x in shot
    ]
    rows, source = with_poses(shot, posed, POSES)
    return rows, labels[source], source


def test_the_baselines_scores_are_the_librarys_leave_one_out() -> None:
    rows, labels, source = _support(np.random.default_rng(0))
    index, shot, posed = pose_loo(RECIPE, rows, labels, 3, source)
    ref_index, ref = leave_one_out(RECIPE, rows, labels, 3, source)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_allclose(shot, ref, atol=1e-12)
    assert shot.shape == posed.shape == (9, 3)
    np.testing.assert_allclose(posed.sum(axis=1), 1.0)
    assert not np.allclose(shot, posed)  # the poses' rows were read


def test_posed_rows_equal_to_the_shot_row_change_nothing() -> None:
    rows, labels, source = _support(np.random.default_rng(1), posed_equal=True)
    _, shot, posed = pose_loo(RECIPE, rows, labels, 3, source)
    np.testing.assert_allclose(posed, shot, atol=1e-9)


def test_pooled_averages_the_rows_of_each_image() -> None:
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    np.testing.assert_allclose(pooled(proba, np.array([0, 1, 0, 1]), 2), [[0.75, 0.25], [0.1, 0.9]])


def test_check_counts_equal_cells_and_names_the_first_that_differs(tmp_path: Path) -> None:
    cell = {"protocol": "mvtec", "category": "bottle", "shots": 5, "query_acc": 0.7}
    speed, mine = tmp_path / "speed_loo.csv", tmp_path / "query_poses.csv"
    pd.DataFrame([
        {**cell, "candidate": SPEED_BASELINE, "seed": 1, "support_loo": 0.8},
        {**cell, "candidate": "default", "seed": 1, "support_loo": 0.1},
        {**cell, "candidate": SPEED_BASELINE, "seed": 2, "support_loo": 0.9},
    ]).to_csv(speed, index=False)  # fmt: skip
    pd.DataFrame([
        {**cell, "variant": "baseline", "seed": 1, "support_loo": 0.8},
        {**cell, "variant": "query_rot4", "seed": 1, "support_loo": 0.5},
    ]).to_csv(mine, index=False)  # fmt: skip
    assert check(speed, mine) == 1
    pd.DataFrame([{**cell, "variant": "baseline", "seed": 2, "support_loo": 0.85}]).to_csv(
        mine, index=False
    )
    with pytest.raises(SystemExit, match=r"\('mvtec', 'bottle', 2\): support_loo 0.85 here, 0.9"):
        check(speed, mine)
