"""The pose estimate study's pieces (research wing): the drawn pose replayed, a rotation read
back by registration, the summary's errors."""

import numpy as np
import pandas as pd
import pytest

from fsad import suite as fs
from fsad.data import GOOD
from fsad.report import pose_estimate_summary, wrapped_angle
from research import pose_estimate_study as pe


def _scene(side: int = 320) -> np.ndarray:
    """A textured, asymmetric picture: blobs and bars at random places, ``(side, side, 3)``."""
    import cv2

    rng = np.random.default_rng(3)
    image = np.full((side, side, 3), 90, np.uint8)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(40, side - 40, size=2))
        colour = tuple(int(v) for v in rng.integers(0, 255, size=3))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), int(rng.integers(4, 18)), colour, -1)
        else:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(5, 30)), y + 6), colour, -1)
    return image


def _rotated(image: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderValue=(90, 90, 90))


@pytest.mark.parametrize("angle", [-150.0, -35.0, 20.0, 120.0])
def test_registration_reads_back_a_known_rotation(angle: float) -> None:
    scene = _scene()
    moving = pe.keypoints(pe.grey_at(scene))
    fixed = pe.keypoints(pe.grey_at(_rotated(scene, angle)))
    found, scale, inliers = pe.registration(moving, fixed)
    assert inliers >= pe.MIN_INLIERS
    assert abs(float(wrapped_angle(found - angle))) < 2.0
    assert scale == pytest.approx(1.0, abs=0.05)


def test_a_lower_contrast_threshold_finds_more_keypoints() -> None:
    grey = pe.grey_at(_scene())
    assert len(pe.keypoints(grey, pe.CONTRAST)[0]) > len(pe.keypoints(grey)[0])


def test_a_blank_image_is_not_registered() -> None:
    blank = pe.keypoints(np.full((128, 128), 100, np.uint8))
    found, scale, inliers = pe.registration(blank, pe.keypoints(pe.grey_at(_scene())))
    assert np.isnan(found) and np.isnan(scale) and inliers == 0


def test_the_drawn_pose_is_the_one_the_generator_turns_by(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the whole suite `all` on a file's own generator: the angle its pose step turns by
    import cv2

    turned: list[float] = []
    real = cv2.getRotationMatrix2D

    def spy(centre: tuple[float, float], angle: float, scale: float) -> np.ndarray:
        turned.append(angle)
        return real(centre, angle, scale)

    monkeypatch.setattr(cv2, "getRotationMatrix2D", spy)
    for category, name in [("bottle", "000.jpg"), ("transistor", "017.jpg")]:
        turned.clear()
        rng = fs.file_rng(pe.SETTINGS, "all", category, GOOD, name)
        fs.transform(_scene(), None, "all", rng, pe.SETTINGS)
        assert turned == [pytest.approx(pe.drawn_pose(category, name))]


def test_registration_reads_back_the_generators_pose() -> None:
    scene, name = _scene(), "000.jpg"
    rng = fs.file_rng(pe.SETTINGS, "all", "bottle", GOOD, name)
    moved, _ = fs.pose(scene, None, rng, pe.SETTINGS)
    found, _, _ = pe.registration(pe.keypoints(scene), pe.keypoints(moved))
    assert abs(float(wrapped_angle(found - pe.drawn_pose("bottle", name)))) < 2.0


def test_one_match_per_reference_keypoint_the_closest() -> None:
    import cv2

    matches = [cv2.DMatch(0, 7, 5.0), cv2.DMatch(1, 7, 2.0), cv2.DMatch(2, 7, 9.0),
               cv2.DMatch(3, 4, 1.0)]  # fmt: skip
    kept = pe.unique_matches(matches)
    assert sorted((m.queryIdx, m.trainIdx) for m in kept) == [(1, 7), (3, 4)]


def test_a_collapsed_or_overstretched_fit_is_not_a_registration() -> None:
    assert pe.accepted(1.0, pe.MIN_INLIERS)
    assert not pe.accepted(1e-6, 50)  # every keypoint mapped onto one spot
    assert not pe.accepted(3.0, 50)
    assert not pe.accepted(1.0, pe.MIN_INLIERS - 1)


def test_wrapped_brings_angles_into_the_half_open_period() -> None:
    assert np.allclose(wrapped_angle([190.0, -190.0, 180.0, 360.0]), [-170.0, 170.0, 180.0, 0.0])
    assert np.allclose(wrapped_angle([50.0, -50.0], 90.0), [-40.0, 40.0])


def test_the_summary_counts_unregistered_images_as_misses() -> None:
    rows = pd.DataFrame({
        "category": ["a"] * 4, "estimator": ["e"] * 4, "image": ["1", "2", "3", "4"],
        "drawn": [10.0, 170.0, -90.0, 0.0], "estimated": [12.0, -175.0, 0.0, np.nan],
    })  # fmt: skip
    s = pose_estimate_summary(rows).set_index(["category", "estimator"]).loc[("a", "e")]
    assert s["images"] == 4 and s["not_registered"] == 0.25
    # errors 2, 15, 90 (wrapped): within 10 one of four, within 20 two of four
    assert s["within_10"] == 0.25 and s["within_20"] == 0.5
    assert s["median_error"] == 15.0
    # modulo 90 the quarter turn is no error: 2, 15, 0
    assert s["within_10_mod90"] == 0.5
