"""Synthetic defect classes: masks, foreground, blending, textures, pseudo-class datasets, CLI.

Fast tests on small synthetic arrays and a tiny MVTec-like folder written per test session.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.errors import ConfigError, DataError
from fsad.synth import (
    FAMILIES,
    PseudoClassDataset,
    TextureSource,
    blend,
    foreground_mask,
    is_grey,
    method_for,
    perlin_mask,
    perlin_noise,
    polygon_mask,
    procedural_texture,
)
from fsad.synth import foreground as fgmod
from fsad.synth.foreground import auto_foreground, cached_foreground_mask
from fsad.synth.masks import SPOT_DIAMETER, STROKE_WIDTH, spot_mask, stroke_mask

S = 128  # image side in fast tests


# ---------------------------------------------------------------- fixtures
def _disc_image(rng: np.random.Generator, size: int = S, grey: bool = False) -> np.ndarray:
    """Bright disc (the product) on a dark, slightly noisy background."""
    img = np.full((size, size, 3), 20, np.uint8)
    c = (int(size / 2 + rng.integers(-8, 9)), int(size / 2 + rng.integers(-8, 9)))
    color = (200, 200, 200) if grey else tuple(int(v) for v in rng.integers(120, 255, 3))
    cv2.circle(img, c, size // 3, color, -1)
    noise = rng.integers(0, 6, size=(size, size, 1) if grey else (size, size, 3))
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/<cat>/{train/good, test/good, test/crack}`` for a colour and a grey product."""
    root = tmp_path_factory.mktemp("tiny_mvtec")
    rng = np.random.default_rng(0)
    for cat, grey in (("bottle", False), ("screw", True)):
        for i in range(6):
            img = _disc_image(rng, grey=grey)
            _write(root / cat / "train/good" / f"{i:03d}.png", img[..., 0] if grey else img)
        for label in ("good", "crack"):
            for i in range(2):
                _write(root / cat / "test" / label / f"{i:03d}.png", _disc_image(rng, grey=grey))
    return root


@pytest.fixture(scope="module")
def red_dtd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DTD-layout folder with a pure red and a pure blue class (written as real files)."""
    root = tmp_path_factory.mktemp("dtd")
    for name, rgb in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        tex = np.zeros((40, 50, 3), np.uint8)
        tex[:] = rgb
        _write(root / "images" / name / f"{name}_0001.jpg", tex)
        _write(root / "images" / name / f"{name}_0002.jpg", 255 - tex)
    return root


def _fg_disc(size: int = S) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2


# ---------------------------------------------------------------- Perlin and polygon masks
def test_perlin_noise_shape_range_and_determinism() -> None:
    a = perlin_noise((100, 70), (4, 8), np.random.default_rng(1))
    b = perlin_noise((100, 70), (4, 8), np.random.default_rng(1))
    assert a.shape == (100, 70) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert -1.0 <= a.min() < 0 < a.max() <= 1.0
    assert a.std() > 0.1


@pytest.mark.parametrize("seed", range(8))
def test_perlin_mask_area_in_range_and_inside_foreground(seed: int) -> None:
    fg = _fg_disc()
    raw, mask = perlin_mask((S, S), np.random.default_rng(seed), fg)
    assert raw.dtype == bool and raw.shape == (S, S)
    assert 0.1 <= raw.mean() <= 0.4  # area redrawn into [0.1, 0.4] of the image
    assert np.array_equal(mask, raw & fg)
    assert not (mask & ~fg).any()  # never leaves the foreground
    assert mask.sum() >= 0.05 * fg.sum()


def test_perlin_mask_custom_area_and_determinism() -> None:
    for seed in range(5):
        raw, _ = perlin_mask((S, S), np.random.default_rng(seed), None, area=(0.2, 0.25))
        assert 0.2 <= raw.mean() <= 0.25
    a = perlin_mask((S, S), np.random.default_rng(3))[1]
    b = perlin_mask((S, S), np.random.default_rng(3))[1]
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="area range"):
        perlin_mask((S, S), np.random.default_rng(0), area=(0.5, 0.1))


def test_perlin_mask_small_foreground_is_never_empty() -> None:
    fg = np.zeros((S, S), bool)
    fg[60:70, 20:110] = True  # a thin product, 5.5 % of the image
    for seed in range(10):
        _, mask = perlin_mask((S, S), np.random.default_rng(seed), fg)
        assert mask.any() and not (mask & ~fg).any()


@pytest.mark.parametrize("n_sides", [3, 4, 5])
def test_polygon_mask_shape_area_and_foreground(n_sides: int) -> None:
    size = 256
    raw, mask = polygon_mask((size, size), np.random.default_rng(n_sides), n_sides)
    d = size / 5  # diameter min(H, W) / 5 (Appendix C)
    expected = n_sides / 2 * (d / 2) ** 2 * np.sin(2 * np.pi / n_sides)
    if raw.sum() > 0.9 * expected:  # fully inside the image
        assert raw.sum() == pytest.approx(expected, rel=0.1)  # rasterised edges
    assert mask.mean() > 0.01
    fg = _fg_disc(size)
    for seed in range(5):
        raw, mask = polygon_mask((size, size), np.random.default_rng(seed), n_sides, fg)
        assert not (mask & ~fg).any()
        assert mask.mean() > 0.01
    with pytest.raises(ValueError):
        polygon_mask((size, size), np.random.default_rng(0), 2)


# ---------------------------------------------------------------- blending
def test_blend_matches_formula_and_keeps_outside() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    tex = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = rng.random((32, 32)) > 0.5
    beta = 0.3
    out = blend(img, tex, mask, beta)
    m = mask[..., None].astype(float)
    ref = img * (1 - m) + (1 - beta) * tex * m + beta * img * m  # section 3.5
    assert out.dtype == np.uint8
    assert np.abs(out.astype(float) - ref).max() <= 0.5 + 1e-6
    assert np.array_equal(out[~mask], img[~mask])
    assert np.array_equal(blend(img, tex, mask.astype(np.float32), beta), out)  # soft-mask path


def test_blend_known_values_and_errors() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 1] = 100  # green-ish product: not grey
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[..., 0] = 200  # red texture, other size: resized
    mask = np.ones((4, 4), bool)
    assert blend(img, tex, mask, 0.0)[0, 0].tolist() == [200, 0, 0]
    assert blend(img, tex, mask, 0.5)[0, 0].tolist() == [100, 50, 0]
    with pytest.raises(ValueError, match="beta"):
        blend(img, tex, mask, 1.5)
    with pytest.raises(ValueError, match="mask shape"):
        blend(img, tex, np.ones((3, 4), bool), 0.1)


def test_grey_images_work_and_stay_grey() -> None:
    grey = np.full((16, 16), 120, np.uint8)
    tex = np.zeros((16, 16, 3), np.uint8)
    tex[..., 0] = 255
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    out = blend(grey, tex, mask, 0.0)
    assert out.shape == (16, 16, 3) and is_grey(out)
    assert out[8, 8, 0] == round(0.299 * 255)  # red's luminance
    coloured = blend(grey, tex, mask, 0.0, grey="keep")
    assert coloured[8, 8].tolist() == [255, 0, 0]
    colour_img = np.zeros((16, 16, 3), np.uint8)
    colour_img[..., 2] = 90
    px = blend(colour_img, tex, mask, 0.0, grey="always")[mask]
    assert (px[:, 0] == px[:, 1]).all() and (px[:, 1] == px[:, 2]).all()
    with pytest.raises(ValueError, match="grey must be"):
        blend(grey, tex, mask, 0.0, grey="sometimes")
    assert foreground_mask(grey, "screw").shape == (16, 16)


# ---------------------------------------------------------------- foreground masks
def test_method_table_and_unknown_method() -> None:
    assert method_for("bottle") == "floodfill"
    assert method_for("cable") == "grabcut"
    assert method_for("metal_nut") == "floodfill_center"
    assert method_for("carpet") == "none"
    assert method_for("foam", "mvtec_3d") == "grabcut"
    assert method_for("tire", "mvtec_3d") == "none"
    assert method_for("my_widget", "folder") == "auto"
    assert method_for(None) == "auto"
    with pytest.raises(ConfigError, match="nope"):
        foreground_mask(np.zeros((8, 8, 3), np.uint8), method="nope")


@pytest.mark.parametrize("method", ["floodfill", "grabcut", "auto"])
def test_foreground_finds_the_disc(method: str) -> None:
    img = _disc_image(np.random.default_rng(1))
    fg = foreground_mask(img, method=method)
    truth = np.abs(img.astype(int) - 20).max(axis=2) > 40
    iou = (fg & truth).sum() / (fg | truth).sum()
    assert iou > 0.9


def test_floodfill_center_removes_the_hole() -> None:
    img = np.full((S, S, 3), 20, np.uint8)
    cv2.circle(img, (S // 2, S // 2), 40, (180, 180, 180), -1)
    cv2.circle(img, (S // 2, S // 2), 12, (20, 20, 20), -1)  # the nut's hole
    plain = foreground_mask(img, method="floodfill")
    holed = foreground_mask(img, "metal_nut")
    assert plain[S // 2, S // 2] and not holed[S // 2, S // 2]
    assert holed[S // 2, S // 2 + 25]


def test_auto_rule_whole_image_for_textures() -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)  # busy border
    assert auto_foreground(texture).all()
    flat = np.full((S, S, 3), 90, np.uint8)  # uniform border, nothing on it
    assert auto_foreground(flat).all()


def test_foreground_mask_is_cached_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = _disc_image(np.random.default_rng(2))
    path = tmp_path / "a.png"
    _write(path, img)
    cache = DiskCache(tmp_path / "cache")
    first = cached_foreground_mask(path, img, "bottle", cache=cache)
    assert list((tmp_path / "cache" / "synth_foreground").glob("*.pt"))

    def boom(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("recomputed")

    monkeypatch.setattr(fgmod, "foreground_mask", boom)
    assert np.array_equal(cached_foreground_mask(path, img, "bottle", cache=cache), first)
    with pytest.raises(AssertionError, match="recomputed"):  # other method -> other key
        cached_foreground_mask(path, img, "bottle", method="grabcut", cache=cache)


# ---------------------------------------------------------------- textures
def test_dtd_source_reads_rgb_first_image_per_class(red_dtd: Path) -> None:
    for root in (red_dtd, red_dtd / "images"):
        tex = TextureSource.from_dtd(root)
        assert tex.classes == ["blue", "red"]
        assert [p.name for p in tex.files["red"]] == ["red_0001.jpg"]
        red = tex.image("red")
        assert red.shape == (40, 50, 3)
        assert red[..., 0].min() > 240 and red[..., 1:].max() < 15  # RGB, not BGR
    assert TextureSource.from_dtd(red_dtd, per_class=None).n_images("red") == 2


def test_missing_or_empty_texture_folder_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dtd"
    with pytest.raises(DataError, match="texture folder not found: .*no_such_dtd"):
        TextureSource.from_dtd(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no texture class folders"):
        TextureSource.from_dtd(tmp_path / "empty")
    (tmp_path / "hollow" / "images" / "lined").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images: .*lined"):
        TextureSource.from_dtd(tmp_path / "hollow")


def test_procedural_bank_is_large_distinct_and_deterministic() -> None:
    assert len(FAMILIES) >= 20
    textures = {f: procedural_texture(f, seed=0, size=64) for f in FAMILIES}
    for t in textures.values():
        assert t.shape == (64, 64, 3) and t.dtype == np.uint8 and t.std() > 5
    assert np.array_equal(
        procedural_texture("cracked", 3, 64), procedural_texture("cracked", 3, 64)
    )
    assert not np.array_equal(
        procedural_texture("cracked", 3, 64), procedural_texture("cracked", 4, 64)
    )
    # distinct families: the normalised grey-level structure differs for every pair
    keys = list(textures)
    grey = {k: cv2.cvtColor(textures[k], cv2.COLOR_RGB2GRAY).astype(float) for k in keys}
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert np.abs(grey[a] - grey[b]).mean() > 5, (a, b)
    src = TextureSource.procedural(n_classes=30, seed=1)
    assert len(src.classes) == len(set(src.classes)) == 30
    assert not np.array_equal(src.image(src.classes[0]), src.image(src.classes[24]))


# ---------------------------------------------------------------- pseudo-class datasets
def test_pseudo_dataset_layout_determinism_and_masks(tiny_root: Path) -> None:
    data = load_category(tiny_root, "mvtec_ad", "bottle")
    tex = TextureSource.procedural(n_classes=5, seed=0)
    ds = PseudoClassDataset(data, tex, seed=1, size=S, n_per_class=4)
    assert len(ds) == 20 and ds.classes == tex.classes and ds.n_sources == 4
    assert ds.labels.tolist() == [c for c in range(5) for _ in range(4)]
    again = PseudoClassDataset(data, tex, seed=1, size=S, n_per_class=4)
    other = PseudoClassDataset(data, tex, seed=2, size=S, n_per_class=4)
    for i in (0, 7, 19):
        s = ds[i]
        assert s.image.shape == (S, S, 3) and s.image.dtype == np.uint8
        assert s.label == i // 4 and s.class_name == tex.classes[s.label]
        assert s.source == ds.sources[i % 4]
        assert 0.0 <= s.beta < 0.5
        assert 0.1 <= s.raw_mask.mean() <= 0.4
        assert not (s.mask & ~s.foreground).any()
        assert s.mask.any()
        assert np.array_equal(ds.source_image(s.source_index)[~s.mask], s.image[~s.mask])
        assert np.array_equal(s.image, again[i].image) and np.array_equal(s.mask, again[i].mask)
    assert any(not np.array_equal(ds[i].image, other[i].image) for i in range(4))
    assert len(PseudoClassDataset(data, tex, n_per_class=None)) == 5 * len(data.train)
    assert ds.key() == again.key() != other.key()
    with pytest.raises(IndexError):
        ds[20]
    with pytest.raises(ConfigError, match="generator"):
        PseudoClassDataset(data, tex, generator="blobs")


def test_pseudo_dataset_polygon_classes(tiny_root: Path) -> None:
    data = load_category(tiny_root, "mvtec_ad", "bottle")
    tex = TextureSource.procedural(n_classes=2)
    ds = PseudoClassDataset(data, tex, generator="polygon", size=S, n_per_class=2)
    assert ds.classes == [f"{t}/{n}-gon" for t in tex.classes for n in (3, 4, 5)]
    assert len(ds) == 12
    s = ds[5]
    assert s.class_name == f"{tex.classes[0]}/5-gon" and s.texture == tex.classes[0]
    assert not (s.mask & ~s.foreground).any() and s.mask.any()


def test_stroke_is_thin_and_long_and_spot_small_and_round() -> None:
    size, fg = 256, _fg_disc(256)
    for seed in range(5):
        raw, mask = stroke_mask((size, size), np.random.default_rng(seed), fg)
        assert not (mask & ~fg).any() and mask.sum() >= 0.001 * size * size
        ys, xs = np.nonzero(raw)
        extent = max(np.ptp(ys), np.ptp(xs))
        # thin: far fewer pixels than its bounding extent squared; long: tens of pixels
        assert extent > 20 and raw.sum() < extent * STROKE_WIDTH[1] * size * 3
        raw, mask = spot_mask((size, size), np.random.default_rng(seed), fg)
        ys, xs = np.nonzero(raw)
        assert max(np.ptp(ys), np.ptp(xs)) <= SPOT_DIAMETER[1] * size + 2
        assert raw.sum() > 0.5 * (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # filled, not a ring
    a, _ = stroke_mask((size, size), np.random.default_rng(3), fg)
    b, _ = stroke_mask((size, size), np.random.default_rng(3), fg)
    np.testing.assert_array_equal(a, b)


def test_pseudo_dataset_shape_classes(tiny_root: Path) -> None:
    data = load_category(tiny_root, "mvtec_ad", "bottle")
    tex = TextureSource.procedural(n_classes=4)
    ds = PseudoClassDataset(data, tex, generator="shapes", size=S, n_per_class=2)
    kinds = ("blob", "stroke", "spot", "blob")
    assert ds.classes == [f"{t}/{k}" for t, k in zip(tex.classes, kinds, strict=True)]
    areas = {k: [] for k in kinds}
    for i in range(len(ds)):
        s = ds[i]
        assert s.texture == tex.classes[s.label] and not (s.mask & ~s.foreground).any()
        areas[kinds[s.label]].append(s.raw_mask.mean())
    # Perlin blobs cover 10-40 % of the image, strokes and spots a few %
    assert min(areas["blob"]) > 3 * max(areas["stroke"] + areas["spot"])
    assert ds.key()["generator"] == "shapes"
    with pytest.raises(ConfigError, match="unknown generator 'lines'"):
        PseudoClassDataset(data, tex, generator="lines", size=S)


def test_pure_red_texture_stays_red(tiny_root: Path, red_dtd: Path) -> None:
    data = load_category(tiny_root, "mvtec_ad", "bottle")
    ds = PseudoClassDataset(data, TextureSource.from_dtd(red_dtd), size=S, n_per_class=2,
                            beta_range=(0.0, 1e-9))  # fmt: skip
    s = ds[ds.classes.index("red") * ds.n_sources]
    px = s.image[s.mask].astype(int)
    assert px[:, 0].min() > 235 and px[:, 1:].max() < 25


def test_grey_product_gets_grey_defects(tiny_root: Path, red_dtd: Path) -> None:
    data = load_category(tiny_root, "mvtec_ad", "screw")
    ds = PseudoClassDataset(data, TextureSource.from_dtd(red_dtd), size=S, n_per_class=2)
    for i in range(len(ds)):
        assert is_grey(ds[i].image)


# ---------------------------------------------------------------- CLI
def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_writes_identical_files_for_the_same_seed(
    tiny_root: Path, tmp_path: Path, tmp_cache: Path, red_dtd: Path
) -> None:
    from fsad.cli import main

    base = ["synth", "--data", str(tiny_root), "--category", "bottle", "--n", "2", "--size", "64"]
    assert main([*base, "--out", str(tmp_path / "a"), "--seed", "5"]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--seed", "5"]) == 0
    assert main([*base, "--out", str(tmp_path / "c"), "--seed", "6"]) == 0
    a, b, c = (_tree(tmp_path / x) for x in "abc")
    assert a == b and a != c
    n = 24 * 2
    assert (
        sum(k.startswith("images/") for k in a) == n and sum(k.startswith("masks/") for k in a) == n
    )
    rows = (tmp_path / "a" / "labels.csv").read_text().splitlines()
    assert rows[0].startswith("image,mask,label,class") and len(rows) == n + 1
    mask = cv2.imread(str(tmp_path / "a" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(mask)) <= {0, 255}
    assert main([*base, "--out", str(tmp_path / "d"), "--textures", str(red_dtd),
                 "--generator", "polygon"]) == 0  # fmt: skip
    assert len((tmp_path / "d" / "labels.csv").read_text().splitlines()) == 2 * 3 * 2 + 1


def test_cli_errors_are_one_line_and_leave_nothing(
    tiny_root: Path, tmp_path: Path, tmp_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fsad.cli import main

    base = ["synth", "--data", str(tiny_root), "--category", "bottle", "--n", "1", "--size", "64"]
    out = tmp_path / "out"
    assert main([*base, "--out", str(out), "--textures", str(tmp_path / "dtd_missing")]) == 2
    err = capsys.readouterr().err
    assert "texture folder not found" in err and "dtd_missing" in err and err.count("\n") == 1
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())  # no temp folder
    out.mkdir()
    assert main([*base, "--out", str(out)]) == 2
    assert "output folder exists" in capsys.readouterr().err
    assert main([*base, "--out", str(out), "--overwrite"]) == 0
    assert (out / "labels.csv").is_file()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_auto_rule_on_the_embedded_products(tmp_path: Path) -> None:
    """The automatic default finds the embedded washer and takes whole fabric images."""
    from fsad.data import read_image
    from fsad.embedded import generate

    root = generate(tmp_path / "emb", seed=0, n_train=2, n_test_per_type=2, n_good_test=1, size=128)
    for category, (lo, hi) in {"washer": (0.15, 0.5), "fabric": (1.0, 1.0)}.items():
        data = load_category(root, "mvtec_ad", category)
        assert method_for(category) == "auto"
        for s in data.train:
            assert lo <= foreground_mask(read_image(s.path), category).mean() <= hi
