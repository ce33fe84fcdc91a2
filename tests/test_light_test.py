"""Each image's own light undone (fsad.light_estimate) and the support's light test that
decides whether to undo it (fsad.light_test)."""

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
from fsad.evaluate import HIDDEN, hide_label
from fsad.inspector.classifier import METHODS
from fsad.light_estimate import (
    frame_coordinates,
    gradient_slope,
    reference_levels,
    undo_light,
)
from fsad.light_test import (
    LIGHT_TEST_ALPHA,
    LightTest,
    light_gated,
    light_test,
    min_test_images,
    support_light_test,
    undone_category,
    undone_engine,
)
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Group, Recipe, recipe_from_json, recipe_to_json
from fsad.task import FewShotTask
from tests.test_recipe import SMALL

COSINE = Recipe((Group(DescriptorConfig(residual_fracs=(0.05,))),), head="cosine")
LIT = replace(COSINE, light_test=True)


def scene(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """``(size, size, 3)`` uint8: a grey part (a bright disc with a dark bar) on a mid-grey
    background, with a little noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.full((size, size), 90.0)
    img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2] = 170.0
    img[size // 2 - 4 : size // 2 + 4, size // 4 : 3 * size // 4] = 60.0
    img += rng.normal(0, 2, img.shape)
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def lit(image: np.ndarray, g: float, k: float, b: float = 0.0, c: float = 0.0) -> np.ndarray:
    """The image under a light ``log y = g log x + k + b u + c v`` (log domain of
    :mod:`fsad.light_estimate`)."""
    u, v = frame_coordinates(*image.shape[:2])
    x = np.log((image.astype(np.float32) + 0.5) / 256.0)
    y = g * x + k + (b * u + c * v)[..., None]
    return np.clip(np.rint(256.0 * np.exp(y) - 0.5), 0, 255).astype(np.uint8)


def test_the_estimate_undoes_a_known_gamma_gain_and_plane() -> None:
    rng = np.random.default_rng(0)
    normals = [scene(rng) for _ in range(6)]
    reference = reference_levels(normals)
    truth = scene(rng)
    shot = lit(truth, g=1.3, k=-0.25, b=0.3, c=-0.2)
    before = np.abs(shot.astype(int) - truth).mean()
    after = np.abs(undo_light(shot, reference).astype(int) - truth).mean()
    assert before > 20
    assert after < 4
    b, c = gradient_slope(shot)
    assert abs(b - 0.3) < 0.1 and abs(c + 0.2) < 0.1


def test_an_image_under_the_products_own_light_is_nearly_unchanged() -> None:
    rng = np.random.default_rng(1)
    normals = [scene(rng) for _ in range(6)]
    image = scene(rng)
    out = undo_light(image, reference_levels(normals))
    assert np.abs(out.astype(int) - image).mean() < 2
    assert np.ptp(out.astype(int), axis=2).max() == 0  # grey stays grey


def test_the_estimate_names_bad_input() -> None:
    with pytest.raises(ConfigError, match="normal images: none"):
        reference_levels([])
    with pytest.raises(ConfigError, match=r"\(19,\) reference, got \(64, 64, 3\) and \(3,\)"):
        undo_light(np.zeros((64, 64, 3), np.uint8), np.zeros(3))


def test_the_light_test_counts_images_lower_undone_ties_not() -> None:
    shot = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    undone = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0])  # the last a tie
    test = light_test(shot, undone)
    assert (test.n_images, test.lower_undone) == (8, 7)
    assert test.p_value == pytest.approx(9 / 256)
    assert not test.varies  # 7 of 8 is p = 0.035, above the level
    assert light_test(shot, undone * 0.9).varies  # 8 of 8: p = 1/256
    assert light_test(shot[:6], undone[:6] * 0.5).p_value > LIGHT_TEST_ALPHA  # 6 images: never
    assert light_test(shot[:7], undone[:7] * 0.9).varies  # 7 of 7: p = 1/128
    assert min_test_images() == 7 and min_test_images(0.05) == 5
    assert "lower undone" in test.summary() and test.as_dict()["varies"] is False
    assert "tested" not in test.as_dict()


@pytest.mark.parametrize(
    "shot,undone", [(np.ones(3), np.ones(4)), (np.ones((3, 1)), np.ones((3, 1))), ([], [])]
)
def test_the_light_test_names_bad_shapes(shot, undone) -> None:
    with pytest.raises(ConfigError, match="light test needs scores"):
        light_test(shot, undone)


def lit_product(root: Path, varies: bool) -> CategoryData:
    """An MVTec-layout category of :func:`scene` s, shot under one light or (``varies``)
    under a gamma, gain and plane drawn per image, normals and defects alike: 10 normals, 1
    good test image and 6 images of each defect type (``spot``: a white square; ``bar``: a
    dark bar)."""
    import cv2

    rng = np.random.default_rng(0)
    kinds = (("train", "good", 10), ("test", "good", 1), ("test", "spot", 6), ("test", "bar", 6))
    for split, kind, n in kinds:
        folder = root / "widget" / split / kind
        folder.mkdir(parents=True)
        for i in range(n):
            img = scene(rng)
            y, x = rng.integers(20, 70, 2)
            if kind == "spot":
                img[y : y + 8, x : x + 8] = 255
            elif kind == "bar":
                img[y : y + 3, x : x + 20] = 10
            if varies:
                g, k = rng.uniform(0.7, 1.4), rng.uniform(-0.5, 0.3)
                img = lit(img, g, k, *rng.uniform(-0.4, 0.4, 2))
            cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return load_category(root, "mvtec_ad", "widget")


def task_of(category: CategoryData, engine: ResidualEngine, shots: int = 4) -> FewShotTask:
    """The task of the first ``shots`` images of each defect type, the rest as queries."""
    classes = ["bar", "spot"]
    by_type = [[s for s in category.test if s.label == c] for c in classes]
    support = [s for group in by_type for s in group[:shots]]
    query = [s for group in by_type for s in group[shots:]]
    labels = np.repeat(np.arange(2), shots)
    category = replace(category, test=support)  # as the grid's build_task: the support alone
    return FewShotTask("mvtec_ad", category, shots, 1, classes, support, labels, query, engine)


@pytest.mark.parametrize("varies", [False, True])
def test_the_light_is_undone_only_where_the_support_shows_it_varies(
    tmp_path: Path, varies: bool
) -> None:
    category = lit_product(tmp_path / "data", varies)
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path / "cache"))
    task = task_of(category, engine)
    test = support_light_test(engine, LIT, task.support)
    assert test.n_images == 8
    assert test.varies is varies
    assert test.lower_undone == 8 if varies else test.lower_undone <= 6
    seen, again = light_gated(task, LIT)
    assert again == test
    if not varies:
        assert seen is task
        return
    undone, _ = undone_engine(engine)
    assert seen.engine is undone and seen.category.root == undone.category.root
    assert all(s.path.parent == undone.category.root for s in [*seen.support, *seen.query])
    assert [s.label for s in seen.support] == [s.label for s in task.support]
    assert [s.label for s in seen.category.test] == [s.label for s in task.support]
    assert [s.path for s in seen.category.test] == [s.path for s in seen.support]
    assert light_gated(task, COSINE) == (task, None)  # no test without the setting
    hidden = replace(task, query=[hide_label(s) for s in task.query])  # as the grid hands it
    assert {s.label for s in light_gated(hidden, LIT)[0].query} == {HIDDEN}


def test_too_few_support_images_are_not_tested(tmp_path: Path) -> None:
    """Below 7 images no verdict could undo the light: nothing is computed or written."""
    category = lit_product(tmp_path / "data", varies=True)
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path / "cache"))
    task = task_of(category, engine, shots=3)  # 6 support images
    seen, test = light_gated(task, LIT)
    assert seen is task and test == LightTest.too_few(6) and not test.varies
    assert not (tmp_path / "cache" / "light_undone").exists()
    assert test.as_dict()["tested"] is False
    assert test.summary() == "holds, untested (6 support images; the test needs 7)"


def test_fit_undoes_the_light_as_the_grid_does(tmp_path: Path) -> None:
    """``fsad fit`` of a light-tested recipe: the same test, the reference stored in the
    model, and the grid's scores for the queries (read as files, undone in memory), also
    after save and load."""
    from fsad.artifact import load_artifact
    from fsad.inspector import Inspector
    from fsad.inspector.model import _from_artifact, engine_configs
    from fsad.methods.anomaly_guided import predict_with

    category = lit_product(tmp_path / "data", varies=True)
    task = task_of(category, None)
    support = {c: [s.path for s in task.support if s.label == c] for c in task.classes}
    recipe = replace(LIT, head="logistic", c=100.0)
    insp = Inspector(method=recipe, resize=64, crop=64, folds=3, coreset_ratio=0.25,
                     cache=DiskCache(tmp_path / "cache"))  # fmt: skip
    insp.fit([s.path for s in category.train], support)
    assert insp.info["light_test"]["varies"] is True
    first = engine_configs(insp.config, insp.recipe, None)[0]
    engine = ResidualEngine(category, first, seed=1, cache=DiskCache(tmp_path / "grid"))
    grid = predict_with(replace(task, engine=engine), insp.recipe)
    assert grid.info["light_test"] == insp.info["light_test"]
    queries = [s.path for s in task.query]
    np.testing.assert_allclose(insp.predict_proba(queries), grid.scores, atol=1e-5)
    loaded = Inspector.load(insp.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.model_.light_reference, insp.model_.light_reference)
    np.testing.assert_allclose(loaded.predict_proba(queries), grid.scores, atol=1e-5)
    art = load_artifact(tmp_path / "model")
    for bad in ([0.0] * 3, [], None):  # a reference of another shape, or none where it varied
        art.meta["light_reference"] = bad
        with pytest.raises(ValueError, match="light_reference does not match"):
            _from_artifact(art)
    art.meta["light_reference"] = [0.0] * 19  # a reference where the light held
    art.meta["info"]["light_test"]["varies"] = False
    with pytest.raises(ValueError, match="light_reference does not match"):
        _from_artifact(art)


def test_the_undone_images_are_written_once_and_keyed_by_the_normals(tmp_path: Path) -> None:
    category = lit_product(tmp_path / "data", varies=True)
    cache = DiskCache(tmp_path / "cache")
    undone = undone_category(category, cache)
    assert [s.label for s in undone.test] == [s.label for s in category.test]
    assert len(undone.train) == len(category.train)
    first = undone.test[0].path
    stamp = first.stat().st_mtime_ns
    assert undone_category(category, cache).test[0].path == first
    assert first.stat().st_mtime_ns == stamp  # read back, not written again
    reference = reference_levels([read_image(s.path) for s in category.train])
    np.testing.assert_array_equal(
        read_image(first), undo_light(read_image(category.test[0].path), reference)
    )
    fewer = replace(category, train=category.train[:-1])
    assert undone_category(fewer, cache).root != undone.root  # other normals, other folder
    renamed = replace(category, test=[replace(s, label="other") for s in category.test])
    assert undone_category(renamed, cache).test[0].path == first  # names by position alone
    off = undone_category(category, DiskCache(tmp_path / "off", enabled=False))
    assert not (tmp_path / "off").exists() and off.test[0].path.read_bytes() == first.read_bytes()


def test_the_light_method_is_the_gated_default_with_the_test() -> None:
    name = "hires_lite0_poe_proto_rot4_gated_fixed_light"
    assert RECIPES[name] == replace(RECIPES["hires_lite0_poe_proto_rot4_gated_fixed"],
                                    light_test=True)  # fmt: skip
    assert name in METHODS
    old = recipe_to_json(COSINE)
    old.pop("light_test")
    assert recipe_from_json(old) == COSINE
    assert recipe_from_json(recipe_to_json(LIT)) == LIT


def test_the_library_estimate_is_photometric_round_12s_pixel_for_pixel() -> None:
    """The claim of the book and README: ``undo_light`` gives the study's ``plane_gradient``
    estimate (research.light_estimate_study.corrected) byte for byte."""
    from research import light_estimate_study as les

    rng = np.random.default_rng(3)
    normals = [
        lit(scene(rng), *rng.uniform(0.8, 1.2, 1), *rng.uniform(-0.2, 0.2, 3)) for _ in range(5)
    ]
    estimator = les.ESTIMATORS["plane_gradient"]
    reference = les.reference_levels(normals, estimator)
    np.testing.assert_array_equal(reference_levels(normals), reference)
    image = lit(scene(rng), 1.3, -0.3, 0.2, -0.1)
    np.testing.assert_array_equal(
        undo_light(image, reference), les.corrected(image, estimator, reference)["image"]
    )
