"""Support poses: each support image also seen turned (and mirrored), with the same label.

A product shot in any pose shows the few support images in few of its poses. A head fitted
on every support image in several poses learns what a defect type looks like, not the pose
it happened to be shot in. The poses are the symmetries of the square, rotations first:

==  ==================================================================
1   the image as shot (the default: no extra rows)
4   + its 90, 180 and 270 degree rotations (``rot4``)
8   + its mirror image and the mirror's three rotations (``dihedral8``)
==  ==================================================================

Only the support grows: the memory bank, the queries and the cached test tables are
unchanged, and a support image leaves a leave-one-out fold together with its poses
(:func:`fsad.recipe.leave_one_out`). Robustness round 1 (book appendix) chose ``rot4`` by
support leave-one-out on the MVTec protocol and the generalisation suite together.

**The pose test** (:func:`pose_test`, robustness round 16). Turned copies teach a head poses
that a product shot in one pose never shows, and they cost most such products (transistor,
whose ``misplaced`` type is a turned part, most). The test reads the support itself, never a
query: each support image's mean patch distance ||r|| to the normal bank as shot, against
the mean over its turned copies. Where the frames come in one pose, a turned frame looks
anomalous everywhere (light, background, the part), so the turned copies score higher;
where they come in any pose, turning should lower the score as often as it raises it (the
test's null). The product *holds a pose* when more images score higher turned than a
one-sided sign test allows at :data:`POSE_TEST_ALPHA` (fixed in advance); a recipe with
``pose_test`` then fits on the support as shot. It reads the whole frame, not the part: a
part that lies at any angle under a fixed light and background (MVTec's screws) holds a
pose by this test. With fewer than 7 support images the test cannot reach that level and
the support is turned.

Rows of a support set's poses are computed through the recipe's blocks, as for any
in-memory image (:func:`fsad.recipe.image_rows`), and cached per support set
(:func:`fsad.recipe.posed_sample_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsad.errors import ConfigError

#: the allowed numbers of poses per support image
POSES = (1, 4, 8)
#: one-sided level of the pose test's sign test (fixed in advance, not tuned)
POSE_TEST_ALPHA = 0.01
#: names of the poses after the first, in :func:`other_poses` order
POSE_NAMES = ("rot90", "rot180", "rot270", "mirror", "mirror_rot90", "mirror_rot180",
              "mirror_rot270")  # fmt: skip


def check_poses(n: int) -> int:
    """``n`` if it is an allowed number of poses.

    Raises:
        ConfigError: ``n`` is not one of :data:`POSES` (the message names it).
    """
    if isinstance(n, bool) or n not in POSES:
        raise ConfigError(f"support_poses must be one of {POSES}, got {n!r}")
    return int(n)


def other_poses(image: np.ndarray, n: int) -> list[np.ndarray]:
    """The ``n - 1`` poses of ``image`` besides itself, ``[(H, W, 3) | (W, H, 3)]``.

    Rotations by 90, 180, 270 degrees counter-clockwise (:func:`numpy.rot90`), then the
    left-right mirror image and its three rotations; contiguous copies.
    """
    check_poses(n)
    mirror = image[:, ::-1]
    turns = [np.rot90(image, k) for k in (1, 2, 3)]
    poses = [*turns, mirror, *(np.rot90(mirror, k) for k in (1, 2, 3))]
    return [np.ascontiguousarray(p) for p in poses[: n - 1]]


def posed_images(images: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The other poses of every image, image by image: pose ``j`` of image ``i`` at
    ``i * (n - 1) + j``."""
    return [p for image in images for p in other_poses(image, n)]


def with_poses(
    rows: list[np.ndarray], posed: list[np.ndarray], n: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Support rows followed by their poses' rows, and the image each row comes from.

    Args:
        rows: per group, rows ``(S, D_g)`` of the S images as shot.
        posed: per group, rows ``(S * (n - 1), D_g)`` in :func:`posed_images` order.

    Returns:
        per group rows ``(S * n, D_g)`` and ``source`` ``(S * n,)``: the index in
        ``0..S-1`` of each row's image (the first S rows are the images as shot).
    """
    s = len(rows[0])
    source = np.concatenate([np.arange(s), np.repeat(np.arange(s), n - 1)])
    return [np.concatenate([r, p]) for r, p in zip(rows, posed, strict=True)], source


def image_labels(labels: np.ndarray, source: np.ndarray | None) -> np.ndarray:
    """One label per image ``(S,)`` from per-row labels ``(R,)``: the first rows are the
    images as shot (:func:`with_poses`); ``source`` None means one row per image."""
    return labels if source is None else labels[: int(np.max(source)) + 1]


def posed_names(names: list[str], n: int) -> list[str]:
    """Names of the rows :func:`with_poses` gives: the names, then ``name@pose``."""
    return [*names, *(f"{name}@{pose}" for name in names for pose in POSE_NAMES[: n - 1])]


@dataclass(frozen=True)
class PoseTest:
    """The pose test of one support set (:func:`pose_test`).

    Attributes:
        n_images: support images tested.
        turned_higher: images whose turned copies score higher, on average, than the image
            as shot.
        p_value: one-sided sign test of ``turned_higher`` against half of ``n_images``.
    """

    n_images: int
    turned_higher: int
    p_value: float

    def as_dict(self) -> dict[str, object]:
        """The test as JSON-able fields, with ``holds_pose`` and :meth:`summary`."""
        return {"n_images": self.n_images, "turned_higher": self.turned_higher,
                "p_value": self.p_value, "holds_pose": self.holds_pose,
                "summary": self.summary()}  # fmt: skip

    @property
    def holds_pose(self) -> bool:
        """The product holds a pose: the turned copies score higher beyond chance."""
        return self.p_value < POSE_TEST_ALPHA

    def summary(self) -> str:
        """One line for a report, e.g. ``holds a pose (19 of 20 turned higher, p = 2e-05)``."""
        verdict = "holds a pose" if self.holds_pose else "poses freely"
        return (f"{verdict} ({self.turned_higher} of {self.n_images} turned higher, "
                f"p = {self.p_value:.2g})")  # fmt: skip


def pose_test(shot: np.ndarray, turned: np.ndarray) -> PoseTest:
    """The sign test of turned copies against the images as shot.

    Args:
        shot: ``(S,)`` a score per support image as shot (the mean patch distance ||r||).
        turned: ``(S, P - 1)`` the same score for each of its other poses
            (:func:`posed_images` order, reshaped image by image; ``P - 1 >= 1``).

    Returns:
        the test; a tie (turned mean equal to the score as shot) does not count as higher.

    Raises:
        ConfigError: ``turned`` does not have one row per image or has no pose, or no image
            is given.
    """
    shot, turned = np.asarray(shot, float), np.asarray(turned, float)
    good = shot.ndim == 1 and len(shot) > 0 and turned.ndim == 2
    if not good or len(turned) != len(shot) or turned.shape[1] == 0:
        raise ConfigError(
            f"pose test needs scores (S,) and turned scores (S, P-1) for S >= 1 images, got "
            f"{shot.shape} and {turned.shape}"
        )
    higher = int((turned.mean(axis=1) > shot).sum())
    return PoseTest(n_images=len(shot), turned_higher=higher, p_value=sign_test(higher, len(shot)))


def sign_test(k: int, n: int) -> float:
    """One-sided sign test: the chance of ``k`` or more of ``n`` fair coin flips going one
    way (:func:`scipy.stats.binomtest`, ``alternative="greater"``)."""
    from scipy.stats import binomtest

    return float(binomtest(k, n, 0.5, alternative="greater").pvalue)
