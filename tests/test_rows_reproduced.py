"""Every registered method reproduces a committed row from the shared data, query by query.

Each case runs one grid cell (category, shots, seed 1) through the same grid runner as
``fsad run`` and compares every query's predicted label with the committed
``predictions.csv.gz`` of that folder. The training-free methods must give the same answer
for every image. The paper's trained methods may change a few answers
(:data:`TRAINED_FLIPS`): their committed rows are not bit-reproducible even by the code that
wrote them (rerun from an empty cache at the tag ``selection-rounds-1-20``, relationnet's
bottle 2-shot cell differs in 3 of 57 queries and contrastive_shapes' in 2), the order of
floating-point sums in training depending on the threads, the cache history and the CPU. On
a 2-core AMD EPYC (the committed rows come from Intel machines) relationnet's cell changes 8
of 57 answers and its accuracy from 52.6 to 61.4 %, the other trained cells at most 3
answers; relationnet alone is therefore held to :data:`LOOSE`: 80 % of the answers agree and
the accuracy stays within 10 points (its seed-to-seed spread on this cell: 33-53 % over
seeds 1-5). Same seed, same numbers on one machine is tested for ``contrastive`` apart
(``test_methods_paper.py``).

The anomaly-guided methods share bottle's caches (the 224 px engine, two zoom encoders, the
448 px engine: about 6 minutes from an empty cache on 2 cores, seconds warm), except the
relit bank's method, whose banks are its own (about 17 minutes of one core from an empty cache,
15 with its features cached: the greedy coreset of a doubled bank); the paper's trained methods
each pretrain on synthetic classes (1-2 minutes each).

These tests carry the ``rows`` marker: ``make test`` leaves them out, ``make test-rows``
(and CI, through ``.ci/run``) runs them; it refuses to start without ``FSAD_DATA``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fsad.config import load_config
from fsad.evaluate import read_predictions, run_grid
from fsad.methods import available_methods

RESULTS = Path(__file__).resolve().parents[1] / "results"

#: method -> (results folder, config, category, shots): one committed cell each
CELLS = {
    "random": ("baselines", "paper", "bottle", 1),
    "residual_proto": ("beyond_3d", "paper_3d", "tire", 4),
    "residual_proto_rb": ("beyond", "paper", "bottle", 5),
    "anomaly_lr": ("beyond", "paper", "bottle", 1),
    "zoom_lr": ("beyond", "paper", "bottle", 2),
    "zoom_rot_lr": ("beyond", "paper", "bottle", 3),
    "zoom2_rot_lr": ("beyond", "paper", "bottle", 5),
    "zoom2_rot_skm": ("beyond", "paper", "bottle", 4),
    "hires_lr": ("beyond", "paper", "bottle", 2),
    "hires_poe": ("beyond", "paper", "bottle", 1),
    "hires_poe_proto": ("beyond", "paper", "bottle", 3),
    "hires_poe_em": ("beyond", "paper", "bottle", 5),
    "hires_poe_st": ("beyond", "paper", "bottle", 4),
    "residual_proto_rot4": ("poses/mvtec", "paper", "bottle", 5),
    "anomaly_lr_rot4": ("poses/mvtec", "paper", "bottle", 3),
    "hires_poe_proto_rot4": ("poses/mvtec", "paper", "bottle", 1),
    "hires_lite0_poe_proto_rot4": ("poses/mvtec", "paper", "bottle", 3),
    "hires_lite0_poe_proto_rot4_relit": ("poses/mvtec", "paper", "bottle", 5),
    # under the centre crop its fixed 448 px engine is cropped as the default's; its suite
    # cells need the generated suite images, which make test-rows does not write
    "hires_lite0_poe_proto_rot4_fixed": ("poses/mvtec", "paper", "bottle", 1),
    # bottle holds a pose at 5 shots: the support as shot (the turned copies at 1 shot)
    "hires_lite0_poe_proto_rot4_gated_fixed": ("poses/mvtec", "paper", "bottle", 5),
    # bottle's light holds under the centre crop: its light test is computed, nothing undone
    "hires_lite0_poe_proto_rot4_gated_fixed_light": ("poses/mvtec", "paper", "bottle", 5),
    "contrastive": ("main", "paper", "metal_nut", 2),
    "contrastive_nopretrain": ("ablation", "ablation", "transistor", 2),
    "contrastive_raw": ("ablation", "ablation", "bottle", 2),
    "contrastive_shapes": ("ablation", "ablation", "bottle", 2),
    "direct": ("ablation", "ablation", "screw", 2),
    "relationnet": ("ablation", "ablation", "bottle", 2),
}
#: the paper's trained methods: at most this many answers of a cell may change (see above)
TRAINED_FLIPS = 3
#: trained methods whose training diverges further across CPUs: (share of answers that must
#: agree, largest change of the cell's accuracy)
LOOSE = {"relationnet": (0.80, 0.10)}
TRAINED = {
    "contrastive",
    "contrastive_nopretrain",
    "contrastive_raw",
    "contrastive_shapes",
    "direct",
    "relationnet",
}
#: registered methods without a committed row, and why
NO_ROW = {
    "contrastive_maml": "the paper's Appendix G variant: its first-order MAML pretraining runs "
    "up to 1000 episodes at 2-5 s each on 2 cores, so no grid was committed and a test cell "
    "would take about an hour",
}


def test_every_registered_method_has_a_committed_cell() -> None:
    assert set(LOOSE) <= TRAINED
    assert set(CELLS) | set(NO_ROW) == set(available_methods())
    assert not set(CELLS) & set(NO_ROW)
    assert TRAINED <= set(CELLS)


def committed_predictions(folder: str, method: str, category: str, shots: int) -> pd.DataFrame:
    """The committed per-query predictions of one cell, seed 1."""
    pred = read_predictions(RESULTS / folder)
    cell = pred[
        (pred["method"] == method)
        & (pred["category"] == category)
        & (pred["shots"] == shots)
        & (pred["seed"] == 1)
    ]
    assert len(cell), f"no committed {method} predictions for {category} {shots}-shot seed 1"
    return cell


@pytest.mark.rows
@pytest.mark.realdata
@pytest.mark.usefixtures("one_torch_thread")  # as the committed rows (2 workers: 1 thread each)
@pytest.mark.parametrize("method", sorted(CELLS))
def test_committed_cell_is_reproduced_query_by_query(
    real_data: Path, tmp_path: Path, method: str
) -> None:
    folder, config, category, shots = CELLS[method]
    want = committed_predictions(folder, method, category, shots)
    cfg = load_config(config).replace(
        categories=[category], methods=[method], shots=[shots], seeds=[1]
    )
    run_grid(cfg, real_data, tmp_path / "out")
    got = read_predictions(tmp_path / "out")
    assert got["config_hash"].unique().tolist() == want["config_hash"].unique().tolist()
    both = want.merge(got, on="query", suffixes=("_committed", "_now"), validate="one_to_one")
    assert len(both) == len(want) == len(got)
    assert (both["true_label_committed"] == both["true_label_now"]).all()
    differ = both[both["predicted_label_committed"] != both["predicted_label_now"]]
    shown = differ[["query", "predicted_label_committed", "predicted_label_now"]]
    changed = f"{len(differ)} of {len(both)} queries changed: {shown.to_dict('records')}"
    if method not in TRAINED:
        assert differ.empty, changed
        return
    if method not in LOOSE:
        assert len(differ) <= TRAINED_FLIPS, changed
        return
    agree, accuracy = LOOSE[method]
    assert len(both) - len(differ) >= agree * len(both), changed
    right = {
        when: (both[f"true_label_{when}"] == both[f"predicted_label_{when}"]).mean()
        for when in ("committed", "now")
    }
    assert abs(right["now"] - right["committed"]) <= accuracy, (right, changed)
