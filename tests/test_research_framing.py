"""Robustness round 10 (research.framing_round): the fixed framing's round, its rule, its
grid and its identity on the untransformed suite."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.features import FeatureConfig
from research import framing_round
from research.framing_round import grid, none_identity, score_cell, verdict


def _folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> Path:
    """A folder-layout category ``strip`` whose images have the given ``(H, W)`` sizes."""
    for label, shapes in sizes.items():
        (root / "strip" / label).mkdir(parents=True)
        for i, (h, w) in enumerate(shapes):
            cv2.imwrite(
                str(root / "strip" / label / f"{i:03d}.png"), np.full((h, w, 3), 90, np.uint8)
            )
    return root


def test_the_untransformed_suite_is_framed_alike_only_when_every_image_has_one_size(
    tmp_path: Path,
) -> None:
    same = _folder(tmp_path / "same", {"good": [(64, 80)] * 3, "dent": [(64, 80)] * 2})
    out = none_identity(same, ["strip"])
    assert out.to_dict("records") == [
        {"category": "strip", "side": 80, "images": 5, "identical": True}
    ]
    window = _folder(tmp_path / "window", {"good": [(64, 80)] * 3, "dent": [(40, 50)]})
    assert not none_identity(window, ["strip"])["identical"].iloc[0]  # a smaller window


def test_a_cell_scores_the_candidate_on_its_fixed_sibling(tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path, {"good": [(64, 80), (30, 96)], "dent": [(40, 50)]})
    category = load_category(root / "strip", "folder")
    letterbox = EngineConfig(features=FeatureConfig(framing="letterbox"))
    engine = ResidualEngine(category, letterbox, cache=DiskCache(tmp_path / "cache"))
    seen = []

    def fake_scores(engine: ResidualEngine, variants: dict) -> list[dict]:
        seen.append(engine.config.features)
        return [{"variant": v, "support_loo": 0.5} for v in variants]

    monkeypatch.setattr(framing_round.recipe_round, "score_variants", fake_scores)
    rows = score_cell(engine)
    assert [r["variant"] for r in rows] == ["baseline", "fixed_scale"]
    assert [(f.framing, f.side) for f in seen] == [("letterbox", 0), ("fixed", 96)]
    assert [r["side"] for r in rows] == [0, 96]


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
