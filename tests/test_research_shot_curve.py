"""Shot curve: the rows selected for a support equal, row for row and in the same order,
what :func:`fsad.poses.with_poses` gives when that support alone is described; queries get
their rows as shot; the cells cover every draw once and the leave-one-out cell once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data import Sample
from fsad.poses import with_poses
from research.shot_curve import DescribedDefects, cells

POSES = 4


def _samples(n: int) -> list[Sample]:
    return [
        Sample(path=Path("/p") / f"{i:03d}.png", category="part", split="test", label="crack")
        for i in range(n)
    ]


def _image_rows(index: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rows of two groups that name their image and pose: as shot ``(S, D_g)``, turned
    ``(S * (P - 1), D_g)`` in :func:`fsad.poses.posed_images` order (image by image)."""
    shot = [np.array([[10 * i + 0.0] * w for i in index]) for w in (2, 3)]
    posed = [
        np.array([[10 * i + p + 0.0] * w for i in index for p in range(1, POSES)]) for w in (2, 3)
    ]
    return shot, posed


def test_a_support_gets_the_rows_and_order_of_describing_it_alone() -> None:
    samples = _samples(6)
    everything = DescribedDefects(samples, *with_poses(*_image_rows(list(range(6))), POSES))
    chosen = [4, 1, 3]
    rows, where = everything.support([samples[i] for i in chosen])
    alone, alone_source = with_poses(*_image_rows(chosen), POSES)
    for got, want in zip(rows, alone, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(where, alone_source)
    query = everything.query([samples[5], samples[0]])
    np.testing.assert_array_equal(query[1][:, 0], [50.0, 0.0])


def test_cells_cover_every_draw_once_and_the_rest_once() -> None:
    got = cells([1, 5, -1], 3)
    assert got == [(1, 1), (1, 2), (1, 3), (5, 1), (5, 2), (5, 3), (-1, 0)]


def test_all_others_leaves_each_image_out_with_its_turned_copies() -> None:
    """Two well-separated types of 4 images, and one more ``crack`` image that looks like a
    ``dent``: scored without its own turned copies in the support it is read as a ``dent``
    (with them, the copies labelled ``crack`` would pull it back); the others are right, and
    each prediction is named ``<type>/<file>`` (the suites keep file names)."""
    from types import SimpleNamespace

    from fsad.inspector.classifier import DEFAULT_METHOD
    from fsad.methods.anomaly_guided import RECIPES
    from research.shot_curve import score_all_others

    samples = [
        Sample(path=Path("/s") / label / f"{i:03d}.png", category="part", split="test",
               label=label)
        for label, n in (("crack", 5), ("dent", 4))
        for i in range(n)
    ]  # fmt: skip
    good = Sample(path=Path("/s/good/000.png"), category="part", split="test", label="good")
    rng = np.random.default_rng(0)
    centre = {"crack": np.array([5.0, 0.0, 0.0]), "dent": np.array([0.0, 5.0, 0.0])}
    odd = samples[4]  # crack/004.png, placed among the dents
    shot = np.stack(
        [centre["dent" if s is odd else s.label] + 0.1 * rng.standard_normal(3) for s in samples]
    )
    groups = len(RECIPES[DEFAULT_METHOD].groups)
    posed = np.repeat(shot, POSES - 1, axis=0)
    described = DescribedDefects(samples, *with_poses([shot] * groups, [posed] * groups, POSES))
    engine = SimpleNamespace(category=SimpleNamespace(name="part", test=[good, *samples]))
    row, preds = score_all_others(engine, described)
    assert row["n_query"] == 9 and row["query_acc"] == 8 / 9 and row["chance"] == 5 / 9
    predicted = dict(zip(preds["query"], preds["predicted_label"], strict=True))
    assert predicted["crack/004.png"] == "dent"
    assert all(predicted[f"crack/{i:03d}.png"] == "crack" for i in range(4))
    assert all(predicted[f"dent/{i:03d}.png"] == "dent" for i in range(4))
    assert set(preds["category"]) == {"part"}
