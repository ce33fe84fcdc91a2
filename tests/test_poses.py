"""Support poses: the turned copies, their rows in the recipe code, leave-one-out by image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.descriptors import DescriptorConfig
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import (
    check_poses,
    image_labels,
    other_poses,
    posed_images,
    posed_names,
    with_poses,
)
from fsad.recipe import Group, Recipe, image_rows, leave_one_out, sample_rows, support_rows
from tests.test_recipe import SMALL

COSINE = Recipe((Group(DescriptorConfig(residual_fracs=(0.05,))),), head="cosine")
LOGISTIC = replace(COSINE, head="logistic", c=100.0)


def test_other_poses_are_the_turns_then_the_mirror_images() -> None:
    img = np.arange(6).reshape(2, 3)[..., None]  # (H, W, 1): [[0 1 2], [3 4 5]]
    rot4 = other_poses(img, 4)
    assert [p.shape for p in rot4] == [(3, 2, 1), (2, 3, 1), (3, 2, 1)]
    np.testing.assert_array_equal(rot4[0][..., 0], [[2, 5], [1, 4], [0, 3]])  # 90 deg ccw
    np.testing.assert_array_equal(rot4[1][..., 0], [[5, 4, 3], [2, 1, 0]])  # 180 deg
    dihedral = other_poses(img, 8)
    assert len(dihedral) == 7 and all(p.flags["C_CONTIGUOUS"] for p in dihedral)
    np.testing.assert_array_equal(dihedral[3][..., 0], [[2, 1, 0], [5, 4, 3]])  # mirror
    assert other_poses(img, 1) == []
    # 8 distinct poses of an image without symmetry
    assert len({p.tobytes() + bytes(p.shape) for p in [img, *dihedral]}) == 8


@pytest.mark.parametrize("bad", [0, 2, 3, 16, True, "4"])
def test_a_bad_number_of_poses_is_named(bad) -> None:
    with pytest.raises(ConfigError, match=r"support_poses must be one of \(1, 4, 8\)"):
        check_poses(bad)
    with pytest.raises(ConfigError, match="support_poses"):
        replace(COSINE, support_poses=bad)


def test_with_poses_keeps_the_images_first_and_records_each_rows_image() -> None:
    rows = [np.array([[0.0], [1.0]])]  # S = 2 images
    posed = [np.array([[10.0], [11.0], [12.0], [20.0], [21.0], [22.0]])]  # 3 poses each
    out, source = with_poses(rows, posed, 4)
    np.testing.assert_array_equal(out[0][:, 0], [0, 1, 10, 11, 12, 20, 21, 22])
    np.testing.assert_array_equal(source, [0, 1, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(image_labels(np.array([5, 6, 5, 5, 5, 6, 6, 6]), source), [5, 6])
    assert posed_names(["a.png", "b.png"], 4)[2:5] == [
        "a.png@rot90",
        "a.png@rot180",
        "a.png@rot270",
    ]
    assert len(posed_images([np.zeros((4, 5, 3), np.uint8)] * 2, 8)) == 14


def test_leave_one_out_takes_an_images_poses_out_with_it() -> None:
    """Exact copies of an image as its poses: left in, they would answer for it."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 3)
    x = rng.normal(size=(9, 8))  # no class structure: leave-one-out is near chance
    rows, source = with_poses([x], [np.repeat(x, 3, axis=0)], 4)
    # class means do not change when every image is repeated: the same scores as without
    index, scores = leave_one_out(COSINE, rows, labels[source], 3, source)
    plain_index, plain = leave_one_out(COSINE, [x], labels, 3)
    np.testing.assert_array_equal(index, plain_index)
    np.testing.assert_allclose(scores, plain, atol=1e-6)  # the copies left with their image
    honest = leave_one_out(LOGISTIC, rows, labels[source], 3, source)[1]
    assert (honest.argmax(1) == labels).mean() < 0.7  # no structure: no better than that
    _, leaky = leave_one_out(LOGISTIC, rows, labels[source], 3)  # rows taken one by one
    assert (leaky.argmax(1)[:9] == labels).all()  # a copy stays behind and gives it away


def test_support_rows_add_the_turned_images_rows_and_cache_them(
    tiny_category, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    support = list(tiny_category.test)[2:]  # the 3 scratch images
    recipe = replace(COSINE, support_poses=4)
    rows, source = support_rows(engine, recipe, support)
    assert rows[0].shape == (12, sample_rows(engine, recipe, support)[0].shape[1])
    np.testing.assert_array_equal(source, [0, 1, 2, *np.repeat([0, 1, 2], 3)])
    np.testing.assert_array_equal(rows[0][:3], sample_rows(engine, recipe, support)[0])
    turned = posed_images([read_image(s.path) for s in support], 4)
    np.testing.assert_allclose(rows[0][3:], image_rows(engine, recipe, turned)[0], atol=1e-6)
    assert list((tmp_path / "posed_rows").glob("*.pt"))
    # a second call reads the cache: no image is described again
    monkeypatch.setattr("fsad.recipe.image_rows", lambda *a: pytest.fail("recomputed"))
    again, _ = support_rows(engine, recipe, support)
    np.testing.assert_array_equal(again[0], rows[0])
    # without poses: the samples' rows alone
    plain, plain_source = support_rows(engine, COSINE, support)
    np.testing.assert_array_equal(plain[0], rows[0][:3])
    np.testing.assert_array_equal(plain_source, [0, 1, 2])


def test_the_rot4_methods_are_their_recipes_in_four_poses() -> None:
    for name in ("residual_proto", "anomaly_lr", "hires_poe_proto"):
        assert RECIPES[f"{name}_rot4"] == replace(RECIPES[name], support_poses=4)
