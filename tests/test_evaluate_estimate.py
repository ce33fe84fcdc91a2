"""``fsad run --dry-run``'s count and time estimate, the full-dataset configs, ``--jobs``
gone, and results folders written before the ``worker_host`` column."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.cli import main
from fsad.config import RunConfig, load_config
from fsad.evaluate import RESULT_COLUMNS, read_results, run_grid
from fsad.evaluate.estimate import (
    ENGINE_COLD_PER_IMAGE,
    OTHER_RUN,
    RELIT_ENGINE_FACTOR,
    RUN_SECONDS,
)
from fsad.task import Prediction

MVTEC_AD = ("bottle cable capsule carpet grid hazelnut leather metal_nut pill screw tile "
            "toothbrush transistor wood zipper").split()  # fmt: skip
MVTEC_3D = "bagel cable_gland carrot cookie dowel foam peach potato rope tire".split()


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """Categories ``a`` and ``b``: 3 training normals, two defect types of 3 images."""
    for cat in ("a", "b"):
        for split, label, n in (("train", "good", 3), ("test", "x", 3), ("test", "y", 3)):
            for i in range(n):
                path = tmp_path / "data" / cat / split / label / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), np.full((8, 8, 3), 10 * i, np.uint8))
    return tmp_path / "data"


def _zero(task) -> Prediction:
    return Prediction(labels=np.zeros(len(task.query), dtype=np.int64))


def test_full_configs_name_every_category_and_share_the_paper_hash() -> None:
    full, full_3d = load_config("paper_full"), load_config("paper_3d_full")
    assert sorted(full.categories) == sorted(MVTEC_AD) and full.dataset == "mvtec_ad"
    assert sorted(full_3d.categories) == sorted(MVTEC_3D) and full_3d.dataset == "mvtec_3d"
    # same engine and options as the 4-category configs: their rows are reused
    assert full.config_hash("contrastive") == load_config("paper").config_hash("contrastive")
    assert full_3d.config_hash() == load_config("paper_3d").config_hash()


def test_dry_run_counts_discovers_all_and_estimates(root: Path, tmp_path: Path) -> None:
    config = RunConfig(categories=("all",), methods=("hires_poe_proto", "random"),
                       shots=(1, 2), seeds=(1, 2, 3))  # fmt: skip
    res = run_grid(config, root, tmp_path / "out", dry_run=True)
    est = res.estimate
    assert (res.pending, est.runs, est.groups) == (24, 24, 6)  # categories a and b found
    runs = 12 * (RUN_SECONDS["hires_poe_proto"][0] + RUN_SECONDS["random"][0])
    engines = 6 * 3 * (ENGINE_COLD_PER_IMAGE[224] + ENGINE_COLD_PER_IMAGE[448])
    assert est.cold == pytest.approx(runs + engines)
    assert est.warm == pytest.approx(12 * RUN_SECONDS["hires_poe_proto"][1])
    assert "worker-hours" in est.describe() and not (tmp_path / "out").exists()
    relit = run_grid(config.replace(methods=("hires_lite0_poe_proto_rot4_relit",)), root,
                     tmp_path / "r", dry_run=True).estimate  # fmt: skip
    assert relit.cold - 12 * OTHER_RUN[0] == pytest.approx(engines * RELIT_ENGINE_FACTOR)
    unknown = run_grid(config.replace(methods=("random", "nope_not_timed")), root,
                       tmp_path / "o", methods={"nope_not_timed": _zero}, dry_run=True)  # fmt: skip
    assert unknown.estimate.warm == pytest.approx(12 * OTHER_RUN[1])


def test_cli_dry_run_prints_the_estimate_and_jobs_is_gone(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["run", "--data", str(root), "--categories", "all", "--methods", "anomaly_lr",
            "--shots", "1", "--seeds", "1", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 run(s) to compute" in out and "4 run(s) in 4 (category, seed) group(s)" in out
    with pytest.raises(SystemExit) as exc:
        main([*args, "--jobs", "2"])
    assert exc.value.code == 2 and "unrecognized arguments: --jobs 2" in capsys.readouterr().err


def test_a_folder_without_worker_host_loads_and_resumes(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = RunConfig(categories=("a",), methods=("zero",), shots=(1,), seeds=(1, 2))
    run_grid(config.replace(seeds=(1,)), root, out, methods={"zero": _zero})
    old = read_results(out).drop(columns="worker_host")  # as written before the column
    old.to_csv(out / "results.csv", index=False)
    assert "worker_host" not in read_results(out).columns
    res = run_grid(config, root, out, methods={"zero": _zero})
    assert (res.computed, res.skipped) == (1, 1)
    rows = read_results(out)
    assert list(rows.columns) == RESULT_COLUMNS
    assert rows.set_index("seed")["worker_host"].isna().to_dict() == {1: True, 2: False}


@pytest.mark.parametrize("name", ["results/main", "results/beyond"])
def test_committed_results_without_worker_host_still_load(name: str) -> None:
    folder = Path(__file__).resolve().parents[1] / name
    rows = read_results(folder)
    assert len(rows) > 0 and "worker_host" not in rows.columns
