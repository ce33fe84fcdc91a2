"""Robustness rounds 10 and 11 (research.fixed_framing_round, research.mixed_framing_round):
their rule and grid, the retired round's refusal and round 11's candidate recipe (round
10's candidate and harness left with tag robustness-round-10, whose tests cover them)."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import pandas as pd
import pytest

from fsad.methods.anomaly_guided import RECIPES
from research import ROUND_BASELINE, fixed_framing_round, mixed_framing_round

ROUNDS = [(fixed_framing_round, "fixed_scale"), (mixed_framing_round, "hires_fixed")]


def test_the_retired_round_only_reports_and_names_its_tag() -> None:
    with pytest.raises(SystemExit, match="git checkout robustness-round-10"):
        fixed_framing_round.main(["--suite", "unused", "--out", "unused.csv"])


def test_round_11_s_candidate_is_the_registered_fixed_method() -> None:
    default, candidate = RECIPES[ROUND_BASELINE], mixed_framing_round.CANDIDATE
    assert candidate.groups == default.groups and candidate.support_poses == 4
    assert [(e.features.crop, e.features.framing) for e in candidate.engines] == [(448, "fixed")]
    assert candidate.engines[0].features.side == 0  # resolved from the task's normals
    assert candidate.engines[0].features == replace(
        default.engines[0].features, framing="fixed"
    )  # only the framing differs from the default's 448 px engine


def _record(suite: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"protocol": "suite_all", "variant": v, "category": c, "seed": s,
             "support_loo": loo, "query_acc": 0.5, "shots": 5}
            for v, per_seed in suite.items() for s, loo in enumerate(per_seed, start=1)
            for c in ("a", "b")]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("module", "name"), ROUNDS)
def test_the_rule_needs_two_points_on_the_suite_over_seeds_1_to_3(
    module: ModuleType, name: str
) -> None:
    base = [0.50, 0.52, 0.54, 0.50, 0.50]
    win = module.verdict(_record({"baseline": base, name: [0.52, 0.54, 0.56, 0.1, 0.1]}))[1]
    assert win["gain"].iloc[0] == 2.0 and win["adopted"].iloc[0]  # seeds 4-5 not read
    short = module.verdict(_record({"baseline": base, name: [0.515, 0.535, 0.555]}))[1]
    assert short["gain"].iloc[0] == pytest.approx(1.5) and not short["adopted"].iloc[0]


@pytest.mark.parametrize(("module", "name"), ROUNDS)
def test_the_grid_reads_query_accuracy_over_every_seed_with_the_baseline_s_guard(
    module: ModuleType, name: str
) -> None:
    record = _record({"baseline": [0.50, 0.52, 0.54, 0.50, 0.52],
                      name: [0.52, 0.54, 0.56, 0.30, 0.30]})  # fmt: skip
    record["query_acc"] = record["support_loo"]
    out = module.grid(record)
    assert out["seeds"] == 5 and out["change"] == -7.2 and out["below_guard"]
    assert not module.grid(record[record["seed"] <= 3])["below_guard"]  # +2 points
