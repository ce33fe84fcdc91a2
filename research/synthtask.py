"""Synthetic few-shot tasks: a label-free signal for choosing a recipe or a head.

Choices may not use the query labels. Leave-one-out inside the support set has one support
image per point: 15-25 points per category at the largest shot count, so candidates that
differ by one image are coin flips. Here the category's own normal images get
pseudo-defects: a Perlin-shaped region pasted with a texture class (the paper's synthetic
classes, section 3.5, :class:`fsad.synth.PseudoClassDataset`), one class per texture. Many
small few-shot tasks among those classes, described exactly as the real images are
(:func:`fsad.recipe.image_rows`: the same engines, blocks and zoom windows around the
anomaly peak), give hundreds of scored queries per category.

It measures how well a recipe tells *pasted textures* apart on this product; real defect
types differ in shape as much as in appearance, so the signal is a proxy (the book's
appendix reports how well it ranked the candidates). With
``SynthTaskConfig(generator="shapes")`` the classes differ in shape and extent too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.poses import with_poses
from fsad.recipe import Recipe, image_rows, layout, recipe_key
from fsad.synth import PseudoClassDataset, TextureSource

# bump when synthetic rows are computed differently: cached ones then miss
# 2: rows stored with their group widths; 3: in-memory residuals rounded to float16, as the
# engine's cache stores them
SYNTHTASK_VERSION = 3
#: a head: (support rows per group, labels (S,), query rows per group, n_classes) -> (Q, C)
Head = Callable[[list[np.ndarray], np.ndarray, list[np.ndarray], int], np.ndarray]


@dataclass(frozen=True)
class SynthTaskConfig:
    """Synthetic images and the tasks drawn from them.

    Attributes:
        n_sources: normal training images per texture class (each class pastes its texture
            on the same sources, so a task can only be solved by looking at the defect).
        size: side of the square synthetic images (the shared images are 512-1024 px; the
            zoom windows are cut from this resolution).
        n_way: classes per task.
        shots: support images per class; the class's other sources are its queries.
        n_tasks: tasks drawn per category.
        seed: draws the sources, the pasted regions and the tasks.
        generator: the classes' masks (:class:`fsad.synth.PseudoClassDataset`): ``"perlin"``
            (the paper's blobs, every class alike in shape) or ``"shapes"`` (a blob, a thin
            stroke or a small spot by turns, so classes differ in extent and shape too).
    """

    n_sources: int = 8
    size: int = 512
    n_way: int = 4
    shots: int = 5
    n_tasks: int = 50
    seed: int = 0
    generator: str = "perlin"

    def key(self) -> dict[str, Any]:
        """JSON-able key of these settings. ``generator`` enters only when it is not the
        default ``"perlin"``, so rows written before it existed keep their hash."""
        key = asdict(self)
        if self.generator == "perlin":
            del key["generator"]
        return key

    def __post_init__(self) -> None:
        if self.shots < 1 or self.shots >= self.n_sources:
            raise ConfigError(
                f"shots must be in [1, n_sources - 1] = [1, {self.n_sources - 1}], got {self.shots}"
            )
        if self.n_way < 2 or self.n_tasks < 1:
            raise ConfigError(f"need n_way >= 2 and n_tasks >= 1, got {self.n_way}, {self.n_tasks}")


def synthetic_rows(
    engine: ResidualEngine,
    recipe: Recipe,
    textures: TextureSource,
    config: SynthTaskConfig = SynthTaskConfig(),
    batch: int = 16,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Rows of every synthetic image of the engine's category, per group of ``recipe``
    (cached), described exactly as real images are (:func:`fsad.recipe.image_rows`).

    Returns:
        per group, rows ``(T * n_sources, D_g)`` float32; and ``labels (T * n_sources,)``
        int64, the texture class of each row (item ``i`` pastes class ``i // n_sources`` on
        source ``i % n_sources``).
    """
    data = PseudoClassDataset(
        engine.category,
        textures,
        generator=config.generator,
        seed=config.seed,
        size=config.size,
        n_per_class=config.n_sources,
        cache=engine.cache,
    )
    if data.n_sources < config.n_sources:
        raise ConfigError(
            f"{engine.category.name} has {data.n_sources} normal training images, "
            f"fewer than n_sources={config.n_sources}"
        )
    key = {
        "recipe": recipe_key(engine, recipe),
        "synth": data.key(),
        "version": SYNTHTASK_VERSION,
    }

    def compute() -> dict[str, Any]:
        parts = []
        for start in range(0, len(data), batch):
            images = [data[i].image for i in range(start, min(start + batch, len(data)))]
            parts.append(image_rows(engine, recipe, images))
        groups = [np.concatenate(g) for g in zip(*parts, strict=True)]
        x = np.concatenate(groups, axis=1).astype(np.float32)
        return {"x": torch.from_numpy(x), "widths": [g.shape[1] for g in groups]}

    entry = engine.cache.load_or_compute("synthtask", key, compute)
    x, widths = entry["x"].numpy(), entry["widths"]
    slices = layout(widths)
    return [x[:, s] for s in slices], data.labels


def draw_tasks(
    labels: np.ndarray, config: SynthTaskConfig = SynthTaskConfig()
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Few-shot tasks among the texture classes, seeded by ``config.seed``.

    Each task draws ``n_way`` classes and, per class, ``shots`` support rows; the class's
    other rows are its queries. A task's support and query never share a row.

    Args:
        labels: ``(N,)`` class of each row, ``n_sources`` rows per class.

    Returns:
        ``n_tasks`` pairs of row indices ``(support (n_way * shots,), query (Q,))``, each
        class's rows in class order.
    """
    classes = np.unique(labels)
    if len(classes) < config.n_way:
        raise ConfigError(f"{len(classes)} texture classes, fewer than n_way={config.n_way}")
    rng = np.random.default_rng([config.seed, 0x7A5C])
    tasks = []
    for _ in range(config.n_tasks):
        picked = np.sort(rng.choice(classes, size=config.n_way, replace=False))
        support, query = [], []
        for c in picked:
            rows = rng.permutation(np.flatnonzero(labels == c))
            support.append(rows[: config.shots])
            query.append(rows[config.shots :])
        tasks.append((np.concatenate(support), np.concatenate(query)))
    return tasks


def task_accuracy(
    rows: list[np.ndarray],
    labels: np.ndarray,
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    head: Head,
    posed: list[np.ndarray] | None = None,
    n_poses: int = 1,
) -> float:
    """Mean over tasks of ``head``'s query accuracy; labels are remapped to ``0..n_way-1``.

    Args:
        rows: per group, ``(N, D_g)`` rows; labels ``(N,)``.
        tasks: from :func:`draw_tasks`.
        posed: per group, rows ``(N * (n_poses - 1), D_g)`` of every image's other poses
            (:func:`fsad.poses.posed_images` order): the head is then fitted on each support
            image and its poses (:func:`fsad.poses.with_poses`), as real support is; queries
            are seen as shot. None: the support as shot.
    """
    accs = []
    for support, query in tasks:
        classes, ys = np.unique(labels[support], return_inverse=True)
        yq = np.searchsorted(classes, labels[query])
        xs = [g[support] for g in rows]
        if posed is not None:
            k = n_poses - 1
            turned = (support[:, None] * k + np.arange(k)).ravel()
            xs, source = with_poses(xs, [g[turned] for g in posed], n_poses)
            ys = ys[source]
        scores = head(xs, ys, [g[query] for g in rows], len(classes))
        accs.append(float((np.asarray(scores).argmax(1) == yq).mean()))
    return float(np.mean(accs))
