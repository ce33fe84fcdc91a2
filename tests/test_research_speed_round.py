"""Speed round 1: its candidates are the default's groups, and its pick is the shipped method."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fsad.methods.anomaly_guided import RECIPES
from fsad.report import augmentation_round, augmentation_verdicts, cheapest_noninferior
from research import ROUND_BASELINE
from research.speed_round import (
    CANDIDATES,
    DEFAULT,
    GROUP_NAMES,
    MARGIN,
    candidate_cost,
    candidate_recipe,
)


def test_the_round_default_keeps_every_group_and_is_the_old_registered_default() -> None:
    assert DEFAULT == RECIPES["hires_poe_proto_rot4"]
    assert candidate_recipe(CANDIDATES["default"]) == DEFAULT
    assert len(GROUP_NAMES) == len(DEFAULT.groups)


def test_the_adopted_candidate_is_the_registered_method_later_rounds_compare_against() -> None:
    """The grid and ``fsad fit --method`` run the recipe the round scored, not a second copy
    (``fsad fit``'s default until robustness round 11 framed its 448 px engine fixed)."""
    assert candidate_recipe(CANDIDATES["drop_lite2"]) == RECIPES["hires_lite0_poe_proto_rot4"]
    assert ROUND_BASELINE == "hires_lite0_poe_proto_rot4"  # fsad fit's default until round 11


def test_a_candidate_without_the_448_px_groups_has_no_second_engine() -> None:
    recipe = candidate_recipe(CANDIDATES["drop_hires"])
    assert recipe.engines == () and all(g.engine == 0 for g in recipe.groups)
    assert recipe.support_poses == DEFAULT.support_poses and recipe.prototypes
    assert candidate_recipe(CANDIDATES["drop_zoom"]).engines == DEFAULT.engines


def test_candidate_cost_adds_engine_0_to_the_kept_groups() -> None:
    costs = {"engine0": 0.1, "A0": 0.01, "A1": 0.5, "Z0": 0.3, "Z2": 0.7}
    assert candidate_cost(costs, CANDIDATES["anomaly_only"]) == pytest.approx(0.11)
    assert candidate_cost(costs, CANDIDATES["default"]) == pytest.approx(1.61)
    assert candidate_cost(costs, CANDIDATES["drop_lite2"]) == pytest.approx(0.91)


def test_the_committed_round_records_give_the_shipped_pick() -> None:
    """The rule of the docstring (non-inferiority margin, MVTec guard, cheapest), applied by
    the book's functions to the committed records, picks the candidate that was shipped."""
    explore = Path(__file__).resolve().parents[1] / "results" / "explore"
    records = pd.read_csv(explore / "speed_loo.csv").rename(columns={"candidate": "variant"})
    costs = pd.read_csv(explore / "speed_costs.csv").set_index("candidate")["cpu_s_per_image"]
    assert set(records["variant"]) == set(CANDIDATES) == set(costs.index)
    table = augmentation_round(records.assign(probe="p"), by=["protocol"])
    assert (table["seeds"] == 5).all() and (table["categories"] == 4).all()
    verdicts = augmentation_verdicts(
        table, margin=-MARGIN, guard={"protocol": "mvtec"}, baseline="default"
    )
    assert cheapest_noninferior(verdicts, costs) == "drop_lite2"
