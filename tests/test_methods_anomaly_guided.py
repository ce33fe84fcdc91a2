"""The registered best methods on a fake residual engine (tiny D, 4 x 4 grids)."""

from __future__ import annotations

import functools
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.cache import DiskCache
from fsad.data import CategoryData, Sample
from fsad.engine import EngineConfig
from fsad.features import FeatureConfig, PatchFeatureExtractor
from fsad.fine import FineConfig
from fsad.methods import available_methods, get_method
from fsad.methods.anomaly_guided import Recipe, task_descriptors
from fsad.task import FewShotTask
from fsad.zoom import ZoomConfig

D, H, W, C = 6, 4, 4, 3
NAMES = (
    "residual_proto",
    "residual_proto_rb",
    "anomaly_lr",
    "zoom_lr",
    "zoom_rot_lr",
    "zoom2_rot_lr",
    "hires_lr",
    "hires_poe",
    "hires_poe_proto",
    "hires_poe_em",
    "hires_poe_st",
    "zoom2_rot_skm",
)
# the hot patch (1, 2) of the 4 x 4 fake map lies at pixel (25, 39) of a 64 px image under
# EngineConfig()'s resize 256 / crop 224 (see fsad.zoom.cell_to_image): the zoom views
# cut windows there, so each image carries a class-coloured blob at that spot
DEFAULT_ENGINE = EngineConfig()
COLOURS = ((220, 40, 40), (40, 200, 60), (50, 60, 230))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeEngine:
    """Residuals = class centre at one hot patch + noise, from the file name; counts calls."""

    def __init__(
        self,
        category: CategoryData,
        cache: DiskCache,
        seed: int = 1,
        config: EngineConfig = DEFAULT_ENGINE,
    ) -> None:
        self.category, self.cache, self.seed, self.config = category, cache, seed, config
        self.centres = torch.randn(C, D, generator=torch.Generator().manual_seed(0)) * 2
        self.calls = 0

    def _cls(self, s: Sample) -> int:
        return int(Path(s.path).stem.split("_")[0][3:])

    def residuals(self, samples: list[Sample]) -> torch.Tensor:
        self.calls += 1
        out = []
        for s in samples:
            salt = "" if self.config == DEFAULT_ENGINE else repr(self.config)
            g = torch.Generator().manual_seed(zlib.crc32(f"{s.path}{salt}".encode()))
            r = 0.3 * torch.randn(D, H, W, generator=g)
            r[:, 1, 2] += self.centres[self._cls(s)]
            out.append(r)
        return torch.stack(out)

    def features(self, samples: list[Sample]) -> torch.Tensor:
        return self.residuals(samples) + 1.0

    def anomaly_maps(self, samples: list[Sample]) -> torch.Tensor:
        return self.residuals(samples).norm(dim=1)

    def sibling(self, config: EngineConfig) -> FakeEngine:
        """Another fake engine (other noise) with ``config``, like ResidualEngine.sibling."""
        return FakeEngine(self.category, self.cache, self.seed, config)

    @functools.cached_property
    def extractor(self) -> PatchFeatureExtractor:
        """A small real patch extractor (the fine views embed window crops with it)."""
        return PatchFeatureExtractor(FeatureConfig(resize=72, crop=64, dim=32))


def _image(path: Path, colour: tuple[int, int, int] | None, seed: int) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.integers(110, 140, size=(64, 64, 3), dtype=np.uint8)
    if colour is not None:
        cv2.circle(img, (39, 25), 5, colour[::-1], -1)  # (x, y) centre, BGR colour
    cv2.imwrite(str(path), img)


def make_category(tmp_path: Path, per_class: int = 8) -> CategoryData:
    test = []
    for c in range(C):
        for i in range(per_class):
            p = tmp_path / f"cls{c}_{i:03d}.png"
            _image(p, COLOURS[c], seed=10 * c + i)
            test.append(Sample(p, "fake", "test", f"defect{c}"))
    normal = tmp_path / "normal.png"
    _image(normal, None, seed=999)
    return CategoryData("fake", "folder", tmp_path, [Sample(normal, "fake", "train", "good")], test)


def make_task(category: CategoryData, engine: FakeEngine, shots: int) -> FewShotTask:
    classes = [f"defect{c}" for c in range(C)]
    by = [[s for s in category.test if s.label == k] for k in classes]
    support = [s for group in by for s in group[:shots]]
    query = [Sample(s.path, s.category, s.split, "?") for group in by for s in group[shots:]]
    return FewShotTask(
        dataset="folder",
        category=CategoryData("fake", "folder", category.root, category.train, support),
        shots=shots,
        seed=engine.seed,
        classes=classes,
        support=support,
        support_labels=np.repeat(np.arange(C), shots),
        query=query,
        engine=engine,
    )


def test_best_methods_are_registered() -> None:
    methods = available_methods()
    for name in NAMES:
        assert name in methods and methods[name]


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[CategoryData, Path]:
    """One fake category and one cache for the tests that do not count computations (the
    zoom tables, two backbones x 4 rotations, are then encoded once, not once per test)."""
    root = tmp_path_factory.mktemp("fake")
    return make_category(root), root / "cache"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shots", [1, 3])
def test_methods_classify_separable_fake_data(fake_data, name: str, shots: int) -> None:
    cat, cache = fake_data
    engine = FakeEngine(cat, DiskCache(cache))
    task = make_task(cat, engine, shots)
    pred = get_method(name)(task)
    truth = np.repeat(np.arange(C), 8 - shots)
    assert pred.labels.shape == truth.shape and pred.labels.dtype == np.int64
    assert pred.scores is not None and pred.scores.shape == (len(truth), C)
    assert (pred.labels == truth).all()


def test_descriptors_computed_once_per_category_and_seed(tmp_path: Path) -> None:
    """Base descriptors and a zoom table (zoom_rot_lr: one backbone, the cheaper test)."""
    cat = make_category(tmp_path)
    engine = FakeEngine(cat, DiskCache(tmp_path / "cache"))
    first = get_method("zoom_rot_lr")(make_task(cat, engine, 1))
    calls = engine.calls
    assert calls > 0
    for shots in (2, 3):  # other shot counts reuse the cached descriptors
        get_method("zoom_rot_lr")(make_task(cat, engine, shots))
    assert engine.calls == calls
    again = get_method("zoom_rot_lr")(make_task(cat, engine, 1))
    np.testing.assert_array_equal(first.scores, again.scores)
    # another seed is another bank: descriptors are recomputed
    other = FakeEngine(cat, DiskCache(tmp_path / "cache"), seed=2)
    get_method("zoom_rot_lr")(make_task(cat, other, 1))
    assert other.calls > 0


@pytest.mark.parametrize(
    "name", ["zoom2_rot_skm", "hires_poe_em", "hires_poe_st", "hires_poe_proto"]
)
def test_query_labels_are_never_read(fake_data, name: str) -> None:
    """Scrambling the (hidden) query labels cannot change any prediction."""
    cat, cache = fake_data
    engine = FakeEngine(cat, DiskCache(cache))
    task = make_task(cat, engine, 2)
    base = get_method(name)(task)
    task.query = [Sample(s.path, s.category, s.split, "defect0") for s in task.query]
    np.testing.assert_array_equal(get_method(name)(task).scores, base.scores)


def _recipe_task(tmp_path: Path) -> tuple[FewShotTask, ZoomConfig]:
    """A 2-shot fake task with its own cache, and a small zoom view for recipes."""
    cat = make_category(tmp_path)
    task = make_task(cat, FakeEngine(cat, DiskCache(tmp_path / "cache")), 2)
    return task, ZoomConfig(windows=(0.5,), size=64)


def test_recipe_weights_zoom_blocks_and_appends_fine_views(tmp_path: Path) -> None:
    task, zoom = _recipe_task(tmp_path)
    base, _ = task_descriptors(task, Recipe())
    one, q1 = task_descriptors(task, Recipe(zooms=(zoom,)))
    two, q2 = task_descriptors(task, Recipe(zooms=(zoom,), zoom_weight=2.0))
    d = base.shape[1]
    np.testing.assert_array_equal(two[:, :d], one[:, :d])  # base blocks untouched
    np.testing.assert_allclose(two[:, d:], 2 * one[:, d:], rtol=1e-6)
    np.testing.assert_allclose(q2[:, d:], 2 * q1[:, d:], rtol=1e-6)
    fine = FineConfig(window=0.5, normals=1, grid=2, bank_size=50)
    with_fine, _ = task_descriptors(task, Recipe(zooms=(zoom,), fines=(fine,)))
    np.testing.assert_array_equal(with_fine[:, : one.shape[1]], one)  # fine blocks come last
    n_blocks = len(fine.descriptor.residual_fracs) + len(fine.descriptor.feature_fracs)
    assert with_fine.shape[1] == one.shape[1] + n_blocks * 32  # the extractor's dim
    norms = np.linalg.norm(
        with_fine[:, one.shape[1] :].reshape(len(with_fine), n_blocks, 32), axis=2
    )
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)  # each fine block is unit-norm


def test_recipe_appends_other_engines_base_blocks(tmp_path: Path) -> None:
    """hires_lr's recipe: the task engine's base blocks, then the sibling engine's, then zoom."""
    from fsad.descriptors import category_descriptors, descriptors_of
    from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, HIRES_ENGINE

    task, zoom = _recipe_task(tmp_path)
    engine = task.engine
    base, qbase = task_descriptors(task, Recipe())
    both, qboth = task_descriptors(task, Recipe(engines=(HIRES_ENGINE,)))
    d = base.shape[1]
    assert both.shape == (len(task.support), 2 * d) and qboth.shape == (len(task.query), 2 * d)
    np.testing.assert_array_equal(both[:, :d], base)
    np.testing.assert_array_equal(qboth[:, :d], qbase)
    hi = engine.sibling(HIRES_ENGINE)
    table = category_descriptors(hi, ANOMALY_BLOCKS)
    np.testing.assert_array_equal(both[:, d:], descriptors_of(table, task.support, hi))
    assert not np.allclose(both[:, d:], base)  # another engine, other residuals
    with_zoom, _ = task_descriptors(task, Recipe(engines=(HIRES_ENGINE,), zooms=(zoom,)))
    np.testing.assert_array_equal(with_zoom[:, : 2 * d], both)  # zoom blocks come last


def test_expert_recipe_multiplies_one_regression_per_block_group(tmp_path: Path) -> None:
    """hires_poe's head: one logistic regression per group of task_groups, not one on all."""
    from fsad.heads import logistic_regression
    from fsad.methods.anomaly_guided import HIRES_ENGINE, _logistic, task_groups

    task, zoom = _recipe_task(tmp_path)
    recipe = Recipe(engines=(HIRES_ENGINE,), zooms=(zoom,), zoom_weight=2.0, experts=True)
    groups = task_groups(task, recipe)
    assert len(groups) == 3  # task engine's base blocks, the sibling's, the zoom table's
    xs, xq = task_descriptors(task, recipe)
    np.testing.assert_array_equal(xs, np.concatenate([g[0] for g in groups], axis=1))
    y, n = task.support_labels, task.n_classes
    probs = [logistic_regression(s, y, q, n, c=recipe.c) for s, q in groups]
    expected = np.prod(probs, axis=0)
    expected /= expected.sum(1, keepdims=True)
    pred = _logistic(task, recipe)
    np.testing.assert_allclose(pred.scores, expected, rtol=1e-5)
    assert pred.info["dim"] == xs.shape[1]
    concatenated = _logistic(task, replace(recipe, experts=False)).scores
    assert not np.allclose(pred.scores, concatenated)
    # each expert normalises its group alone: the zoom weight no longer matters
    np.testing.assert_allclose(
        _logistic(task, replace(recipe, zoom_weight=1.0)).scores, pred.scores, rtol=1e-5
    )


def test_recipe_appends_every_engines_map_geometry_as_one_last_group(tmp_path: Path) -> None:
    from fsad.geometry import GeometryConfig, map_geometry
    from fsad.methods.anomaly_guided import HIRES_ENGINE, task_groups

    task, zoom = _recipe_task(tmp_path)
    geo = GeometryConfig()
    recipe = Recipe(engines=(HIRES_ENGINE,), zooms=(zoom,), geometry=geo)
    groups = task_groups(task, recipe)
    plain = task_groups(task, replace(recipe, geometry=None))
    assert len(groups) == len(plain) + 1
    for (s, q), (s0, q0) in zip(groups, plain, strict=False):
        np.testing.assert_array_equal(s, s0)
        np.testing.assert_array_equal(q, q0)
    xs, xq = groups[-1]
    assert xs.shape == (len(task.support), 2 * geo.dim) and xq.shape[0] == len(task.query)
    engines = (task.engine, task.engine.sibling(HIRES_ENGINE))
    expected = [map_geometry(e.anomaly_maps(task.query), geo).numpy() for e in engines]
    np.testing.assert_allclose(xq, np.concatenate(expected, axis=1), rtol=1e-6)
    assert not np.allclose(expected[0], expected[1])  # the sibling's own maps


def test_recipe_appends_patch_sets_as_image_to_class_experts(tmp_path: Path) -> None:
    """Patch-set groups come last (settings outer, engines inner), hold each engine's own
    top patches, and enter the product as image-to-class experts."""
    from fsad.errors import ConfigError
    from fsad.heads import EPS, multiply_proba, patch_expert, product_of_experts
    from fsad.methods.anomaly_guided import HIRES_ENGINE, PATCH_SCALE, _logistic, task_groups
    from fsad.patchsets import PatchSetConfig, patch_rows

    task, zoom = _recipe_task(tmp_path)
    sets = (PatchSetConfig("residual"), PatchSetConfig("feature", frac=0.05))
    recipe = Recipe(engines=(HIRES_ENGINE,), zooms=(zoom,), experts=True, patchsets=sets)
    groups = task_groups(task, recipe)
    plain = task_groups(task, replace(recipe, patchsets=()))
    assert len(groups) == len(plain) + 4 == 3 + recipe.n_patch_groups
    engines = (task.engine, task.engine.sibling(HIRES_ENGINE))
    for i, (ps, e) in enumerate((ps, e) for ps in sets for e in engines):
        s = task.query
        expected = patch_rows(e.residuals(s), e.features(s), e.anomaly_maps(s), ps).numpy()
        np.testing.assert_allclose(groups[len(plain) + i][1], expected, rtol=1e-6)
    y, n = task.support_labels, task.n_classes
    dims = [e.residuals(task.support[:1]).shape[1] for e in engines] * 2
    lr = product_of_experts(plain, y, n, c=recipe.c)
    patch = [patch_expert(s, y, q, n, d, PATCH_SCALE) for (s, q), d in zip(groups[3:], dims)]
    scores = _logistic(task, recipe).scores
    np.testing.assert_allclose(scores, multiply_proba([lr, *patch]), rtol=1e-6)
    assert not np.allclose(np.log(scores + EPS), np.log(lr + EPS), atol=1e-3)
    with pytest.raises(ConfigError, match="experts=True"):
        Recipe(patchsets=sets)


def test_prototype_recipe_multiplies_a_prototype_expert_per_group(tmp_path: Path) -> None:
    """hires_poe_proto's head: hires_poe's product times one cosine-prototype softmax per
    block group, each on the same rows as its group's regression."""
    from fsad.errors import ConfigError
    from fsad.heads import multiply_proba, product_of_experts, prototype_expert
    from fsad.methods.anomaly_guided import HIRES_ENGINE, PROTO_SCALE, _logistic, task_groups

    task, zoom = _recipe_task(tmp_path)
    recipe = Recipe(engines=(HIRES_ENGINE,), zooms=(zoom,), experts=True, prototypes=True)
    groups = task_groups(task, recipe)
    y, n = task.support_labels, task.n_classes
    lr = product_of_experts(groups, y, n, c=recipe.c)
    protos = [prototype_expert(s, y, q, n, PROTO_SCALE) for s, q in groups]
    scores = _logistic(task, recipe).scores
    np.testing.assert_allclose(scores, multiply_proba([lr, *protos]), rtol=1e-6)
    plain = _logistic(task, replace(recipe, prototypes=False)).scores
    np.testing.assert_array_equal(plain, lr)  # without prototypes: hires_poe's product as is
    assert not np.allclose(scores, plain)
    with pytest.raises(ConfigError, match="experts=True"):
        Recipe(prototypes=True)
