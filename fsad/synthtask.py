"""Synthetic few-shot tasks: a label-free signal for choosing a recipe or a head (issue 7).

Choices may not use the query labels. Leave-one-out inside the support set (the rule of
scripts/explore_zoom.py) has one support image per point: 15-25 points per category at the
largest shot count, so rounds that differ by one image are coin flips. Here the category's
own normal images get pseudo-defects: a Perlin-shaped region pasted with a texture class
(the paper's synthetic classes, section 3.5, :class:`fsad.synth.PseudoClassDataset`), one
class per texture. Many small few-shot tasks among those classes, described exactly as the
real images are (:func:`image_rows`: the same engines, descriptor blocks and zoom windows
around the anomaly peak), give hundreds of scored queries per category.

It measures how well a recipe and head tell *pasted textures* apart on this product; real
defect types differ in shape as much as in appearance, so the signal is a proxy, and how
well it ranks candidates is itself reported (chapter 9), never tuned on query labels. With
``SynthTaskConfig(generator="shapes")`` the classes differ in shape and extent too (a large
blob, a thin stroke or a small spot by turns; round 12 of scripts/explore_synth.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fsad.descriptors import describe, engine_key
from fsad.errors import ConfigError
from fsad.geometry import map_geometry
from fsad.patchsets import patch_rows
from fsad.zoom import ZoomConfig, ZoomEncoder, cell_to_image, peak_cells, zoom_images

if TYPE_CHECKING:
    from fsad.engine import ResidualEngine
    from fsad.methods.anomaly_guided import Recipe
    from fsad.synth import TextureSource

# bump when synthetic rows are computed differently: cached ones then miss
SYNTHTASK_VERSION = 1
#: a head: (support (S, D), labels (S,), query (Q, D), n_classes) -> scores (Q, C)
Head = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


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


def image_rows(engine: ResidualEngine, recipe: Recipe, images: Sequence[np.ndarray]) -> np.ndarray:
    """Descriptors ``(N, D')`` of in-memory images, block for block as
    :func:`fsad.methods.anomaly_guided.task_descriptors` builds them for real images.

    The base blocks of ``engine`` and of each of ``recipe.engines`` (residuals r = f - m*
    against each engine's bank, Eq. 2), then each zoom table's windows around the task
    engine's anomaly peak, then each of ``recipe.engine_zooms`` around the first further
    engine's peak, all zoom blocks times ``recipe.zoom_weight``, then every engine's
    anomaly-map geometry when ``recipe.geometry`` is set, then each of ``recipe.patchsets``'
    flattened patch sets of every engine.

    Args:
        images: ``(H, W, 3) uint8`` RGB images.

    Raises:
        ConfigError: the recipe has fine views (they need the images' files).
    """
    if recipe.fines:
        raise ConfigError("fine views are not supported on in-memory images")
    blocks, maps, patches = [], [], []
    engines = (engine, *(engine.sibling(cfg) for cfg in recipe.engines))
    for e in engines:
        f = e.features_of_images(np.stack(images))  # (N, D, h, w)
        r, a = e.residuals_of(f)
        maps.append(a)
        blocks.append(describe(r, f, a, recipe.base).numpy())
        patches.append([patch_rows(r, f, a, ps).numpy() for ps in recipe.patchsets])
    # zooms around the task engine's peak, then engine_zooms around the first further one's
    placed = [(z, 0) for z in recipe.zooms] + [(z, 1) for z in recipe.engine_zooms]
    for zoom, k in placed:
        centres = _peak_centres(engines[k], maps[k], images)
        encoder = _encoder(zoom, getattr(engine, "device", None))
        blocks.append(recipe.zoom_weight * zoom_images(encoder, images, centres, zoom).numpy())
    if recipe.geometry is not None:
        blocks += [map_geometry(a, recipe.geometry).numpy() for a in maps]
    for i in range(len(recipe.patchsets)):  # settings outer, engines inner
        blocks += [rows[i] for rows in patches]
    return np.concatenate(blocks, axis=1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _encoder(config: ZoomConfig, device: Any) -> ZoomEncoder:
    """The zoom backbone of ``config``, loaded once for all batches of synthetic images."""
    return ZoomEncoder(config, device)


def _peak_centres(
    engine: ResidualEngine, amap: torch.Tensor, images: Sequence[np.ndarray]
) -> list[tuple[float, float]]:
    """Pixel centre ``(y, x)`` of each image's anomaly peak on ``engine``'s map ``(N, h, w)``."""
    cells, grid = peak_cells(amap), tuple(amap.shape[1:])
    return [
        cell_to_image(cells[i].tolist(), grid, img.shape[:2], engine.config.features)
        for i, img in enumerate(images)
    ]


def recipe_key(engine: ResidualEngine, recipe: Recipe) -> dict[str, Any]:
    """Everything that determines :func:`image_rows` besides the images."""
    return {
        "engines": [engine_key(engine)] + [engine_key(engine.sibling(c)) for c in recipe.engines],
        "base": recipe.base.cache_key(),
        "zooms": [z.cache_key() for z in recipe.zooms],
        "zoom_weight": recipe.zoom_weight,
        **(
            {"engine_zooms": [z.cache_key() for z in recipe.engine_zooms]}
            if recipe.engine_zooms
            else {}
        ),
        **({"geometry": recipe.geometry.cache_key()} if recipe.geometry is not None else {}),
        **({"patchsets": [p.cache_key() for p in recipe.patchsets]} if recipe.patchsets else {}),
    }


def synthetic_rows(
    engine: ResidualEngine,
    recipe: Recipe,
    textures: TextureSource,
    config: SynthTaskConfig = SynthTaskConfig(),
    batch: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of every synthetic image of the engine's category (cached).

    Returns:
        ``rows (T * n_sources, D')`` float32 and ``labels (T * n_sources,)`` int64, the
        texture class of each row (item ``i`` pastes class ``i // n_sources`` on source
        ``i % n_sources``).
    """
    from fsad.synth import PseudoClassDataset

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
        rows = []
        for start in range(0, len(data), batch):
            images = [data[i].image for i in range(start, min(start + batch, len(data)))]
            rows.append(image_rows(engine, recipe, images))
        return {"x": torch.from_numpy(np.concatenate(rows))}

    x = engine.cache.load_or_compute("synthtask", key, compute)["x"].numpy()
    return x, data.labels


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
    rows: np.ndarray,
    labels: np.ndarray,
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    head: Head,
) -> float:
    """Mean over tasks of ``head``'s query accuracy; labels are remapped to ``0..n_way-1``.

    Args:
        rows: ``(N, D)`` descriptors; labels ``(N,)``.
        tasks: from :func:`draw_tasks`.
    """
    accs = []
    for support, query in tasks:
        classes, ys = np.unique(labels[support], return_inverse=True)
        yq = np.searchsorted(classes, labels[query])
        scores = head(rows[support], ys, rows[query], len(classes))
        accs.append(float((np.asarray(scores).argmax(1) == yq).mean()))
    return float(np.mean(accs))
