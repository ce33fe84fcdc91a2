"""Robustness round 11 (research.mixed_framing_round): the candidate recipe and the rule."""

from __future__ import annotations

import pandas as pd

from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES
from research.mixed_framing_round import CANDIDATE, verdict


def test_the_candidate_is_the_default_with_its_448_px_engine_fixed() -> None:
    default = RECIPES[DEFAULT_METHOD]
    assert CANDIDATE.groups == default.groups and CANDIDATE.support_poses == 4
    assert [e.features.crop for e in CANDIDATE.engines] == [448]
    assert [e.features.framing for e in CANDIDATE.engines] == ["fixed"]
    assert CANDIDATE.engines[0].features.side == 0  # resolved from the task's normals


def _record(suite: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"protocol": "suite_all", "variant": v, "category": c, "seed": s,
             "support_loo": loo, "query_acc": 0.5, "shots": 5}
            for v, per_seed in suite.items() for s, loo in enumerate(per_seed, start=1)
            for c in ("a", "b")]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_needs_two_points_on_the_suite_over_seeds_1_to_3() -> None:
    base = [0.50, 0.52, 0.54, 0.50, 0.50]
    win = verdict(_record({"baseline": base, "hires_fixed": [0.52, 0.54, 0.56, 0.1, 0.1]}))[1]
    assert win["gain"].iloc[0] == 2.0 and win["adopted"].iloc[0]
    short = verdict(_record({"baseline": base, "hires_fixed": [0.515, 0.535, 0.555]}))[1]
    assert not short["adopted"].iloc[0]
