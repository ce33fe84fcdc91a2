"""Photometric round 8's candidate (research.log_light_round): a known gamma and gain
recovered and undone, the clip, the copy's layout, and the image-by-image harness's report
on a tiny record (research.image_round; the rule itself: tests/test_report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.data import read_image
from research import image_round
from research import log_light_round as ll


def _ramp_image() -> np.ndarray:
    """``(32, 64, 3)`` uint8 whose grey levels span 20-235 (no clipping under the tests'
    lights)."""
    row = np.linspace(20, 235, 64)
    return np.repeat(np.tile(row, (32, 1))[..., None], 3, axis=2).round().astype(np.uint8)


def _lit(image: np.ndarray, gamma: float, gain: float) -> np.ndarray:
    """The suite's gamma and gain (fsad.suite.illumination without gradient or colour)."""
    x = gain * ((image.astype(np.float64) + 0.5) / 256) ** gamma
    return np.clip(np.rint(256 * x - 0.5), 0, 255).astype(np.uint8)


def test_the_fit_recovers_a_known_gamma_and_gain_and_relight_undoes_them() -> None:
    image = _ramp_image()
    reference = ll.log_quantiles(image)
    assert reference.shape == (19,) and np.all(np.diff(reference) > 0)
    lit = _lit(image, gamma=1.4, gain=0.8)
    g, k = ll.fit_light(ll.log_quantiles(lit), reference)
    assert abs(g - 1.4) < 0.03 and abs(k - np.log(0.8)) < 0.03
    back = ll.relight(lit, reference)
    assert back.dtype == np.uint8 and back.shape == image.shape
    assert np.abs(back.astype(int) - image).max() <= 3  # quantisation only
    assert np.abs(lit.astype(int) - image).mean() > 15  # the light had moved it


def test_an_image_lit_as_its_normals_is_left_as_it_is_and_the_fit_is_clipped() -> None:
    image = _ramp_image()
    assert np.array_equal(ll.undo_light(image, 1.0, 0.0), image)
    assert np.array_equal(ll.relight(image, ll.log_quantiles(image)), image)
    g, k = ll.fit_light(4.0 * ll.log_quantiles(image) + 3.0, ll.log_quantiles(image))
    assert (g, k) == (ll.GAMMA_RANGE[1], ll.LOG_GAIN_RANGE[1])
    g, k = ll.fit_light(0.1 * ll.log_quantiles(image) - 3.0, ll.log_quantiles(image))
    assert (g, k) == (ll.GAMMA_RANGE[0], ll.LOG_GAIN_RANGE[0])


def _write(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def test_the_copy_relights_against_each_categorys_normals_and_keeps_masks(
    tmp_path: Path,
) -> None:
    src, dst, image = tmp_path / "src", tmp_path / "dst", _ramp_image()
    _write(src / "a" / "train" / "good" / "000.png", image)
    _write(src / "a" / "test" / "crack" / "000.png", _lit(image, 1.5, 1.1))
    mask = np.zeros((32, 64), np.uint8)
    mask[:4] = 255
    _write(src / "a" / "ground_truth" / "crack" / "000_mask.png", mask)
    _write(src / "b" / "good" / "x.png", _lit(image, 0.7, 1.0))  # the suite's layout
    assert ll.copy_log_light(src, dst) == 3  # the mask is copied, not relit
    back = read_image(dst / "a" / "test" / "crack" / "000.png")
    assert np.abs(back.astype(int) - image).max() <= 3
    assert np.array_equal(read_image(dst / "a" / "ground_truth" / "crack" / "000_mask.png")[..., 0],
                          mask)  # fmt: skip
    # b's only normal is its own reference: it stays as it was written
    assert np.array_equal(read_image(dst / "b" / "good" / "x.png"), _lit(image, 0.7, 1.0))


def _rows(variant: str, correct: list[bool], seed: int = 1) -> list[dict]:
    sets = ["loo", "loo", "query", "query"]
    return [
        {"protocol": protocol, "category": category, "seed": seed, "variant": variant,
         "set": s, "label": "crack", "image": f"{i:03d}", "correct": ok, "git_commit": "abc1234"}
        for protocol in ("mvtec", "suite_all")
        for category in image_round.CATEGORIES
        for i, (s, ok) in enumerate(zip(sets, correct, strict=True))
    ]  # fmt: skip


def test_the_report_reads_the_verdict_and_the_cells_from_the_image_rows(tmp_path: Path) -> None:
    seeds = image_round.SEEDS
    rows = pd.DataFrame(
        [r for seed in seeds for r in _rows("baseline", [True, False, False, False], seed)]
        + [r for seed in seeds for r in _rows(ll.CANDIDATE, [True, True, True, False], seed)]
        + _rows("baseline", [True] * 4, seed=7)  # a seed the rule does not read
    )
    out = tmp_path / "r.csv"
    rows.to_csv(out, index=False)
    record = image_round.read_record(out)
    assert record["image"].iloc[0] == "000"  # file names keep their zeros
    cells = image_round.cell_accuracies(record[record["seed"] == 1])
    assert len(cells) == 2 * 4 * 2  # protocols x categories x variants
    by_variant = cells.groupby("variant")[["support_loo", "query_acc"]].mean()
    assert by_variant.loc["baseline"].tolist() == [0.5, 0.0]
    assert by_variant.loc[ll.CANDIDATE].tolist() == [1.0, 0.5]
    assert (cells["n_left_out"] == 2).all() and (cells["n_query"] == 2).all()
    assert (cells["shots"] == 5).all() and (cells["git_commit"] == "abc1234").all()
    earlier = tmp_path / "earlier.csv"
    base = image_round.cell_accuracies(record[record["variant"] == "baseline"])
    base.loc[0, "support_loo"] = 0.25  # one cell differs; seed 7 is not read
    pd.concat([base, cells[cells["variant"] == ll.CANDIDATE]]).to_csv(earlier, index=False)
    text = image_round.report(out, ll.CANDIDATE, earlier=earlier)
    assert "loo (decides):" in text and "query (decides nothing):" in text
    # one left-out image of two gains in every category: +50 points on each protocol, and
    # random signs on the eight moved images reach it in about 1 draw of 256
    verdict = text.split("loo (decides):")[1].splitlines()[4].split()
    assert verdict[1:4] == ["all", "50.0", "8"] and verdict[-1] == "True"
    assert "baseline: 23 of 24 cells equal earlier.csv's baseline" in text


def test_the_report_gives_no_verdict_on_a_partial_record(tmp_path: Path) -> None:
    rows = pd.DataFrame(_rows("baseline", [True] * 4) + _rows(ll.CANDIDATE, [True] * 4))
    out = tmp_path / "r.csv"
    rows.to_csv(out, index=False)
    text = image_round.report(out, ll.CANDIDATE)
    assert "mvtec bottle seed 2: no baseline rows" in text and "decides" not in text


def test_a_resumed_record_keeps_its_image_names_as_written(tmp_path: Path) -> None:
    # the first run wrote 000 as 0 when the record was read back without text columns
    from research.records import merged

    out = tmp_path / "r.csv"
    first = _rows("baseline", [True] * 4)
    pd.DataFrame(first).to_csv(out, index=False)
    later = _rows(ll.CANDIDATE, [True] * 4)
    rows = merged(out, later, image_round.IMAGE_ROW, image_round.TEXT)
    assert set(rows["image"]) == {"000", "001", "002", "003"}


def test_the_copy_manifest_names_its_source_function_and_commit(tmp_path: Path) -> None:
    import json

    image_round.write_manifest(tmp_path / "src", tmp_path, ll.copy_log_light, 7)
    stamp = json.loads((tmp_path / image_round.MANIFEST).read_text())
    assert stamp["copy"] == "research.log_light_round.copy_log_light" and stamp["images"] == 7
    assert stamp["source"].endswith("src") and len(stamp["commit"].split("+")[0]) >= 7


def test_a_round_without_copies_refuses_copy_and_the_protocols_it_cannot_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit, match="cand writes no images"):
        image_round.main(["--copy", "a", "b"], "A round.", "cand")
    argv = ["--variant", "cand", "--protocols", "mvtec", "--out", "x.csv"]
    with pytest.raises(SystemExit):
        image_round.main(argv, "A round.", "cand", None, ("mvtec",))
    assert "cand cannot change the mvtec protocol" in capsys.readouterr().err


def test_run_gives_the_candidate_its_recipe_the_baseline_the_default_or_a_rounds_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = [("suite_all", "bottle", 1, "engine")]
    monkeypatch.setattr(image_round, "pending_cells", lambda args, root, done: iter(cells))
    monkeypatch.setattr(image_round, "data_root", lambda data: tmp_path)
    asked = []

    def rows(engine, variant, recipe=None):
        asked.append((variant, recipe))
        return [{"variant": variant, "set": s, "image": "000.png", "label": "cut",
                 "correct": True} for s in ("loo", "query")]  # fmt: skip

    monkeypatch.setattr(image_round, "outcome_rows", rows)
    for variant in ("baseline", "cand"):
        args = argparse.Namespace(out=str(tmp_path / f"{variant}.csv"), variant=variant, data=None)
        image_round.run(args, recipe="RECIPE")
    assert asked == [("baseline", None), ("cand", "RECIPE")]
    args = argparse.Namespace(out=str(tmp_path / "own.csv"), variant="cand", data=None)
    image_round.run(args, score=lambda protocol, engine: rows(engine, "cand", protocol))
    assert asked[-1] == ("cand", "suite_all")
    record = image_round.read_record(tmp_path / "own.csv")
    assert record[["protocol", "category", "seed", "image"]].values.tolist() == [
        ["suite_all", "bottle", 1, "000"]] * 2  # fmt: skip
