"""Support poses: the turned copies, their rows in the recipe code, leave-one-out by image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.data import CategoryData, load_category, read_image
from fsad.descriptors import DescriptorConfig
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import (
    POSE_TEST_ALPHA,
    check_poses,
    image_labels,
    other_poses,
    pose_test,
    posed_images,
    posed_names,
    with_poses,
)
from fsad.recipe import (
    Group,
    Recipe,
    image_rows,
    leave_one_out,
    recipe_from_json,
    recipe_to_json,
    sample_rows,
    support_pose_test,
    support_rows,
)
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


def test_the_pose_test_counts_images_whose_turned_copies_score_higher() -> None:
    shot = np.ones(10)
    turned = np.full((10, 3), 2.0)
    held = pose_test(shot, turned)
    assert (held.n_images, held.turned_higher) == (10, 10)
    assert held.p_value == pytest.approx(0.5**10) and held.holds_pose
    assert held.summary().startswith("holds a pose (10 of 10 turned higher")
    # the mean over the turns decides: one turn far higher, two a little lower -> higher
    assert pose_test(np.ones(1), np.array([[3.0, 0.9, 0.9]])).turned_higher == 1
    # half higher, half lower: no evidence of a pose; a tie is not higher
    free = pose_test(shot, np.where(np.arange(10)[:, None] < 5, 2.0, 0.5) * np.ones((10, 3)))
    assert free.turned_higher == 5 and not free.holds_pose
    assert pose_test(shot, np.ones((10, 3))).turned_higher == 0
    assert free.summary().startswith("poses freely (5 of 10 turned higher")


def test_the_pose_test_needs_seven_images_to_find_a_pose() -> None:
    six, seven = (
        pose_test(np.ones(6), np.full((6, 3), 2.0)),
        pose_test(np.ones(7), np.full((7, 3), 2.0)),
    )
    assert six.p_value > POSE_TEST_ALPHA > seven.p_value
    assert not six.holds_pose and seven.holds_pose


@pytest.mark.parametrize(
    "shot,turned",
    [
        (np.ones(3), np.ones((2, 3))),
        (np.ones(0), np.ones((0, 3))),
        (np.ones((3, 1)), np.ones((3, 3))),
        (np.ones(3), np.ones((3, 0))),
    ],
)
def test_the_pose_test_names_bad_shapes(shot: np.ndarray, turned: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="pose test needs scores"):
        pose_test(shot, turned)


def test_a_pose_test_without_support_poses_is_refused(tiny_category, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pose_test decides whether to turn the support"):
        replace(COSINE, pose_test=True)
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    with pytest.raises(ConfigError, match="the recipe has support_poses=1"):
        support_pose_test(engine, COSINE, list(tiny_category.test))


def test_a_recipe_saved_before_the_pose_test_loads_without_it() -> None:
    gated = replace(COSINE, support_poses=4, pose_test=True)
    assert recipe_from_json(recipe_to_json(gated)) == gated
    old = recipe_to_json(replace(COSINE, support_poses=4))
    del old["pose_test"]
    assert recipe_from_json(old).pose_test is False


def lit_frame(rng: np.random.Generator, turns: int, defect: bool) -> np.ndarray:
    """A 64 x 64 frame lit from the left (bright left half, dark right half) with a grey
    mark near the centre, turned by ``turns`` quarter turns; ``defect`` adds a white spot."""
    img = np.full((64, 64, 3), 40, np.uint8)
    img[:, :32] = 210
    img[28:36, 28:44] = 120
    img = img + rng.integers(0, 6, img.shape, dtype=np.uint8)
    if defect:
        y, x = rng.integers(8, 48, 2)
        img[y : y + 8, x : x + 8] = 255
    return np.ascontiguousarray(np.rot90(img, turns))


def posed_product(root: Path, free: bool) -> CategoryData:
    """An MVTec-layout category of :func:`lit_frame` s: shot in one pose, or (``free``) in
    any of the four quarter turns, normals and defects alike; 8 images of one defect type."""
    import cv2

    rng = np.random.default_rng(0)
    for split, kind, n, defect in (("train", "good", 8, False), ("test", "good", 1, False),
                                   ("test", "spot", 8, True)):  # fmt: skip
        folder = root / "widget" / split / kind
        folder.mkdir(parents=True)
        for i in range(n):
            turns = i % 4 if free else 0
            cv2.imwrite(str(folder / f"{i:03d}.png"), lit_frame(rng, turns, defect))
    return load_category(root, "mvtec_ad", "widget")


@pytest.mark.parametrize("free,poses", [(False, 4), (True, 4), (False, 8), (True, 8)])
def test_the_support_is_turned_only_where_the_pose_test_finds_the_product_free(
    tmp_path: Path, free: bool, poses: int
) -> None:
    category = posed_product(tmp_path / "data", free)
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path / "cache"))
    support = [s for s in category.test if s.label != "good"]
    gated = replace(COSINE, support_poses=poses, pose_test=True)
    test = support_pose_test(engine, gated, support)
    assert test.n_images == 8
    assert test.holds_pose is not free
    assert test.turned_higher <= 6 if free else test.turned_higher == 8
    rows, source = support_rows(engine, gated, support)
    want_rows, want_source = support_rows(
        engine, replace(gated, pose_test=False) if free else COSINE, support
    )
    np.testing.assert_array_equal(source, want_source)
    np.testing.assert_array_equal(rows[0], want_rows[0])
    assert len(source) == (8 * poses if free else 8)
