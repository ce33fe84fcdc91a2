"""Fit once on your own product, then classify new images: the user-facing Python API.

An inspection engineer has a folder of normal images, a folder per defect type with a few
examples each, and new images to sort::

    from fsad.inspector import Inspector

    insp = Inspector.fit("normal/", "support/", seed=1)   # support/<defect type>/*.png
    insp.save("models/bottle")                            # safe folder: JSON + safetensors
    insp = Inspector.load("models/bottle")
    for res in insp.classify(["new/"]):                   # files or folders (recursive)
        print(res.path, res.score, res.prediction, res.probability)
        print(insp.explain(res))                          # per-class support distances

What ``fit`` builds (paper sections 3.2-3.4 plus a threshold):

1. PatchCore patch features f ``(N, D, h, w)`` of the normal images and a coreset memory
   bank of them (:mod:`fsad.features`, :mod:`fsad.memory`).
2. For any image: residuals r = f - m* (Eq. 2) against the bank, the anomaly map ``||r||``
   ``(h, w)`` and the anomaly score = its maximum (the PatchCore image score).
3. The normal-vs-defect threshold, from leave-out scores of the normal images: the normals
   are split into ``folds`` folds (default 10); each fold is scored against the fitted
   coreset bank with the members taken from that fold's own images removed, and the
   threshold is the ``quantile`` (default 0.99, ``method="higher"``: an observed score) of
   those scores. Removing a fold's members keeps the coreset density of the other images
   (a fresh coreset per fold would cost ``folds`` more coreset runs for nearly the same
   numbers); since the bank is then ~10 % smaller than the full one, leave-out scores are
   slightly above what new normal images score, so the threshold leans towards calling
   borderline images normal. ``classify(threshold=...)`` overrides it.
4. A defect-type classifier on image descriptors of the support images, chosen by
   ``method`` (:data:`CLASSIFIERS`; descriptors from :mod:`fsad.descriptors`, heads from
   :mod:`fsad.heads`, settings from :mod:`fsad.methods.anomaly_guided`): ``"anomaly_lr"`` (default:
   anomaly-guided multi-block descriptors + logistic regression, whose probabilities are
   reported; this is ``fsad run``'s ``anomaly_lr``: the zoom views of ``fsad run``'s
   ``anomaly_lr`` are not used here, they would add two backbone passes per image) or
   ``"residual_proto"`` (issue-7 reference: mean residual of the 2 % most anomalous
   patches, cosine class prototypes, probability = softmax of cosine / T with T fitted by
   leave-one-out on the support set). The model stores the support descriptors
   and the descriptor/head settings as JSON, so the head is re-applied at classify time
   (never pickled) and a model keeps its meaning when library defaults change.

Unreadable images are skipped and reported (``Inspector.skipped`` after ``fit``; a
:class:`Result` with ``error`` set from ``classify``); they never stop a batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsad.errors import ConfigError, DataError
from fsad.memory import MemoryBank, residuals

DEFAULT_TEMPERATURE = 0.05  # softmax temperature on cosine similarities when it cannot be fitted
Head = Callable[..., np.ndarray]


# ---------------------------------------------------------------------------------------------
# classifiers: descriptor of one image + head on support descriptors


def _heads() -> dict[str, tuple[Head, bool]]:
    """Head name -> (function of :mod:`fsad.heads`, whether it returns probabilities)."""
    from fsad.heads import cosine_prototypes, logistic_regression

    return {"cosine": (cosine_prototypes, False), "logistic": (logistic_regression, True)}


@dataclass(frozen=True)
class Classifier:
    """A pluggable defect-type classifier: a descriptor recipe and a head, both stored in
    the model as JSON (so a model keeps working when the library's defaults change).

    Attributes:
        name: method name (:data:`CLASSIFIERS`).
        descriptor: :class:`fsad.descriptors.DescriptorConfig` fields (top-k pooling of
            residuals / features where the anomaly map is high).
        head: ``"cosine"`` (class-mean prototypes; similarities -> softmax with a fitted
            temperature) or ``"logistic"`` (logistic regression; probabilities).
        head_params: keyword arguments of the head (e.g. ``{"c": 10.0}``).
    """

    name: str
    descriptor: dict[str, Any]
    head: str
    head_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head not in _heads():
            raise ConfigError(f"unknown classifier head '{self.head}' (known: cosine, logistic)")
        source = self.descriptor_config().source  # also validates the fields
        if source != "engine":
            raise ConfigError(
                f"method '{self.name}' needs descriptors from source '{source}'; the "
                "inspector computes them from its own bank residuals (source 'engine') only"
            )

    def descriptor_config(self) -> Any:
        from fsad.descriptors import DescriptorConfig

        return DescriptorConfig(**self.descriptor)

    @property
    def probabilistic(self) -> bool:
        """True when the head returns probabilities (no temperature needed)."""
        return _heads()[self.head][1]

    def describe(self, r: torch.Tensor, f: torch.Tensor, amap: torch.Tensor) -> np.ndarray:
        """Descriptors ``(N, D')`` float64 from r ``(N, D, h, w)``, f ``(N, D, h, w)`` and
        the anomaly maps ``(N, h, w)`` (:func:`fsad.descriptors.describe`)."""
        from fsad.descriptors import describe

        return describe(r, f, amap, self.descriptor_config()).double().numpy()

    def scores(
        self, support: np.ndarray, labels: np.ndarray, query: np.ndarray, n_classes: int
    ) -> np.ndarray:
        """Head scores ``(Q, C)`` of query descriptors given support ``(S, D')``, ``(S,)``."""
        fn = _heads()[self.head][0]
        return np.asarray(fn(support, labels, query, n_classes, **self.head_params))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Classifier:
        desc = {k: (tuple(v) if isinstance(v, list) else v) for k, v in blob["descriptor"].items()}
        return cls(str(blob["name"]), desc, str(blob["head"]), dict(blob.get("head_params", {})))


def _residual_proto() -> Classifier:
    """Issue-7 reference: top-2 % residual mean, cosine class prototypes."""
    from fsad.methods.anomaly_guided import REFERENCE_DESCRIPTOR

    return Classifier("residual_proto", asdict(REFERENCE_DESCRIPTOR), "cosine")


def _anomaly_lr() -> Classifier:
    """Multi-block anomaly-guided descriptors + logistic regression (``anomaly_lr``)."""
    from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, LR_C

    return Classifier("anomaly_lr", asdict(ANOMALY_BLOCKS), "logistic", {"c": LR_C})


#: method name -> factory of its classifier
CLASSIFIERS: dict[str, Callable[[], Classifier]] = {
    "anomaly_lr": _anomaly_lr,
    "residual_proto": _residual_proto,
}


def get_classifier(name: str) -> Classifier:
    """The classifier registered as ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown method '{name}' (choose from {', '.join(CLASSIFIERS)})")
    return CLASSIFIERS[name]()


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(Q, C)``."""
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(head: Head, support: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Softmax temperature T minimising the leave-one-out log-loss on the support set.

    Each support descriptor whose class keeps another support image is scored by
    ``head(support, labels, query, n_classes)`` fitted on the others; T is chosen on a log
    grid. With one shot per class nothing can be left out: :data:`DEFAULT_TEMPERATURE`.
    """
    counts = np.bincount(labels, minlength=n_classes)
    rows, targets = [], []
    for i in range(len(labels)):
        if counts[labels[i]] < 2:
            continue
        keep = np.arange(len(labels)) != i
        rows.append(head(support[keep], labels[keep], support[i : i + 1], n_classes)[0])
        targets.append(labels[i])
    if not rows:
        return DEFAULT_TEMPERATURE
    sims, y = np.stack(rows), np.asarray(targets)
    grid = np.geomspace(0.005, 1.0, 40)
    nll = [-np.log(softmax(sims / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


# ---------------------------------------------------------------------------------------------
# inputs


def images_in(folder: str | os.PathLike, what: str) -> list[Path]:
    """Image files directly inside ``folder`` (natural order).

    Raises:
        DataError: the folder is missing, not a folder, or holds no image files.
    """
    from fsad.data import list_images

    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder: {folder}")
    files = list_images(folder)
    if not files:
        raise DataError(f"{what} has no images (png, jpg, bmp, tif): {folder}")
    return files


def support_folders(root: str | os.PathLike) -> dict[str, list[Path]]:
    """``{defect type: image files}`` from ``root/<defect type>/*`` (natural order).

    Raises:
        DataError: ``root`` missing, without defect-type sub-folders, or a defect type
            folder without images.
    """
    from fsad.data import natural_key

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"support folder not found: {root}")
    subdirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
        key=natural_key,
    )
    if not subdirs:
        raise DataError(f"support folder has no defect-type sub-folders: {root}")
    return {d.name: images_in(d, f"defect type folder '{d.name}'") for d in subdirs}


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files given directly plus image files found (recursively) in given folders.

    Raises:
        DataError: a path does not exist, a folder holds no images, or nothing was given.
    """
    from fsad.data import IMAGE_EXTENSIONS, natural_key

    out: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            found = [
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            if not found:
                raise DataError(f"input folder has no images (png, jpg, bmp, tif): {path}")
            out += sorted(found, key=lambda p: [natural_key(s) for s in p.relative_to(path).parts])
        else:
            raise DataError(f"input not found: {path}")
    if not out:
        raise DataError("no input images given")
    return out


def _read_all(
    paths: Sequence[Path], skipped: list[tuple[str, str]]
) -> tuple[list[np.ndarray], list[Path]]:
    """Decode ``paths``; unreadable files are appended to ``skipped`` as (path, reason)."""
    from fsad.data import read_image

    images, kept = [], []
    for p in paths:
        try:
            images.append(read_image(p))
            kept.append(p)
        except DataError as exc:
            skipped.append((str(p), str(exc)))
    return images, kept


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class Result:
    """The verdict for one image.

    Attributes:
        path: the image file.
        score: anomaly score (largest patch distance to the normal bank); None on error.
        threshold: the normal-vs-defect threshold used.
        is_normal: ``score <= threshold``.
        prediction: ``"good"`` when normal, else the predicted defect type.
        defect_type / probability: the most likely defect type (given even for normal
            images, for a user who disagrees with the threshold) and its probability.
        runner_up / runner_up_probability: the second most likely type (None with one type).
        probabilities: defect type -> probability (all types).
        prototype_distance: defect type -> cosine distance of the image's descriptor to
            that type's prototype (mean of its normalised support descriptors).
        nearest_support: defect type -> (support file name, cosine distance) of the closest
            support image of that type.
        anomaly_map: ``(h, w)`` patch distances on the centre-crop grid.
        error: why the image could not be classified (then the other fields are None).
    """

    path: str
    score: float | None = None
    threshold: float | None = None
    is_normal: bool | None = None
    prediction: str | None = None
    defect_type: str | None = None
    probability: float | None = None
    runner_up: str | None = None
    runner_up_probability: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    prototype_distance: dict[str, float] = field(default_factory=dict)
    nearest_support: dict[str, tuple[str, float]] = field(default_factory=dict)
    anomaly_map: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        """One CSV row (no maps, no per-class details)."""
        keys = (
            "path score threshold is_normal prediction defect_type probability runner_up "
            "runner_up_probability error"
        ).split()
        return {k: getattr(self, k) for k in keys}


# ---------------------------------------------------------------------------------------------
# the inspector


@dataclass(frozen=True)
class InspectorConfig:
    """What ``fit`` was asked for (stored in the model).

    Attributes:
        backbone, resize, crop, dim, layers: the patch features (:class:`FeatureConfig`).
        method: classifier name (:data:`CLASSIFIERS`); the model stores the one used.
        coreset_ratio: share of normal patches kept in the memory bank.
        seed: seeds the coreset (and the fold split).
        folds: folds of the leave-out threshold estimate.
        quantile: quantile of the leave-out scores used as the threshold.
    """

    backbone: str = "tf_efficientnet_lite0"
    resize: int = 256
    crop: int = 224
    dim: int = 384
    layers: tuple[int, ...] = (2, 3)
    method: str = "anomaly_lr"
    coreset_ratio: float = 0.1
    seed: int = 1
    folds: int = 10
    quantile: float = 0.99

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if not 0 < self.quantile <= 1:
            raise ConfigError(f"threshold quantile must be in (0, 1], got {self.quantile}")
        if self.folds < 2:
            raise ConfigError(f"leave-out folds must be at least 2, got {self.folds}")

    def feature_config(self, weights: str | None = None) -> Any:
        from fsad.features import FeatureConfig

        return FeatureConfig(
            backbone=self.backbone,
            layers=self.layers,
            resize=self.resize,
            crop=self.crop,
            dim=self.dim,
            weights=weights,
        )


class Inspector:
    """A fitted normal bank + threshold + defect-type classifier. Build with :meth:`fit`
    or :meth:`load`; see the module docstring for what each part is.

    Attributes:
        config: the fit configuration.
        classes: defect types (natural order of the support folders).
        threshold: normal-vs-defect threshold on the anomaly score.
        classifier: descriptor recipe + head (stored in the model); ``method`` its name.
        skipped: ``(path, reason)`` of images ``fit`` could not read.
        info: JSON-able facts of the fit (counts, leave-out score summary, temperature).
    """

    def __init__(
        self,
        config: InspectorConfig,
        classes: list[str],
        bank: torch.Tensor,
        support: np.ndarray,
        support_labels: np.ndarray,
        support_names: list[str],
        threshold: float,
        temperature: float,
        map_range: tuple[float, float],
        classifier: Classifier,
        info: dict[str, Any] | None = None,
        weights: str | None = None,
        extractor: Any = None,
    ) -> None:
        from fsad.memory import MemoryBank

        self.config = config
        self.classes = list(classes)
        self.bank = MemoryBank(bank)
        self.support = np.asarray(support, dtype=np.float64)
        self.support_labels = np.asarray(support_labels, dtype=np.int64)
        self.support_names = list(support_names)
        self.threshold = float(threshold)
        self.temperature = float(temperature)
        self.map_range = (float(map_range[0]), float(map_range[1]))
        self.classifier = classifier
        self.method = classifier.name
        self.info = dict(info or {})
        self.weights = weights
        self.skipped: list[tuple[str, str]] = []
        self._extractor = extractor

    # -- features ----------------------------------------------------------------------------

    @property
    def extractor(self) -> Any:
        """The backbone (loaded on first use)."""
        if self._extractor is None:
            from fsad.features import PatchFeatureExtractor

            self._extractor = PatchFeatureExtractor(self.config.feature_config(self.weights))
        return self._extractor

    def _embed(self, images: Sequence[np.ndarray], batch_size: int = 16) -> torch.Tensor:
        """Patch features f ``(N, D, h, w)`` of RGB images."""
        return self.extractor.embed_images(list(images), batch_size=batch_size)

    def _analyse(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Residuals r ``(N, D, h, w)``, anomaly maps ``(N, h, w)`` and descriptors ``(N, Dd)``."""
        r, amap = residuals(f, self.bank)  # r = f - m* (Eq. 2), amap = ||r||
        return r, amap, self.classifier.describe(r, f, amap)

    # -- fit ---------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        normal_dir: str | os.PathLike,
        support_dir: str | os.PathLike,
        method: str = "anomaly_lr",
        backbone: str = "tf_efficientnet_lite0",
        seed: int = 1,
        *,
        coreset_ratio: float = 0.1,
        folds: int = 10,
        quantile: float = 0.99,
        resize: int = 256,
        crop: int = 224,
        dim: int = 384,
        weights: str | os.PathLike | None = None,
        batch_size: int = 16,
        cache: Any = None,
    ) -> Inspector:
        """Fit on ``normal_dir/*`` (normal images) and ``support_dir/<defect type>/*``.

        Args:
            normal_dir: folder of normal images (at least 2 readable).
            support_dir: one sub-folder of example images per defect type.
            method: classifier (:data:`CLASSIFIERS`).
            backbone: timm name or alias (``lite0``); ``weights`` for non-packaged ones.
            seed: coreset and fold seed.
            coreset_ratio, folds, quantile: see :class:`InspectorConfig`.
            resize, crop, dim: feature resolution and dimension.
            batch_size: images per backbone pass.
            cache: :class:`fsad.cache.DiskCache` for the normal features and the bank (they
                come from :class:`fsad.engine.ResidualEngine`, so a refit with other
                support images or another method, or a category the experiments already
                ran, reuses them); None = ``DiskCache()`` (``$FSAD_CACHE``),
                ``DiskCache(enabled=False)`` disables it.

        Raises:
            DataError: missing or empty folders, a defect type without readable images,
                fewer than 2 readable normal images.
            ConfigError: unknown backbone or method, bad ratio/quantile/folds.
        """
        from fsad.utils import seed_everything

        normal_files = images_in(normal_dir, "normal folder")
        support_files = support_folders(support_dir)
        config = InspectorConfig(
            backbone=backbone,
            resize=resize,
            crop=crop,
            dim=dim,
            method=method,
            coreset_ratio=coreset_ratio,
            seed=seed,
            folds=folds,
            quantile=quantile,
        )
        classifier = get_classifier(method)
        seed_everything(seed)
        wpath = str(Path(weights).expanduser()) if weights is not None else None
        skipped: list[tuple[str, str]] = []
        engine, f_normal, normal_kept = _normal_features(
            normal_files, config, wpath, cache, skipped
        )
        extractor = engine.extractor
        bank, members = _normal_bank(engine, f_normal)
        loo = leave_out_scores(f_normal, bank, members, config)
        threshold = float(np.quantile(loo, quantile, method="higher"))

        classes, sup_imgs, sup_labels, sup_names = [], [], [], []
        for name, files in support_files.items():
            imgs, kept = _read_all(files, skipped)
            if not imgs:
                raise DataError(f"defect type '{name}' has no readable images: {files[0].parent}")
            sup_labels += [len(classes)] * len(imgs)
            classes.append(name)
            sup_imgs += imgs
            sup_names += [p.name for p in kept]
        insp = cls(
            config,
            classes,
            bank.features,
            np.zeros((0, 1)),
            np.asarray(sup_labels),
            sup_names,
            threshold,
            DEFAULT_TEMPERATURE,
            (0.0, threshold),
            classifier,
            weights=wpath,
            extractor=extractor,
        )
        f_sup = extractor.embed_images(sup_imgs, batch_size, desc="support features")
        _, amap_sup, insp.support = insp._analyse(f_sup)
        if not classifier.probabilistic:
            insp.temperature = fit_temperature(
                classifier.scores, insp.support, insp.support_labels, len(classes)
            )
        # heat-map colours: median normal patch distance (cold) .. threshold (hot)
        _, amap_n = _sample_normal_maps(f_normal, insp)
        insp.map_range = (float(amap_n.median()), threshold)
        insp.skipped = skipped
        insp.info = {
            "n_normal": len(normal_kept),
            "n_support": {c: int((insp.support_labels == i).sum()) for i, c in enumerate(classes)},
            "bank_size": len(bank),
            "leave_out_scores": {
                "min": float(loo.min()),
                "median": float(np.median(loo)),
                "max": float(loo.max()),
            },
            "support_scores": [float(s) for s in amap_sup.amax((1, 2))],
            "skipped": [p for p, _ in skipped],
            "weights_sha256": _weights_digest(config, wpath),
        }
        return insp

    # -- save / load -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model folder (see :mod:`fsad.artifact`) atomically; returns its path."""
        from fsad.artifact import Artifact, save_artifact

        cfg = asdict(self.config)
        cfg["layers"] = list(self.config.layers)
        meta = {
            "kind": "inspector",
            "config": cfg,
            "method": self.method,
            "classifier": self.classifier.to_json(),
            "classes": self.classes,
            "support_names": self.support_names,
            "threshold": self.threshold,
            "temperature": self.temperature,
            "map_range": list(self.map_range),
            "weights": self.weights,
            "info": self.info,
        }
        tensors = {
            "bank": {"features": self.bank.features},
            "support": {
                "descriptors": torch.from_numpy(self.support.astype(np.float32)),
                "labels": torch.from_numpy(self.support_labels),
            },
        }
        return save_artifact(path, Artifact(meta=meta, tensors=tensors))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Inspector:
        """Load a model folder written by :meth:`save`.

        Raises:
            fsad.artifact.ModelError: missing, incompatible, tampered or inconsistent model,
                or backbone weights on this machine that differ from those it was fitted with.
        """
        from fsad.artifact import ModelError, load_artifact

        art = load_artifact(path)
        meta = art.meta
        try:
            if meta.get("kind") != "inspector":
                raise KeyError("kind")
            config = InspectorConfig(**meta["config"])
            bank = art.tensors["bank"]["features"]
            support = art.tensors["support"]["descriptors"].double().numpy()
            labels = art.tensors["support"]["labels"].long().numpy()
            classes = list(meta["classes"])
            ok = len(labels) == len(support) == len(meta["support_names"]) and (
                labels.min() >= 0 and labels.max() < len(classes)
            )
            if not ok or bank.ndim != 2 or bank.shape[1] != config.dim:
                raise ValueError("tensor shapes do not match the metadata")
            insp = cls(
                config,
                classes,
                bank,
                support,
                labels,
                list(meta["support_names"]),
                float(meta["threshold"]),
                float(meta["temperature"]),
                tuple(meta["map_range"]),
                Classifier.from_json(meta["classifier"]),
                info=meta.get("info", {}),
                weights=meta.get("weights"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model folder is inconsistent ({exc}): {path}") from exc
        except ConfigError as exc:
            raise ModelError(f"model cannot be used here ({exc}): {path}") from exc
        _check_weights(insp, path)
        return insp

    # -- classify ----------------------------------------------------------------------------

    def iter_classify(
        self,
        inputs: Iterable[str | os.PathLike],
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
        from fsad.utils import progress as bar

        paths = collect_inputs(inputs)
        thr = self.threshold if threshold is None else float(threshold)
        pbar = bar(
            range(len(paths)), desc="classify", unit="img", disable=None if progress else True
        )
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            skipped: list[tuple[str, str]] = []
            images, kept = _read_all(chunk, skipped)
            errors = dict(skipped)
            results = dict(zip(map(str, kept), self._classify_images(images, kept, thr)))
            for p in chunk:
                key = str(p)
                if key in errors:
                    yield Result(path=key, error=errors[key]), None
                else:
                    yield results[key], images[kept.index(p)]
            for _ in chunk:
                next(pbar, None)
        next(pbar, None)  # exhaust: closes the bar

    def classify(
        self,
        inputs: Iterable[str | os.PathLike],
        threshold: float | None = None,
        batch_size: int = 8,
        progress: bool = True,
    ) -> list[Result]:
        """Classify image files and/or folders; see :meth:`iter_classify`."""
        return [r for r, _ in self.iter_classify(inputs, threshold, batch_size, progress)]

    def _classify_images(
        self, images: list[np.ndarray], paths: list[Path], threshold: float
    ) -> list[Result]:
        if not images:
            return []
        f = self._embed(images, batch_size=len(images))
        _, amap, desc = self._analyse(f)
        probs = self.probabilities(desc)
        near, proto = self._support_distances(desc)
        out = []
        for i, p in enumerate(paths):
            score = float(amap[i].max())
            order = np.argsort(-probs[i], kind="stable")
            top, second = int(order[0]), (int(order[1]) if len(order) > 1 else None)
            normal = score <= threshold
            out.append(
                Result(
                    path=str(p),
                    score=score,
                    threshold=threshold,
                    is_normal=normal,
                    prediction="good" if normal else self.classes[top],
                    defect_type=self.classes[top],
                    probability=float(probs[i, top]),
                    runner_up=None if second is None else self.classes[second],
                    runner_up_probability=None if second is None else float(probs[i, second]),
                    probabilities={c: float(probs[i, j]) for j, c in enumerate(self.classes)},
                    prototype_distance=proto[i],
                    nearest_support=near[i],
                    anomaly_map=amap[i].numpy(),
                )
            )
        return out

    def probabilities(self, desc: np.ndarray) -> np.ndarray:
        """Class probabilities ``(Q, C)`` of query descriptors ``(Q, D')``: the head's own
        probabilities, or a softmax of its similarities divided by :attr:`temperature`."""
        s = self.classifier.scores(self.support, self.support_labels, desc, len(self.classes))
        return s if self.classifier.probabilistic else softmax(s / self.temperature)

    def _support_distances(
        self, desc: np.ndarray
    ) -> tuple[list[dict[str, tuple[str, float]]], list[dict[str, float]]]:
        """Per query: {class: (closest support name, cosine distance)} and
        {class: cosine distance to the class prototype}."""
        from fsad.heads import class_means, l2_normalise

        q, sup = l2_normalise(desc), l2_normalise(self.support)
        dist = 1.0 - q @ sup.T  # (Q, S)
        protos = l2_normalise(class_means(sup, self.support_labels, len(self.classes)))
        pdist = 1.0 - q @ protos.T  # (Q, C)
        near, proto = [], []
        for row, prow in zip(dist, pdist):
            entry = {}
            for j, c in enumerate(self.classes):
                idx = np.flatnonzero(self.support_labels == j)
                k = int(idx[np.argmin(row[idx])])
                entry[c] = (self.support_names[k], float(row[k]))
            near.append(entry)
            proto.append({c: float(prow[j]) for j, c in enumerate(self.classes)})
        return near, proto

    # -- explain / overlay -------------------------------------------------------------------

    def explain(self, result: Result) -> str:
        """A short text: score vs threshold, then per defect type (most likely first) its
        probability, the cosine distance to its prototype and to its closest support image."""
        if not result.ok:
            return f"{result.path}: skipped ({result.error})"
        verdict = "normal" if result.is_normal else "defective"
        lines = [
            f"{result.path}: score {result.score:.3f} vs threshold {result.threshold:.3f} "
            f"-> {verdict}; defect type {result.defect_type} (p={result.probability:.2f})"
        ]
        for c in sorted(self.classes, key=lambda c: -result.probabilities[c]):
            name, d = result.nearest_support[c]
            lines.append(
                f"  {c:<20} p={result.probabilities[c]:.2f}  "
                f"prototype distance {result.prototype_distance[c]:.3f}  "
                f"nearest support {name} ({d:.3f})"
            )
        return "\n".join(lines)

    def overlay(self, result: Result, image: np.ndarray | None = None) -> np.ndarray:
        """The heat-map overlay ``(H, W, 3)`` uint8 of a classified image."""
        from fsad.data import read_image
        from fsad.viz.overlay import overlay_heatmap

        if result.anomaly_map is None:
            raise DataError(f"no anomaly map for {result.path} ({result.error})")
        img = read_image(result.path) if image is None else image
        caption = (
            f"good  score {result.score:.2f}"
            if result.is_normal
            else f"{result.prediction} {result.probability:.2f}  score {result.score:.2f}"
        )
        lo, hi = self.map_range
        return overlay_heatmap(
            img,
            result.anomaly_map,
            lo,
            max(hi, lo + 1e-6),
            self.config.resize,
            self.config.crop,
            caption=caption,
        )


# ---------------------------------------------------------------------------------------------
# helpers


def _normal_features(
    files: list[Path],
    config: InspectorConfig,
    weights: str | None,
    cache: Any,
    skipped: list[tuple[str, str]],
) -> tuple[Any, torch.Tensor, list[Path]]:
    """A residual engine on the normal images, their features ``(N, D, h, w)`` and the files
    used. Unreadable files are dropped (and added to ``skipped``) only when the engine hits
    one, so the common case decodes every image once (or never, on a cache hit).

    Raises:
        DataError: fewer than 2 readable normal images.
    """
    from fsad.data import CategoryData, Sample, read_image
    from fsad.engine import EngineConfig, ResidualEngine

    def engine_on(paths: list[Path], extractor: Any = None) -> Any:
        if len(paths) < 2:
            raise DataError(
                f"need at least 2 readable normal images, got {len(paths)}: {files[0].parent}"
            )
        samples = [Sample(p, "normal", "train", "good") for p in paths]
        category = CategoryData("normal", "folder", files[0].parent, samples, [])
        ecfg = EngineConfig(
            features=config.feature_config(weights), coreset_ratio=config.coreset_ratio
        )
        return ResidualEngine(category, ecfg, config.seed, cache, extractor=extractor)

    engine = engine_on(files)
    try:
        return engine, engine.features(engine.category.train), files
    except DataError:  # a corrupt file: check them all, keep the readable ones
        kept = []
        for p in files:
            try:
                read_image(p)
                kept.append(p)
            except DataError as exc:
                skipped.append((str(p), str(exc)))
        engine = engine_on(kept, extractor=engine.extractor)  # reuse the loaded backbone
        return engine, engine.features(engine.category.train), kept


def _normal_bank(engine: Any, f: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """The engine's coreset bank and each member's source image index ``(M,)``."""
    hw = f.shape[2] * f.shape[3]
    return engine.bank, engine.bank_indices // hw  # flattened patch index -> image index


def leave_out_scores(
    f: torch.Tensor, bank: Any, members: torch.Tensor, config: InspectorConfig
) -> np.ndarray:
    """Anomaly score of every normal image against the bank without its fold's members.

    Args:
        f: ``(N, D, h, w)`` normal patch features, ``N >= 2``.
        bank: the coreset :class:`fsad.memory.MemoryBank` built from ``f``.
        members: ``(M,)`` source image index of each bank member.
        config: gives ``folds`` (at most N) and ``seed`` (fold assignment).

    Returns:
        ``(N,)`` scores (max patch distance), in the order of ``f``.
    """

    n = len(f)
    perm = np.random.default_rng(config.seed).permutation(n)
    scores = np.zeros(n)
    for fold in np.array_split(perm, min(config.folds, n)):
        keep = ~torch.isin(members, torch.from_numpy(fold))
        if not bool(keep.any()):  # every member came from this fold (tiny inputs)
            keep = torch.ones_like(keep)
        _, amap = residuals(f[torch.from_numpy(fold)], MemoryBank(bank.features[keep]))
        scores[fold] = amap.amax((1, 2)).numpy()
    return scores


def _sample_normal_maps(f: torch.Tensor, insp: Inspector, n: int = 8) -> tuple[Any, torch.Tensor]:
    """Anomaly maps of up to ``n`` normal images against the final bank ``(n, h, w)``."""
    idx = torch.linspace(0, len(f) - 1, min(n, len(f))).long()
    return residuals(f[idx], insp.bank)


def _weights_digest(config: InspectorConfig, weights: str | None) -> str:
    """SHA-256 of the backbone weights file the features come from."""
    import hashlib

    from fsad.features import resolve_weights

    path = resolve_weights(config.backbone, weights)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_weights(insp: Inspector, path: str | os.PathLike) -> None:
    from fsad.artifact import ModelError

    want = insp.info.get("weights_sha256")
    try:
        have = _weights_digest(insp.config, insp.weights)
    except ConfigError as exc:
        raise ModelError(
            f"model needs backbone weights not available here ({exc}): {path}"
        ) from exc
    if want and have != want:
        raise ModelError(
            f"backbone '{insp.config.backbone}' weights on this machine differ from those the "
            f"model was fitted with (SHA-256 mismatch): {path}"
        )
