"""The embedded procedural dataset: layout read by fsad.data, determinism, idempotence,
atomicity and visually distinct defect types."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from fsad import embedded
from fsad.data import load_category, read_image, read_mask
from fsad.errors import DataError

SMALL = {"n_train": 2, "n_test_per_type": 2, "n_good_test": 1, "size": 64}


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_counts_read_by_fsad_data(embedded_root: Path) -> None:
    assert len(embedded.CATEGORIES) >= 3
    kinds = {c["kind"] for c in embedded.CATEGORIES.values()}
    assert kinds == {"object", "texture"}
    for cat in embedded.CATEGORIES:
        data = load_category(embedded_root, "mvtec_ad", cat)
        assert data.bank_source == "train"
        assert len(data.train) >= 60
        assert sorted(data.defect_types) == sorted(embedded.defect_types(cat))
        assert len(data.defect_types) >= 3
        assert data.count("test", "good") >= 1
        for d in data.defect_types:
            assert data.count("test", d) >= 10
        for s in data.test:
            img = read_image(s.path)
            assert img.shape == (256, 256, 3)
            if s.is_good:
                assert s.mask_path is None
                continue
            assert s.mask_path is not None and s.mask_path.name.endswith("_mask.png")
            mask = read_mask(s.mask_path, img.shape[:2])
            assert 10 < mask.sum() < 0.25 * mask.size, s.mask_path


def test_masks_are_binary_0_255(embedded_root: Path) -> None:
    import cv2

    for p in list((embedded_root / "pill" / "ground_truth").rglob("*_mask.png"))[:10]:
        m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert m.ndim == 2 and set(np.unique(m)) <= {0, 255}


def test_files_match_render_sample(embedded_root: Path) -> None:
    img, _, mask = embedded.render_sample("washer", "stain", 3)
    assert np.array_equal(read_image(embedded_root / "washer/test/stain/003.png"), img)
    gt = read_mask(embedded_root / "washer/ground_truth/stain/003_mask.png", (256, 256))
    assert np.array_equal(gt, mask)


@pytest.mark.parametrize("category", list(embedded.CATEGORIES))
def test_defect_lies_inside_its_mask(category: str) -> None:
    """Most of the change a defect makes to the clean image is inside the (dilated) mask."""
    import cv2

    for d in embedded.defect_types(category):
        for i in range(3):
            img, clean, mask = embedded.render_sample(category, d, i)
            diff = np.abs(img.astype(np.int16) - clean.astype(np.int16)).sum(-1)
            near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            changed = diff > 30
            assert changed.sum() > 10, (category, d, i)
            assert changed[near].sum() / changed.sum() > 0.95, (category, d, i)
            assert changed[mask].mean() > 0.3, (category, d, i)  # the mask is not mostly empty


def test_normals_vary() -> None:
    a, _, _ = embedded.render_sample("washer", "train", 0)
    b, _, _ = embedded.render_sample("washer", "train", 1)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 3


def _descriptor(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean colour and its spread inside the mask, mask size and compactness."""
    import cv2

    px = img[mask].astype(np.float32)
    area = float(mask.sum())
    u8 = mask.astype(np.uint8)
    contours, _ = cv2.findContours(u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    perim = sum(cv2.arcLength(c, True) for c in contours)
    return np.array([*px.mean(0), px.std(), np.log(area), area / max(perim, 1) ** 2 * 100])


@pytest.mark.parametrize("category", list(embedded.CATEGORIES))
def test_defect_types_are_visually_distinct(category: str) -> None:
    """Leave-one-out nearest-centroid on a simple descriptor separates the defect types."""
    types = embedded.defect_types(category)
    feats, labels = [], []
    for k, d in enumerate(types):
        for i in range(8):
            img, _, mask = embedded.render_sample(category, d, i)
            feats.append(_descriptor(img, mask))
            labels.append(k)
    x, y = np.array(feats), np.array(labels)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    correct = 0
    for j in range(len(x)):
        keep = np.arange(len(x)) != j
        cents = np.stack([x[keep & (y == k)].mean(0) for k in range(len(types))])
        correct += int(np.argmin(((cents - x[j]) ** 2).sum(1)) == y[j])
    assert correct / len(x) >= 0.85, (category, correct / len(x))


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path: Path) -> None:
    a = embedded.generate(tmp_path / "a", seed=3, **SMALL)
    b = embedded.generate(tmp_path / "b", seed=3, **SMALL)
    c = embedded.generate(tmp_path / "c", seed=4, **SMALL)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert ha == hb
    pngs = [k for k in ha if k.endswith(".png") and "ground_truth" not in k]
    assert len(pngs) > 10
    assert all(ha[k] != hc[k] for k in pngs)


def test_idempotent_second_call_does_not_rewrite(tmp_path: Path) -> None:
    out = embedded.generate(tmp_path / "d", seed=0, **SMALL)
    marker = json.loads((out / embedded.MARKER).read_text())
    assert marker["version"] == embedded.VERSION and marker["seed"] == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    t0 = time.perf_counter()
    assert embedded.generate(out, seed=0, **SMALL) == out
    assert time.perf_counter() - t0 < 0.5
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_other_seed_replaces_an_embedded_dataset(tmp_path: Path) -> None:
    out = embedded.generate(tmp_path / "e", seed=0, **SMALL)
    embedded.generate(out, seed=1, **SMALL)
    assert json.loads((out / embedded.MARKER).read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_refuses_foreign_folder_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an embedded dataset"):
        embedded.generate(out, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_failure_midway_leaves_no_partial_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(embedded, "_png", boom)
    with pytest.raises(RuntimeError):
        embedded.generate(tmp_path / "f", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="counts >= 1"):
        embedded.generate("/tmp/never-written", n_train=0)
    with pytest.raises(DataError, match="unknown embedded category 'bottle'"):
        embedded.render_sample("bottle", "good", 0)


def test_default_root_and_ensure(
    tmp_cache: Path, embedded_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert embedded.default_embedded_root() == tmp_cache / f"embedded-v{embedded.VERSION}-seed0"
    t0 = time.perf_counter()
    assert embedded.ensure_embedded(embedded_root) == embedded_root  # already complete
    assert time.perf_counter() - t0 < 0.5
    calls = []
    monkeypatch.setattr(embedded, "generate", lambda out, seed: calls.append((out, seed)) or out)
    assert embedded.ensure_embedded(seed=2) == tmp_cache / f"embedded-v{embedded.VERSION}-seed2"
    assert calls == [(tmp_cache / f"embedded-v{embedded.VERSION}-seed2", 2)]
