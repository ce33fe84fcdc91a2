"""Defect transplants (fsad.synth.transplant) on tiny synthetic images: a flat grey part
on a dark background, a bright blob on it as the defect."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.synth.transplant import (
    TransplantConfig,
    cut_mask,
    cut_out,
    cut_support,
    cut_threshold,
    map_to_image,
    normal_level,
    transplant,
    transplants,
)

SIZE = 256
FEATURES = FeatureConfig()  # resize 256, crop 224: a 256 px image loses 16 px each side
YY, XX = np.mgrid[:SIZE, :SIZE]
PART = (YY - 128) ** 2 + (XX - 128) ** 2 < 90**2  # the product: a disc
BLOB = (YY - 100) ** 2 + (XX - 150) ** 2 < 12**2  # the defect on it


def _part(seed: int = 0, blob: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.repeat(np.where(PART, 120.0, 20.0)[..., None], 3, axis=2)
    img += rng.normal(0, 3, img.shape)
    if blob:
        img[BLOB] = 240
    return np.clip(img, 0, 255).astype(np.uint8)


def _grid_map() -> np.ndarray:
    """A 28 x 28 anomaly map as the engine would give for the blob: a bump at its cells."""
    gy, gx = np.mgrid[:28, :28]
    # cell centre in image pixels = (cell + 0.5) * 8 + 16 (centre crop of a 256 px image)
    cy, cx = (100 - 16) / 8 - 0.5, (150 - 16) / 8 - 0.5
    return (1.0 + 10.0 * np.exp(-((gy - cy) ** 2 + (gx - cx) ** 2) / 4.0)).astype(np.float32)


def test_map_to_image_places_cells_through_the_crop() -> None:
    grid = np.zeros((28, 28), np.float32)
    grid[5, 20] = 1.0
    pix = map_to_image(grid, (SIZE, SIZE), FEATURES)
    assert pix.shape == (SIZE, SIZE)
    y, x = np.unravel_index(pix.argmax(), pix.shape)
    assert abs(y - (5.5 * 8 + 16)) <= 2 and abs(x - (20.5 * 8 + 16)) <= 2
    assert pix[:15].max() == 0 and pix[:, -15:].max() == 0  # cut off by the centre crop
    letterbox = FeatureConfig(framing="letterbox")
    grid[5, 20], grid[14, 20] = 0.0, 1.0
    wide = map_to_image(grid, (112, 448), letterbox)  # scale 0.5, placed 84 px below the top
    y, x = np.unravel_index(wide.argmax(), wide.shape)
    assert abs(y - (14.5 * 8 - 84) / 0.5) <= 4 and abs(x - 20.5 * 8 / 0.5) <= 4


def test_cut_mask_covers_the_blob_and_little_else() -> None:
    img = _part(blob=True)
    pix = map_to_image(_grid_map(), img.shape[:2], FEATURES)
    t = cut_threshold(float(pix.max()), normal=2.0)
    coarse = cut_mask(img, pix, t, grabcut=False)
    fine = cut_mask(img, pix, t, foreground=PART, grabcut=True)
    for mask in (coarse, fine):
        assert (mask & BLOB).sum() / BLOB.sum() > 0.9
    assert (fine & ~BLOB).sum() < 0.2 * BLOB.sum()  # GrabCut trims the coarse map
    assert (fine & ~BLOB).sum() < (coarse & ~BLOB).sum()


def test_cut_support_and_thresholds() -> None:
    img = _part(blob=True)
    cut = cut_support(img, _grid_map(), "blob", FEATURES, normal=2.0, foreground=PART)
    assert cut.label == "blob" and cut.patch.shape[:2] == cut.mask.shape
    top, left, bottom, right = cut.box
    assert top <= 88 and left <= 138 and bottom >= 112 and right >= 162
    assert cut_threshold(10.0, 2.0) == 5.0 and cut_threshold(10.0, 7.0) == 7.0
    assert cut_threshold(10.0, 12.0) == 5.0  # a faint defect: relative threshold only
    maps = np.stack([np.full((4, 4), v, np.float32) for v in (1.0, 2.0, 3.0)])
    assert normal_level(maps, 1.0) == 3.0


def _cutout():
    img = _part(blob=True)
    return cut_out(img, BLOB, "blob", margin=6)


@pytest.mark.parametrize("blend", ["poisson", "alpha"])
def test_transplant_lands_on_the_foreground_and_carries_the_label(blend: str) -> None:
    normal = _part(seed=3)
    config = TransplantConfig(blend=blend, rotation=(-180, 180))
    for seed in range(4):
        t = transplant(_cutout(), normal, seed, PART, config)
        assert t.label == "blob" and t.image.shape == normal.shape and t.image.dtype == np.uint8
        assert t.mask.sum() > 0.5 * BLOB.sum()
        assert (t.mask & PART).sum() / t.mask.sum() >= 0.95
        assert t.params["on_foreground"] >= 0.95
        diff = np.abs(t.image.astype(int) - normal.astype(int)).max(2)
        assert diff[t.mask].mean() > 40  # the bright defect is there
        far = ~_dilate(t.mask, 12)  # pixels well away from the paste
        assert diff[far].max() <= 2 if blend == "alpha" else diff[far].mean() < 1


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def test_same_seed_same_bytes_and_labels_carried() -> None:
    normals = [_part(seed=s) for s in (1, 2, 3)]
    cuts = [_cutout(), dataclasses.replace(_cutout(), label="other")]
    a = transplants(cuts, normals, 3, seed=7, foregrounds=[PART] * 3)
    b = transplants(cuts, normals, 3, seed=7, foregrounds=[PART] * 3)
    c = transplants(cuts, normals, 3, seed=8, foregrounds=[PART] * 3)
    assert [t.label for t in a] == ["blob"] * 3 + ["other"] * 3
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b, strict=True))
    assert all(x.mask.tobytes() == y.mask.tobytes() for x, y in zip(a, b, strict=True))
    assert any(x.image.tobytes() != y.image.tobytes() for x, y in zip(a, c, strict=True))


def test_clear_errors() -> None:
    normal = _part()
    with pytest.raises(ConfigError, match="blend"):
        TransplantConfig(blend="magic")
    with pytest.raises(ConfigError, match="scale"):
        TransplantConfig(scale=(2.0, 1.0))
    with pytest.raises(ConfigError, match="normal image"):
        transplant(_cutout(), normal[..., 0], 0)
    with pytest.raises(ConfigError, match="foreground is empty"):
        transplant(_cutout(), normal, 0, np.zeros(PART.shape, bool))
    with pytest.raises(ConfigError, match="foreground shape"):
        transplant(_cutout(), normal, 0, PART[:10])
    with pytest.raises(ConfigError, match="empty defect mask.*'blob'"):
        cut_out(normal, np.zeros(PART.shape, bool), "blob")
    with pytest.raises(ConfigError, match="map shape"):
        cut_mask(normal, np.zeros((5, 5), np.float32), 1.0)
    with pytest.raises(ConfigError, match="no normal images"):
        transplants([_cutout()], [], 2, seed=0)
    with pytest.raises(ConfigError, match="2 foreground masks for 1"):
        transplants([_cutout()], [normal], 2, seed=0, foregrounds=[PART, PART])
    with pytest.raises(ConfigError, match="normal images"):
        normal_level(np.zeros((0, 4, 4)))


def test_context_place_matches_the_surroundings() -> None:
    # the normal part: left half as the support's part (120), right half much darker (50)
    normal = _part(seed=5)
    normal[PART & (XX >= 128)] = 50
    config = TransplantConfig(place="context", candidates=16)
    lands = [transplant(_cutout(), normal, s, PART, config).params["centre"][1] for s in range(6)]
    assert all(x < 128 for x in lands)  # always on the part that looks like the support's
    random = TransplantConfig(place="random")
    spread = [transplant(_cutout(), normal, s, PART, random).params["centre"][1] for s in range(6)]
    assert any(x >= 128 for x in spread)
    with pytest.raises(ConfigError, match="place"):
        TransplantConfig(place="anywhere")
