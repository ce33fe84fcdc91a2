"""The feature light study's pieces (research wing): the light the images of a version share,
the oracle's copy under it, the simpler estimates beside the library's."""

import numpy as np
import pytest

from fsad.light_estimate import log_quantiles
from research import light_feature_study as lf


def _textured(seed: int, h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = rng.integers(40, 220, size=(h, w)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _gamma(image: np.ndarray, gamma: float, gain: float = 1.0) -> np.ndarray:
    x = gain * (image / 255.0) ** gamma
    return np.clip(np.rint(255 * x), 0, 255).astype(np.uint8)


def test_the_common_light_reads_a_gamma_every_image_shares() -> None:
    oracle = [_textured(i) for i in range(4)]
    a, b = lf.common_light([_gamma(o, 0.8) for o in oracle], oracle)
    assert a == pytest.approx(0.8, abs=0.02) and abs(b) < 0.02  # log y = 0.8 log x
    a, b = lf.common_light(oracle, oracle)
    assert a == pytest.approx(1.0, abs=1e-6) and b == pytest.approx(0.0, abs=1e-6)


def test_the_truth_under_the_common_light_is_the_oracle_relit() -> None:
    oracle = _textured(0)
    assert np.array_equal(lf.truth_of(oracle, 1.0, 0.0), oracle)
    relit = lf.truth_of(oracle, 0.8, 0.0).astype(int)
    assert np.abs(relit - _gamma(oracle, 0.8).astype(int)).max() <= 1


def test_the_gain_alone_is_undone_against_the_reference() -> None:
    image = _textured(1)
    reference = log_quantiles(image)
    darker = _gamma(image, 1.0, gain=0.7)
    back = lf.undo_gain(darker, reference, plane=False).astype(int)
    assert np.abs(back - image.astype(int)).mean() < 2.0
    assert np.array_equal(lf.undo_gain(image, reference, plane=False), image)


def test_the_gain_after_the_plane_flattens_a_ramp_too() -> None:
    image = _textured(3)
    u = np.linspace(-0.5, 0.5, image.shape[1])[None, :, None]
    ramped = np.clip(np.rint(image * 0.8 * np.exp(0.6 * u)), 0, 255).astype(np.uint8)
    reference = log_quantiles(image)
    with_plane = lf.undo_gain(ramped, reference, plane=True).astype(int)
    without = lf.undo_gain(ramped, reference, plane=False).astype(int)
    err = [np.abs(x - image.astype(int)).mean() for x in (with_plane, without)]
    assert err[0] < err[1]


def test_without_a_plane_the_fit_undoes_a_gamma() -> None:
    image = _textured(2)
    back = lf.undo_no_plane(_gamma(image, 1.3), log_quantiles(image)).astype(int)
    assert np.abs(back - image.astype(int)).mean() < 2.0


def test_every_version_is_named_and_as_shot_is_the_image() -> None:
    assert list(lf.VARIANTS) == ["shot", "library", "no_plane", "gain_plane", "gain"]
    assert lf.VARIANTS["shot"] is None and lf.ENGINES == ("first", "hires")
