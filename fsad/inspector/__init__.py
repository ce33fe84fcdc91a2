"""Fit once on your own product, then classify new images: the user-facing Python API.

An inspection engineer has a folder of normal images, a folder per defect type with a few
examples each, and new images to sort::

    from fsad.inspector import Inspector

    insp = Inspector(seed=1).fit("normal/", "support/")   # support/<defect type>/*.png
    insp.predict(["new/"])                                # "good" or a defect type each
    insp.save("models/bottle")                            # safe folder: JSON + safetensors
    insp = Inspector.load("models/bottle")
    for res in insp.classify(["new/"]):                   # files or folders (recursive)
        print(res.path, res.score, res.prediction, res.probability)
        print(insp.explain(res))                          # per-class support distances

``Inspector`` follows scikit-learn: settings go to the constructor (:meth:`get_params`,
:meth:`set_params`), :meth:`fit` returns the inspector, :meth:`predict` gives ``"good"`` or
a defect type per image and :meth:`predict_proba` the ``(N, C)`` defect-type probabilities
(columns: :attr:`classes`).

What ``fit`` builds (paper sections 3.2-3.4 plus a threshold), one module each:

1. :mod:`~fsad.inspector.bank`: PatchCore patch features f ``(N, D, h, w)`` of the normal
   images and a coreset memory bank of them (:mod:`fsad.engine`, cached).
2. For any image: residuals r = f - m* (Eq. 2) against the bank, the anomaly map ``||r||``
   ``(h, w)`` and the anomaly score = its maximum (the PatchCore image score).
3. :mod:`~fsad.inspector.threshold`: the normal-vs-defect threshold, the ``quantile``
   (default 0.99) of leave-out scores of the normal images over ``folds`` folds (default
   10). ``classify(threshold=...)`` overrides it.
4. :mod:`~fsad.inspector.classifier`: a defect-type classifier on image descriptors of the
   support images, chosen by ``method``: ``"anomaly_lr"`` (default: anomaly-guided
   multi-block descriptors + logistic regression, whose probabilities are reported; this is
   ``fsad run``'s ``anomaly_lr`` without its zoom views, which would add two backbone passes
   per image) or ``"residual_proto"`` (the training-free reference: mean residual of the 2 % most
   anomalous patches, cosine class prototypes, probability = softmax of cosine / T with T
   fitted by leave-one-out on the support set).

:mod:`~fsad.inspector.model` saves and loads the model folder (the support descriptors and
the descriptor/head settings as JSON, so a model keeps its meaning when library defaults
change), :mod:`~fsad.inspector.inputs` finds and reads images, and
:mod:`~fsad.inspector.result` holds the per-image :class:`Result` with its explanation and
heat-map overlay. Unreadable images are skipped and reported (:attr:`Inspector.skipped`
after ``fit``; a :class:`Result` with ``error`` set from ``classify``); they never stop a
batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsad.errors import ConfigError, FsadError
from fsad.features import PatchFeatureExtractor
from fsad.inspector.bank import heatmap_floor, normal_features
from fsad.inspector.classifier import (
    CLASSIFIERS,
    DEFAULT_TEMPERATURE,
    Classifier,
    fit_temperature,
    get_classifier,
    softmax,
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
    read_support,
    support_files,
    support_folders,
)
from fsad.inspector.model import FittedModel, load_model, save_model, weights_digest
from fsad.inspector.result import Result, explain_text, overlay_image, support_distances, verdict
from fsad.inspector.threshold import (
    anomaly_threshold,
    leave_out_scores,
    member_images,
    score_summary,
)
from fsad.memory import MemoryBank, residuals
from fsad.utils import progress as progress_bar
from fsad.utils import seed_everything

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_TEMPERATURE",
    "Classifier",
    "Inspector",
    "InspectorConfig",
    "NotFittedError",
    "Result",
    "collect_inputs",
    "fit_temperature",
    "get_classifier",
    "images_in",
    "leave_out_scores",
    "softmax",
    "support_folders",
]

_DEFAULTS = InspectorConfig()


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


def _describe(
    f: torch.Tensor, bank: MemoryBank, classifier: Classifier
) -> tuple[torch.Tensor, np.ndarray]:
    """Anomaly maps ``(N, h, w)`` and descriptors ``(N, D')`` of features f ``(N, D, h, w)``."""
    r, amap = residuals(f, bank)  # r = f - m* (Eq. 2), amap = ||r||
    return amap, classifier.describe(r, f, amap)


class Inspector:
    """A normal bank + anomaly threshold + defect-type classifier for one product.

    Args:
        method: defect-type classifier (:data:`CLASSIFIERS`).
        backbone: timm name or alias (``lite0``); ``weights`` for non-packaged ones.
        resize, crop, dim, layers: feature resolution, dimension and backbone blocks.
        fit: ``"letterbox"`` (default: the whole image in the backbone's square, any aspect
            ratio) or ``"crop"`` (the paper's centre crop); see :class:`InspectorConfig`.
        coreset_ratio: share of normal patches kept in the memory bank.
        seed: coreset and fold seed.
        folds, quantile: the leave-out threshold (:mod:`fsad.inspector.threshold`).
        weights: local backbone weights file (None: packaged weights).
        batch_size: images per backbone pass in ``fit``, ``predict`` and ``predict_proba``.
        cache: :class:`fsad.cache.DiskCache` for the normal features and the bank (shared
            with :class:`fsad.engine.ResidualEngine`, so a refit with other support images
            or another method reuses them); None = ``DiskCache()`` (``$FSAD_CACHE``),
            ``DiskCache(enabled=False)`` disables it.

    Attributes:
        model_: the fitted :class:`~fsad.inspector.model.FittedModel` (None before ``fit``);
            its fields read as attributes: ``config``, ``classes``, ``threshold``, ...
        skipped: ``(path, reason)`` of images ``fit`` could not read.
    """

    def __init__(
        self,
        *,
        method: str = _DEFAULTS.method,
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
        self._extractor: PatchFeatureExtractor | None = None

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
        return InspectorConfig(**{f.name: getattr(self, f.name) for f in fields(InspectorConfig)})

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
    def classifier(self) -> Classifier:
        """Descriptor recipe + head of the model."""
        return self._fitted().classifier

    @property
    def classes(self) -> list[str]:
        """The C defect types: the columns of :meth:`predict_proba`."""
        return self._fitted().classes

    @property
    def bank(self) -> MemoryBank:
        """The normal coreset memory bank ``(M, D)``."""
        return self._fitted().bank

    @property
    def support(self) -> np.ndarray:
        """``(S, D')`` support descriptors."""
        return self._fitted().support

    @property
    def support_labels(self) -> np.ndarray:
        """``(S,)`` class index of each support descriptor."""
        return self._fitted().support_labels

    @property
    def support_names(self) -> list[str]:
        """``(S,)`` support file names."""
        return self._fitted().support_names

    @property
    def threshold(self) -> float:
        """Normal-vs-defect threshold on the anomaly score."""
        return self._fitted().threshold

    @property
    def temperature(self) -> float:
        """Softmax temperature of a similarity head."""
        return self._fitted().temperature

    @property
    def map_range(self) -> tuple[float, float]:
        """Anomaly values shown coldest and hottest in heat maps."""
        return self._fitted().map_range

    @property
    def info(self) -> dict[str, Any]:
        """JSON-able facts of the fit (counts, leave-out score summary, weights hash)."""
        return self._fitted().info

    @property
    def extractor(self) -> PatchFeatureExtractor:
        """The backbone (loaded on first use)."""
        if self._extractor is None:
            model = self._fitted()
            self._extractor = PatchFeatureExtractor(model.config.feature_config(model.weights))
        return self._extractor

    # -- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        normal: PathLike | Iterable[PathLike],
        support: PathLike | Mapping[str, PathLike | Iterable[PathLike]],
    ) -> Inspector:
        """Fit on normal images and a few examples per defect type; returns self.

        Args:
            normal: a folder of normal images or a list of image files (at least 2 readable).
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
        classifier = get_classifier(config.method)
        seed_everything(config.seed)
        weights = None if self.weights is None else str(Path(self.weights).expanduser())
        skipped: list[Skipped] = []
        engine, f_normal, kept = normal_features(normal_files, config, weights, self.cache, skipped)
        members = member_images(engine.bank_indices, f_normal)
        loo = leave_out_scores(f_normal, engine.bank, members, config.folds, config.seed)
        threshold = anomaly_threshold(loo, config.quantile)
        classes, images, labels, names = read_support(support_sets, skipped)
        bank = MemoryBank(engine.bank.features)
        f_sup = engine.extractor.embed_images(images, self.batch_size, desc="support features")
        amap_sup, support_desc = _describe(f_sup, bank, classifier)
        info = {
            "n_normal": len(kept),
            "n_support": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
            "bank_size": len(bank),
            "leave_out_scores": score_summary(loo),
            "support_scores": [float(s) for s in amap_sup.amax((1, 2))],
            "skipped": [p for p, _ in skipped],
            "weights_sha256": weights_digest(config, weights),
        }
        self.model_ = FittedModel(
            config=config,
            classifier=classifier,
            classes=classes,
            bank=bank,
            support=support_desc,
            support_labels=labels,
            support_names=names,
            threshold=threshold,
            temperature=classifier.temperature(support_desc, labels, len(classes)),
            map_range=(heatmap_floor(f_normal, bank), threshold),
            info=info,
            weights=weights,
        )
        self._extractor, self.skipped = engine.extractor, skipped
        return self

    # -- predict -----------------------------------------------------------------------------

    def _analyse(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        """Anomaly maps ``(N, h, w)`` and descriptors ``(N, D')`` of RGB images (one pass)."""
        f = self.extractor.embed_images(list(images), batch_size=len(images))
        return _describe(f, self.bank, self.classifier)

    def probabilities(self, desc: np.ndarray) -> np.ndarray:
        """Class probabilities ``(Q, C)`` of query descriptors ``(Q, D')``: the head's own
        probabilities, or a softmax of its similarities divided by :attr:`temperature`."""
        m = self._fitted()
        return m.classifier.probabilities(
            m.support, m.support_labels, desc, len(m.classes), m.temperature
        )

    def _score(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly scores ``(N,)`` and class probabilities ``(N, C)`` of RGB images."""
        scores, probs = [], []
        for start in range(0, len(images), self.batch_size):
            amap, desc = self._analyse(images[start : start + self.batch_size])
            scores.append(amap.amax((1, 2)).numpy())
            probs.append(self.probabilities(desc))
        return np.concatenate(scores), np.concatenate(probs)

    def predict_proba(self, images: PathLike | Sequence[PathLike | np.ndarray]) -> np.ndarray:
        """Defect-type probabilities ``(N, C)`` (columns: :attr:`classes`; rows sum to 1).

        Args:
            images: a file or folder, or a sequence of files, folders (searched
                recursively) and RGB ``(H, W, 3)`` uint8 arrays.

        Raises:
            DataError: a missing path, an empty folder or unreadable images.
        """
        return self._score(load_images(images))[1]

    def predict(
        self,
        images: PathLike | Sequence[PathLike | np.ndarray],
        threshold: float | None = None,
    ) -> np.ndarray:
        """``"good"`` or the most likely defect type per image ``(N,)`` str.

        Args:
            images: as for :meth:`predict_proba`.
            threshold: overrides the fitted threshold.

        Raises:
            DataError: a missing path, an empty folder or unreadable images.
        """
        scores, probs = self._score(load_images(images))
        thr = self.threshold if threshold is None else float(threshold)
        return np.where(scores <= thr, "good", np.asarray(self.classes)[probs.argmax(1)])

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
        insp = cls(**asdict(model.config), weights=model.weights)
        insp.model_ = model
        return insp

    # -- classify ----------------------------------------------------------------------------

    def iter_classify(
        self,
        inputs: Iterable[PathLike],
        threshold: float | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> Iterator[tuple[Result, np.ndarray | None]]:
        """Classify images lazily; yields ``(result, RGB image or None on error)``.

        Args:
            inputs: image files and/or folders (searched recursively).
            threshold: overrides the fitted threshold.
            batch_size: images per backbone pass.
            progress: show a progress bar (silenced by ``FSAD_NO_PROGRESS``).

        Raises:
            DataError: a missing input path or an input folder without images (checked
                before any work). Unreadable images become results with ``error`` set.
        """
        batch_size = _positive(batch_size, "batch_size")
        paths = collect_inputs(inputs)
        thr = self.threshold if threshold is None else float(threshold)
        bar = progress_bar(
            range(len(paths)), desc="classify", unit="img", disable=None if progress else True
        )
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            yield from self._classify_chunk(chunk, thr)
            for _ in chunk:
                next(bar, None)
        next(bar, None)  # exhaust: closes the bar

    def classify(
        self,
        inputs: Iterable[PathLike],
        threshold: float | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> list[Result]:
        """Classify image files and/or folders; see :meth:`iter_classify`."""
        return [r for r, _ in self.iter_classify(inputs, threshold, batch_size, progress)]

    def _classify_chunk(
        self, paths: list[Path], threshold: float
    ) -> Iterator[tuple[Result, np.ndarray | None]]:
        """``(result, image)`` per path of one backbone batch; unreadable ones as errors."""
        skipped: list[Skipped] = []
        images, kept = read_images(paths, skipped)
        errors = dict(skipped)
        results = dict(zip(map(str, kept), self._classify_images(images, kept, threshold)))
        for p in paths:
            key = str(p)
            if key in errors:
                yield Result(path=key, error=errors[key]), None
            else:
                yield results[key], images[kept.index(p)]

    def _classify_images(
        self, images: list[np.ndarray], paths: list[Path], threshold: float
    ) -> list[Result]:
        """The :class:`Result` of each readable image (one backbone pass)."""
        if not images:
            return []
        m = self._fitted()
        amap, desc = self._analyse(images)
        probs = self.probabilities(desc)
        dists = support_distances(desc, m.support, m.support_labels, m.support_names, m.classes)
        return [
            verdict(str(p), amap[i].numpy(), probs[i], m.classes, threshold, dists[i])
            for i, p in enumerate(paths)
        ]

    # -- explain / overlay -------------------------------------------------------------------

    def explain(self, result: Result) -> str:
        """A short text: score vs threshold, then per defect type (most likely first) its
        probability, the cosine distance to its prototype and to its closest support image."""
        return explain_text(result, self.classes)

    def overlay(self, result: Result, image: np.ndarray | None = None) -> np.ndarray:
        """The heat-map overlay ``(H, W, 3)`` uint8 of a classified image (``image``: its
        RGB pixels; None reads ``result.path``)."""
        cfg = self.config
        return overlay_image(result, image, self.map_range, cfg.resize, cfg.crop, cfg.framing)
