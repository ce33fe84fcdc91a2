"""The defect-type classifier: an image descriptor, a head on the support descriptors and,
for similarity heads, a softmax temperature.

A :class:`Classifier` (descriptor settings + head name + head parameters) is stored
in the model as JSON, so the head is re-applied at classify time (never pickled) and a model
keeps its meaning when library defaults change. :data:`CLASSIFIERS` names the classifiers
``fsad fit --method`` offers (settings from :mod:`fsad.methods.anomaly_guided`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from fsad.descriptors import DescriptorConfig, describe
from fsad.errors import ConfigError
from fsad.heads import cosine_prototypes, logistic_regression, softmax
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, LR_C, REFERENCE_DESCRIPTOR

DEFAULT_TEMPERATURE = 0.05  # softmax temperature on cosine similarities when it cannot be fitted
Head = Callable[..., np.ndarray]

#: head name -> (function of :mod:`fsad.heads`, whether it returns probabilities)
HEADS: dict[str, tuple[Head, bool]] = {
    "cosine": (cosine_prototypes, False),
    "logistic": (logistic_regression, True),
}


def fit_temperature(head: Head, support: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Softmax temperature T minimising the leave-one-out log-loss on the support set.

    Each support descriptor whose class keeps another support image is scored by
    ``head(support, labels, query, n_classes)`` fitted on the others; T is chosen on a log
    grid. With one shot per class nothing can be left out: :data:`DEFAULT_TEMPERATURE`.

    Args:
        head: a head of :mod:`fsad.heads` returning ``(Q, C)`` similarities.
        support: ``(S, D')`` support descriptors.
        labels: ``(S,)`` class index of each support descriptor.
        n_classes: number of classes C.
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


@dataclass(frozen=True)
class Classifier:
    """A pluggable defect-type classifier: descriptor settings and a head, both stored in
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
        if self.head not in HEADS:
            raise ConfigError(f"unknown classifier head '{self.head}' (known: cosine, logistic)")
        source = self.descriptor_config().source  # also validates the fields
        if source != "engine":
            raise ConfigError(
                f"method '{self.name}' needs descriptors from source '{source}'; the "
                "inspector computes them from its own bank residuals (source 'engine') only"
            )

    def descriptor_config(self) -> DescriptorConfig:
        """The descriptor settings as a :class:`fsad.descriptors.DescriptorConfig`.

        Models written before the anomaly-profile block was removed store ``profile: 0``
        (no such block); that key is dropped. A model that used the block cannot be read.
        """
        fields = dict(self.descriptor)
        if fields.get("profile", 0) != 0:
            raise ConfigError(
                f"this model uses an anomaly-profile block (profile={fields['profile']}), "
                "which this fsad version no longer has: fit the model again"
            )
        fields.pop("profile", None)
        return DescriptorConfig(**fields)

    @property
    def probabilistic(self) -> bool:
        """True when the head returns probabilities (no temperature needed)."""
        return HEADS[self.head][1]

    def describe(self, r: torch.Tensor, f: torch.Tensor, amap: torch.Tensor) -> np.ndarray:
        """Image descriptors: the one place the library's descriptor function is called.

        Args:
            r: ``(N, D, h, w)`` residuals against the normal bank.
            f: ``(N, D, h, w)`` patch features.
            amap: ``(N, h, w)`` anomaly maps.

        Returns:
            ``(N, D')`` float64 descriptors (:func:`fsad.descriptors.describe`).
        """
        return describe(r, f, amap, self.descriptor_config()).double().numpy()

    def scores(
        self, support: np.ndarray, labels: np.ndarray, query: np.ndarray, n_classes: int
    ) -> np.ndarray:
        """Head scores ``(Q, C)`` of query ``(Q, D')`` given support ``(S, D')``, ``(S,)``."""
        fn = HEADS[self.head][0]
        return np.asarray(fn(support, labels, query, n_classes, **self.head_params))

    def temperature(self, support: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
        """Softmax temperature for this head: fitted on the support set ``(S, D')``,
        ``(S,)`` for a similarity head, :data:`DEFAULT_TEMPERATURE` (unused) otherwise."""
        if self.probabilistic:
            return DEFAULT_TEMPERATURE
        return fit_temperature(self.scores, support, labels, n_classes)

    def probabilities(
        self,
        support: np.ndarray,
        labels: np.ndarray,
        query: np.ndarray,
        n_classes: int,
        temperature: float,
    ) -> np.ndarray:
        """Class probabilities ``(Q, C)`` of query descriptors ``(Q, D')``: the head's own
        probabilities, or a softmax of its similarities divided by ``temperature``."""
        s = self.scores(support, labels, query, n_classes)
        return s if self.probabilistic else softmax(s / temperature)

    def to_json(self) -> dict[str, Any]:
        """The recipe as JSON-able dict (stored in the model)."""
        return asdict(self)

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Classifier:
        """The recipe back from :meth:`to_json` (lists become tuples)."""
        desc = {k: (tuple(v) if isinstance(v, list) else v) for k, v in blob["descriptor"].items()}
        return cls(str(blob["name"]), desc, str(blob["head"]), dict(blob.get("head_params", {})))


def _residual_proto() -> Classifier:
    """Issue-7 reference: top-2 % residual mean, cosine class prototypes."""
    return Classifier("residual_proto", asdict(REFERENCE_DESCRIPTOR), "cosine")


def _anomaly_lr() -> Classifier:
    """Multi-block anomaly-guided descriptors + logistic regression (``anomaly_lr``)."""
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
