"""The light rows study's pieces (research wing): the versions of a category and the
leave-one-out it scores them with."""

import numpy as np
import pytest

from fsad.data import CategoryData, Sample
from fsad.methods.anomaly_guided import RECIPES
from research import light_rows_study as lr


def _category(root, names) -> CategoryData:
    test = [Sample(root / "cut" / n, "c", "test", "cut") for n in names]
    train = [Sample(root / "good" / "0.png", "c", "train", "good")]
    return CategoryData(name="c", dataset="folder", root=root, train=train, test=test)


def test_as_shot_is_the_category_itself(tmp_path) -> None:
    category = _category(tmp_path, ["1.png"])
    assert lr.version_of(category, "shot", tmp_path) is category


def test_the_oracle_must_hold_the_same_files(tmp_path) -> None:
    for folder, names in (("good", ["0.png"]), ("cut", ["9.png"])):
        (tmp_path / "oracle" / "c" / folder).mkdir(parents=True)
        for n in names:
            (tmp_path / "oracle" / "c" / folder / n).write_bytes(b"")
    category = _category(tmp_path / "suite", ["1.png"])
    with pytest.raises(SystemExit, match="not the oracle's copies"):
        lr.version_of(category, "oracle", tmp_path / "oracle")


def test_each_image_is_scored_by_a_head_fitted_on_the_others() -> None:
    recipe = RECIPES["residual_proto"]
    rows = [np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])]
    assert lr.scored(recipe, rows, np.array([0, 0, 1, 1])).tolist() == [0, 0, 1, 1]
    with pytest.raises(SystemExit, match="two images"):
        lr.scored(recipe, rows, np.array([0, 0, 0, 1]))


def test_the_first_split_is_the_grids_and_the_drawn_ones_keep_the_shots() -> None:
    labels = np.array([0] * 7 + [1] * 8)
    masks = lr.support_masks(labels, 5, 3)
    assert len(masks) == 4
    assert np.flatnonzero(masks[0]).tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]
    for m in masks[1:]:
        assert np.bincount(labels[m]).tolist() == [5, 5]
    assert not all(np.array_equal(masks[1], m) for m in masks[2:])
    again = lr.support_masks(labels, 5, 3)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again, strict=True))
    with pytest.raises(SystemExit, match="no query"):
        lr.support_masks(np.array([0] * 5 + [1] * 8), 5, 1)


def test_a_split_is_scored_on_its_queries_only() -> None:
    rows = [np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 6)]
    labels = np.array([0] * 6 + [1] * 6)
    support = np.array([True] * 5 + [False] + [True] * 5 + [False])
    assert lr.split_accuracy(rows, labels, support) == 1.0


def test_turned_copies_join_the_support_and_never_the_queries() -> None:
    labels = np.array([0] * 6 + [1] * 6)
    shot = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 6)
    # every turned copy points the other way: fitted on them too, the head gets unsure
    turned = np.repeat(shot[:, ::-1], 3, axis=0)
    rows = [np.concatenate([shot, turned])]
    support = np.array([True] * 5 + [False] + [True] * 5 + [False])
    assert lr.POSES == 4
    assert lr.split_accuracy(rows, labels, support, poses=1) == 1.0
    assert lr.split_accuracy(rows, labels, support, poses=4) < 1.0
