"""The whole-image mode (FeatureConfig(framing="letterbox")): every pixel reaches the engine,
and positions map back to the original image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fsad.cache import DiskCache
from fsad.data import CategoryData, Sample
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig, placement, preprocess
from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_engines
from fsad.viz.overlay import crop_box, overlay_heatmap
from fsad.zoom import cell_to_image, peak_cells

LETTERBOX = FeatureConfig(resize=128, crop=128, dim=32, framing="letterbox")
FIXED = FeatureConfig(resize=128, crop=128, dim=32, framing="fixed")


def test_crop_mode_keeps_its_cache_key_and_letterbox_gets_its_own() -> None:
    assert "framing" not in FeatureConfig().cache_key()
    assert FeatureConfig(framing="letterbox").cache_key()["framing"] == "letterbox"
    with pytest.raises(ConfigError, match="unknown framing 'stretch'"):
        FeatureConfig(framing="stretch")


def test_the_fixed_framing_keys_its_side_and_refuses_a_side_elsewhere() -> None:
    assert "side" not in FeatureConfig(framing="letterbox").cache_key()  # earlier keys stay
    key = replace(FIXED, side=250).cache_key()
    assert (key["framing"], key["side"]) == ("fixed", 250)
    assert key != replace(FIXED, side=300).cache_key()  # another product, other features
    with pytest.raises(ConfigError, match="side=250.*framing 'letterbox'"):
        FeatureConfig(framing="letterbox", side=250)
    with pytest.raises(ConfigError, match="side=-1"):
        FeatureConfig(framing="fixed", side=-1)
    with pytest.raises(ConfigError, match="needs its product's side"):
        placement((50, 125), FIXED)


def test_the_fixed_framing_keeps_one_scale_and_letterboxes_only_longer_images() -> None:
    fixed = replace(FIXED, side=250)
    small = placement((50, 125), fixed)  # half the product's side: half the square
    assert small.scale == pytest.approx(128 / 250)
    assert (small.nh, small.nw, small.dy, small.dx) == (26, 64, 51, 32)
    assert placement((100, 250), fixed) == placement((100, 250), LETTERBOX)  # the side: equal
    assert placement((100, 300), fixed) == placement((100, 300), LETTERBOX)  # longer: fits
    img = np.full((50, 125, 3), 200, dtype=np.uint8)
    x = preprocess([img], fixed)[0]
    assert torch.all(x[:, 51:77, 32:96] > 0.5)  # the image, all of it, at the product's scale
    assert torch.all(x[:, :51] == 0) and torch.all(x[:, :, :32] == 0)  # the mean colour


def test_an_engine_resolves_the_fixed_side_from_its_normals_and_shares_it(tmp_path: Path) -> None:
    normals = [
        _write(tmp_path / f"normal_{i}.png", np.full((h, w, 3), 120, np.uint8))
        for i, (h, w) in enumerate([(100, 250), (180, 90), (60, 60)])
    ]
    category = CategoryData("strip", "folder", tmp_path, normals, [])
    cache = DiskCache(tmp_path / "cache")
    engine = ResidualEngine(category, EngineConfig(features=FIXED), cache=cache)
    assert engine.config.features.side == 250  # the longest side of any normal image
    hires = EngineConfig(features=replace(FIXED, crop=192, resize=192))
    assert engine.sibling(hires).config.features.side == 250  # the same product's side
    _, *others = recipe_engines(engine, RECIPES[DEFAULT_METHOD])  # frame as the task's
    assert others and all(o.config.features.side == 250 for o in others)
    assert all(o.config.features.framing == "fixed" for o in others)
    lettered = ResidualEngine(category, EngineConfig(features=LETTERBOX), cache=cache)
    assert lettered.config.features.side == 0


def test_crop_mode_is_the_centre_crop_of_the_shorter_side_resize() -> None:
    img = np.random.default_rng(0).integers(0, 255, (90, 150, 3), dtype=np.uint8)
    cfg = FeatureConfig(resize=72, crop=64)
    resized = cv2.resize(img, (120, 72), interpolation=cv2.INTER_AREA)  # shorter side 72
    expected = resized[4:68, 28:92].astype(np.float32) / 255.0
    got = preprocess([img], cfg)[0].permute(1, 2, 0).numpy()
    mean, std = np.array((0.485, 0.456, 0.406)), np.array((0.229, 0.224, 0.225))
    np.testing.assert_allclose(got * std + mean, expected, atol=1e-5)


def test_letterbox_keeps_the_whole_image_and_pads_with_the_mean_colour() -> None:
    img = np.full((50, 125, 3), 200, dtype=np.uint8)  # 1 : 2.5
    x = preprocess([img], LETTERBOX)[0]  # (3, 128, 128)
    p = placement(img.shape[:2], LETTERBOX)
    assert (p.nh, p.nw) == (51, 128) and (p.dy, p.dx) == (38, 0)
    top, left, bottom, right = p.visible()
    assert torch.all(x[:, :top] == 0) and torch.all(x[:, bottom:] == 0)  # padding = the mean
    assert torch.all(x[:, top:bottom] > 0.5)  # the image, all of it
    assert crop_box(50, 125, 128, 128, "letterbox") == (0, 0, 50, 125)
    assert crop_box(50, 125, 256, 224) != (0, 0, 50, 125)  # the crop loses the sides


def test_a_nearly_square_image_is_letterboxed_with_a_one_pixel_margin() -> None:
    """A letterboxed side one pixel short of the square (padding 0 before, 1 after) is
    still padded, never cropped (it used to fail to broadcast)."""
    img = np.full((127, 128, 3), 200, dtype=np.uint8)
    p = placement(img.shape[:2], LETTERBOX)
    assert (p.nh, p.nw, p.dy, p.dx) == (127, 128, 0, 0)
    x = preprocess([img], LETTERBOX)[0]
    assert torch.all(x[:, :127] > 0.5) and torch.all(x[:, 127] == 0)


def test_cells_map_back_into_the_image_and_padding_to_its_border() -> None:
    shape, grid = (50, 125), (16, 16)
    y, x = cell_to_image((8, 8), grid, shape, LETTERBOX)  # input pixel (68, 68)
    scale = 128 / 125  # longer side to 128; 51 rows, padded by 38 above
    assert (y, x) == pytest.approx(((68 - 38) / scale, 68 / scale))
    y, _ = cell_to_image((0, 0), grid, shape, LETTERBOX)  # a padding cell
    assert y == 0.0


def test_overlay_of_a_letterboxed_map_covers_the_whole_image() -> None:
    img = np.full((50, 125, 3), 100, dtype=np.uint8)
    amap = np.zeros((16, 16), np.float32)
    amap[7:9, :] = 1.0  # a hot band across the image's middle rows
    out = overlay_heatmap(img, amap, 0.0, 1.0, 128, 128, alpha=1.0, framing="letterbox")
    assert out.shape == img.shape
    hot, cold = out[25], out[2]  # JET: red where hot, blue where cold
    assert hot[:, 0].mean() > 100 and hot[:, 2].mean() < 50  # red on the band
    assert cold[:, 2].mean() > 100 and cold[:, 0].mean() < 50  # blue away from it


def _write(path: Path, img: np.ndarray) -> Sample:
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return Sample(path, "strip", "train" if "normal" in path.name else "test", "good")


@pytest.mark.parametrize("features", [LETTERBOX, FIXED], ids=["letterbox", "fixed"])
def test_a_defect_in_the_corner_of_an_elongated_image_is_found(
    tmp_path: Path, features: FeatureConfig
) -> None:
    """A 1 : 2.5 part with a defect in its top-left corner: the centre crop never sees it;
    the whole-image engine's map peaks on it (letterboxed, or at the product's scale)."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(90, 160, (12, 30, 3), dtype=np.uint8), (250, 100))
    normals = []
    for i in range(6):
        noisy = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
        normals.append(_write(tmp_path / f"normal_{i}.png", noisy))
    defect = base.copy()
    defect[6:26, 6:26] = (230, 30, 30)  # the corner: rows 6-26, cols 6-26
    if features.framing == "fixed":  # a window of the frame, as a border defect is cut
        defect = np.ascontiguousarray(defect[:, :125])
    query = _write(tmp_path / "defect.png", defect)
    query = Sample(query.path, "strip", "test", "spot")
    category = CategoryData("strip", "folder", tmp_path, normals, [query])
    assert crop_box(100, 250, 256, 224)[1] > 26  # the paper's crop starts right of it
    config = EngineConfig(features=features, coreset_ratio=0.5)
    engine = ResidualEngine(category, config, seed=1, cache=DiskCache(tmp_path / "cache"))
    amap = engine.anomaly_maps([query])
    cell = peak_cells(amap)[0].tolist()
    y, x = cell_to_image(cell, tuple(amap.shape[1:]), defect.shape[:2], engine.config.features)
    assert 0 <= y <= 26 + 8 and 0 <= x <= 26 + 8, (cell, y, x)  # within a cell of the defect


@pytest.mark.parametrize(
    ("argv", "framing"),
    [
        (["--dataset", "folder"], "letterbox"),  # a product folder: the whole image
        (["--dataset", "folder", "--framing", "crop"], "crop"),
        (["--config", "paper"], None),  # the paper's protocol keeps its centre crop
        (["--config", "paper", "--framing", "letterbox"], "letterbox"),
    ],
)
def test_fsad_run_frames_folder_data_whole_and_records_it(argv: list, framing) -> None:
    from fsad.cli import build_parser
    from fsad.cli.run_cmd import _config

    args = build_parser().parse_args(["run", *argv, "--out", "unused"])
    config = _config(args)
    assert config.engine.get("framing") == framing
    if framing == "letterbox":  # another engine, so another config hash than the crop's
        cropped = config.replace(engine={**config.engine, "framing": "crop"})
        assert config.config_hash() != cropped.config_hash()


def test_a_recipe_engine_framed_fixed_stays_fixed_under_the_whole_image_only(
    tmp_path: Path,
) -> None:
    normals = [
        _write(tmp_path / f"normal_{i}.png", np.full((h, w, 3), 120, np.uint8))
        for i, (h, w) in enumerate([(100, 250), (180, 90)])
    ]
    category = CategoryData("strip", "folder", tmp_path, normals, [])
    default, mixed = RECIPES["hires_lite0_poe_proto_rot4"], RECIPES[DEFAULT_METHOD]
    assert [e.features.framing for e in mixed.engines] == ["fixed"]  # the 448 px engine
    cache = DiskCache(tmp_path / "cache")
    whole = ResidualEngine(category, EngineConfig(features=LETTERBOX), cache=cache)
    _, hires = recipe_engines(whole, mixed)
    assert (hires.config.features.framing, hires.config.features.side) == ("fixed", 250)
    _, plain = recipe_engines(whole, default)  # its twin's engines follow the task
    assert (plain.config.features.framing, plain.config.features.side) == ("letterbox", 0)
    cropped = ResidualEngine(category, EngineConfig(), cache=cache)
    _, hires = recipe_engines(cropped, mixed)  # the paper's protocol crops every engine
    assert hires.config == recipe_engines(cropped, default)[1].config
    assert hires.config.features.framing == "crop"
