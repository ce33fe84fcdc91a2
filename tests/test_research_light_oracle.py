"""research.light_oracle: the generator's light divided out of a written image."""

from __future__ import annotations

import numpy as np
import pytest

from fsad import suite as fs
from research.light_fit_study import light_draws
from research.light_oracle import oracle_copy, undo_light
from research.records import oracle_study_parser


def lit_grey(image: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """``image`` lit by the suite's illumination step and made grey, with its draws."""
    rng = np.random.default_rng(seed)
    state = rng.bit_generator.state
    light = light_draws(rng, fs.SuiteSettings())
    rng.bit_generator.state = state
    return fs.grey(fs.illumination(image, rng, fs.SuiteSettings())), light


def test_undoing_the_drawn_light_returns_a_grey_image_within_rounding() -> None:
    """A grey part (R = G = B, mid-tones: nothing clipped) comes back within a few levels,
    where the lit image is far off; the colour temperature enters through the weights."""
    yy, xx = np.mgrid[0:60, 0:90]
    level = (70 + 60 * np.sin(xx / 9.0) * np.cos(yy / 7.0) + 40).astype(np.uint8)
    image = np.repeat(level[..., None], 3, axis=2)
    for seed in range(8):
        lit, light = lit_grey(image, seed)
        back = undo_light(lit, light).astype(int)
        assert back.shape == level.shape and back.dtype == np.int64
        # rounding to 8 bits before the inverse: a level or two, more in dark shadows
        assert np.median(np.abs(back - level)) <= 1.0
        assert np.abs(back - level).max() <= 6
        assert np.abs(lit.astype(int) - level).mean() > 3 * np.abs(back - level).mean()


def test_clipped_highlights_do_not_come_back() -> None:
    """A white part under a bright light is clipped: dividing the light out leaves it
    darker than it was, so the oracle places a perfect estimate below no light at all."""
    image = np.full((20, 30, 3), 250, np.uint8)
    light = {"gamma": 1.0, "gain": 1.25, "angle": 0.0, "gradient": 0.0, "temperature": 0.0}
    bright = fs.SuiteSettings(gamma=(1.0, 1.0), gain=(1.25, 1.25), gradient=0.0,
                                temperature=0.0)  # fmt: skip
    lit = fs.grey(fs.illumination(image, np.random.default_rng(0), bright))
    assert (lit == 255).all()
    back = undo_light(lit, light)
    assert (back == 204).all()  # 255 / 1.25, not 250


def test_undoing_one_part_leaves_the_other() -> None:
    """Dividing out the gain (with gradient and tint) leaves ``x ** gamma``; taking the
    power only leaves ``G ** (1 / gamma) x``."""
    level = np.full((10, 12), 120, np.uint8)
    light = {"gamma": 1.4, "gain": 0.9, "angle": 0.0, "gradient": 0.0, "temperature": 0.0}
    lit = np.uint8(np.rint(255 * 0.9 * (120 / 255) ** 1.4))
    grey = np.full_like(level, lit)
    powered = undo_light(grey, light, ("gain",)).astype(int)
    assert np.abs(powered - 255 * (120 / 255) ** 1.4).max() <= 1.0
    unpowered = undo_light(grey, light, ("gamma",)).astype(int)
    assert np.abs(unpowered - 255 * 0.9 ** (1 / 1.4) * 120 / 255).max() <= 1.0
    assert np.abs(undo_light(grey, light).astype(int) - 120).max() <= 1


def test_the_oracle_copy_is_the_same_path_under_the_oracle(tmp_path) -> None:
    suite, oracle = tmp_path / "all" / "screw", tmp_path / "undone" / "screw"
    (oracle / "good").mkdir(parents=True)
    (oracle / "good" / "000.png").write_bytes(b"")
    assert oracle_copy(oracle, suite, suite / "good" / "000.png") == oracle / "good" / "000.png"
    with pytest.raises(SystemExit, match="no oracle copy of .*001.png"):
        oracle_copy(oracle, suite, suite / "good" / "001.png")


def test_the_oracle_studies_share_their_arguments(tmp_path) -> None:
    ap = oracle_study_parser("A study.\nMore.", ["bottle", "screw"])
    args = ap.parse_args(["--suite", str(tmp_path), "--oracle", "o", "--out", "x.csv"])
    assert ap.description == "A study."
    assert args.categories == ["bottle", "screw"] and args.summary is None
    assert args.suite == tmp_path and str(args.out) == "x.csv"
