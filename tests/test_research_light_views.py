"""Photometric round 10's candidate (research.light_views_round): one head over two views of
every image. Two identical views give the default head's own outcomes (each expert of the
product squared keeps every arg-max), and views whose splits differ are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.engine import ResidualEngine
from research import light_views_round as lv
from research.paired_outcomes import outcome_rows
from research.recipe_round import cell_predictions
from tests.test_recipe import RECIPE, SMALL


def test_two_identical_views_give_the_heads_own_outcomes(
    embedded_root: Path, tmp_path: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = load_category(embedded_root, "mvtec_ad", "washer")
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path))
    split, xs, source, xq, truth = lv.two_view_rows(engine, engine, RECIPE)
    g = len(RECIPE.groups)
    assert len(xs) == len(xq) == 2 * g  # each group twice, as shot first
    assert all(np.array_equal(xs[k], xs[g + k]) for k in range(g))
    assert len(source) == len(split.support) and truth.shape == (len(split.query),)
    rows = pd.DataFrame(lv.view_outcome_rows(engine, engine, RECIPE))
    assert set(rows["variant"]) == {lv.CANDIDATE}
    seen = cell_predictions(engine, RECIPE)
    assert rows.loc[rows["set"] == "loo", "correct"].tolist() == seen.loo_correct.tolist()
    assert rows.loc[rows["set"] == "query", "correct"].tolist() == seen.query_correct.tolist()
    monkeypatch.setattr("research.paired_outcomes.RECIPES", {lv.ls.BASELINE: RECIPE})
    plain = pd.DataFrame(outcome_rows(engine, "baseline"))  # stems, as the record holds them
    plain["image"] = plain["image"].map(lambda name: Path(name).stem)
    assert (
        rows[["set", "image", "label"]].values.tolist()
        == plain[["set", "image", "label"]].values.tolist()
    )


def test_views_whose_splits_differ_are_refused(
    embedded_root: Path, tmp_path: Path, one_torch_thread
) -> None:
    cache = DiskCache(tmp_path)
    washer = ResidualEngine(load_category(embedded_root, "mvtec_ad", "washer"), SMALL, 1, cache)
    others = [p.name for p in (embedded_root).iterdir() if p.is_dir() and p.name != "washer"]
    other = ResidualEngine(load_category(embedded_root, "mvtec_ad", others[0]), SMALL, 1, cache)
    with pytest.raises(SystemExit, match="washer: the two views' splits differ"):
        lv.two_view_rows(washer, other, RECIPE)
