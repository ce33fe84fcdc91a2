"""Fit once on your own product, then classify new images: the user-facing Python API.

An inspection engineer has a folder of normal images, a folder per defect type with a few
examples each, and new images to sort::

    from fsad.inspector import Inspector

    insp = Inspector(seed=1).fit("normal/", "support/")   # support/<defect type>/*.png
    print(insp.trust)                                     # leave-one-out estimate
    insp.predict(["new/"])                                # "good" or a defect type each
    insp.save("models/bottle")                            # safe folder: JSON + safetensors
    insp = Inspector.load("models/bottle")
    for res in insp.classify(["new/"]):                   # files or folders (recursive)
        print(res.path, res.score, res.prediction, res.probability, res.low_confidence)
        print(insp.explain(res))                          # per-class support distances

``Inspector`` follows scikit-learn: settings go to the constructor (:meth:`get_params`,
:meth:`set_params`), :meth:`fit` returns the inspector, :meth:`predict` gives ``"good"`` or
a defect type per image and :meth:`predict_proba` the ``(N, C)`` defect-type probabilities
(columns: :attr:`classes`).

The defect-type classifier is one of the grid's inductive methods (``method``, default
``hires_lite0_poe_proto_rot4_gated_fixed_light``, the last round's pick; ``residual_proto`` is
the fast option), computed by the same block and recipe code as ``fsad run``
(:mod:`fsad.recipe`), so a model fitted on a category's files answers as the grid does. What
``fit`` builds:

1. :mod:`~fsad.inspector.bank`: the PatchCore residual engines of the recipe on the normal
   images (features f, coreset memory banks; :mod:`fsad.engine`, cached), by default on the
   whole image (``framing="letterbox"``; the default's 448 px engine at the product's
   scale, the longest side of its normal images filling the square, stored in the model).
2. For any image: residuals r = f - m* (Eq. 2) against each bank, the anomaly map ``||r||``
   of engine 0 and the anomaly score = its maximum (the PatchCore image score).
3. :mod:`~fsad.inspector.threshold`: the normal-vs-defect threshold, the ``quantile``
   (default 0.99) of leave-out scores of the normal images over ``folds`` folds (default
   10). ``classify(threshold=...)`` overrides it.
4. :mod:`~fsad.inspector.classifier`: the recipe's rows of the support images, its head,
   and the leave-one-out estimate of the defect-type accuracy (:attr:`trust`).

With a recipe's ``light_test`` (the default's), :func:`fsad.light_test.light_gated_engine`
first asks whether the product's light varies; where it does, steps 1-4 run on the images
with their own light undone, and the model keeps the normals' reference
(:attr:`FittedModel.light_reference`) to undo every new image's light before step 2.

:mod:`~fsad.inspector.model` saves and loads the model folder (banks and support rows as
safetensors, the recipe and settings as JSON), :mod:`~fsad.inspector.inputs` finds and reads
images, and :mod:`~fsad.inspector.result` holds the per-image :class:`Result` with its
explanation and heat-map overlay. Unreadable images are skipped and reported
(:attr:`Inspector.skipped` after ``fit``; a :class:`Result` with ``error`` set from
``classify``); they never stop a batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsad.blocks import Inputs
from fsad.engine import resolve_side
from fsad.errors import ConfigError, FsadError
from fsad.inspector.bank import ModelEngine, heatmap_floor, normal_engine
from fsad.inspector.classifier import (
    DEFAULT_METHOD,
    DEFAULT_TEMPERATURE,
    METHODS,
    adapt,
    fit_temperature,
    framing_text,
    method_name,
    method_recipe,
    probabilities,
    trust_estimate,
    trust_text,
)
from fsad.inspector.config import InspectorConfig
from fsad.inspector.inputs import (
    PathLike,
    Skipped,
    collect_inputs,
    image_files,
    images_in,
    load_images,
    read_images,
    support_files,
    support_folders,
    support_samples,
)
from fsad.inspector.model import (
    FittedModel,
    engine_configs,
    load_model,
    save_model,
    weights_digests,
)
from fsad.inspector.result import Result, explain_text, overlay_image, support_distances, verdict
from fsad.inspector.threshold import (
    anomaly_threshold,
    leave_out_scores,
    member_images,
    score_summary,
)
from fsad.light_estimate import undo_light
from fsad.light_test import light_gated_engine, undone_reference
from fsad.poses import posed_names
from fsad.recipe import Recipe, inputs_rows, recipe_engines, support_pose_test, support_rows
from fsad.utils import progress_bar, seed_everything

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_TEMPERATURE",
    "METHODS",
    "Inspector",
    "InspectorConfig",
    "NotFittedError",
    "Result",
    "collect_inputs",
    "images_in",
    "leave_out_scores",
    "support_folders",
    "trust_text",
    "framing_text",
]

_DEFAULTS = InspectorConfig()
#: a defect-type call below this probability is flagged as low-confidence
DEFAULT_MIN_CONFIDENCE = 0.5


def _positive(value: int, name: str) -> int:
    """``value`` as a positive int.

    Raises:
        ConfigError: not a positive integer (the message names ``name`` and the value).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


class NotFittedError(FsadError, AttributeError):
    """The inspector has no model yet: call :meth:`Inspector.fit` or :meth:`Inspector.load`."""


class Inspector:
    """Normal banks + anomaly threshold + defect-type classifier for one product.

    Args:
        method: a grid method name (:data:`METHODS`; default :data:`DEFAULT_METHOD`) or a
            :class:`fsad.recipe.Recipe`.
        backbone: timm name or alias (``lite0``) of engine 0; ``weights`` for non-packaged.
        resize, crop, dim, layers: engine 0's feature resolution, dimension and blocks.
        framing: ``"letterbox"`` (default: the whole image in the backbone's square, any
            aspect ratio; every engine of the recipe, except one the recipe frames at the
            product's scale, as the default's 448 px engine, which keeps that framing) or
            ``"crop"`` (the paper's centre crop, every engine); see :class:`InspectorConfig`.
        coreset_ratio: share of normal patches kept in engine 0's memory bank.
        seed: coreset and fold seed.
        folds, quantile: the leave-out threshold (:mod:`fsad.inspector.threshold`).
        weights: local backbone weights file of engine 0 (None: packaged weights).
        batch_size: images per pass in ``predict`` and ``predict_proba``.
        cache: :class:`fsad.cache.DiskCache` for features, banks and support rows (shared
            with ``fsad run``, so a refit reuses them); None = ``DiskCache()``
            (``$FSAD_CACHE``), ``DiskCache(enabled=False)`` disables it.

    Attributes:
        model_: the fitted :class:`~fsad.inspector.model.FittedModel` (None before ``fit``);
            its fields read as attributes: ``config``, ``recipe``, ``classes``, ...
        skipped: ``(path, reason)`` of images ``fit`` could not read.
    """

    def __init__(
        self,
        *,
        method: str | Recipe = DEFAULT_METHOD,
        backbone: str = _DEFAULTS.backbone,
        resize: int = _DEFAULTS.resize,
        crop: int = _DEFAULTS.crop,
        framing: str = _DEFAULTS.framing,
        dim: int = _DEFAULTS.dim,
        layers: Sequence[int] = _DEFAULTS.layers,
        coreset_ratio: float = _DEFAULTS.coreset_ratio,
        seed: int = _DEFAULTS.seed,
        folds: int = _DEFAULTS.folds,
        quantile: float = _DEFAULTS.quantile,
        weights: PathLike | None = None,
        batch_size: int = 16,
        cache: Any = None,
    ) -> None:
        self.method = method
        self.backbone = backbone
        self.resize = resize
        self.crop = crop
        self.framing = framing
        self.dim = dim
        self.layers = layers
        self.coreset_ratio = coreset_ratio
        self.seed = seed
        self.folds = folds
        self.quantile = quantile
        self.weights = weights
        self.batch_size = _positive(batch_size, "batch_size")
        self.cache = cache
        self.model_: FittedModel | None = None
        self.skipped: list[Skipped] = []
        self._engines: list[Any] | None = None

    # -- parameters --------------------------------------------------------------------------

    PARAMS = (
        "method backbone resize crop framing dim layers coreset_ratio seed folds quantile weights "
        "batch_size cache"
    ).split()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments: ``Inspector(**insp.get_params())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in self.PARAMS}

    def set_params(self, **params: Any) -> Inspector:
        """Change constructor arguments (used by the next :meth:`fit`); returns self.

        Raises:
            ConfigError: an unknown parameter name.
        """
        for name, value in params.items():
            if name not in self.PARAMS:
                raise ConfigError(f"unknown Inspector parameter '{name}'")
            setattr(self, name, _positive(value, name) if name == "batch_size" else value)
        return self

    def __repr__(self) -> str:
        fresh = Inspector().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != fresh[k]}
        return f"Inspector({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _config(self) -> InspectorConfig:
        """The parameters as a validated :class:`InspectorConfig`."""
        values = {f.name: getattr(self, f.name) for f in fields(InspectorConfig)}
        return InspectorConfig(**{**values, "method": method_name(self.method)})

    # -- fitted state ------------------------------------------------------------------------

    def _fitted(self) -> FittedModel:
        if self.model_ is None:
            raise NotFittedError("Inspector is not fitted: call fit() or Inspector.load()")
        return self.model_

    @property
    def config(self) -> InspectorConfig:
        """The configuration the model was fitted with."""
        return self._fitted().config

    @property
    def recipe(self) -> Recipe:
        """The classifier's recipe (groups of blocks, engines, head)."""
        return self._fitted().recipe

    @property
    def classes(self) -> list[str]:
        """The C defect types: the columns of :meth:`predict_proba`."""
        return self._fitted().classes

    @property
    def support_labels(self) -> np.ndarray:
        """``(S,)`` class index of each support row (images, then their poses)."""
        return self._fitted().support_labels

    @property
    def threshold(self) -> float:
        """Normal-vs-defect threshold on the anomaly score."""
        return self._fitted().threshold

    @property
    def map_range(self) -> tuple[float, float]:
        """Anomaly values shown coldest and hottest in heat maps."""
        return self._fitted().map_range

    @property
    def info(self) -> dict[str, Any]:
        """JSON-able facts of the fit (counts, leave-out scores, trust, weights hashes)."""
        return self._fitted().info

    @property
    def trust(self) -> dict[str, Any]:
        """The leave-one-out estimate of the defect-type accuracy on the support images
        (:func:`fsad.inspector.classifier.trust_estimate`)."""
        return self._fitted().info["trust"]

    def engines(self) -> list[Any]:
        """The model's engines for new images (:class:`~fsad.inspector.bank.ModelEngine`;
        backbones loaded on first use)."""
        if self._engines is None:
            m = self._fitted()
            self._engines = [ModelEngine(c, b) for c, b in zip(m.engine_configs, m.banks)]
        return self._engines

    # -- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        normal: PathLike | Iterable[PathLike],
        support: PathLike | Mapping[str, PathLike | Iterable[PathLike]],
    ) -> Inspector:
        """Fit on normal images and a few examples per defect type; returns self.

        Args:
            normal: a folder of normal images (searched recursively) or a list of files
                (at least 2 readable).
            support: a folder with one sub-folder of example images per defect type, or a
                mapping defect type -> folder or list of image files.

        Raises:
            DataError: missing or empty folders, a defect type without readable images,
                fewer than 2 readable normal images.
            ConfigError: unknown backbone or method, bad ratio/quantile/folds.
        """
        normal_files = image_files(normal, "normal")
        support_sets = support_files(support)
        config = self._config()
        recipe = method_recipe(self.method, config.framing)
        seed_everything(config.seed)
        weights = None if self.weights is None else str(Path(self.weights).expanduser())
        skipped: list[Skipped] = []
        classes, samples, labels = support_samples(support_sets, skipped)
        first = engine_configs(config, recipe, weights)[0]
        engine, f_normal = normal_engine(
            normal_files, samples, first, config.seed, self.cache, skipped
        )
        recipe = replace(  # a fixed engine's side from these normals, stored in the model
            recipe, engines=tuple(resolve_side(e, engine.category) for e in recipe.engines)
        )
        names = [s.path.name for s in samples]
        engine, samples, light = light_gated_engine(engine, recipe, samples)  # the grid's code
        reference = None
        if light is not None and light.varies:  # the bank and threshold of undone normals
            f_normal = engine.features(engine.category.train)
            reference = undone_reference(engine.category)
        members = member_images(engine.bank_indices, f_normal, engine.bank_images_per_normal)
        loo = leave_out_scores(f_normal, engine.bank, members, config.folds, config.seed)
        threshold = anomaly_threshold(loo, config.quantile)
        pose = support_pose_test(engine, recipe, samples) if recipe.pose_test else None
        rows, source = support_rows(engine, recipe, samples, pose)  # the grid's code
        temperature = fit_temperature(recipe, rows, labels[source], len(classes), source)
        engines = recipe_engines(engine, recipe)
        info = {
            "n_normal": len(engine.category.train),
            "n_support": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
            "bank_sizes": [len(e.bank) for e in engines],
            "leave_out_scores": score_summary(loo),
            "support_scores": [float(s) for s in engine.scores(samples)],
            "trust": trust_estimate(recipe, rows, labels[source], classes, source),
            "skipped": [p for p, _ in skipped],
            "weights_sha256": weights_digests(config, recipe, weights),
        }
        if light is not None:  # what decided whether to undo the light
            info["light_test"] = light.as_dict()
        if pose is not None:  # what decided the support's poses
            info["pose_test"] = pose.as_dict()
        self.model_ = FittedModel(
            config=config,
            recipe=recipe,
            classes=classes,
            banks=[e.bank for e in engines],
            support=rows,
            support_labels=labels[source],
            support_names=posed_names(names, len(source) // len(samples)),
            threshold=threshold,
            temperature=temperature,
            map_range=(heatmap_floor(f_normal, engine.bank), threshold),
            info=info,
            weights=weights,
            light_reference=reference,
        )
        self._engines = [ModelEngine(e.config, e.bank, e.extractor) for e in engines]
        self.skipped = skipped
        return self

    # -- predict -----------------------------------------------------------------------------

    def _analyse(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[np.ndarray]]:
        """Anomaly maps ``(N, h, w)`` of engine 0 and the recipe's rows (per group
        ``(N, D_g)``) of RGB images: one backbone pass per engine; each image's light
        undone first where the fit's light test found it varying."""
        reference = self._fitted().light_reference
        if reference is not None:
            images = [undo_light(im, reference) for im in images]
        inputs = [Inputs(e, images=list(images)) for e in self.engines()]
        rows = inputs_rows(self.recipe, inputs)
        return inputs[0].anomaly_maps(), rows

    def probabilities(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(Q, C)`` of query rows (per group ``(Q, D_g)``)."""
        m = self._fitted()
        return probabilities(
            m.recipe, m.support, m.support_labels, rows, len(m.classes), m.temperature
        )

    def _score(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly scores ``(N,)`` and class probabilities ``(N, C)`` of RGB images."""
        scores, probs = [], []
        for start in range(0, len(images), self.batch_size):
            amap, rows = self._analyse(images[start : start + self.batch_size])
            scores.append(amap.amax((1, 2)).numpy())
            probs.append(self.probabilities(rows))
        return np.concatenate(scores), np.concatenate(probs)

    def _adapted(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` ``(Q, C)`` with the class prior re-estimated over them (transductive)."""
        return adapt(probs, self.support_labels, len(self.classes)) if len(probs) else probs

    def predict_proba(
        self, images: PathLike | Sequence[PathLike | np.ndarray], adapt: bool = False
    ) -> np.ndarray:
        """Defect-type probabilities ``(N, C)`` (columns: :attr:`classes`; rows sum to 1).

        Args:
            images: a file or folder, or a sequence of files, folders (searched
                recursively) and RGB ``(H, W, 3)`` uint8 arrays.
            adapt: transductive: re-estimate the class proportions over these images (all
                taken as defective; never any label), as the grid's ``hires_poe_em``.

        Raises:
            DataError: a missing path, an empty folder or unreadable images.
        """
        probs = self._score(load_images(images))[1]
        return self._adapted(probs) if adapt else probs

    def predict(
        self,
        images: PathLike | Sequence[PathLike | np.ndarray],
        threshold: float | None = None,
        adapt: bool = False,
    ) -> np.ndarray:
        """``"good"`` or the most likely defect type per image ``(N,)`` str.

        Args:
            images: as for :meth:`predict_proba`.
            threshold: overrides the fitted threshold.
            adapt: transductive: class proportions re-estimated over the images found
                defective (see :meth:`classify`).

        Raises:
            DataError: a missing path, an empty folder or unreadable images.
        """
        scores, probs = self._score(load_images(images))
        thr = self.threshold if threshold is None else float(threshold)
        defective = scores > thr
        if adapt:
            probs[defective] = self._adapted(probs[defective])
        return np.where(defective, np.asarray(self.classes)[probs.argmax(1)], "good")

    # -- save / load -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model folder (see :mod:`fsad.inspector.model`) atomically; returns it."""
        return save_model(path, self._fitted())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Inspector:
        """Load a model folder written by :meth:`save` (parameters from its config).

        Raises:
            fsad.artifact.ModelError: missing, incompatible, tampered or inconsistent model,
                or backbone weights on this machine that differ from those it was fitted with.
        """
        model = load_model(path)
        params = asdict(model.config)
        if params["method"] not in METHODS:  # a recipe given directly: keep the recipe
            params["method"] = model.recipe
        insp = cls(**params, weights=model.weights)
        insp.model_ = model
        return insp

    # -- classify ----------------------------------------------------------------------------

    def iter_classify(
        self,
        inputs: Iterable[PathLike],
        threshold: float | None = None,
        batch_size: int = 8,
        progress: bool = True,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        adapt: bool = False,
    ) -> Iterator[tuple[Result, np.ndarray | None]]:
        """Classify images; yields ``(result, RGB image or None on error)``.

        Args:
            inputs: image files and/or folders (searched recursively).
            threshold: overrides the fitted threshold.
            batch_size: images per backbone pass.
            progress: show a progress bar (silenced by ``FSAD_NO_PROGRESS``).
            min_confidence: a defect-type probability below it sets ``low_confidence``.
            adapt: transductive: the class proportions are re-estimated by EM over the
                images of this call found defective (never any label), as the grid's
                ``hires_poe_em``; every result says so (``adapted``). All images are
                analysed before the first result is yielded.

        Raises:
            DataError: a missing input path or an input folder without images (checked
                before any work). Unreadable images become results with ``error`` set.
        """
        batch_size = _positive(batch_size, "batch_size")
        paths = collect_inputs(inputs)
        thr = self.threshold if threshold is None else float(threshold)
        bar = progress_bar(
            total=len(paths), desc="classify", unit="img", disable=None if progress else True
        )
        chunks = (
            self._analyse_chunk(paths[start : start + batch_size], bar)
            for start in range(0, len(paths), batch_size)
        )
        if adapt:
            chunks = iter(self._adapt_chunks(list(chunks), thr))
        for chunk in chunks:
            yield from self._results(chunk, thr, min_confidence, adapt)
        bar.close()

    def classify(
        self,
        inputs: Iterable[PathLike],
        threshold: float | None = None,
        batch_size: int = 8,
        progress: bool = True,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        adapt: bool = False,
    ) -> list[Result]:
        """Classify image files and/or folders; see :meth:`iter_classify`."""
        return [
            r
            for r, _ in self.iter_classify(
                inputs, threshold, batch_size, progress, min_confidence, adapt
            )
        ]

    def _analyse_chunk(self, paths: list[Path], bar: Any) -> dict[str, Any]:
        """Read and analyse one batch: paths, errors, images, maps, rows, probabilities."""
        skipped: list[Skipped] = []
        images, kept = read_images(paths, skipped)
        chunk: dict[str, Any] = {"paths": paths, "errors": dict(skipped), "kept": kept}
        chunk["images"] = images
        if images:
            chunk["amap"], chunk["rows"] = self._analyse(images)
            chunk["probs"] = self.probabilities(chunk["rows"])
        bar.update(len(paths))
        return chunk

    def _adapt_chunks(self, chunks: list[dict[str, Any]], threshold: float) -> list[dict]:
        """Re-estimate the class prior over every defective image of all ``chunks``."""
        done = [c for c in chunks if c["images"]]
        if not done:
            return chunks
        probs = np.concatenate([c["probs"] for c in done])
        scores = np.concatenate([c["amap"].amax((1, 2)).numpy() for c in done])
        defective = scores > threshold
        probs[defective] = self._adapted(probs[defective])
        ends = np.cumsum([len(c["probs"]) for c in done])
        for c, part in zip(done, np.split(probs, ends[:-1]), strict=True):
            c["probs"] = part
        return chunks

    def _results(
        self, chunk: dict[str, Any], threshold: float, min_confidence: float, adapted: bool
    ) -> Iterator[tuple[Result, np.ndarray | None]]:
        """``(result, image)`` per path of one analysed batch; unreadable ones as errors."""
        m = self._fitted()
        kept = [str(p) for p in chunk["kept"]]
        if kept:
            desc = np.concatenate(chunk["rows"], axis=1)
            support = np.concatenate(m.support, axis=1)
            dists = support_distances(desc, support, m.support_labels, m.support_names, m.classes)
        for p in chunk["paths"]:
            key = str(p)
            if key in chunk["errors"]:
                yield Result(path=key, error=chunk["errors"][key]), None
                continue
            i = kept.index(key)
            res = verdict(
                key, chunk["amap"][i].numpy(), chunk["probs"][i], m.classes, threshold, dists[i]
            )
            res.low_confidence = not res.is_normal and res.probability < min_confidence
            res.adapted = adapted and not res.is_normal
            yield res, chunk["images"][i]

    # -- explain / overlay -------------------------------------------------------------------

    def explain(self, result: Result) -> str:
        """A short text: score vs threshold, then per defect type (most likely first) its
        probability, the cosine distance to its prototype and to its closest support image."""
        return explain_text(result, self.classes)

    def overlay(self, result: Result, image: np.ndarray | None = None) -> np.ndarray:
        """The heat-map overlay ``(H, W, 3)`` uint8 of a classified image, over the whole
        original image (``image``: its RGB pixels; None reads ``result.path``)."""
        cfg = self.config
        return overlay_image(result, image, self.map_range, cfg.resize, cfg.crop, cfg.framing)
