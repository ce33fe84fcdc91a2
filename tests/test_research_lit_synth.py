"""Signal round 3: synthetic textures lit as their source image before pasting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fsad.data import load_category
from fsad.synth import PseudoClassDataset, TextureSource
from research.lit_synth_signal import LitPaste, lit_texture, luminance, main, read_light
from research.own_synth import OwnSynthConfig, synthetic_images
from research.synth_light_signal import check_maker


def _ramp(h: int = 64, w: int = 64) -> np.ndarray:
    """A grey image with texture: a horizontal ramp 60-200 with stripes, ``(h, w, 3)``."""
    x = np.linspace(60, 200, w)[None, :] + 20 * (np.arange(h)[:, None] % 4 == 0)
    return np.repeat(np.clip(x, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_read_light_follows_gain_and_gamma() -> None:
    """Three sources: the image, it at gain 0.5 and it at gamma 1.5 (in [0, 1] units). The
    median source is the reference, so the image itself reads level ~1 and gamma 1."""
    base = _ramp().astype(np.float32) / 255
    dark = np.rint(base * 0.5 * 255).astype(np.uint8)
    hard = np.rint(base**1.5 * 255).astype(np.uint8)
    light = read_light(np.stack([_ramp(), dark, hard]))
    assert light.level.shape == (3, 64, 64) and light.gamma.shape == (3,)
    mid = slice(24, 40)  # away from the blur's border
    ratio = light.level[1, mid, mid] / light.level[0, mid, mid]
    np.testing.assert_allclose(ratio, 0.5, atol=0.02)
    # log((x ** 1.5)) = 1.5 log x: the spread grows by 1.5; gain 0.5 leaves the spread alone
    np.testing.assert_allclose(light.gamma, [1.0, 1.0, 1.5], atol=0.02)


def test_read_light_clips_its_readings() -> None:
    black = np.zeros((32, 32, 3), np.uint8)
    light = read_light(np.stack([_ramp(32, 32), _ramp(32, 32), black]))
    assert light.level[2].min() == pytest.approx(0.25) and light.gamma[2] == 0.5


def test_lit_texture_is_the_identity_at_level_one_and_gamma_one() -> None:
    tex = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ones = np.ones((16, 16), np.float32)
    np.testing.assert_array_equal(lit_texture(tex, ones, 1.0), tex)
    half = lit_texture(tex, 0.5 * ones, 1.0).astype(int)
    assert np.abs(half - np.rint(tex / 2)).max() <= 1
    # gamma > 1 darkens mid-tones and keeps black and white
    assert lit_texture(np.array([[[0, 128, 255]]], np.uint8), ones[:1, :1], 2.0).tolist() == [
        [[0, 64, 255]]
    ]


def test_luminance_is_floored_and_weighted() -> None:
    assert luminance(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(1 / 255)
    red = luminance(np.array([[[255, 0, 0]]], np.uint8))[0, 0]
    assert red == pytest.approx(0.299, abs=1e-6)


@pytest.fixture(scope="module")
def lit_category(tmp_path_factory: pytest.TempPathFactory):
    """Six grey normal images: three as drawn, three at a third of the gain."""
    root = tmp_path_factory.mktemp("lit")
    for split, kind, n in (("train", "good", 6), ("test", "good", 1), ("test", "cut", 1)):
        for i in range(n):
            image = _ramp(48, 48) if i % 2 == 0 else (_ramp(48, 48) // 3)
            path = root / "part" / split / kind / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
    return load_category(root, "mvtec_ad", "part")


def test_lit_paste_changes_only_the_masked_pixels_and_follows_the_source(lit_category) -> None:
    textures = TextureSource.procedural(n_classes=4, size=48)
    data = PseudoClassDataset(
        lit_category, textures, generator="shapes", seed=1, size=48, n_per_class=6
    )
    paste = LitPaste()
    light = paste.light(data)
    assert paste.light(data) is light  # read once per dataset
    seen = set()
    for i in range(len(data)):
        item, lit = data[i], paste(data, i)
        assert lit.shape == item.image.shape and lit.dtype == np.uint8
        np.testing.assert_array_equal(lit[~item.mask], item.image[~item.mask])
        assert np.ptp(lit.astype(int), axis=2).max() == 0  # a grey source keeps grey defects
        j = data.source_of(i)
        if item.mask.any():
            seen.add(bool(light.level[j].mean() < 0.7))
    assert seen == {True, False}  # both the dark and the bright sources were pasted on
    dark = [j for j in range(data.n_sources) if light.level[j].mean() < 0.7]
    bright = [j for j in range(data.n_sources) if j not in dark]
    assert light.level[dark].mean() < 0.5 * light.level[bright].mean()
    # the pasted pixels themselves: a texture on a dark source is pasted darker than as drawn
    darker = []
    for i in range(len(data)):
        item, j = data[i], data.source_of(i)
        if item.mask.any():
            lit_mean = paste(data, i)[item.mask].mean()
            darker.append((j in dark, lit_mean < item.image[item.mask].mean()))
    assert {d for is_dark, d in darker if is_dark} == {True}


def test_synthetic_images_take_the_relight(lit_category) -> None:
    textures = TextureSource.procedural(n_classes=4, size=48)
    config = OwnSynthConfig(n_textures=4, n_sources=3, size=48, n_way=2, shots=1)
    plain, labels = synthetic_images(lit_category, textures, config, seed=1)
    lit, same = synthetic_images(lit_category, textures, config, seed=1, relight=LitPaste())
    np.testing.assert_array_equal(labels, same)
    assert len(lit) == len(plain) and any(
        not np.array_equal(a, b) for a, b in zip(lit, plain, strict=True)
    )
    calls: list[int] = []
    synthetic_images(
        lit_category, textures, config, seed=1, relight=lambda d, i: calls.append(i) or d[i].image
    )
    assert calls == list(range(12))


def test_round_module_runs_signal_round_two_s_command_line(tmp_path: Path, capsys) -> None:
    """``--report`` reads a record through :func:`fsad.report.signal_sees`."""
    rows = []
    for images, shift in (("all", 0.0), ("all_light_undone", 0.05)):
        for category in ("bottle", "screw"):
            scores = {"synth_acc": 0.5 + shift, "support_loo": 0.6, "query_acc": 0.7}
            rows.append({"images": images, "category": category, "seed": 1, **scores})
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    main(["--report", str(tmp_path / "r.csv")])
    mean_row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert mean_row[0] == "mean" and mean_row[-1] == "True"
    assert "5.0" in mean_row  # the synthetic change, points


def test_a_record_of_another_image_maker_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    check_maker(out, "lit_textures")  # no record yet
    pd.DataFrame({"synthetic": ["intensity"], "seed": [1]}).to_csv(out, index=False)
    check_maker(out, "intensity")
    with pytest.raises(SystemExit, match=r"r.csv: its rows were made by \['intensity'\]"):
        check_maker(out, "lit_textures")
    pd.DataFrame({"seed": [1]}).to_csv(out, index=False)
    with pytest.raises(SystemExit, match="not recorded"):
        check_maker(out, "textures")
