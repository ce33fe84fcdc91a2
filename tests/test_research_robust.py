"""The research wing's support-augmentation rounds: the poses of a support image, and a
leave-one-out in which an image leaves with every row made from it."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.descriptors import DescriptorConfig
from fsad.poses import other_poses
from fsad.recipe import Group, Recipe
from research.robust import VARIANTS, dihedral, loo, protocol_cells, round_parser

LOGISTIC = Recipe((Group(DescriptorConfig()),), c=100.0)


def test_the_rounds_poses_are_the_shipped_ones() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    poses = dihedral(img)
    assert len(poses) == 7
    assert all(np.array_equal(a, b) for a, b in zip(poses[:3], other_poses(img, 4), strict=True))
    assert np.array_equal(poses[1], img[::-1, ::-1])  # 180 degrees
    # rot4 takes the rotations, which come first
    assert VARIANTS == {"baseline": 0, "rot4": 3, "dihedral8": 7}


def test_loo_removes_the_left_out_image_with_its_copies() -> None:
    # two classes of two images; every image joins the support with a copy of itself (as a
    # turned pose would). A logistic head that kept the left-out image's copy would
    # recognise it; leaving the image out with its copy gives the honest estimate.
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
    labels = np.array([0, 0, 1, 1])
    rows = [np.concatenate([x, x])]
    source = np.tile(np.arange(4), 2)
    y = labels[source]
    alone = loo(LOGISTIC, [x], labels, np.arange(4), 2)
    assert loo(LOGISTIC, rows, y, source, 2) == alone == 0.5
    assert loo(LOGISTIC, rows, y, np.arange(8), 2) == 1.0  # the copy counted apart: a leak


def test_a_round_walks_the_cells_its_arguments_name_with_each_protocols_framing() -> None:
    args = round_parser("round\n").parse_args(
        ["--suite", "s", "--out", "o.csv", "--categories", "screw", "bottle"]
    )
    cells = [(p, name, c.features.framing) for p, name, c in protocol_cells(args)]
    assert cells == [
        ("mvtec", "screw", "crop"),
        ("mvtec", "bottle", "crop"),
        ("suite_all", "screw", "letterbox"),
        ("suite_all", "bottle", "letterbox"),
    ]
    with pytest.raises(SystemExit):  # the suite is required unless the round says otherwise
        round_parser("round\n").parse_args(["--out", "o.csv"])
    assert round_parser("round\n", suite_required=False).parse_args(["--out", "o"]).suite is None
