"""The Python API: fit from folders, save/load, classify, explain, the scikit-learn style
predict / predict_proba / get_params; every bad-input case.

Fast: a tiny resolution (crop 64 -> 8 x 8 patch grid) on the embedded dataset's washer
category arranged as folders (symlinks), fitted once per module.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.artifact import MANIFEST, ModelError, _manifest_digest
from fsad.descriptors import DescriptorConfig
from fsad.engine import EngineConfig
from fsad.errors import ConfigError, DataError
from fsad.features import FeatureConfig
from fsad.heads import softmax
from fsad.inspector import (
    DEFAULT_METHOD,
    METHODS,
    Inspector,
    NotFittedError,
    collect_inputs,
    support_folders,
)
from fsad.inspector.classifier import fit_temperature, framing_text, trust_text
from fsad.recipe import Group, Recipe
from fsad.zoom import ZoomConfig

_BLOCKS = DescriptorConfig(residual_fracs=(0.25,), feature_fracs=(0.5,), feature_centred=True)
#: the shape of the recommended recipe (two engines, zoom views, experts with prototype
#: experts) at 64 px, so a fit takes seconds
TINY_RECIPE = Recipe(
    (
        Group(_BLOCKS),
        Group(_BLOCKS, engine=1),
        Group(ZoomConfig(windows=(0.5,), size=64), weight=2.0),
    ),
    engines=(EngineConfig(features=FeatureConfig(resize=80, crop=72, dim=32), coreset_ratio=0.25),),
    experts=True,
    prototypes=True,
)
SETTINGS = {"resize": 64, "crop": 64, "folds": 3, "coreset_ratio": 0.25, "batch_size": 32}
TINY = {**SETTINGS, "method": TINY_RECIPE}
TYPES = ("hole", "scratch", "stain")
SHOTS = 3


def _link_folder(dst: Path, files: list[Path]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        (dst / f.name).symlink_to(f)
    return dst


@pytest.fixture(scope="module")
def folders(embedded_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """normal/ (30 train goods), support/<type>/ (first 3 each), query/ (rest + good tests)."""
    cat = embedded_root / "washer"
    root = tmp_path_factory.mktemp("arranged")
    normal = _link_folder(root / "normal", sorted((cat / "train" / "good").iterdir())[:30])
    for t in TYPES:
        files = sorted((cat / "test" / t).iterdir())
        _link_folder(root / "support" / t, files[:SHOTS])
        _link_folder(root / "query" / t, files[SHOTS:])
    _link_folder(root / "query" / "good", sorted((cat / "test" / "good").iterdir()))
    return {"normal": normal, "support": root / "support", "query": root / "query"}


@pytest.fixture(scope="module", autouse=True)
def shared_backbone(tmp_path_factory: pytest.TempPathFactory):
    """A private cache, and the backbone loaded once for this module (each fit would otherwise rebuild it)."""
    import fsad.features

    cached = functools.lru_cache(maxsize=None)(fsad.features.load_backbone)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FSAD_CACHE", str(tmp_path_factory.mktemp("cache")))  # never ~/.cache
        mp.setattr(fsad.features, "load_backbone", lambda *a, **k: cached(*a, **{**k}))
        yield


@pytest.fixture(scope="module")
def fitted(folders: dict[str, Path]) -> Inspector:
    return Inspector(**TINY).fit(folders["normal"], folders["support"])


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


# --- behaviour ---------------------------------------------------------------------------------


def test_fit_builds_a_consistent_model(fitted: Inspector) -> None:
    assert fitted.classes == list(TYPES)
    assert (
        fitted.config.method == "custom"
        and fitted.recipe.engines[0].features.framing == "letterbox"
    )
    rows = fitted.model_.support
    n = len(TYPES) * SHOTS
    assert [x.shape for x in rows] == [(n, 384 * 2), (n, 32 * 2), (n, rows[2].shape[1])]
    assert fitted.info["n_normal"] == 30 and fitted.skipped == []
    assert len(fitted.info["bank_sizes"]) == 2 and set(fitted.info["weights_sha256"]) == {
        "tf_efficientnet_lite0"
    }
    trust = fitted.trust
    assert trust["n_images"] == len(TYPES) * SHOTS and trust["chance"] == pytest.approx(1 / 3)
    assert 0 <= trust["accuracy"] <= 1 and "leave-one-out estimate" in trust_text(trust)
    lo = fitted.info["leave_out_scores"]
    assert lo["min"] <= lo["median"] <= fitted.threshold <= lo["max"]


def test_classify_separates_normal_from_defective(fitted: Inspector, folders) -> None:
    results = fitted.classify([folders["query"]], progress=False)
    assert all(r.ok for r in results)
    truth = [Path(r.path).parent.name for r in results]
    scores = np.array([r.score for r in results])
    good = np.array([t == "good" for t in truth])
    assert scores[~good].mean() > scores[good].mean()
    for r in results:
        assert r.is_normal == (r.score <= r.threshold)
        assert r.prediction == ("good" if r.is_normal else r.defect_type)
        assert r.probability >= r.runner_up_probability
        assert r.anomaly_map.shape == (8, 8)
        assert set(r.nearest_support) == set(TYPES)
    defect = [(t, r.defect_type) for t, r in zip(truth, results) if t != "good"]
    acc = np.mean([t == p for t, p in defect])
    assert acc > 1 / len(TYPES)  # better than chance even at 64 px


def test_threshold_override(fitted: Inspector, folders) -> None:
    files = sorted((folders["query"] / "good").iterdir())[:2]
    assert all(not r.is_normal for r in fitted.classify(files, threshold=-1.0, progress=False))
    assert all(r.is_normal for r in fitted.classify(files, threshold=1e9, progress=False))


def test_save_load_round_trip_gives_same_results(fitted: Inspector, folders, tmp_path) -> None:
    files = sorted((folders["query"] / "hole").iterdir())[:3]
    before = fitted.classify(files, progress=False)
    loaded = Inspector.load(fitted.save(tmp_path / "model"))
    after = loaded.classify(files, progress=False)
    assert loaded.classes == fitted.classes and loaded.threshold == fitted.threshold
    for a, b in zip(before, after):
        assert a.score == pytest.approx(b.score, rel=1e-5)
        assert a.defect_type == b.defect_type
        assert a.probability == pytest.approx(b.probability, abs=1e-5)
    text = loaded.explain(after[0])
    assert "threshold" in text and all(t in text for t in TYPES)
    overlay = loaded.overlay(after[0])
    assert overlay.shape == cv2.imread(str(files[0])).shape and overlay.dtype == np.uint8


def test_temperature_is_fitted_by_leave_one_out() -> None:
    cosine = Recipe((Group(_BLOCKS),), head="cosine")
    sup = [np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])]
    lab = np.array([0, 0, 1, 1])
    t = fit_temperature(cosine, sup, lab, 2)
    assert t <= 0.05  # perfectly separable: sharp probabilities
    assert fit_temperature(cosine, [sup[0][[0, 2]]], lab[[0, 2]], 2) == 0.05  # 1-shot: default
    assert fit_temperature(TINY_RECIPE, sup * 3, lab, 2) == 0.05  # probabilistic head: unused
    np.testing.assert_allclose(softmax(np.array([[0.0, 0.0]])), [[0.5, 0.5]])


def test_trust_estimate_says_when_it_rests_on_nothing() -> None:
    from fsad.inspector.classifier import trust_estimate

    logistic = Recipe((Group(_BLOCKS),))
    rows = [np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [0.7, 0.7]])]
    lab = np.array([0, 0, 1, 1, 2])
    trust = trust_estimate(logistic, rows, lab, ["a", "b", "c"])
    assert trust["n_images"] == 4 and trust["accuracy"] == 1.0
    assert trust["types_without_estimate"] == ["c"] and "not covered" in trust_text(trust)
    alone = trust_estimate(logistic, [rows[0][[0, 2, 4]]], lab[[0, 2, 4]], ["a", "b", "c"])
    assert alone["accuracy"] is None and "not available" in trust_text(alone)


# --- scikit-learn style API ------------------------------------------------------------------


def test_fit_returns_self_and_takes_lists_and_a_mapping(fitted: Inspector, folders) -> None:
    """Lists of files and a type -> files mapping fit the same model as the folders."""
    normal = sorted(folders["normal"].iterdir())
    support = {t: sorted((folders["support"] / t).iterdir()) for t in TYPES}
    insp = Inspector(**TINY)
    assert insp.fit(normal, support) is insp
    assert insp.classes == fitted.classes and insp.threshold == fitted.threshold
    for a, b in zip(insp.model_.support, fitted.model_.support, strict=True):
        np.testing.assert_array_equal(a, b)
    assert insp.model_.support_names == fitted.model_.support_names


def test_predict_proba_rows_sum_to_one_and_argmax_is_predict(fitted: Inspector, folders) -> None:
    files = collect_inputs([folders["query"]])
    proba = fitted.predict_proba(folders["query"])  # a folder: the same files, same order
    pred = fitted.predict(files)
    assert proba.shape == (len(files), len(TYPES)) and pred.shape == (len(files),)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    defective = pred != "good"
    assert defective.any()
    assert list(np.asarray(fitted.classes)[proba.argmax(1)[defective]]) == list(pred[defective])
    assert list(pred) == [r.prediction for r in fitted.classify(files, progress=False)]
    assert list(fitted.predict(files, threshold=-1.0)) == [
        fitted.classes[k] for k in proba.argmax(1)
    ]
    image = cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(fitted.predict_proba([image]), proba[:1], atol=1e-6)


def test_predict_refuses_unreadable_images(fitted: Inspector, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.png"):
        fitted.predict([tmp_path / "bad.png"])


def test_get_params_round_trips_into_a_new_inspector(fitted: Inspector, tmp_path: Path) -> None:
    params = fitted.get_params()
    assert params["method"] == TINY_RECIPE and params["crop"] == TINY["crop"]
    clone = Inspector(**params)
    assert clone.get_params() == params and clone.model_ is None
    assert "crop=64" in repr(clone) and "seed" not in repr(clone)
    assert (
        Inspector().method == DEFAULT_METHOD == "hires_lite0_poe_proto_rot4_gated_fixed_light"
        and "residual_proto" in METHODS
    )
    with pytest.raises(NotFittedError, match="not fitted"):
        clone.threshold  # noqa: B018
    assert clone.set_params(seed=3) is clone and clone.seed == 3
    with pytest.raises(ConfigError, match="unknown Inspector parameter 'sead'"):
        clone.set_params(sead=3)
    loaded = Inspector.load(fitted.save(tmp_path / "m"))
    keys = set(params) - {"batch_size", "cache", "method"}
    assert {k: loaded.get_params()[k] for k in keys} == {k: params[k] for k in keys}
    assert loaded.get_params()["method"] == fitted.recipe  # the recipe as fitted (framing set)


# --- bad input ---------------------------------------------------------------------------------


def test_missing_and_empty_folders(tmp_path: Path, folders) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="normal folder not found"):
        Inspector().fit(tmp_path / "nope", folders["support"])
    with pytest.raises(DataError, match="normal folder has no images"):
        Inspector().fit(tmp_path / "empty", folders["support"])
    with pytest.raises(DataError, match="support folder not found"):
        Inspector().fit(folders["normal"], tmp_path / "nope")
    with pytest.raises(DataError, match="no defect-type sub-folders"):
        Inspector().fit(folders["normal"], tmp_path / "empty")
    with pytest.raises(DataError, match="input not found"):
        collect_inputs([tmp_path / "nope"])
    with pytest.raises(DataError, match="input folder has no images"):
        collect_inputs([tmp_path / "empty"])


def test_defect_type_without_images(tmp_path: Path) -> None:
    _write(tmp_path / "sup" / "crack" / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "sup" / "dent").mkdir()
    (tmp_path / "sup" / "dent" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="defect type folder 'dent' has no images"):
        support_folders(tmp_path / "sup")


def test_corrupt_files_are_skipped_at_fit(tmp_path: Path, folders) -> None:
    normal = tmp_path / "normal"
    normal.mkdir()
    for f in sorted(folders["normal"].iterdir())[:4]:
        (normal / f.name).symlink_to(f)
    (normal / "broken.png").write_bytes(b"\x89PNG not really")
    sup = tmp_path / "sup"
    for t in TYPES[:2]:
        _link_folder(sup / t, sorted((folders["support"] / t).iterdir())[:1])
    (sup / TYPES[0] / "zero.jpg").write_bytes(b"")
    insp = Inspector(method="residual_proto", **SETTINGS).fit(normal, sup)
    assert sorted(Path(p).name for p, _ in insp.skipped) == ["broken.png", "zero.jpg"]
    assert insp.info["n_normal"] == 4
    # a defect type whose only file is unreadable
    (sup / "ghost").mkdir()
    (sup / "ghost" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="defect type 'ghost' has no readable images"):
        Inspector(method="residual_proto", **SETTINGS).fit(normal, sup)


def test_too_few_readable_normals(tmp_path: Path, folders) -> None:
    normal = tmp_path / "normal"
    _link_folder(normal, sorted(folders["normal"].iterdir())[:1])
    (normal / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="at least 2 readable normal images, got 1"):
        Inspector(**TINY).fit(normal, folders["support"])


def test_mixed_sizes_and_modes_and_corrupt_inputs(fitted: Inspector, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    rgb = rng.integers(0, 255, (90, 70, 3), dtype=np.uint8)
    _write(inputs / "grey.png", rng.integers(0, 255, (50, 120), dtype=np.uint8))
    _write(inputs / "rgba.png", np.dstack([rgb, np.full((90, 70), 255, np.uint8)]))
    _write(inputs / "deep.png", rng.integers(0, 65535, (64, 64, 3), dtype=np.uint16))
    _write(inputs / "big.jpg", rng.integers(0, 255, (300, 200, 3), dtype=np.uint8))
    (inputs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (inputs / "empty.jpg").write_bytes(b"")
    results = {Path(r.path).name: r for r in fitted.classify([inputs], progress=False)}
    assert set(results) == {
        "grey.png",
        "rgba.png",
        "deep.png",
        "big.jpg",
        "corrupt.png",
        "empty.jpg",
    }
    for name in ("grey.png", "rgba.png", "deep.png", "big.jpg"):
        assert results[name].ok and np.isfinite(results[name].score)
    for name in ("corrupt.png", "empty.jpg"):
        assert not results[name].ok and name in results[name].error
        assert results[name].score is None


def test_unknown_method_and_bad_config(folders) -> None:
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        Inspector(method="magic").fit(folders["normal"], folders["support"])
    with pytest.raises(ConfigError, match="quantile"):
        Inspector(quantile=1.5).fit(folders["normal"], folders["support"])


def test_tampered_incompatible_or_foreign_models(
    fitted: Inspector, tmp_path: Path, monkeypatch
) -> None:
    model = fitted.save(tmp_path / "m")
    (model / "banks.safetensors").write_bytes((model / "banks.safetensors").read_bytes()[:-4])
    with pytest.raises(ModelError, match="tampered or corrupt"):
        Inspector.load(model)

    model = fitted.save(tmp_path / "m2")
    manifest = json.loads((model / MANIFEST).read_text())
    manifest["format_version"] = 99
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (model / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="incompatible model format version 99"):
        Inspector.load(model)

    model = fitted.save(tmp_path / "m3")
    manifest = json.loads((model / MANIFEST).read_text())
    manifest["meta"]["classes"] = ["only_one"]
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (model / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="inconsistent"):
        Inspector.load(model)

    model = fitted.save(tmp_path / "m4")
    monkeypatch.setattr(
        "fsad.inspector.model.weights_digests",
        lambda config, recipe, weights: {"tf_efficientnet_lite0": "0" * 64},
    )
    with pytest.raises(ModelError, match="weights on this machine differ"):
        Inspector.load(model)


def test_no_pickle_in_the_model(fitted: Inspector, tmp_path: Path) -> None:
    model = fitted.save(tmp_path / "m")
    names = sorted(os.listdir(model))
    assert names == ["banks.safetensors", "model.json", "support.safetensors"]
    assert all(b"\x80\x04" not in (model / n).read_bytes()[:16] for n in names)


def test_residual_proto_method(folders, tmp_path: Path) -> None:
    normal = _link_folder(tmp_path / "normal", sorted(folders["normal"].iterdir())[:6])
    insp = Inspector(method="residual_proto", **SETTINGS).fit(normal, folders["support"])
    assert insp.config.method == "residual_proto" and insp.recipe.head == "cosine"
    assert [x.shape for x in insp.model_.support] == [(len(TYPES) * SHOTS, 384)]  # one block
    assert 0 < insp.model_.temperature <= 1
    files = sorted((folders["query"] / "stain").iterdir())[:2]
    loaded = Inspector.load(insp.save(tmp_path / "m"))
    assert (
        loaded.model_.temperature == insp.model_.temperature and loaded.method == "residual_proto"
    )
    for a, b in zip(insp.classify(files, progress=False), loaded.classify(files, progress=False)):
        assert sum(a.probabilities.values()) == pytest.approx(1.0)
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def test_a_method_with_support_poses_keeps_the_turned_rows(folders, tmp_path: Path) -> None:
    normal = _link_folder(tmp_path / "normal", sorted(folders["normal"].iterdir())[:6])
    insp = Inspector(method="residual_proto_rot4", **SETTINGS).fit(normal, folders["support"])
    n = len(TYPES) * SHOTS
    assert insp.recipe.support_poses == 4 and insp.model_.support[0].shape[0] == 4 * n
    assert insp.info["n_support"] == {t: SHOTS for t in TYPES}  # images, not rows
    assert insp.trust["n_images"] == n  # leave-one-out over images (with their poses)
    names = insp.model_.support_names
    assert len(names) == 4 * n and names[n].endswith("@rot90") and "@" not in names[n - 1]
    np.testing.assert_array_equal(insp.support_labels[n : n + 3], [insp.support_labels[0]] * 3)
    loaded = Inspector.load(insp.save(tmp_path / "m"))
    assert loaded.recipe.support_poses == 4 and loaded.model_.support_names == names
    files = sorted((folders["query"] / "stain").iterdir())[:2]
    np.testing.assert_allclose(loaded.predict_proba(files), insp.predict_proba(files), atol=1e-6)


@pytest.mark.parametrize("holds", [True, False])
def test_the_pose_test_decides_the_fitted_support_and_is_reported(
    folders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, holds: bool
) -> None:
    from dataclasses import replace

    from fsad.methods.anomaly_guided import RECIPES
    from fsad.poses import PoseTest

    n = len(TYPES) * SHOTS
    verdict = PoseTest(n, n if holds else 0, 0.5**n if holds else 1.0)
    monkeypatch.setattr("fsad.recipe.pose_test", lambda shot, turned: verdict)
    normal = _link_folder(tmp_path / "normal", sorted(folders["normal"].iterdir())[:6])
    recipe = replace(RECIPES["residual_proto_rot4"], pose_test=True)
    insp = Inspector(**{**SETTINGS, "method": recipe}).fit(normal, folders["support"])
    rows = n if holds else 4 * n
    assert insp.model_.support[0].shape[0] == len(insp.model_.support_names) == rows
    assert insp.info["pose_test"] == verdict.as_dict()
    assert insp.info["pose_test"]["holds_pose"] is holds
    loaded = Inspector.load(insp.save(tmp_path / "m"))
    assert loaded.recipe.pose_test and loaded.model_.support_names == insp.model_.support_names


def test_support_poses_through_two_engines_and_zoom_views(folders) -> None:
    """The default's shape (two engines, zoom views, experts) in four poses, at 64 px."""
    from dataclasses import replace

    recipe = replace(TINY_RECIPE, support_poses=4)
    insp = Inspector(**{**SETTINGS, "method": recipe}).fit(folders["normal"], folders["support"])
    n = len(TYPES) * SHOTS
    assert [x.shape[0] for x in insp.model_.support] == [4 * n] * len(recipe.groups)
    assert insp.recipe.engines[0].features.framing == "letterbox"  # every engine: whole image
    files = sorted((folders["query"] / "hole").iterdir())[:2]
    assert np.allclose(insp.predict_proba(files).sum(1), 1.0)


def test_the_recipe_is_stored_as_json_and_a_model_of_another_version_is_refused(
    fitted: Inspector, tmp_path: Path
) -> None:
    model = fitted.save(tmp_path / "m")
    meta = json.loads((model / MANIFEST).read_text())["meta"]
    assert meta["recipe"]["groups"][2]["block"]["kind"] == "ZoomConfig"
    assert Inspector.load(model).recipe == fitted.recipe
    manifest = json.loads((model / MANIFEST).read_text())
    manifest["meta"]["recipe"]["groups"][0]["block"]["kind"] = "Hologram"
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (model / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="unknown block kind 'Hologram'"):
        Inspector.load(model)


def test_array_inputs_are_checked_and_a_single_array_is_one_image(
    fitted: Inspector, folders
) -> None:
    from fsad.data import read_image

    image = read_image(collect_inputs([folders["query"]])[0])
    assert fitted.predict_proba(image).shape == (1, len(fitted.classes))
    with pytest.raises(DataError, match=r"image 0: expected an RGB array \(H, W, 3\) uint8"):
        fitted.predict([image[..., 0]])
    with pytest.raises(DataError, match="float32"):
        fitted.predict([image.astype(np.float32)])


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_batch_size_must_be_a_positive_integer(bad) -> None:
    from fsad.errors import ConfigError

    with pytest.raises(ConfigError, match=f"batch_size must be a positive integer, got {bad}"):
        Inspector(batch_size=bad)
    with pytest.raises(ConfigError, match="batch_size"):
        Inspector().set_params(batch_size=bad)


def test_whole_image_framing_is_the_default(fitted: Inspector) -> None:
    """fit frames the whole image (letterbox) by default, every engine of the recipe."""
    assert Inspector().framing == "letterbox" and fitted.config.framing == "letterbox"
    assert fitted.config.feature_config().framing == "letterbox"
    assert all(e.features.framing == "letterbox" for e in fitted.recipe.engines)


def test_fit_refuses_the_fixed_framing_for_its_first_engine() -> None:
    """fit's own framing (engine 0, the threshold's and the overlay's) is letterbox or crop;
    a fixed engine comes with a recipe (tested below)."""
    from fsad.inspector.config import InspectorConfig

    with pytest.raises(ConfigError, match="fit frames its first engine 'letterbox' or 'crop'"):
        InspectorConfig(framing="fixed")


def test_low_confidence_flag_and_adapt(fitted: Inspector, folders) -> None:
    files = collect_inputs([folders["query"]])[::3]
    scores = [r.score for r in fitted.classify(files, progress=False)]
    thr = float(np.median(scores))  # half the images defective
    plain = fitted.classify(files, threshold=thr, progress=False, min_confidence=1.01)
    assert all(r.low_confidence == (not r.is_normal) for r in plain)  # nothing reaches 1.01
    assert all(r.adapted is False for r in plain)
    adapted = fitted.classify(files, threshold=thr, progress=False, adapt=True)
    defective = [i for i, r in enumerate(plain) if not r.is_normal]
    assert len(defective) >= 2
    assert [r.adapted for r in adapted] == [not r.is_normal for r in plain]
    assert [a.score for a in adapted] == [p.score for p in plain]
    assert not all(
        adapted[i].probabilities == pytest.approx(plain[i].probabilities) for i in defective
    )
    # the EM of fsad.heads over the defective ones; normal images keep their probabilities
    from fsad.inspector.classifier import adapt

    for i in set(range(len(files))) - set(defective):
        assert adapted[i].probabilities == pytest.approx(plain[i].probabilities, abs=1e-9)
    proba = np.array([[r.probabilities[c] for c in fitted.classes] for r in plain])
    want = adapt(proba[defective], fitted.support_labels, 3)
    got = np.array([[adapted[i].probabilities[c] for c in fitted.classes] for i in defective])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_inputs_a_factory_has(folders, tmp_path: Path) -> None:
    """Grey, RGBA and 16-bit PNG/TIFF images of mixed sizes, upper-case extensions, nested
    folders and symbolic links are read; a corrupt file is skipped with one line naming it;
    a defect type with a single image is accepted (the trust estimate says it is not
    covered); a failed fit leaves no model folder behind."""
    real = sorted(folders["normal"].iterdir())
    normal = tmp_path / "normal"
    for i, f in enumerate(real[:6]):
        rgb = cv2.imread(str(f))
        if i == 0:
            _write(normal / "line1" / "A.PNG", cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))
        elif i == 1:
            _write(normal / "line1" / "deep" / "B.TIF", rgb.astype(np.uint16) * 257)
        elif i == 2:
            _write(normal / "C.png", cv2.cvtColor(rgb, cv2.COLOR_BGR2BGRA))
        elif i == 3:
            _write(normal / "wide.JPG", cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0])))
        else:
            (normal / f"link{i}.png").symlink_to(f)
    (normal / "line1" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    support = {t: sorted((folders["support"] / t).iterdir()) for t in TYPES}
    support[TYPES[2]] = support[TYPES[2]][:1]  # one image only
    insp = Inspector(method="residual_proto", **SETTINGS).fit(normal, support)
    assert insp.info["n_normal"] == 6
    assert [Path(p).name for p, _ in insp.skipped] == ["corrupt.png"]
    assert "corrupt.png" in insp.skipped[0][1] and "\n" not in insp.skipped[0][1]
    assert insp.trust["types_without_estimate"] == [TYPES[2]]
    assert insp.trust["n_images"] == 2 * SHOTS
    query = tmp_path / "q"
    _write(query / "tall.TIFF", np.full((200, 60), 40000, np.uint16))
    (query / "x.png").symlink_to(sorted((folders["query"] / "hole").iterdir())[0])
    results = insp.classify([query], progress=False)
    assert [Path(r.path).name for r in results] == ["tall.TIFF", "x.png"]
    assert all(r.ok and r.anomaly_map.shape == (8, 8) for r in results)
    # a fit that fails writes nothing
    out = tmp_path / "model"
    with pytest.raises(DataError, match="at least 2 readable normal images"):
        Inspector(**SETTINGS).fit([normal / "line1" / "corrupt.png"], support).save(out)
    assert not out.exists()


def test_member_images_counts_a_relit_copy_as_its_image() -> None:
    import torch

    from fsad.inspector.threshold import member_images

    f = torch.zeros(3, 2, 2, 2)  # 3 normal images of 4 patches
    idx = torch.tensor([0, 3, 4, 9, 23])
    assert member_images(idx, f).tolist() == [0, 0, 1, 2, 5]
    # a relit bank draws from 2 images per normal (image i at 2 i, its copy at 2 i + 1)
    assert member_images(idx, f, per_image=2).tolist() == [0, 0, 0, 1, 2]


def test_a_relit_recipe_fits_relit_banks_and_keeps_them(
    fitted: Inspector, folders, tmp_path: Path
) -> None:
    """With ``relit_bank`` every engine's bank draws from twice the images (each normal and
    its relit copy), the model records it, and a saved model classifies as the fitted one."""
    from dataclasses import replace

    insp = Inspector(**{**TINY, "method": replace(TINY_RECIPE, relit_bank=True)})
    insp.fit(folders["normal"], folders["support"])
    assert [c.relit_bank for c in insp.model_.engine_configs] == [True, True]
    plain, lit = fitted.info["bank_sizes"], insp.info["bank_sizes"]
    assert all(abs(b - 2 * a) <= 1 for a, b in zip(plain, lit, strict=True))  # ratio x 2 N
    assert insp.info["n_normal"] == 30  # the copies are not normal images of their own
    loaded = Inspector.load(insp.save(tmp_path / "relit"))
    assert loaded.recipe.relit_bank
    a = insp.classify([folders["query"]], progress=False)
    b = loaded.classify([folders["query"]], progress=False)
    assert [r.defect_type for r in a] == [r.defect_type for r in b]
    assert np.allclose([r.score for r in a], [r.score for r in b], atol=1e-5)


def test_a_relit_threshold_leaves_each_images_copy_out_with_it(
    folders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: black-and-white normals are their own relit copies under both gammas (0
    and 255 stay put), and a full bank (coreset ratio 1) keeps every patch. If leaving an
    image out kept its copy in the bank, that image would score 0 against its own twin; so
    every leave-out score stays clearly above 0 only when the copy goes with its image."""
    import fsad.inspector
    from fsad.inspector.threshold import member_images

    rng = np.random.default_rng(0)
    normal = tmp_path / "bw"
    normal.mkdir()
    for i in range(6):  # random 8x8 blocks of black and white: six different parts
        blocks = rng.integers(0, 2, (8, 8), dtype=np.uint8) * 255
        cv2.imwrite(str(normal / f"{i}.png"), np.kron(blocks, np.ones((8, 8), np.uint8)))
    lit = Recipe((Group(_BLOCKS),), relit_bank=True)  # one engine: the threshold's
    settings = {**SETTINGS, "coreset_ratio": 1.0, "folds": 6, "method": lit}
    scores = Inspector(**settings).fit(normal, folders["support"]).info["leave_out_scores"]
    assert scores["min"] > 1e-2
    # the same fit with the copy counted as an image of its own: some image meets its twin
    monkeypatch.setattr(fsad.inspector, "member_images", lambda idx, f, per: member_images(idx, f))
    broken = Inspector(**settings).fit(normal, folders["support"]).info["leave_out_scores"]
    assert broken["min"] < 1e-3 < scores["min"]


def test_a_fixed_engine_of_the_recipe_stores_its_side_and_survives_a_save(
    folders, tmp_path: Path
) -> None:
    """A recipe engine framed "fixed" (the *_fixed methods' 448 px one) takes its side from
    the normal images at fit, keeps it in the saved model and classifies as before a save."""
    from dataclasses import replace

    from fsad.recipe import framed

    recipe = replace(TINY_RECIPE, engines=tuple(framed(e, "fixed") for e in TINY_RECIPE.engines))
    insp = Inspector(**{**SETTINGS, "method": recipe}).fit(folders["normal"], folders["support"])
    sides = {max(cv2.imread(str(p)).shape[:2]) for p in folders["normal"].iterdir()}
    (engine,) = insp.recipe.engines
    assert (engine.features.framing, engine.features.side) == ("fixed", max(sides))
    files = collect_inputs([folders["query"]])[:4]
    before = [r.probabilities for r in insp.classify(files, progress=False)]
    loaded = Inspector.load(insp.save(tmp_path / "m"))
    assert loaded.recipe.engines[0].features.side == max(sides)
    after = [r.probabilities for r in loaded.classify(files, progress=False)]
    assert before == after


def test_the_framing_line_names_each_engine_and_the_fixed_engine_s_side() -> None:
    from dataclasses import replace

    from fsad.methods.anomaly_guided import RECIPES
    from fsad.recipe import framed

    fixed = RECIPES[DEFAULT_METHOD]
    fitted = replace(fixed, engines=tuple(framed(e, "fixed", 512) for e in fixed.engines))
    line = framing_text("letterbox", 224, fitted)
    assert line == (
        "framing: letterbox (the whole image, 224 px engine); the 448 px engine at the "
        "product's scale (the longest side of the normal images, 512 px, fills its square)"
    )
    plain = framing_text("crop", 224, RECIPES["hires_lite0_poe_proto_rot4"])
    assert plain.endswith("(the centre crop, 224 px engine); the 448 px engine framed as the first")
