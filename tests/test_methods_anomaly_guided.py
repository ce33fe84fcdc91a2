"""The anomaly-guided methods and their recipes on a fake residual engine (tiny D, 4 x 4 grids)."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.blocks import block_rows
from fsad.cache import DiskCache
from fsad.data import CategoryData, Sample
from fsad.engine import EngineConfig
from fsad.errors import ConfigError
from fsad.heads import logistic_regression, multiply_proba, product_of_experts, prototype_expert
from fsad.methods import available_methods, get_method
from fsad.methods.anomaly_guided import (
    ANOMALY_BLOCKS,
    HIRES_ENGINE,
    LITE2_ROT_ZOOM,
    RECIPES,
    ROT_ZOOM,
    predict_with,
    task_rows,
)
from fsad.recipe import Group, Recipe, layout, split
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
#: images per class of the shared fake category (2 queries per class at 3 shots; each image
#: costs the zoom tables 8 encodings through Lite0 and Lite2)
PER_CLASS = 5


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


def test_anomaly_guided_methods_are_registered() -> None:
    methods = available_methods()
    for name in NAMES:
        assert name in methods and methods[name]


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[CategoryData, Path]:
    """One fake category (:data:`PER_CLASS` images per class) and one cache for the tests that
    do not count computations (the zoom tables, two backbones x 4 rotations, are then encoded
    once, not once per test)."""
    root = tmp_path_factory.mktemp("fake")
    return make_category(root, PER_CLASS), root / "cache"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shots", [1, 3])
def test_methods_classify_separable_fake_data(fake_data, name: str, shots: int) -> None:
    cat, cache = fake_data
    engine = FakeEngine(cat, DiskCache(cache))
    task = make_task(cat, engine, shots)
    pred = get_method(name)(task)
    truth = np.repeat(np.arange(C), PER_CLASS - shots)
    assert pred.labels.shape == truth.shape and pred.labels.dtype == np.int64
    assert pred.scores is not None and pred.scores.shape == (len(truth), C)
    assert (pred.labels == truth).all()


def test_descriptors_computed_once_per_category_and_seed(tmp_path: Path) -> None:
    """Base descriptors and a zoom table (zoom_rot_lr: one backbone, the cheaper test; four
    images per class, the fewest that leave a query at 3 shots)."""
    cat = make_category(tmp_path, per_class=4)
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


def test_groups_follow_the_recipe_order_engine_and_weight(tmp_path: Path) -> None:
    """hires_lr's shape: the task engine's anomaly blocks, the sibling's, then zoom x 2."""
    task, zoom = _recipe_task(tmp_path)
    recipe = Recipe(
        (Group(ANOMALY_BLOCKS), Group(ANOMALY_BLOCKS, engine=1), Group(zoom, weight=2.0)),
        engines=(HIRES_ENGINE,),
    )
    xs, xq = task_rows(task, recipe)
    assert [x.shape[0] for x in xs] == [len(task.support)] * 3
    assert [x.shape[0] for x in xq] == [len(task.query)] * 3
    hi = task.engine.sibling(HIRES_ENGINE)
    np.testing.assert_array_equal(xs[0], block_rows(ANOMALY_BLOCKS, task.engine, task.support))
    np.testing.assert_array_equal(xs[1], block_rows(ANOMALY_BLOCKS, hi, task.support))
    assert not np.allclose(xs[0], xs[1])  # another engine, other residuals
    np.testing.assert_allclose(xq[2], 2 * block_rows(zoom, task.engine, task.query), rtol=1e-6)
    slices = layout([x.shape[1] for x in xs])
    assert [s.stop - s.start for s in slices] == [x.shape[1] for x in xs]
    joined = np.concatenate(xs, axis=1)
    for got, want in zip(split(joined, slices), xs, strict=True):
        np.testing.assert_array_equal(got, want)


def test_bad_recipes_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="engine 1"):
        Recipe((Group(ANOMALY_BLOCKS, engine=1),))
    with pytest.raises(ConfigError, match="experts=True"):
        Recipe((Group(ANOMALY_BLOCKS),), prototypes=True)
    with pytest.raises(ConfigError, match="unknown head 'svm'"):
        Recipe((Group(ANOMALY_BLOCKS),), head="svm")
    with pytest.raises(ConfigError, match="at least one group"):
        Recipe(())


def test_expert_recipe_multiplies_one_regression_per_block_group(tmp_path: Path) -> None:
    """hires_poe's head: one logistic regression per group, not one on all."""
    task, zoom = _recipe_task(tmp_path)
    recipe = Recipe(
        (Group(ANOMALY_BLOCKS), Group(ANOMALY_BLOCKS, engine=1), Group(zoom, weight=2.0)),
        engines=(HIRES_ENGINE,),
        experts=True,
    )
    xs, xq = task_rows(task, recipe)
    y, n = task.support_labels, task.n_classes
    probs = [logistic_regression(s, y, q, n, c=recipe.c) for s, q in zip(xs, xq, strict=True)]
    expected = np.prod(probs, axis=0)
    expected /= expected.sum(1, keepdims=True)
    pred = predict_with(task, recipe)
    np.testing.assert_allclose(pred.scores, expected, rtol=1e-5)
    assert pred.info["dim"] == sum(x.shape[1] for x in xs)
    concatenated = predict_with(task, replace(recipe, experts=False)).scores
    assert not np.allclose(pred.scores, concatenated)
    # each expert normalises its group alone: the zoom weight no longer matters
    unweighted = replace(recipe, groups=(*recipe.groups[:2], Group(zoom)))
    np.testing.assert_allclose(predict_with(task, unweighted).scores, pred.scores, rtol=1e-5)


def test_prototype_recipe_multiplies_a_prototype_expert_per_group(tmp_path: Path) -> None:
    """hires_poe_proto's head: hires_poe's product times one cosine-prototype softmax per
    block group, each on the same rows as its group's regression."""
    task, zoom = _recipe_task(tmp_path)
    recipe = Recipe(
        (Group(ANOMALY_BLOCKS), Group(zoom)), experts=True, prototypes=True, proto_scale=20.0
    )
    xs, xq = task_rows(task, recipe)
    groups = list(zip(xs, xq, strict=True))
    y, n = task.support_labels, task.n_classes
    lr = product_of_experts(groups, y, n, c=recipe.c)
    protos = [prototype_expert(s, y, q, n, 20.0) for s, q in groups]
    scores = predict_with(task, recipe).scores
    np.testing.assert_allclose(scores, multiply_proba([lr, *protos]), rtol=1e-6)
    plain = predict_with(task, replace(recipe, prototypes=False)).scores
    np.testing.assert_array_equal(plain, lr)  # without prototypes: the product as is
    assert not np.allclose(scores, plain)


def test_registered_recipes_keep_their_group_order() -> None:
    """The committed rows were computed with these layouts: a reordering would change them."""
    hires = RECIPES["hires_poe"]
    assert [(type(g.block).__name__, g.engine, g.weight) for g in hires.groups] == [
        ("DescriptorConfig", 0, 1.0),
        ("DescriptorConfig", 1, 1.0),
        ("ZoomConfig", 0, 2.0),
        ("ZoomConfig", 0, 2.0),
    ]
    assert hires.groups[2].block == ROT_ZOOM and hires.groups[3].block == LITE2_ROT_ZOOM
    assert hires.engines == (HIRES_ENGINE,) and hires.c == 100.0 and hires.experts
    assert RECIPES["residual_proto"].head == "cosine"
    assert RECIPES["hires_poe_proto"] == replace(hires, prototypes=True)
    default = RECIPES["hires_lite0_poe_proto_rot4"]
    assert not default.relit_bank  # the relit bank is a candidate, not the default yet
    assert RECIPES["hires_lite0_poe_proto_rot4_relit"] == replace(default, relit_bank=True)
