"""Robustness round 12 (research.bank_coverage_round) and the study behind it
(research.light_localisation): the candidate's first engine keeps every normal patch and
nothing else changes; the grid reads each protocol with its own guard; the study's measures
on small maps whose answers are known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import FsadError
from fsad.features import FeatureConfig
from fsad.report import localisation_summary
from research import bank_coverage_round
from research.light_localisation import mask_on_grid, peak_in, peak_region, top_share

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)


def test_the_candidate_s_first_engine_keeps_every_normal_patch_and_nothing_else_changes(
    tiny_category, tmp_path: Path
) -> None:
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    wide = engine.sibling(replace(engine.config, coreset_ratio=bank_coverage_round.FULL))
    assert wide.config == replace(SMALL, coreset_ratio=1.0)
    patches = len(tiny_category.train) * 8 * 8  # 4 normals, a 64 px crop's 8 x 8 grid
    assert len(wide.bank_indices) == patches and len(engine.bank_indices) == patches // 4
    test = list(tiny_category.test)
    full = wide.anomaly_maps(test)
    assert full.shape == engine.anomaly_maps(test).shape == (len(test), 8, 8)
    assert bool((full <= engine.anomaly_maps(test) + 1e-4).all())  # a larger bank, nearer


def test_each_variant_scores_the_pinned_baseline_on_its_own_engine(
    tiny_category, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def fake_scores(engine: ResidualEngine, variants: dict) -> list[dict]:
        seen.append((engine.config.coreset_ratio, dict(variants)))
        return [{"variant": next(iter(variants)), "support_loo": 0.5}]

    monkeypatch.setattr(bank_coverage_round.recipe_round, "score_variants", fake_scores)
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    rows = bank_coverage_round.score_cell(engine)
    method = bank_coverage_round.BASELINE
    assert method == "hires_lite0_poe_proto_rot4_fixed"  # pinned, not fsad fit's default
    assert seen == [(0.25, {"baseline": method}), (1.0, {"full_bank": method})]
    assert [(r["variant"], r["bank_patches"]) for r in rows] == [
        ("baseline", 64),
        ("full_bank", 256),  # 4 normals x 8 x 8 patches, a quarter kept
    ]


def _record(query: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"protocol": p, "variant": v, "category": c, "seed": s, "support_loo": 0.5,
             "query_acc": q, "shots": 5}
            for (p, v), per_seed in query.items() for s, q in enumerate(per_seed, start=1)
            for c in ("a", "b", "c", "d")]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_grid_guards_each_protocol_with_its_own_baseline_spread() -> None:
    base = [0.70, 0.72, 0.74, 0.70, 0.74]
    record = _record({
        ("mvtec", "baseline"): base, ("mvtec", "full_bank"): [0.72, 0.74, 0.76, 0.72, 0.76],
        ("suite_all", "baseline"): base, ("suite_all", "full_bank"): [0.6] * 5,
    })  # fmt: skip
    out = bank_coverage_round.grid(record)
    assert out["mvtec"]["change"] == 2.0 and not out["mvtec"]["below_guard"]
    assert out["suite_all"]["change"] == pytest.approx(-12.0) and out["suite_all"]["below_guard"]
    assert out["mvtec"]["seeds"] == out["suite_all"]["seeds"] == 5


def test_the_report_gives_the_rule_s_verdict_on_seeds_1_to_3_and_each_grid(
    tmp_path: Path,
) -> None:
    record = _record({
        ("mvtec", "baseline"): [0.70] * 5, ("mvtec", "full_bank"): [0.70] * 5,
        ("suite_all", "baseline"): [0.50] * 5, ("suite_all", "full_bank"): [0.53] * 5,
    })  # fmt: skip
    record["support_loo"] = record["query_acc"]  # +1.5 points averaged over the protocols
    record.to_csv(tmp_path / "r.csv", index=False)
    text = bank_coverage_round.report(tmp_path / "r.csv")
    assert "full_bank adopted (gain +1.50)" in text
    assert "grid suite_all: 53.00 ± 0.00 against 50.00 ± 0.00 (+3.00 points" in text
    record.loc[record["variant"] == "full_bank", "support_loo"] -= 0.02  # now -0.5 points
    record.to_csv(tmp_path / "r.csv", index=False)
    text = bank_coverage_round.report(tmp_path / "r.csv")
    assert "full_bank lost (gain -0.50)" in text and "grid" not in text
    assert "query record (decides nothing) suite_all: 53.00" in text


def test_the_region_is_the_peak_s_connected_part_widened_by_one_patch() -> None:
    amap = np.zeros((6, 6))
    amap[1, 1], amap[1, 2] = 10.0, 8.0  # the peak and its neighbour above half the peak
    amap[4, 4] = 7.0  # above half too, but not connected to the peak
    region = peak_region(amap)
    assert region[0:3, 0:4].all() and region.sum() == 12  # 2 cells widened to a 3 x 4 block
    assert not region[4, 4]
    assert peak_in(amap, region) and not peak_in(np.where(region, 0.0, 1.0), region)


def test_the_top_share_counts_the_most_anomalous_patches_inside() -> None:
    amap = np.arange(100, dtype=float).reshape(10, 10)  # largest values in the last row
    region = np.zeros((10, 10), bool)
    region[8, :] = True
    assert top_share(amap, region, top=0.1) == 0.0  # the 10 largest, 90-99, are row 9
    region[9, :5] = True
    assert top_share(amap, region, top=0.1) == 0.5
    assert top_share(amap, region, top=0.2) == 0.75  # rows 8 and 9: 15 of 20 inside


def test_a_mask_lands_on_the_grid_where_the_letterbox_places_its_image() -> None:
    mask = np.zeros((100, 200), bool)
    mask[:, 190:] = True  # the right edge of a wide image
    config = FeatureConfig(resize=64, crop=64, framing="letterbox")
    cells = mask_on_grid(mask, config, 8)
    assert cells.shape == (8, 8)
    assert cells[:, 7].any() and not cells[:, :6].any()  # right column, widened by one
    assert not cells[0].any() and not cells[7].any()  # the letterbox's padding above and below


def test_a_mask_is_cut_as_the_centre_crop_cuts_its_image() -> None:
    mask = np.zeros((100, 200), bool)
    mask[:, 190:] = True  # the right edge: cut away by the centre crop
    mask[40:60, 95:105] = True  # the centre: kept
    config = FeatureConfig(resize=64, crop=64)  # resized to 64 x 128, then 64 x 64 cut
    cells = mask_on_grid(mask, config, 8)
    assert cells.shape == (8, 8) and not cells[:, 7].any() and not cells[:, 0].any()
    assert cells[3:5, 3:5].all() and not cells[0].any()  # the centre, widened by one


def test_the_localisation_summary_counts_images_and_shares_per_category_and_bank() -> None:
    rows = pd.DataFrame({
        "category": ["screw"] * 4, "coreset": [0.1, 0.1, 1.0, 1.0], "file": list("abab"),
        "peak_in": [True, False, True, True], "top_in": [0.5, 0.25, 1.0, 0.5],
        "top_in_none": [1.0, 0.5, 1.0, 1.0], "score_ratio": [1.0, 3.0, 1.0, 1.2],
    })  # fmt: skip
    out = localisation_summary(rows)
    assert out.loc[("screw", 0.1)].to_dict() == {
        "images": 2.0,
        "peak_in": 0.5,
        "top_in": 0.375,
        "top_in_none": 0.75,
        "score_ratio": 2.0,
    }
    assert out.loc[("screw", 1.0), "peak_in"] == 1.0
    assert "mask_peak_in_lit" not in out  # no masks in the record, no mask columns
    masked = rows.assign(mask_peak_in_none=True, mask_peak_in_lit=[True, False, True, True])
    assert localisation_summary(masked).loc[("screw", 0.1), "mask_peak_in_lit"] == 0.5
    by_comparison = localisation_summary(rows.assign(compared=["a", "b", "a", "b"]))
    assert by_comparison.loc[("screw", 0.1, "b"), "peak_in"] == 0.0
    with pytest.raises(FsadError, match=r"lacks columns \['peak_in'\]"):
        localisation_summary(rows.drop(columns="peak_in"))
