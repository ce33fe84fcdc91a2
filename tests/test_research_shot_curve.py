"""Shot curve: the rows selected for a support equal, row for row and in the same order,
what :func:`fsad.poses.with_poses` gives when that support alone is described; queries get
their rows as shot; the cells cover every draw once and the leave-one-out cell once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def _odd_category() -> tuple[object, DescribedDefects]:
    """Two well-separated types of 4 images, and one more ``crack`` image that looks like a
    ``dent``: a stand-in engine (its category only) and its described defects."""
    from types import SimpleNamespace

    from fsad.methods.anomaly_guided import RECIPES
    from research import ROUND_BASELINE

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
    groups = len(RECIPES[ROUND_BASELINE].groups)
    posed = np.repeat(shot, POSES - 1, axis=0)
    described = DescribedDefects(samples, *with_poses([shot] * groups, [posed] * groups, POSES))
    engine = SimpleNamespace(category=SimpleNamespace(name="part", test=[good, *samples]))
    return engine, described


def test_all_others_leaves_each_image_out_with_its_turned_copies() -> None:
    """Scored without its own turned copies in the support, the odd ``crack`` is read as a
    ``dent`` (with them, the copies labelled ``crack`` would pull it back); the others are
    right, and each prediction is named ``<type>/<file>`` (the suites keep file names)."""
    from research.shot_curve import score_all_others

    row, preds = score_all_others(*_odd_category())
    assert row["n_query"] == 9 and row["query_acc"] == 8 / 9 and row["chance"] == 5 / 9
    predicted = dict(zip(preds["query"], preds["predicted_label"], strict=True))
    assert predicted["crack/004.png"] == "dent"
    assert all(predicted[f"crack/{i:03d}.png"] == "crack" for i in range(4))
    assert all(predicted[f"dent/{i:03d}.png"] == "dent" for i in range(4))
    assert set(preds["category"]) == {"part"}


def test_main_resumes_by_cell_and_rescores_an_all_others_cell_without_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run without ``--predictions`` writes every cell; a second run with it scores
    the all-others cell alone again (the drawn cells are done) and keeps one row per cell."""
    import pandas as pd

    from research import shot_curve

    engine, described = _odd_category()
    scored: list[tuple[int, int]] = []

    def fake_draw(_engine, _described, shots: int, draw: int) -> dict:
        scored.append((shots, draw))
        return {"query_acc": 0.5, "n_query": 2, "chance": 0.5}

    monkeypatch.setattr(shot_curve, "study_engine", lambda *_: engine)
    monkeypatch.setattr(shot_curve, "describe", lambda _engine: described)
    monkeypatch.setattr(shot_curve, "score_draw", fake_draw)
    out, preds = tmp_path / "curve.csv", tmp_path / "preds.csv"
    common = ["--suite-root", str(tmp_path), "--out", str(out), "--protocols", "suite_all",
              "--categories", "bottle", "--shots", "1", "-1", "--draws", "2"]  # fmt: skip
    shot_curve.main(common)
    assert scored == [(1, 1), (1, 2)] and not preds.exists()
    first = pd.read_csv(out)
    assert sorted(zip(first["shots"], first["draw"])) == [(-1, 0), (1, 1), (1, 2)]
    shot_curve.main([*common, "--predictions", str(preds)])
    assert scored == [(1, 1), (1, 2)]  # no drawn cell scored twice
    again = pd.read_csv(out)
    assert len(again) == 3 and not again.duplicated(["shots", "draw"]).any()
    assert len(pd.read_csv(preds)) == 9  # every defect image once
    shot_curve.main([*common, "--predictions", str(preds)])  # all done: nothing rewritten
    assert len(pd.read_csv(preds)) == 9
    with pytest.raises(SystemExit):
        shot_curve.main([*common[:-1], "0"])  # --draws 0
