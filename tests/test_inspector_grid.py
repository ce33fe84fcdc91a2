"""``fsad fit`` answers as the grid does: a model fitted from folders of MVTec AD bottle gives
every query the committed grid prediction of the same method, cell and seed.

The grid's n-shot support is the first n files of each defect type and its queries are the
others (:func:`fsad.data.few_shot_split`); the inspector is fitted on ``train/good`` and
those support files with the paper's centre crop (the grid's framing on MVTec), seed 1, and
classifies the queries as in-memory images, through the same recipe code as ``fsad run``.
The default method (support poses) is checked against ``results/poses/mvtec`` at 1 and 5
shots, ``hires_poe_proto`` against ``results/beyond`` and ``--adapt`` against the grid's
transductive ``hires_poe_em``.

Real data and minutes (bottle's 224 and 448 px engines and both zoom encoders, shared with
``test_rows_reproduced.py``'s caches): these carry the ``rows`` marker (``make test-rows``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fsad.data import load_category
from fsad.evaluate import read_predictions
from fsad.inspector import DEFAULT_METHOD, Inspector

RESULTS = Path(__file__).resolve().parents[1] / "results"
pytestmark = pytest.mark.rows


@pytest.fixture(scope="module")
def bottle() -> tuple[Path, dict[str, list[Path]]]:
    """``(data root, defect type -> test files in natural order)`` of MVTec AD bottle."""
    if not os.environ.get("FSAD_DATA"):
        pytest.skip("FSAD_DATA is not set: the grid-equivalence test needs MVTec AD bottle")
    root = Path(os.environ["FSAD_DATA"]) / "mvtec_ad"
    cat = load_category(root, "mvtec_ad", "bottle")
    files: dict[str, list[Path]] = {}
    for s in cat.test:
        if not s.is_good:
            files.setdefault(s.label, []).append(s.path)
    return root, files


def _grid_labels(
    root: Path, method: str, shots: int, queries: list[Path], folder: str = "beyond"
) -> list[str]:
    """The committed grid predictions (``results/<folder>``) of ``queries`` for the bottle
    cell, seed 1."""
    pred = read_predictions(RESULTS / folder)
    cell = pred[
        (pred.category == "bottle")
        & (pred.method == method)
        & (pred.shots == shots)
        & (pred.seed == 1)
    ]
    by_query = dict(zip(cell["query"], cell["predicted_label"], strict=True))
    assert len(by_query) == len(queries)
    return [by_query[str(q.relative_to(root))] for q in queries]


def _fit(root: Path, files: dict[str, list[Path]], method: str, shots: int) -> Inspector:
    support = {t: fs[:shots] for t, fs in files.items()}
    normal = root / "bottle" / "train" / "good"
    return Inspector(method=method, framing="crop", seed=1).fit(normal, support)


@pytest.mark.parametrize(
    ("method", "shots", "folder"),
    [
        (DEFAULT_METHOD, 1, "poses/mvtec"),
        (DEFAULT_METHOD, 5, "poses/mvtec"),
        ("hires_poe_proto", 5, "beyond"),
    ],
)
def test_fit_from_folders_gives_the_grid_predictions(
    bottle, method: str, shots: int, folder: str
) -> None:
    """``fsad fit``'s default (its support in 4 poses unless its pose test finds that the
    product holds a pose: the grid and ``fit`` compute both by the same
    :func:`fsad.recipe.support_rows`) and a recipe without poses."""
    root, files = bottle
    insp = _fit(root, files, method, shots)
    poses = insp.recipe.support_poses
    if insp.recipe.pose_test:  # bottle holds a pose (15 of 15 at 5 shots); 3 images cannot
        assert insp.info["pose_test"]["holds_pose"] is (shots == 5)
        poses = 1 if shots == 5 else poses
    assert insp.model_.support[0].shape[0] == poses * 3 * shots
    queries = [f for fs in files.values() for f in fs[shots:]]
    proba = insp.predict_proba(queries)
    got = [insp.classes[i] for i in proba.argmax(1)]
    assert got == _grid_labels(root, method, shots, queries, folder=folder)
    trust = insp.trust
    assert trust["chance"] == pytest.approx(1 / 3)
    if shots == 1:  # nothing to leave out: the estimate says so
        assert trust["accuracy"] is None and trust["n_images"] == 0
    else:
        assert trust["n_images"] == 3 * shots and 0 <= trust["accuracy"] <= 1


def test_adapt_gives_the_grid_transductive_predictions(bottle) -> None:
    root, files = bottle
    shots = 5
    insp = _fit(root, files, "hires_poe", shots)
    queries = [f for fs in files.values() for f in fs[shots:]]
    proba = insp.predict_proba(queries, adapt=True)
    got = [insp.classes[i] for i in proba.argmax(1)]
    assert got == _grid_labels(root, "hires_poe_em", shots, queries)
    assert np.allclose(proba.sum(1), 1.0)
