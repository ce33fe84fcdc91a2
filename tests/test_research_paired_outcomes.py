"""The per-image study of photometric round 7 and robustness round 13
(research.paired_outcomes): each row names its image, class and set, and the outcomes come
from the code that scores the rounds' cells (the sign tests and the check against a
round's record: tests/test_report.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.cache import DiskCache
from fsad.data import FewShotSplit, Sample, load_category
from fsad.engine import ResidualEngine
from research import paired_outcomes as po
from research.recipe_round import CellPredictions, cell_predictions, score_variants
from tests.test_recipe import RECIPE, SMALL


def test_rows_name_the_left_out_support_images_and_every_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def sample(name: str, label: str) -> Sample:
        return Sample(Path(f"/x/{label}/{name}"), "widget", "test", label)

    support = [sample("000.png", "cut"), sample("001.png", "cut"), sample("000.png", "hole")]
    query = [sample("002.png", "cut"), sample("001.png", "hole")]
    split = FewShotSplit(["cut", "hole"], 2, support, np.array([0, 0, 1]), query, np.array([0, 1]))
    seen = CellPredictions(split, np.array([0, 1]), np.array([True, False]),
                           np.array([False, True]), 0.0)  # fmt: skip
    monkeypatch.setattr(po, "cell_predictions", lambda engine, recipe: seen)
    rows = pd.DataFrame(po.outcome_rows(object(), "baseline"))
    assert rows[["set", "label", "image", "correct"]].values.tolist() == [
        ["loo", "cut", "000.png", True],
        ["loo", "cut", "001.png", False],
        ["query", "cut", "002.png", False],
        ["query", "hole", "001.png", True],
    ]


def test_cell_predictions_leave_out_support_images_only_and_score_variants_averages_them(
    embedded_root: Path, tmp_path: Path, one_torch_thread
) -> None:
    category = load_category(embedded_root, "mvtec_ad", "washer")
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path))
    seen = cell_predictions(engine, RECIPE)
    split = seen.split
    assert len(split.support) == 5 * split.n_classes == 20  # four types; all are left out
    assert sorted(seen.left_out.tolist()) == list(range(len(split.support)))
    assert seen.loo_correct.shape == seen.left_out.shape and seen.loo_correct.dtype == bool
    assert seen.query_correct.shape == (len(split.query),)
    assert not {s.path for s in split.support} & {s.path for s in split.query}
    (row,) = score_variants(engine, {"r": RECIPE})  # the rounds' rows count the same images
    assert (row["n_left_out"], row["n_query"]) == (5 * 4, len(split.query))
    again = cell_predictions(engine, RECIPE)  # the same cell gives the same outcomes
    assert np.array_equal(again.loo_correct, seen.loo_correct)
    assert np.array_equal(again.query_correct, seen.query_correct)
