"""Photometric round 10's candidate (research.light_views_round): one head over two views of
every image. Each view's rows land in their own half of the groups; two identical views give
the default head's own outcomes (each expert of the product squared keeps every arg-max);
views whose splits or support rows differ are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.data import CategoryData, load_category
from fsad.engine import ResidualEngine
from fsad.recipe import Recipe, sample_rows, support_rows
from research import light_views_round as lv
from research.paired_outcomes import outcome_rows
from research.recipe_round import cell_predictions
from tests.test_recipe import RECIPE, SMALL


@pytest.fixture()
def washer(embedded_root: Path) -> CategoryData:
    return load_category(embedded_root, "mvtec_ad", "washer")


def test_each_views_rows_land_in_their_own_half(washer, tmp_path: Path, one_torch_thread) -> None:
    cache = DiskCache(tmp_path)
    one, two = (ResidualEngine(washer, SMALL, seed=s, cache=cache) for s in (1, 2))
    split, xs, source, xq = lv.two_view_rows(one, two, RECIPE)
    g = len(RECIPE.groups)
    assert len(xs) == len(xq) == 2 * g and len(source) == len(split.support)
    for k, engine in enumerate((one, two)):
        rows, _ = support_rows(engine, RECIPE, split.support)
        query = sample_rows(engine, RECIPE, split.query)
        assert all(np.array_equal(xs[k * g + i], rows[i]) for i in range(g))
        assert all(np.array_equal(xq[k * g + i], query[i]) for i in range(g))
    assert not all(np.array_equal(xq[i], xq[g + i]) for i in range(g))  # two coresets differ


def test_two_identical_views_give_the_heads_own_outcomes(
    washer, tmp_path: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ResidualEngine(washer, SMALL, seed=1, cache=DiskCache(tmp_path))
    rows = pd.DataFrame(lv.view_outcome_rows(engine, engine, RECIPE))
    assert set(rows["variant"]) == {lv.CANDIDATE}
    seen = cell_predictions(engine, RECIPE)
    assert rows.loc[rows["set"] == "loo", "correct"].tolist() == seen.loo_correct.tolist()
    assert rows.loc[rows["set"] == "query", "correct"].tolist() == seen.query_correct.tolist()
    monkeypatch.setattr("research.paired_outcomes.RECIPES", {lv.ls.BASELINE: RECIPE})
    plain = pd.DataFrame(outcome_rows(engine, "baseline"))
    columns = ["set", "image", "label"]
    assert rows[columns].values.tolist() == plain[columns].values.tolist()


def test_views_whose_splits_or_rows_differ_are_refused(
    washer, embedded_root: Path, tmp_path: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DiskCache(tmp_path)
    engine = ResidualEngine(washer, SMALL, 1, cache)
    others = sorted(p.name for p in embedded_root.iterdir() if p.is_dir() and p.name != "washer")
    other = ResidualEngine(load_category(embedded_root, "mvtec_ad", others[0]), SMALL, 1, cache)
    with pytest.raises(SystemExit, match="washer: the two views' splits differ"):
        lv.two_view_rows(engine, other, RECIPE)
    calls = []

    def shuffled(
        e: ResidualEngine, recipe: Recipe, samples: list
    ) -> tuple[list[np.ndarray], np.ndarray]:
        rows, source = support_rows(e, recipe, samples)
        calls.append(e)
        return rows, source[::-1] if len(calls) == 2 else source

    monkeypatch.setattr(lv, "support_rows", shuffled)
    with pytest.raises(SystemExit, match="washer: the two views' support rows differ in order"):
        lv.two_view_rows(engine, engine, RECIPE)
