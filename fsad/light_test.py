"""The light test: undo each image's own light only where the support shows that the
product's light varies (robustness round 17).

:mod:`fsad.light_estimate` undoes each image's light against its product's normals. Where a
product is shot under one light (the MVTec protocol), there is nothing to undo and the
estimate only adds its own noise; where the light changes from image to image (the
generalisation suite), undoing it brings every image closer to the normals the bank holds.
The test reads the support itself and the normals, never a query, as the pose test
(:mod:`fsad.poses`) does: each support image's mean patch distance ||r|| to the normal bank
on the recipe's first engine, the images as shot against a bank of the normals as shot, and
the images with their light undone against a bank of the normals with theirs undone. The
product's light *varies* when more images score lower undone than a one-sided sign test
allows at :data:`LIGHT_TEST_ALPHA` (the pose test's level, fixed in advance); a recipe with
``light_test`` then sees every image (bank, support, queries) with its light undone. With
fewer than 7 support images the test cannot reach that level: it is not run (nothing is
computed for it) and the images stay as shot.

The images with their light undone are written once per category as lossless PNG files in
the disk cache (:func:`undone_category`, keyed by the images' content, the normals' content
and :func:`fsad.light_estimate.estimate_key`), so every engine, block and cache reads them
as it reads any dataset. ``fsad cache prune`` removes cache entries only, never these
folders (a few hundred MB per product): delete ``light_undone/`` to reclaim them; the next
use writes them again.
"""

from __future__ import annotations

import json
import tempfile
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fsad.blocks import Inputs
from fsad.cache import DiskCache, files_fingerprint, fingerprint
from fsad.data import CategoryData, Sample, encode_image, read_image
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.light_estimate import estimate_key, reference_levels, undo_light
from fsad.poses import POSE_TEST_ALPHA, sign_test
from fsad.recipe import Recipe, mean_distances, recipe_engines
from fsad.task import FewShotTask
from fsad.utils import atomic_folder

#: one-sided level of the light test's sign test (the pose test's, fixed in advance)
LIGHT_TEST_ALPHA = POSE_TEST_ALPHA
#: the disk cache's folder of images with their light undone
UNDONE_FOLDER = "light_undone"
#: the file, in a category's undone folder, that holds its reference (19 log quantiles)
REFERENCE_FILE = "reference.json"
#: how an undone folder names its files (in its key: 2, files named by position alone)
UNDONE_LAYOUT = 2
#: the undone images of a disabled cache (:func:`_temporary_root`)
_TEMPORARY: tempfile.TemporaryDirectory | None = None
#: each engine's undone engine and sample map (:func:`undone_engine`), while it lives
_UNDONE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LightTest:
    """The light test of one support set (:func:`light_test`).

    Attributes:
        n_images: support images tested.
        lower_undone: images whose mean patch distance is lower with the light undone (0
            when not ``tested``).
        p_value: one-sided sign test of ``lower_undone`` against half of ``n_images`` (1.0
            when not ``tested``).
        tested: False below :func:`min_test_images` images (:meth:`too_few`): nothing was
            measured and the light holds by default.
    """

    n_images: int
    lower_undone: int
    p_value: float
    tested: bool = True

    @classmethod
    def too_few(cls, n_images: int) -> LightTest:
        """The verdict for fewer than :func:`min_test_images` support images: the light
        holds, untested (the test could not reach its level whatever it measured)."""
        return cls(n_images=n_images, lower_undone=0, p_value=1.0, tested=False)

    @property
    def varies(self) -> bool:
        """The product's light varies: undone, the images look more normal beyond chance."""
        return self.p_value < LIGHT_TEST_ALPHA

    def as_dict(self) -> dict[str, object]:
        """The test as JSON-able fields, with ``varies``, :meth:`summary` and, where not
        ``tested``, ``tested``."""
        untested = {} if self.tested else {"tested": False}
        return {"n_images": self.n_images, "lower_undone": self.lower_undone,
                "p_value": self.p_value, "varies": self.varies, **untested,
                "summary": self.summary()}  # fmt: skip

    def summary(self) -> str:
        """One line for a report, e.g. ``varies (19 of 20 lower undone, p = 2e-05)``."""
        if not self.tested:
            return (f"holds, untested ({self.n_images} support images; the test needs "
                    f"{min_test_images()})")  # fmt: skip
        verdict = "varies" if self.varies else "holds"
        return (f"{verdict} ({self.lower_undone} of {self.n_images} lower undone, "
                f"p = {self.p_value:.2g})")  # fmt: skip


def min_test_images(alpha: float = LIGHT_TEST_ALPHA) -> int:
    """The fewest support images whose sign test can reject at ``alpha`` (all of them
    lower undone): 7 at 1 %."""
    n = 1
    while sign_test(n, n) >= alpha:
        n += 1
    return n


def light_test(shot: np.ndarray, undone: np.ndarray) -> LightTest:
    """The sign test of the images with their light undone against the images as shot.

    Args:
        shot: ``(S,)`` a score per support image as shot (the mean patch distance ||r||).
        undone: ``(S,)`` the same score with the light undone (on the undone bank).

    Returns:
        the test; a tie does not count as lower.

    Raises:
        ConfigError: the two are not ``(S,)`` for the same ``S >= 1``.
    """
    shot, undone = np.asarray(shot, float), np.asarray(undone, float)
    if shot.ndim != 1 or not len(shot) or undone.shape != shot.shape:
        raise ConfigError(
            f"light test needs scores (S,) as shot and undone for S >= 1 images, got "
            f"{shot.shape} and {undone.shape}"
        )
    lower = int((undone < shot).sum())
    return LightTest(n_images=len(shot), lower_undone=lower, p_value=sign_test(lower, len(shot)))


def undone_category(category: CategoryData, cache: DiskCache) -> CategoryData:
    """The category with every image's light undone (:func:`fsad.light_estimate.undo_light`,
    the reference read from its bank's normals), written once as PNG files under the
    cache's :data:`UNDONE_FOLDER` (a temporary folder when the cache is disabled); the
    samples keep their order and every field but their path.

    The folder is keyed by the content of every image in order and of the normals, the
    estimate's constants and :data:`UNDONE_LAYOUT`; its files are named by position alone
    (``00012.png``), so the key determines every name and byte in it.

    Returns:
        a :class:`~fsad.data.CategoryData` whose ``train`` and ``test`` parallel the
        category's; its root holds the reference (:func:`undone_reference`).
    """
    samples = [*category.train, *category.test]
    key = {"images": files_fingerprint([s.path for s in samples]),
           "normals": files_fingerprint([s.path for s in category.train]),
           "estimate": estimate_key(), "layout": UNDONE_LAYOUT}  # fmt: skip
    base = cache.root if cache.enabled else _temporary_root()
    folder = base / UNDONE_FOLDER / fingerprint(key)
    names = [f"{i:05d}.png" for i in range(len(samples))]
    if not (folder / REFERENCE_FILE).is_file():
        reference = reference_levels([read_image(s.path) for s in category.train])
        with atomic_folder(folder, done=(folder / REFERENCE_FILE).is_file) as tmp:
            for s, name in zip(samples, names, strict=True):
                (tmp / name).write_bytes(encode_image(undo_light(read_image(s.path), reference)))
            (tmp / REFERENCE_FILE).write_text(json.dumps(reference.tolist()) + "\n")
    moved = [replace(s, path=folder / name) for s, name in zip(samples, names, strict=True)]
    n = len(category.train)
    return replace(category, root=folder, train=moved[:n], test=moved[n:])


def _temporary_root() -> Path:
    """This process's folder for undone images when the cache is disabled (one, shared by
    every engine, removed when the process ends)."""
    global _TEMPORARY
    if _TEMPORARY is None:
        _TEMPORARY = tempfile.TemporaryDirectory(prefix="fsad_light_")
    return Path(_TEMPORARY.name)


def undone_reference(undone: CategoryData) -> np.ndarray:
    """The reference ``(19,)`` an :func:`undone_category` was undone against (what an
    inspector applies to new images, :func:`fsad.light_estimate.undo_light`)."""
    return np.asarray(json.loads((undone.root / REFERENCE_FILE).read_text()), np.float64)


def undone_engine(engine: ResidualEngine) -> tuple[ResidualEngine, dict[str, Path]]:
    """The engine on :func:`undone_category` of its category (the same settings, seed, cache
    and backbone; memoised on ``engine``) and a map from each original image's path to its
    undone file."""
    if engine not in _UNDONE:
        category = engine.category
        undone = undone_category(category, engine.cache)
        pairs = zip([*category.train, *category.test], [*undone.train, *undone.test], strict=True)
        mapping = {str(a.path): b.path for a, b in pairs}
        _UNDONE[engine] = engine.on_category(undone), mapping
    return _UNDONE[engine]


def undone_samples(mapping: dict[str, Path], samples: list[Sample]) -> list[Sample]:
    """Each sample with its path moved to its undone file (:func:`undone_engine`'s map),
    every other field as it was (a query's hidden label stays hidden).

    Raises:
        ConfigError: a sample is not one of the category's (the message names it).
    """
    missing = [str(s.path) for s in samples if str(s.path) not in mapping]
    if missing:
        raise ConfigError(f"{missing[0]}: not an image of the category whose light was undone")
    return [replace(s, path=mapping[str(s.path)]) for s in samples]


def support_light_test(engine: ResidualEngine, recipe: Recipe, samples: list[Sample]) -> LightTest:
    """The light test (:func:`light_test`) of a support set on the recipe's first engine:
    each sample's mean patch distance as shot against the same with every image's light
    undone (anomaly maps cached with each engine's test set)."""
    undone, mapping = undone_engine(engine)
    first, first_undone = recipe_engines(engine, recipe)[0], recipe_engines(undone, recipe)[0]
    shot = mean_distances(Inputs(first, samples=samples))
    lit = mean_distances(Inputs(first_undone, samples=undone_samples(mapping, samples)))
    return light_test(shot, lit)


def light_gated_engine(
    engine: ResidualEngine, recipe: Recipe, samples: list[Sample]
) -> tuple[ResidualEngine, list[Sample], LightTest | None]:
    """The engine and support samples as the recipe sees them, and what decided it: without
    ``recipe.light_test``, both as given and None; with it, the support's light test
    (:func:`support_light_test`; not run below :func:`min_test_images` images) and, where the
    product's light varies, the undone engine and samples (:func:`undone_engine`), otherwise
    both as given. ``fsad run`` (:func:`light_gated`) and ``fsad fit`` both decide here."""
    if not recipe.light_test:
        return engine, samples, None
    if len(samples) < min_test_images():  # no verdict could undo: nothing computed
        return engine, samples, LightTest.too_few(len(samples))
    test = support_light_test(engine, recipe, samples)
    if not test.varies:
        return engine, samples, test
    undone, mapping = undone_engine(engine)
    return undone, undone_samples(mapping, samples), test


def light_gated(task: FewShotTask, recipe: Recipe) -> tuple[FewShotTask, LightTest | None]:
    """The task as the recipe sees it (:func:`light_gated_engine`): where the support's
    light test finds the light varying, the task on the undone images (engine; the paths of
    the category's, support's and queries' samples, every other field as given, so the
    queries' labels stay hidden); otherwise the task as given. Returns the test too (None
    without ``recipe.light_test``)."""
    engine, support, test = light_gated_engine(task.engine, recipe, task.support)
    if engine is task.engine:
        return task, test
    _, mapping = undone_engine(task.engine)
    category = replace(task.category, root=engine.category.root,
                       train=undone_samples(mapping, task.category.train),
                       test=undone_samples(mapping, task.category.test))  # fmt: skip
    moved = replace(task, category=category, engine=engine, support=support,
                    query=undone_samples(mapping, task.query))  # fmt: skip
    return moved, test
