"""Recipes: which descriptor blocks describe an image, in which order, and the head on them.

A :class:`Recipe` is a tuple of :class:`Group` s (a block kind of :mod:`fsad.blocks` on one
of the recipe's residual engines, times a weight) and a head. Every user of descriptors
goes through the two functions here, so the order of the groups is known in one place:

- :func:`sample_rows`: rows of dataset samples, from each category's cached tables (the
  grid's methods, the research wing's real rows);
- :func:`image_rows` / :func:`inputs_rows`: rows of in-memory images (the research wing's
  synthetic tasks, :class:`fsad.inspector.Inspector` on new images);
- :func:`support_rows`: a support set's rows, with its turned copies when the recipe asks
  for support poses and, with ``pose_test``, the support's pose test finds the product free
  (:mod:`fsad.poses`, :func:`support_pose_test`; the grid's methods and ``fsad fit`` alike);

and :func:`layout` gives each group's column slice in the concatenated rows (from the
groups' widths).
:func:`recipe_proba` applies the recipe's head to support and query rows.

Engine 0 is the task's engine; engine ``k > 0`` is ``engine.sibling(recipe.engines[k-1])``
(the same category, seed and cache at other settings, e.g. 448 px).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fsad.blocks import (
    Block,
    Inputs,
    block_from_json,
    block_rows,
    block_to_json,
    engine_key,
    from_json_fields,
    json_fields,
)
from fsad.cache import files_fingerprint
from fsad.data import Sample, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.heads import (
    cosine_prototypes,
    logistic_regression,
    multiply_proba,
    product_of_experts,
    prototype_expert,
)
from fsad.poses import PoseTest, check_poses, image_labels, pose_test, posed_images, with_poses

HEADS = ("logistic", "cosine")


@dataclass(frozen=True)
class Group:
    """One group of descriptor columns: a block kind on one engine, times a weight.

    Attributes:
        block: the block kind and its settings (e.g. a :class:`fsad.descriptors.DescriptorConfig`
            or a :class:`fsad.zoom.ZoomConfig`).
        engine: index of the engine it reads (0 = the task's engine).
        weight: factor on the group's columns (its share of a concatenated, L2-normalised
            vector; no effect on an expert that sees the group alone).
    """

    block: Block
    engine: int = 0
    weight: float = 1.0

    @property
    def name(self) -> str:
        """Short label: block kind and engine, e.g. ``DescriptorConfig@1``."""
        return f"{type(self.block).__name__}@{self.engine}"


@dataclass(frozen=True)
class Recipe:
    """Groups of blocks and the head fitted on them.

    Attributes:
        groups: the groups, in column order.
        engines: further residual engines (engine ``k`` is ``engines[k - 1]``).
        head: ``"logistic"`` (multinomial logistic regression, inverse L2 strength ``c``) or
            ``"cosine"`` (cosine similarity to the class means).
        c: inverse L2 strength of the logistic regressions.
        experts: one logistic regression per group, probabilities multiplied
            (:func:`fsad.heads.product_of_experts`), instead of one on all groups.
        prototypes: a cosine-prototype expert (softmax scale ``proto_scale``) next to each
            group's regression; needs ``experts``.
        proto_scale: softmax scale of the prototype experts.
        support_poses: each support image is seen in this many poses (1, 4 or 8; see
            :mod:`fsad.poses`), all with its label (with ``pose_test``: at most); the
            queries are seen as shot.
        relit_bank: every engine's bank also holds a relit copy of each normal image
            (:attr:`fsad.engine.EngineConfig.relit_bank`), the task's engine included.
        pose_test: the support is turned only where its pose test finds the product free
            (:func:`support_pose_test`); needs ``support_poses > 1``.
        light_test: every image (bank, support, queries) is seen with its own light undone
            where the support's light test finds that the product's light varies
            (:func:`fsad.light_test.light_gated`, robustness round 17).
    """

    groups: tuple[Group, ...]
    engines: tuple[EngineConfig, ...] = ()
    head: str = "logistic"
    c: float = 10.0
    experts: bool = False
    prototypes: bool = False
    proto_scale: float = 20.0
    support_poses: int = 1
    relit_bank: bool = False
    pose_test: bool = False
    light_test: bool = False

    def __post_init__(self) -> None:
        check_poses(self.support_poses)
        if self.pose_test and self.support_poses == 1:
            raise ConfigError("pose_test decides whether to turn the support: set support_poses")
        if not self.groups:
            raise ConfigError("a recipe needs at least one group of blocks")
        if self.head not in HEADS:
            raise ConfigError(f"unknown head '{self.head}' (choose from {HEADS})")
        for g in self.groups:
            if not 0 <= g.engine <= len(self.engines):
                raise ConfigError(
                    f"group {g.name} reads engine {g.engine}, but the recipe has "
                    f"{1 + len(self.engines)} engine(s)"
                )
        if (self.experts or self.prototypes) and self.head != "logistic":
            raise ConfigError("experts and prototype experts need the logistic head")
        if self.prototypes and not self.experts:
            raise ConfigError("prototype experts join a product of experts: set experts=True")


def framed(config: EngineConfig, framing: str, side: int = 0) -> EngineConfig:
    """``config`` with its images framed as ``framing`` (:attr:`FeatureConfig.framing`;
    ``side``: the fixed framing's product side, 0 for the engine to resolve)."""
    side = side if framing == "fixed" else 0
    return replace(config, features=replace(config.features, framing=framing, side=side))


def task_framed(config: EngineConfig, framing: str, side: int) -> EngineConfig:
    """A recipe engine's settings framed for a task framed ``framing`` (with ``side``, the
    fixed framing's, or 0): as the task, except that an engine of the recipe framed
    ``"fixed"`` stays fixed under a whole-image framing."""
    if framing != "crop" and config.features.framing == "fixed":
        return framed(config, "fixed", side or config.features.side)
    return framed(config, framing, side)


def recipe_engines(engine: ResidualEngine, recipe: Recipe) -> tuple[ResidualEngine, ...]:
    """The task's engine and each of ``recipe.engines`` as its sibling (memoised), framed as
    the task's engine frames the images (the whole image for folder data, the centre crop
    under the paper's protocol), so every engine sees the same pixels; a recipe engine
    framed ``"fixed"`` keeps that framing where the task sees the whole image (its side the
    task's, or resolved from the same normals), and is cropped as the others under the
    centre crop. Every engine has a relit bank when the recipe or the task's engine asks
    for one (the task's engine then as its relit sibling); neither setting is ever
    dropped."""
    framing, side = engine.config.features.framing, engine.config.features.side
    lit = recipe.relit_bank or engine.config.relit_bank
    first = (
        engine
        if engine.config.relit_bank == lit
        else engine.sibling(relit_banked(engine.config, lit))
    )
    return (
        first,
        *(
            engine.sibling(relit_banked(task_framed(cfg, framing, side), lit))
            for cfg in recipe.engines
        ),
    )


def relit_banked(config: EngineConfig, relit_bank: bool) -> EngineConfig:
    """``config`` with :attr:`~fsad.engine.EngineConfig.relit_bank` set as the recipe says."""
    return replace(config, relit_bank=relit_bank)


def recipe_key(engine: ResidualEngine, recipe: Recipe) -> dict[str, Any]:
    """Everything that determines a recipe's rows besides the images (for caches)."""
    engines = recipe_engines(engine, recipe)
    return {
        "engines": [engine_key(e) for e in engines],
        "groups": [
            {"table": g.block.table_key(engines[g.engine]), "weight": g.weight}
            for g in recipe.groups
        ],
    }


def sample_rows(
    engine: ResidualEngine, recipe: Recipe, samples: Sequence[Sample]
) -> list[np.ndarray]:
    """Rows ``(N, D_g)`` of every group for dataset samples (cached per category table)."""
    engines = recipe_engines(engine, recipe)
    return [g.weight * block_rows(g.block, engines[g.engine], samples) for g in recipe.groups]


def image_rows(
    engine: ResidualEngine, recipe: Recipe, images: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Rows ``(N, D_g)`` of every group for in-memory ``(H, W, 3) uint8`` images.

    Block for block what :func:`sample_rows` gives for files; each engine computes the
    images' features and residuals once for all its groups.
    """
    return inputs_rows(recipe, [Inputs(e, images=images) for e in recipe_engines(engine, recipe)])


def inputs_rows(recipe: Recipe, inputs: Sequence[Inputs]) -> list[np.ndarray]:
    """Rows ``(N, D_g)`` of every group for the same images seen through each engine
    (``inputs[k]`` on engine k); the inputs keep their features, residuals and maps, so a
    caller can read the anomaly maps afterwards at no cost."""
    return [g.weight * g.block.describe(inputs[g.engine]).numpy() for g in recipe.groups]


def posed_sample_rows(
    engine: ResidualEngine, recipe: Recipe, samples: Sequence[Sample]
) -> list[np.ndarray]:
    """Rows ``(S * (P - 1), D_g)`` of every group for the other ``P - 1`` poses of each
    sample (``P = recipe.support_poses``; :func:`fsad.poses.posed_images` order), computed
    as in-memory images and cached per support set (keyed by the recipe's tables, the
    number of poses and the samples' content)."""
    n = recipe.support_poses
    key = {
        "recipe": recipe_key(engine, recipe),
        "poses": n,
        "samples": files_fingerprint([s.path for s in samples]),
    }

    def compute() -> dict[str, np.ndarray]:
        images = posed_images([read_image(s.path) for s in samples], n)
        return {f"group{g}": x for g, x in enumerate(image_rows(engine, recipe, images))}

    value = engine.cache.load_or_compute("posed_rows", key, compute)
    return [np.asarray(value[f"group{g}"]) for g in range(len(recipe.groups))]


def mean_distances(inputs: Inputs, batch: int = 8) -> np.ndarray:
    """The mean patch distance ||r|| of each image's anomaly map, ``(N,)``, in batches."""
    parts = (inputs.part(i, i + batch).anomaly_maps() for i in range(0, len(inputs), batch))
    return np.concatenate([m.mean(dim=(1, 2)).numpy() for m in parts])


def support_pose_test(
    engine: ResidualEngine, recipe: Recipe, samples: Sequence[Sample]
) -> PoseTest:
    """The pose test (:func:`fsad.poses.pose_test`) of a support set on the recipe's first
    engine: each sample's mean patch distance as shot against its ``support_poses - 1``
    other poses'. Cached per support set (keyed by the engine, the number of poses and the
    samples' content).

    Raises:
        ConfigError: the recipe has no support poses to test.
    """
    if recipe.support_poses == 1:
        raise ConfigError("the pose test compares turned copies: the recipe has support_poses=1")
    first, n = recipe_engines(engine, recipe)[0], recipe.support_poses
    key = {
        "engine": engine_key(first),
        "poses": n,
        "samples": files_fingerprint([s.path for s in samples]),
    }

    def compute() -> dict[str, np.ndarray]:
        images = posed_images([read_image(s.path) for s in samples], n)
        return {
            "shot": mean_distances(Inputs(first, samples=samples)),
            "turned": mean_distances(Inputs(first, images=images)).reshape(len(samples), n - 1),
        }

    value = first.cache.load_or_compute("pose_test", key, compute)
    return pose_test(np.asarray(value["shot"]), np.asarray(value["turned"]))


def support_rows(
    engine: ResidualEngine,
    recipe: Recipe,
    samples: Sequence[Sample],
    pose: PoseTest | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """A support set's rows: the samples' rows (:func:`sample_rows`), followed, when
    ``recipe.support_poses > 1`` (and, with ``recipe.pose_test``, the support's pose test
    finds the product free: :func:`support_pose_test`), by those of their other poses
    (:func:`posed_sample_rows`).

    Args:
        pose: the support's pose test when the caller has it (``fsad fit`` reports it);
            None: computed here where the recipe needs it.

    Returns:
        per group rows ``(S * P, D_g)`` and ``source`` ``(S * P,)``: the index of each row's
        sample (the first S rows are the samples as shot); ``P = 1`` without poses or where
        the pose test finds that the product holds a pose, else ``recipe.support_poses``.
    """
    rows = sample_rows(engine, recipe, samples)
    if recipe.support_poses > 1 and recipe.pose_test and pose is None:
        pose = support_pose_test(engine, recipe, samples)
    if recipe.support_poses == 1 or (recipe.pose_test and pose.holds_pose):
        return rows, np.arange(len(samples))
    return with_poses(rows, posed_sample_rows(engine, recipe, samples), recipe.support_poses)


def layout(widths: Sequence[int]) -> list[slice]:
    """Column slice of each group in concatenated rows, from the groups' widths ``D_g``."""
    ends = np.cumsum(widths, dtype=int)
    return [slice(int(e - w), int(e)) for e, w in zip(ends, widths, strict=True)]


def split(x: np.ndarray, slices: Sequence[slice]) -> list[np.ndarray]:
    """The groups of concatenated rows ``x`` ``(N, D)``, by :func:`layout`'s slices."""
    return [x[:, s] for s in slices]


def recipe_proba(
    recipe: Recipe,
    support: Sequence[np.ndarray],
    labels: np.ndarray,
    query: Sequence[np.ndarray],
    n_classes: int,
) -> np.ndarray:
    """Class scores ``(Q, C)`` of the recipe's head.

    Args:
        support: per group, support rows ``(S, D_g)``; labels ``(S,)``.
        query: per group, query rows ``(Q, D_g)``.

    Returns:
        class probabilities (logistic heads) or cosine similarities (``"cosine"``).
    """
    if recipe.experts:
        pairs = list(zip(support, query, strict=True))
        probas = [product_of_experts(pairs, labels, n_classes, c=recipe.c)]
        if recipe.prototypes:
            probas += [
                prototype_expert(xs, labels, xq, n_classes, recipe.proto_scale) for xs, xq in pairs
            ]
        return probas[0] if len(probas) == 1 else multiply_proba(probas)
    xs, xq = np.concatenate(support, axis=1), np.concatenate(query, axis=1)
    if recipe.head == "cosine":
        return cosine_prototypes(xs, labels, xq, n_classes)
    return logistic_regression(xs, labels, xq, n_classes, c=recipe.c)


def leave_one_out(
    recipe: Recipe,
    rows: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    source: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each support image whose class keeps another image, scored by the recipe's head
    fitted on all the others (the label-free estimate of how well the head generalises).

    Args:
        rows: per group, support rows ``(R, D_g)``; labels ``(R,)``.
        source: ``(R,)`` the image each row comes from (:func:`support_rows`; the first
            rows are the images as shot); an image leaves with all its rows. None: one
            row per image.

    Returns:
        the indices ``(K,)`` of the images left out (``K = 0`` when every class has one
        image) and their class scores ``(K, C)`` (of the image as shot).
    """
    shot = image_labels(labels, source)
    source = np.arange(len(labels)) if source is None else np.asarray(source)
    counts = np.bincount(shot, minlength=n_classes)
    index = np.flatnonzero(counts[shot] >= 2)
    scores = np.zeros((len(index), n_classes))
    for k, i in enumerate(index):
        keep = source != i
        scores[k] = recipe_proba(
            recipe, [x[keep] for x in rows], labels[keep], [x[i : i + 1] for x in rows], n_classes
        )[0]
    return index, scores


def engine_config_to_json(config: EngineConfig) -> dict[str, Any]:
    """An :class:`~fsad.engine.EngineConfig` as JSON-able fields."""
    return {**json_fields(config), "features": json_fields(config.features)}


def engine_config_from_json(blob: dict[str, Any]) -> EngineConfig:
    """The :class:`~fsad.engine.EngineConfig` :func:`engine_config_to_json` wrote."""
    fields = dict(blob)
    features = from_json_fields(FeatureConfig, fields.pop("features"))
    return from_json_fields(EngineConfig, {**fields, "features": features})


def recipe_to_json(recipe: Recipe) -> dict[str, Any]:
    """A recipe as JSON (stored in a model, so it keeps its meaning when defaults change)."""
    return {
        **{k: v for k, v in json_fields(recipe).items() if k not in ("groups", "engines")},
        "groups": [
            {"block": block_to_json(g.block), "engine": g.engine, "weight": g.weight}
            for g in recipe.groups
        ],
        "engines": [engine_config_to_json(e) for e in recipe.engines],
    }


def recipe_from_json(blob: dict[str, Any]) -> Recipe:
    """The recipe :func:`recipe_to_json` wrote.

    Raises:
        ConfigError: a block kind or setting this fsad version does not have.
    """
    fields = dict(blob)
    groups = tuple(
        Group(block_from_json(g["block"]), int(g["engine"]), float(g["weight"]))
        for g in fields.pop("groups")
    )
    engines = tuple(engine_config_from_json(e) for e in fields.pop("engines"))
    return from_json_fields(Recipe, {**fields, "groups": groups, "engines": engines})
