"""The research wing's candidate scoring: leave-one-out inside the support, merged rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.descriptors import DescriptorConfig
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Group, Recipe
from research.records import done_cells, merged
from research.selection import CANDIDATES, CELL, head_of, loo_accuracy

COSINE = Recipe((Group(DescriptorConfig()),), head="cosine")


def test_candidates_are_the_registered_recipes_without_support_poses() -> None:
    assert CANDIDATES == {n: r for n, r in RECIPES.items() if r.support_poses == 1}
    assert "hires_poe_proto" in CANDIDATES and "hires_poe_proto_rot4" not in CANDIDATES


def test_loo_accuracy_on_separable_and_shuffled_rows() -> None:
    labels = np.repeat(np.arange(3), 4)
    rows = [np.eye(3)[labels] + 0.01 * np.random.default_rng(0).normal(size=(12, 3))]
    assert loo_accuracy(rows, labels, 3, head_of(COSINE)) == 1.0
    # a head that always answers class 0 is right on class 0's images only
    const = lambda xs, ys, xq, n: np.tile(np.eye(n)[0], (len(xq[0]), 1))  # noqa: E731
    assert loo_accuracy(rows, labels, 3, const) == pytest.approx(1 / 3)


def test_loo_skips_classes_with_a_single_support_image() -> None:
    labels = np.arange(3)  # 1 shot: leaving one out would remove its class
    rows = [np.eye(3)]
    assert np.isnan(loo_accuracy(rows, labels, 3, head_of(COSINE)))


def test_merged_replaces_only_the_rerun_cells(tmp_path: Path) -> None:
    out = tmp_path / "synth.csv"
    old = [
        {"variant": "a", "category": "bottle", "seed": 1, "support_loo": 0.5},
        {"variant": "b", "category": "bottle", "seed": 1, "support_loo": 0.6},
    ]
    pd.DataFrame(old).to_csv(out, index=False)
    new = merged(out, [{"variant": "a", "category": "bottle", "seed": 1, "support_loo": 0.9}], CELL)
    got = new.set_index("variant")["support_loo"].to_dict()
    assert got == {"a": 0.9, "b": 0.6} and len(new) == 2
    assert done_cells(out, CELL) == {("a", "bottle", 1), ("b", "bottle", 1)}
    assert done_cells(tmp_path / "none.csv", CELL) == set()
