"""Readers, the paper's few-shot split, and bad-input messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.cli import main
from fsad.config import RunConfig
from fsad.data import (
    DATASETS,
    CategoryData,
    Sample,
    available_datasets,
    encode_image,
    few_shot_split,
    guess_dataset,
    list_categories,
    list_images,
    load_category,
    natural_key,
    read_image,
    register_reader,
)
from fsad.errors import ConfigError, DataError
from fsad.evaluate import run_grid
from fsad.task import FewShotTask, Prediction


def _img(path: Path, value: int = 128, grey: bool = False, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if grey else (size, size, 3)
    assert cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


def _mvtec(root: Path, counts: dict[str, int], ext: str = ".png") -> Path:
    cat = root / "widget"
    for i in range(4):
        _img(cat / "train" / "good" / f"{i:03d}{ext}")
    for label, n in counts.items():
        for i in range(n):
            _img(cat / "test" / label / f"{i:03d}{ext}", value=10 * i)
            if label != "good":
                _img(cat / "ground_truth" / label / f"{i:03d}_mask.png", 255, grey=True)
    return root


# --- real data ---------------------------------------------------------------------------


EXPECTED_AD = {
    "bottle": ({"broken_large": 20, "broken_small": 22, "contamination": 21}, 209, 20, True),
    "transistor": (
        {"bent_lead": 10, "cut_lead": 10, "damaged_case": 10, "misplaced": 10},
        213,
        60,
        False,
    ),
    "screw": (
        {
            t: 10
            for t in [
                "manipulated_front",
                "scratch_head",
                "scratch_neck",
                "thread_side",
                "thread_top",
            ]
        },
        250,
        0,
        False,
    ),
    "metal_nut": ({"bent": 25, "color": 22, "flip": 23, "scratch": 23}, 0, 10, False),
}


@pytest.mark.parametrize("category", sorted(EXPECTED_AD))
def test_mvtec_ad_counts_match_the_data_readme(real_data: Path, category: str) -> None:
    types, n_train, n_good, has_masks = EXPECTED_AD[category]
    data = load_category(real_data / "mvtec_ad", "mvtec_ad", category)
    assert data.defect_types == sorted(types)
    for label, n in types.items():
        samples = [s for s in data.test if s.label == label]
        assert len(samples) == n
        assert all((s.mask_path is not None) == has_masks for s in samples)
    assert sum(s.is_good for s in data.test) == n_good
    if n_train:
        assert len(data.train) == n_train and data.bank_source == "train"
    else:  # the shared metal_nut has no train/good: the good test images stand in
        assert data.bank_source == "test/good" and len(data.train) == n_good


def test_mvtec_3d_tire_counts_and_masks(real_data: Path) -> None:
    data = load_category(real_data / "mvtec_3d", "mvtec_3d", "tire")
    assert data.defect_types == ["combined", "contamination", "cut", "hole"]
    counts = {t: sum(s.label == t for s in data.test) for t in data.defect_types}
    assert counts == {"combined": 5, "contamination": 28, "cut": 27, "hole": 27}
    assert sum(s.split == "train" for s in data.train) == 210
    assert sum(s.split == "validation" for s in data.train) == 29
    assert all(s.mask_path is not None and s.mask_path.exists() for s in data.test if not s.is_good)
    assert all(s.path.parent.name == "rgb" for s in data.test)


def test_real_grey_image_becomes_three_channels(real_data: Path) -> None:
    screw = load_category(real_data / "mvtec_ad", "mvtec_ad", "screw")
    img = read_image(screw.train[0].path)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 1])


def test_cli_check_prints_the_counts(real_data: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "check", str(real_data / "mvtec_3d")]) == 0
    out = capsys.readouterr().out
    assert "contamination" in out and "28" in out and "train 210, validation 29" in out


# --- readers on tiny folders -----------------------------------------------------------


def test_natural_sort_orders_numbers_numerically(tmp_path: Path) -> None:
    assert sorted(["img10.png", "img2.png", "img1.png"], key=natural_key) == [
        "img1.png",
        "img2.png",
        "img10.png",
    ]
    root = tmp_path / "ds"
    for name in ["10.png", "2.png", "1.jpg"]:
        _img(root / "widget" / "test" / "dent" / name)
    _img(root / "widget" / "train" / "good" / "0.bmp")
    data = load_category(root, "mvtec_ad", "widget")
    assert [s.path.name for s in data.test] == ["1.jpg", "2.png", "10.png"]


def test_every_common_extension_is_read(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for i, ext in enumerate([".png", ".jpg", ".jpeg", ".bmp", ".tif", ".PNG"]):
        _img(root / "widget" / "test" / "dent" / f"{i}{ext}")
    (root / "widget" / "test" / "dent" / "notes.txt").write_text("not an image")
    _img(root / "widget" / "train" / "good" / "0.png")
    data = load_category(root, "mvtec_ad", "widget")
    assert len(data.test) == 6


def test_encode_image_is_the_inverse_of_read_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_image(rgb))
    np.testing.assert_array_equal(read_image(path), rgb)  # RGB order survives
    path.write_bytes(encode_image(grey))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2  # stored as one channel
    np.testing.assert_array_equal(read_image(path), np.repeat(grey[..., None], 3, axis=2))
    fast = encode_image(rgb, ".png", (cv2.IMWRITE_PNG_COMPRESSION, 1))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    _, direct = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert fast == direct.tobytes() and fast != encode_image(rgb)  # params reach OpenCV
    jpeg = encode_image(rgb, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 50))
    assert jpeg[:2] == b"\xff\xd8" and jpeg != encode_image(rgb, ".jpg")


def test_masks_are_paired_by_stem(tmp_path: Path) -> None:
    root = _mvtec(tmp_path, {"good": 2, "dent": 3})
    data = load_category(root, "mvtec_ad", "widget")
    dents = [s for s in data.test if s.label == "dent"]
    assert [s.mask_path.name for s in dents] == ["000_mask.png", "001_mask.png", "002_mask.png"]
    assert all(s.mask_path is None for s in data.test if s.is_good)


def test_folder_layout(tmp_path: Path) -> None:
    root = tmp_path / "my_product"
    for i in range(3):
        _img(root / "normal" / f"n{i}.png")
    for label in ["scratch", "dent"]:
        for i in range(2):
            _img(root / label / f"{label}{i}.jpg")
    data = load_category(root, "folder", normal="normal")
    assert data.name == "my_product" and len(data.train) == 3
    assert data.defect_types == ["dent", "scratch"]
    assert list_categories(root, "folder") == ["my_product"]


# --- the paper's split ---------------------------------------------------------------------


def test_split_takes_the_first_n_files_and_keeps_sets_disjoint(tmp_path: Path) -> None:
    root = _mvtec(tmp_path, {"good": 4, "crack": 5, "dent": 12})
    data = load_category(root, "mvtec_ad", "widget")
    for shots in range(1, 5):
        split = few_shot_split(data.test, shots)
        assert split.classes == ["crack", "dent"]
        assert len(split.support) == 2 * shots
        assert not set(split.support) & set(split.query)
        assert all(not s.is_good for s in split.query)
        for idx, label in enumerate(split.classes):
            names = [s.path.name for s, y in zip(split.support, split.support_labels) if y == idx]
            assert names == [f"{i:03d}.png" for i in range(shots)]
            assert all(
                s.label == label for s, y in zip(split.query, split.query_labels) if y == idx
            )
        assert len(split.query) == 17 - 2 * shots
    assert split.chance == pytest.approx(8 / 9)


def test_split_includes_good_only_when_asked(tmp_path: Path) -> None:
    root = _mvtec(tmp_path, {"good": 4, "dent": 3})
    data = load_category(root, "mvtec_ad", "widget")
    split = few_shot_split(data.test, 1, include_good=True)
    assert split.classes == ["dent", "good"]
    assert sum(s.is_good for s in split.query) == 3


# --- bad input --------------------------------------------------------------------------


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset root not found: .*nowhere"):
        load_category(tmp_path / "nowhere", "mvtec_ad", "bottle")


def test_missing_category_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="category 'bottle' not found"):
        load_category(tmp_path, "mvtec_ad", "bottle")


def test_category_without_defect_types(tmp_path: Path) -> None:
    root = _mvtec(tmp_path, {"good": 3})
    with pytest.raises(DataError, match="has no defect types"):
        load_category(root, "mvtec_ad", "widget")


def test_empty_defect_folder_in_folder_layout(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _img(root / "good" / "0.png")
    (root / "scratch").mkdir()
    with pytest.raises(DataError, match="has no images: .*scratch"):
        load_category(root, "folder")


def test_unreadable_image_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        read_image(bad)
    with pytest.raises(DataError, match="image not found"):
        read_image(tmp_path / "absent.png")


def test_shots_larger_than_a_class_allows(tmp_path: Path) -> None:
    root = _mvtec(tmp_path, {"crack": 3, "dent": 10})
    data = load_category(root, "mvtec_ad", "widget")
    with pytest.raises(DataError, match="shots=3 leaves no query image for class 'crack'"):
        few_shot_split(data.test, 3)
    with pytest.raises(DataError, match="positive integer"):
        few_shot_split(data.test, 0)


def test_unknown_layout_and_cli_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'coco' \(known: mvtec_ad, mvtec_3d, folder"
    ):
        load_category(tmp_path, "coco", "x")
    with pytest.raises(ConfigError, match="unknown dataset 'coco'"):
        list_categories(tmp_path, "coco")
    assert main(["data", "check", str(tmp_path / "no" / "such")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset root not found" in err[0]


# --- the reader registry --------------------------------------------------------------------


def _read_toy(folder: Path, normal: str) -> CategoryData:
    """A toy layout: ``<category>/test/<label>_<i>.png``, the ``normal`` files the bank."""
    samples = [
        Sample(p, folder.name, "test", p.stem.rsplit("_", 1)[0])
        for p in list_images(folder / "test")
    ]
    train = [
        dataclasses.replace(s, split="train", label="good") for s in samples if s.label == normal
    ]
    test = [s for s in samples if s.label != normal]
    return CategoryData(folder.name, "toy", folder, train, test)


@pytest.fixture()
def toy_reader() -> Iterator[None]:
    """The toy layout registered for one test, removed after it."""
    register_reader("toy", signature="test/*_0.png")(_read_toy)
    try:
        yield
    finally:
        DATASETS.pop("toy", None)


def _toy_root(tmp_path: Path) -> Path:
    for label, n in {"good": 2, "crack": 3, "dent": 4}.items():
        for i in range(n):
            _img(tmp_path / "toy" / "gizmo" / "test" / f"{label}_{i}.png", 10 * i)
    return tmp_path


def test_a_registered_reader_serves_load_category_config_and_grid(
    tmp_path: Path, toy_reader: None
) -> None:
    root = _toy_root(tmp_path)
    assert available_datasets()[-1] == "toy"
    assert guess_dataset(root / "toy") == "toy"
    assert list_categories(root / "toy", "toy") == ["gizmo"]
    data = load_category(root / "toy", "toy", "gizmo")
    assert data.defect_types == ["crack", "dent"] and len(data.train) == 2
    with pytest.raises(ValueError, match="'toy' is registered twice"):
        register_reader("toy")(lambda folder, normal: data)

    def first_class(task: FewShotTask) -> Prediction:
        return Prediction(labels=np.zeros(len(task.query), dtype=np.int64))

    config = RunConfig(dataset="toy", methods=("first",), shots=(1, 2), seeds=(1,))
    kw = dict(engine_factory=lambda *args: None, methods={"first": first_class})
    plan = run_grid(config, root, tmp_path / "out", dry_run=True, **kw)
    assert (plan.pending, plan.computed) == (2, 0)  # root/toy found, category 'all' listed
    done = run_grid(config, root, tmp_path / "out", **kw)
    assert list(done.results["dataset"]) == ["toy", "toy"]
    assert list(done.results["n_query"]) == [5, 3]


def test_unknown_dataset_is_a_config_error_naming_the_known_ones() -> None:
    assert available_datasets()[:3] == ("mvtec_ad", "mvtec_3d", "folder")
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'toy' \(known: mvtec_ad, mvtec_3d, folder"
    ):
        RunConfig(dataset="toy")


def test_layout_guesses(tmp_path: Path) -> None:
    _mvtec(tmp_path / "ad", {"crack": 2})
    _img(tmp_path / "3d" / "tire" / "test" / "cut" / "rgb" / "000.png")
    _img(tmp_path / "plain" / "good" / "0.png")
    assert guess_dataset(tmp_path / "ad") == guess_dataset(tmp_path / "ad" / "widget") == "mvtec_ad"
    assert guess_dataset(tmp_path / "3d") == guess_dataset(tmp_path / "3d" / "tire") == "mvtec_3d"
    assert guess_dataset(tmp_path / "plain") == "folder"
