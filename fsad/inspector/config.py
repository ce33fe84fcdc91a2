"""What an inspector is fitted with: :class:`InspectorConfig` (stored in the model)."""

from __future__ import annotations

from dataclasses import dataclass

from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.inspector.classifier import DEFAULT_METHOD


@dataclass(frozen=True)
class InspectorConfig:
    """What ``fit`` was asked for (stored in the model as JSON).

    Attributes:
        backbone, resize, crop, dim, layers: the patch features (:class:`FeatureConfig`).
        method: the grid method whose recipe classifies the defect types
            (:data:`fsad.inspector.classifier.METHODS`; ``"custom"`` for a recipe given
            directly).
        coreset_ratio: share of normal patches kept in the memory bank.
        seed: seeds the coreset (and the fold split).
        folds: folds of the leave-out threshold estimate.
        quantile: quantile of the leave-out scores used as the threshold.
        framing: how an image enters the backbone (:attr:`fsad.features.FeatureConfig.framing`):
            ``"letterbox"`` (default: the whole image, any aspect ratio, so a defect at the
            border is seen) or ``"crop"`` (the paper's centre crop). Models saved before this
            setting existed were fitted with ``"crop"`` and load as such.
    """

    backbone: str = "tf_efficientnet_lite0"
    resize: int = 256
    crop: int = 224
    dim: int = 384
    layers: tuple[int, ...] = (2, 3)
    method: str = DEFAULT_METHOD
    coreset_ratio: float = 0.1
    seed: int = 1
    folds: int = 10
    quantile: float = 0.99
    framing: str = "letterbox"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if not 0 < self.quantile <= 1:
            raise ConfigError(f"threshold quantile must be in (0, 1], got {self.quantile}")
        if self.folds < 2:
            raise ConfigError(f"leave-out folds must be at least 2, got {self.folds}")
        if self.framing == "fixed":
            raise ConfigError(
                "fit frames its first engine 'letterbox' or 'crop'; 'fixed' is for a recipe's "
                "further engine (the default method's 448 px engine)"
            )
        self.feature_config()  # validates the backbone settings (framing, resolution)

    def feature_config(self, weights: str | None = None) -> FeatureConfig:
        """The backbone settings; ``weights`` a local weights file (None: packaged)."""
        return FeatureConfig(
            backbone=self.backbone,
            layers=self.layers,
            resize=self.resize,
            crop=self.crop,
            dim=self.dim,
            weights=weights,
            framing=self.framing,
        )
