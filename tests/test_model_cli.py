"""``fsad fit`` / ``fsad classify``: end to end on tiny folders, and one-line refusals."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest

from fsad.cli import main

#: one engine at 64 px (the default hires_poe_proto adds a 448 px engine and two encoders;
#: tests/test_inspector.py fits a recipe of that shape at 64 px)
TINY = ["--resize", "64", "--crop", "64", "--folds", "3", "--coreset-ratio", "0.25"]
TINY += ["--method", "anomaly_lr"]
TYPES = ("hole", "stain")


def _link(dst: Path, files: list[Path]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        (dst / f.name).symlink_to(f)
    return dst


@pytest.fixture(scope="module", autouse=True)
def shared_backbone(tmp_path_factory: pytest.TempPathFactory):
    """A private cache, and the backbone loaded once for this module."""
    import fsad.features

    cached = functools.lru_cache(maxsize=None)(fsad.features.load_backbone)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FSAD_CACHE", str(tmp_path_factory.mktemp("cache")))  # never ~/.cache
        mp.setattr(fsad.features, "load_backbone", lambda *a, **k: cached(*a, **k))
        yield


@pytest.fixture(scope="module")
def arranged(embedded_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = embedded_root / "washer"
    root = tmp_path_factory.mktemp("cli")
    _link(root / "normal", sorted((cat / "train" / "good").iterdir())[:20])
    for t in TYPES:
        files = sorted((cat / "test" / t).iterdir())
        _link(root / "support" / t, files[:2])
        _link(root / "query" / t, files[2:5])
    _link(root / "query" / "good", sorted((cat / "test" / "good").iterdir())[:3])
    return root


@pytest.fixture(scope="module")
def model(arranged: Path) -> Path:
    out = arranged / "model"
    argv = ["fit", "--normal", str(arranged / "normal"), "--support", str(arranged / "support")]
    assert main([*argv, "--out", str(out), *TINY]) == 0
    return out


def test_fit_prints_the_leave_one_out_estimate(arranged: Path, tmp_path, capsys) -> None:
    argv = ["fit", "--normal", str(arranged / "normal"), "--support", str(arranged / "support")]
    assert main([*argv, "--out", str(tmp_path / "m"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "leave-one-out estimate:" in out and "/4 support images; chance 50 %)" in out
    assert "  framing: letterbox (the whole image, 64 px engine)\n" in out  # one engine
    meta = json.loads((tmp_path / "m" / "model.json").read_text())["meta"]
    assert meta["info"]["trust"]["n_images"] == 4 and meta["method"] == "anomaly_lr"


@pytest.mark.parametrize("holds", [False, True])
def test_fit_prints_the_pose_test_of_a_gated_method(
    arranged: Path, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch, holds: bool
) -> None:
    from dataclasses import replace

    from fsad.methods.anomaly_guided import RECIPES
    from fsad.poses import PoseTest

    gated = replace(RECIPES["anomaly_lr"], support_poses=4, pose_test=True)
    monkeypatch.setitem(RECIPES, "anomaly_lr", gated)  # the registry fsad fit reads
    if holds:  # 4 support images can never reach the test's level: force the verdict
        monkeypatch.setattr("fsad.recipe.pose_test", lambda s, t: PoseTest(4, 4, 0.001))
    argv = ["fit", "--normal", str(arranged / "normal"), "--support", str(arranged / "support")]
    assert main([*argv, "--out", str(tmp_path / "m"), *TINY]) == 0
    out = capsys.readouterr().out
    if holds:
        assert "  pose test: the product holds a pose (4 of 4 turned higher" in out
        assert ": support as shot\n" in out
    else:
        assert "  pose test: the product poses freely (" in out and "of 4 turned higher" in out
        assert ": support turned\n" in out
    meta = json.loads((tmp_path / "m" / "model.json").read_text())["meta"]
    assert len(meta["support_names"]) == (4 if holds else 16)
    assert meta["info"]["pose_test"]["holds_pose"] is holds


@pytest.mark.parametrize("verdict", ["untested", "holds", "varies"])
def test_fit_prints_the_light_test_and_stores_the_reference(
    arranged: Path, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch, verdict: str
) -> None:
    from dataclasses import replace

    from fsad.light_test import LightTest
    from fsad.methods.anomaly_guided import RECIPES

    monkeypatch.setitem(RECIPES, "anomaly_lr", replace(RECIPES["anomaly_lr"], light_test=True))
    if verdict != "untested":  # 4 support images can never reach the test's level: run it
        monkeypatch.setattr("fsad.light_test.min_test_images", lambda: 1)  # and force it
        test = LightTest(4, 4, 0.001) if verdict == "varies" else LightTest(4, 1, 0.94)
        monkeypatch.setattr("fsad.light_test.light_test", lambda shot, undone: test)
    argv = ["fit", "--normal", str(arranged / "normal"), "--support", str(arranged / "support")]
    assert main([*argv, "--out", str(tmp_path / "m"), *TINY]) == 0
    out = capsys.readouterr().out
    varies = verdict == "varies"
    said = {
        "untested": "holds, untested (4 support images; the test needs 7): images as shot\n",
        "holds": "holds (1 of 4 lower undone, p = 0.94): images as shot\n",
        "varies": "varies (4 of 4 lower undone, p = 0.001): every image's light undone\n",
    }
    assert f"  light test: the product's light {said[verdict]}" in out
    meta = json.loads((tmp_path / "m" / "model.json").read_text())["meta"]
    assert meta["info"]["light_test"]["varies"] is varies
    assert meta["info"]["light_test"].get("tested", True) is (verdict != "untested")
    assert ("light_reference" in meta) is varies and len(
        meta.get("light_reference", [0] * 19)
    ) == 19


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_fit_writes_a_model_folder(model: Path) -> None:
    assert sorted(p.name for p in model.iterdir()) == [
        "banks.safetensors",
        "model.json",
        "support.safetensors",
    ]
    meta = json.loads((model / "model.json").read_text())["meta"]
    assert meta["classes"] == list(TYPES)
    assert sorted(p.name for p in model.parent.iterdir() if p.name.startswith(".")) == []


def test_classify_writes_csv_and_overlays(model: Path, arranged: Path, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    extra = arranged / "query" / "good"
    code = main(["classify", "--model", str(model), str(arranged / "query"), "--out", str(out)])
    assert code == 0
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 9 and frame["error"].isna().all()
    assert set(frame["defect_type"]) <= set(TYPES)
    assert (frame["prediction"] == "good").eq(frame["is_normal"]).all()
    probs = frame[[f"p_{t}" for t in TYPES]]
    assert (probs.sum(axis=1) - 1).abs().max() < 1e-6
    assert (probs.max(axis=1) == frame["probability"]).all()
    assert (frame["low_confidence"] == (~frame["is_normal"] & (frame["probability"] < 0.5))).all()
    assert not frame["adapted"].any()
    for rel in frame["overlay"]:
        assert (out / rel).is_file()
    assert "9 images" in capsys.readouterr().out
    # --threshold overrides, --explain prints per-class support distances
    code = main(["classify", "--model", str(model), str(extra), "--out", str(out),
                 "--threshold", "-1", "--explain", "--no-overlays"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "nearest support" in text and all(t in text for t in TYPES)
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 3 and not frame["is_normal"].any()
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind
    # --adapt is transductive and says so
    code = main(["classify", "--model", str(model), str(arranged / "query"), "--out", str(out),
                 "--adapt", "--no-overlays", "--threshold", "-1"])  # fmt: skip
    assert code == 0 and "transductive" in capsys.readouterr().out
    assert pd.read_csv(out / "results.csv")["adapted"].all()


def test_corrupt_inputs_are_reported_and_skipped(
    model: Path, arranged: Path, tmp_path, capsys
) -> None:
    inputs = tmp_path / "in"
    _link(inputs, sorted((arranged / "query" / "hole").iterdir())[:2])
    (inputs / "zz_broken.png").write_bytes(b"\x89PNG broken")
    code = main(["classify", "--model", str(model), str(inputs), "--out", str(tmp_path / "o")])
    assert code == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "zz_broken.png" in captured.err
    frame = pd.read_csv(tmp_path / "o" / "results.csv")
    assert len(frame) == 3
    broken = frame[frame["path"].str.endswith("zz_broken.png")].iloc[0]
    assert "cannot read image" in broken["error"] and pd.isna(broken["score"])


def test_fit_refusals(arranged: Path, tmp_path: Path, capsys) -> None:
    sup = str(arranged / "support")
    assert main(["fit", "--normal", str(tmp_path / "x"), "--support", sup,
                 "--out", str(tmp_path / "m")]) == 2  # fmt: skip
    assert "normal folder not found" in _error_line(capsys)
    (tmp_path / "sup" / "dent").mkdir(parents=True)
    assert main(["fit", "--normal", str(arranged / "normal"), "--support", str(tmp_path / "sup"),
                 "--out", str(tmp_path / "m")]) == 2  # fmt: skip
    assert "defect type folder 'dent' has no images" in _error_line(capsys)
    assert not (tmp_path / "m").exists()


def test_classify_refusals(model: Path, arranged: Path, tmp_path: Path, capsys) -> None:
    q = str(arranged / "query")
    assert main(["classify", "--model", str(tmp_path / "nomodel"), q, "--out", str(tmp_path)]) == 2
    assert "model not found" in _error_line(capsys)
    assert main(["classify", "--model", str(model), str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
    assert "input not found" in _error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["classify", "--model", str(model), str(tmp_path / "empty"), "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
    assert "input folder has no images" in _error_line(capsys)
    assert not (tmp_path / "o").exists()  # nothing written on refusal


def test_tampered_and_incompatible_models_are_refused(
    model: Path, arranged, tmp_path, capsys
) -> None:
    import shutil

    from fsad.artifact import _manifest_digest

    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    data = bytearray((bad / "support.safetensors").read_bytes())
    data[-2] ^= 1
    (bad / "support.safetensors").write_bytes(bytes(data))
    q = str(arranged / "query")
    assert main(["classify", "--model", str(bad), q, "--out", str(tmp_path / "o")]) == 2
    assert "tampered or corrupt" in _error_line(capsys)

    old = tmp_path / "old"
    shutil.copytree(model, old)
    manifest = json.loads((old / "model.json").read_text())
    manifest.update(format_version=0, fsad_version="0.0.1")
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (old / "model.json").write_text(json.dumps(manifest))
    assert main(["classify", "--model", str(old), q, "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "incompatible model format version 0" in line and "re-fit" in line
