"""The light-fit study (research.light_fit_study): it reads the suite's light draws in the
generator's own order, and replaying them leaves the written image unchanged."""

from __future__ import annotations

import numpy as np

from fsad import suite as fs
from research import light_fit_study as lf


def _image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(10, 245, (24, 40, 3), dtype=np.uint8)


def test_the_draws_are_the_illumination_steps_own() -> None:
    # without gradient or colour the step is x -> gain * x ** gamma: the draws read by the
    # study reproduce the generator's output exactly
    settings = fs.SuiteSettings(gradient=0.0, temperature=0.0)
    image = _image()
    lit = fs.illumination(image, np.random.default_rng(7), settings)
    drawn = lf.light_draws(np.random.default_rng(7), settings)
    assert 0.6 <= drawn["gamma"] <= 1.6 and 0.75 <= drawn["gain"] <= 1.25
    x = drawn["gain"] * (image.astype(np.float32) / 255.0) ** drawn["gamma"]
    assert np.array_equal(np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8), lit)


def test_reading_the_draws_does_not_change_the_generators_stream(monkeypatch) -> None:
    image, seen = _image(), []
    real = fs.transform

    def keep(*args, **kwargs):
        seen.append(real(*args, **kwargs)[0])
        return seen[-1], None

    monkeypatch.setattr(fs, "transform", keep)
    drawn = lf.drawn_light(image, "widget", "000.jpg")
    plain = real(image, None, "all", fs.file_rng(lf.SETTINGS, "all", "widget", "good", "000.jpg"))
    assert np.array_equal(seen[0], plain[0]) and set(drawn) >= {"gamma", "gain", "gradient"}
