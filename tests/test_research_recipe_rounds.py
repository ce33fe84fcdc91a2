"""The rounds of registered recipes (``research.recipe_round``): the rule needs the average
gain and a guard on each protocol, on the seeds every cell holds; robustness round 7's
candidate is the default with residual blocks alone; retired rounds only report."""

from __future__ import annotations

import pandas as pd
import pytest

from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, RECIPES
from research import ROUND_BASELINE, centred_round, pose_classes_round
from research.recipe_round import common_seeds, verdict
from research.residual_blocks_round import CANDIDATE, RESIDUAL_BLOCKS


def test_the_candidate_drops_the_feature_block_of_both_anomaly_groups_only() -> None:
    default = RECIPES[ROUND_BASELINE]
    assert RESIDUAL_BLOCKS.residual_fracs == ANOMALY_BLOCKS.residual_fracs
    assert not RESIDUAL_BLOCKS.feature_fracs and ANOMALY_BLOCKS.feature_fracs
    kinds = [(g.block == ANOMALY_BLOCKS, g.engine) for g in default.groups]
    assert kinds == [(True, 0), (True, 1), (False, 0)]
    assert [g.block for g in CANDIDATE.groups] == [
        RESIDUAL_BLOCKS,
        RESIDUAL_BLOCKS,
        default.groups[2].block,
    ]
    assert [(g.engine, g.weight) for g in CANDIDATE.groups] == [
        (g.engine, g.weight) for g in default.groups
    ]
    assert CANDIDATE.support_poses == default.support_poses and CANDIDATE.engines == default.engines


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


@pytest.mark.parametrize("round_", [pose_classes_round, centred_round])
def test_a_retired_round_reports_and_names_the_tag_that_keeps_its_code(
    round_, tmp_path, capsys
) -> None:
    base = {("mvtec", "baseline"): [0.8, 0.82], ("suite_all", "baseline"): [0.5, 0.52]}
    cand = {("mvtec", "x"): [0.8, 0.82], ("suite_all", "x"): [0.5, 0.52]}
    out = tmp_path / "record.csv"
    _record({**base, **cand}).to_csv(out, index=False)
    round_.main(["--report", "--out", str(out)])
    assert "verdict: x lost" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        round_.main(["--out", str(out)])
    assert round_.TAG in capsys.readouterr().err


def test_the_head_round_varies_the_two_strengths_around_the_default() -> None:
    from research.head_round import changed, pick, variants

    found = variants()
    assert len(found) == 9 and found["baseline"] == ROUND_BASELINE
    default = RECIPES[ROUND_BASELINE]
    assert (default.c, default.proto_scale) == (100.0, 20.0) and "c100_s20" not in found
    assert found["c10_s20"].c == 10.0 and found["c10_s20"].proto_scale == default.proto_scale
    assert found["c10_s20"].groups == default.groups  # the rows are the default's
    assert changed("c10_s20") == 1 and changed("c1000_s40") == 2
    verdicts = pd.DataFrame({"variant": ["c10_s20", "c1000_s40", "c100_s10", "c10_s10"],
                             "gain": [2.0, 2.0, 1.5, 3.0],
                             "adopted": [True, True, True, False]})  # fmt: skip
    assert pick(verdicts) == "c10_s20"  # the larger gain among the adopted; fewer changes
    assert pick(verdicts.assign(adopted=False)) is None
