"""Robustness round 10 (research.fixed_framing_round): the fixed framing's rule and grid (the
candidate and its harness left with tag robustness-round-10, whose tests cover them)."""

from __future__ import annotations

import pandas as pd
import pytest

from research.fixed_framing_round import grid, main, verdict


def test_the_retired_round_only_reports_and_names_its_tag() -> None:
    with pytest.raises(SystemExit, match="git checkout robustness-round-10"):
        main(["--suite", "unused", "--out", "unused.csv"])


def _record(suite: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"protocol": "suite_all", "variant": v, "category": c, "seed": s,
             "support_loo": loo, "query_acc": 0.5, "shots": 5}
            for v, per_seed in suite.items() for s, loo in enumerate(per_seed, start=1)
            for c in ("a", "b")]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_needs_two_points_on_the_suite_over_seeds_1_to_3() -> None:
    base = [0.50, 0.52, 0.54, 0.50, 0.50]
    win = verdict(_record({"baseline": base, "fixed_scale": [0.52, 0.54, 0.56, 0.1, 0.1]}))[1]
    assert win["gain"].iloc[0] == 2.0 and win["adopted"].iloc[0]  # seeds 4-5 not read
    short = verdict(_record({"baseline": base, "fixed_scale": [0.515, 0.535, 0.555]}))[1]
    assert short["gain"].iloc[0] == pytest.approx(1.5) and not short["adopted"].iloc[0]


def test_the_grid_reads_query_accuracy_over_every_seed_with_the_baseline_s_guard() -> None:
    record = _record({"baseline": [0.50, 0.52, 0.54, 0.50, 0.52],
                      "fixed_scale": [0.52, 0.54, 0.56, 0.30, 0.30]})  # fmt: skip
    record["query_acc"] = record["support_loo"]
    out = grid(record)
    assert out["seeds"] == 5 and out["change"] == -7.2 and out["below_guard"]
    assert not grid(record[record["seed"] <= 3])["below_guard"]  # +2 points
