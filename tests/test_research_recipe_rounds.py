"""Robustness round 7's candidate: the default with residual blocks alone; the shared harness
takes a recipe the library does not register."""

from __future__ import annotations

from fsad.inspector import DEFAULT_METHOD
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, RECIPES
from research.residual_blocks_round import CANDIDATE, RESIDUAL_BLOCKS


def test_the_candidate_drops_the_feature_block_of_both_anomaly_groups_only() -> None:
    default = RECIPES[DEFAULT_METHOD]
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
