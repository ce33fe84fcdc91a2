"""The generalisation suite (fsad.suite): each transform on tiny synthetic images, the folder
datasets it writes, its errors, and one real category (skipped without FSAD_DATA)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest

from fsad import suite as fs
from fsad.cli import data_cmd
from fsad.data import load_category, read_image
from fsad.errors import ConfigError, DataError
from fsad.suite import (
    LEAVE_ONE_OUT,
    ORDER,
    STAMP,
    SUITES,
    SuiteSettings,
    file_rng,
    find_category,
    left_out,
    map_region,
    steps,
    transform,
    write_suite,
)

SETTINGS = SuiteSettings()


def part(h: int = 90, w: int = 120, defect: tuple[int, int, int, int] | None = (30, 70, 42, 84)):
    """A grey disc (the part) on a light background, an off-centre dark marker, and a red
    defect square ``(top, left, bottom, right)`` with its mask: ``(H, W, 3)``, ``(H, W)``."""
    img = np.full((h, w, 3), 220, np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, (110, 110, 110), -1)
    cv2.rectangle(img, (w // 2 - 20, h // 2 - 4), (w // 2 - 12, h // 2 + 4), (20, 20, 20), -1)
    mask = np.zeros((h, w), bool)
    if defect is not None:
        t, left, b, r = defect
        img[t:b, left:r] = (200, 30, 30)
        mask[t:b, left:r] = True
    return img, mask


def draw(suite: str, image, region, seed: int):
    return transform(image, region, suite, file_rng(SETTINGS, suite, "widget", "x", f"{seed}.png"))


def touches_edge(region: np.ndarray) -> bool:
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    h, w = region.shape
    return rows[0] == 0 or cols[0] == 0 or rows[-1] == h - 1 or cols[-1] == w - 1


@pytest.mark.parametrize("suite", SUITES + LEAVE_ONE_OUT)
def test_same_seed_same_bytes(suite: str) -> None:
    img, mask = part()
    a, ra = draw(suite, img, mask, 3)
    b, rb = draw(suite, img, mask, 3)
    assert a.tobytes() == b.tobytes() and np.array_equal(ra, rb)
    assert a.dtype == np.uint8 and a.ndim == (2 if "grey" in steps(suite) else 3)
    if suite not in ("none", "grey"):  # the random ones draw anew per file
        c, _ = draw(suite, img, mask, 4)
        assert c.shape != a.shape or c.tobytes() != a.tobytes()


def test_grey_is_one_channel() -> None:
    img, _ = part()
    out, _ = draw("grey", img, None, 0)
    assert out.shape == img.shape[:2]
    assert abs(int(out[0, 0]) - 220) <= 1  # luminance of the light background


@pytest.mark.parametrize("defect", [True, False])
def test_elongated_aspects_and_the_defect_kept(defect: bool) -> None:
    img, mask = part(200, 200, (60, 150, 80, 175))
    aspects = []
    for seed in range(40):
        out, region = draw("elongated", img, mask if defect else None, seed)
        h, w = out.shape[:2]
        aspects.append(w / h)
        assert 0.4 - 2 / h <= w / h <= 2.7 + 2 / h
        if defect:
            assert region.shape == (h, w) and region.sum() == mask.sum()  # the whole defect
        else:
            assert region is None
    assert min(aspects) < 0.7 and max(aspects) > 1.8  # the range is used


def test_border_puts_the_defect_at_an_edge() -> None:
    img, mask = part(120, 160, (50, 70, 62, 85))  # well inside the frame
    edges = set()
    for seed in range(30):
        out, region = draw("border", img, mask, seed)
        assert region.sum() == mask.sum() and touches_edge(region)
        assert abs(out.shape[1] / out.shape[0] - 160 / 120) < 0.05  # the image's aspect
        rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
        edges.add((rows[0] == 0, cols[0] == 0))
    assert len(edges) > 1  # more than one edge is used


def test_all_keeps_the_defect_and_puts_it_at_an_edge() -> None:
    img, mask = part(200, 200, (80, 90, 100, 110))
    for seed in range(20):
        out, region = draw("all", img, mask, seed)
        assert out.ndim == 2 and region.shape == out.shape
        assert touches_edge(region) and region.sum() >= 0.8 * 0.7**2 * mask.sum()


def test_leave_one_out_suites_name_their_steps() -> None:
    assert LEAVE_ONE_OUT == tuple(f"all_but_{t}" for t in ORDER)
    for suite in LEAVE_ONE_OUT:
        gone = left_out(suite)
        assert steps(suite) == tuple(t for t in ORDER if t != gone) and gone in ORDER
    assert left_out("all") == left_out("pose") == ""
    with pytest.raises(ConfigError, match="unknown suite 'all_but_blur'.*all_but_grey"):
        steps("all_but_blur")
    a, b = (file_rng(SETTINGS, s, "widget", "x", "1.png") for s in ("all", "all_but_pose"))
    assert a.random() == b.random()  # all's generator


@pytest.mark.parametrize("defect", [True, False])
def test_without_illumination_all_is_unlit_pixel_for_pixel(defect: bool) -> None:
    """all_but_illumination equals all under a neutral light (gamma, gain 1, no gradient or
    tint): the same geometry, pixel for pixel, and the lit image differs."""
    img, mask = part(160, 200, (60, 150, 80, 175))
    neutral = SuiteSettings(gamma=(1.0, 1.0), gain=(1.0, 1.0), gradient=0.0, temperature=0.0)
    for seed in range(6):
        name = f"{seed}.png"
        rng = file_rng(SETTINGS, "all_but_illumination", "widget", "x", name)
        out, region = transform(img, mask if defect else None, "all_but_illumination", rng)
        rng = file_rng(neutral, "all", "widget", "x", name)
        ref, ref_region = transform(img, mask if defect else None, "all", rng, neutral)
        assert out.tobytes() == ref.tobytes()
        assert (region is None and ref_region is None) or np.array_equal(region, ref_region)
        lit, _ = draw("all", img, mask if defect else None, seed)
        assert lit.shape == out.shape and np.abs(lit.astype(int) - out).mean() > 2


def test_without_grey_all_is_the_colour_image_it_greys() -> None:
    img, mask = part(160, 200, (60, 150, 80, 175))
    for seed in range(6):
        colour, region = draw("all_but_grey", img, mask, seed)
        grey, grey_region = draw("all", img, mask, seed)
        assert colour.ndim == 3 and np.array_equal(region, grey_region)
        assert cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY).tobytes() == grey.tobytes()


def test_without_pose_or_border_the_later_steps_draw_what_they_draw_in_all() -> None:
    """A flat normal image looks the same in every pose, and a normal image's window ignores
    ``border``: so without either, a normal image equals all's (window, light and all),
    which holds only if the steps after the one left out start from all's draws."""
    flat = np.full((150, 180, 3), 128, np.uint8)
    for seed in range(6):
        ref, _ = draw("all", flat, None, seed)
        for suite in ("all_but_pose", "all_but_border"):
            out, _ = draw(suite, flat, None, seed)
            assert out.tobytes() == ref.tobytes(), suite
        out, _ = draw("all_but_elongated", flat, None, seed)
        assert out.shape != ref.shape or out.tobytes() != ref.tobytes()
    img, mask = part(200, 200, (80, 90, 100, 110))
    kept = [touches_edge(draw("all_but_border", img, mask, s)[1]) for s in range(20)]
    assert not all(kept)  # without border, defects need not touch an edge


def _light_draws(suite: str, image: np.ndarray, region: np.ndarray, seed: int) -> list[float]:
    """The first numbers the illumination step draws for one file of ``suite``, in the
    last call (a leave-one-out suite first replays all's steps, then runs its own)."""
    seen: list[float] = []
    real = fs.illumination

    def reading(img: np.ndarray, rng: np.random.Generator, s: SuiteSettings) -> np.ndarray:
        state = rng.bit_generator.state
        seen[:] = rng.random(5).tolist()
        rng.bit_generator.state = state
        return real(img, rng, s)

    with mock.patch.object(fs, "illumination", reading):
        draw(suite, image, region, seed)
    return seen


def test_the_light_draws_what_it_draws_in_all_whatever_is_left_out() -> None:
    """A defect image's window draws differently with and without ``border`` or ``pose``
    (the edge, another box); the light after it still starts from all's state."""
    img, mask = part(200, 200, (80, 90, 100, 110))
    for seed in range(8):
        ref = _light_draws("all", img, mask, seed)
        assert len(ref) == 5
        for suite in LEAVE_ONE_OUT:
            if suite != "all_but_illumination":
                assert _light_draws(suite, img, mask, seed) == ref, (suite, seed)


def _angle(image: np.ndarray) -> float:
    """Direction (degrees) from the image centre to the dark marker's centroid."""
    ys, xs = np.nonzero(image[..., 0] < 60)
    h, w = image.shape[:2]
    return math.degrees(math.atan2(ys.mean() - (h - 1) / 2, xs.mean() - (w - 1) / 2))


@pytest.mark.parametrize("defect", [True, False])
def test_pose_rotates_normals_and_defects(defect: bool) -> None:
    img, mask = part(101, 101, (45, 60, 55, 70))
    turned = 0
    for seed in range(10):
        out, region = draw("pose", img, mask if defect else None, seed)
        assert out.shape == img.shape
        assert (region is not None) == defect
        if defect:
            assert region.sum() >= 0.9 * 0.7**2 * mask.sum() * 0.9
        diff = (_angle(out) - _angle(img) + 180) % 360 - 180
        turned += abs(diff) > 2
        assert tuple(out[0, 0]) == (220, 220, 220)  # corners filled with the border colour
    assert turned >= 8


def test_illumination_changes_brightness_not_shape() -> None:
    img, _ = part()
    outs = [draw("illumination", img, None, s)[0] for s in range(8)]
    assert all(o.shape == img.shape for o in outs)
    means = [float(o.mean()) for o in outs]
    assert max(means) - min(means) > 10


def test_map_region_holds_the_peak_in_image_coordinates() -> None:
    amap = np.zeros((28, 28), np.float32)
    amap[9:11, 20:24] = 5.0  # top right of the image (rows 8-19 of the map show it)
    region = map_region(amap, (100, 250), threshold=0.5)  # a 1:2.5 image, letterboxed
    ys, xs = np.nonzero(region)
    assert region.shape == (100, 250)
    assert ys.max() < 50 and xs.min() > 125


def test_bad_inputs_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown suite 'blur'"):
        steps("blur")
    with pytest.raises(ConfigError, match=r"aspect.*\(3.0, 1.0\)"):
        SuiteSettings(aspect=(3.0, 1.0))
    with pytest.raises(ConfigError, match="quality"):
        SuiteSettings(quality=0)
    with pytest.raises(ConfigError, match=r"\(4, 4\)"):
        transform(np.zeros((4, 4), np.uint8), None, "grey", np.random.default_rng(0))
    with pytest.raises(DataError, match=str(tmp_path / "mvtec_ad" / "widget")):
        find_category(tmp_path, "widget")


def _dataset(root: Path, masks: bool = True) -> Path:
    """An MVTec AD layout ``widget``: 4 train normals, 2 good and 2 x 3 defective test images."""
    for i in range(4):
        img, _ = part(defect=None)
        cv2.imwrite(str(_mkdir(root / "mvtec_ad/widget/train/good") / f"{i:03d}.png"), img)
    cv2.imwrite(str(_mkdir(root / "mvtec_ad/widget/test/good") / "000.png"), part(defect=None)[0])
    for label, box in (("dent", (10, 10, 20, 30)), ("scratch", (50, 70, 60, 100))):
        for i in range(3):
            img, mask = part(defect=(box[0] + i, box[1], box[2] + i, box[3]))
            cv2.imwrite(str(_mkdir(root / "mvtec_ad/widget/test" / label) / f"{i:03d}.png"), img)
            if masks:
                gt = _mkdir(root / "mvtec_ad/widget/ground_truth" / label)
                cv2.imwrite(str(gt / f"{i:03d}_mask.png"), mask.astype(np.uint8) * 255)
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_write_suite_is_a_folder_dataset_and_deterministic(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    folder, written = write_suite(data, tmp_path / "a", "all", "widget")
    assert written and folder == tmp_path / "a" / "all" / "widget"
    cat = load_category(folder, "folder")
    assert cat.defect_types == ["dent", "scratch"] and len(cat.train) == 4
    assert [s.path.name for s in cat.test] == ["000.jpg", "001.jpg", "002.jpg"] * 2  # MVTec stems
    img = read_image(cat.test[0].path)
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    stamp = json.loads((folder / STAMP).read_text())
    assert stamp["generator_version"] >= 1 and stamp["settings"]["aspect"] == [0.4, 2.7]
    assert stamp["opencv"] == cv2.__version__  # another OpenCV writes other pixels
    # the same command gives the same bytes; a finished folder is kept on rerun
    other, _ = write_suite(data, tmp_path / "b", "all", "widget")
    assert _files(folder) == _files(other)
    assert write_suite(data, tmp_path / "a", "all", "widget") == (folder, False)
    assert not [p for p in (tmp_path / "a" / "all").iterdir() if p.name.startswith(".")]
    # other settings: the folder is rewritten, never read as fresh
    _, written = write_suite(data, tmp_path / "a", "all", "widget", SuiteSettings(seed=1))
    assert written and json.loads((folder / STAMP).read_text())["settings"]["seed"] == 1
    # none copies the images unchanged
    none, _ = write_suite(data, tmp_path / "a", "none", "widget")
    src = data / "mvtec_ad/widget/test/dent/001.png"
    assert (none / "dent" / "001.png").read_bytes() == src.read_bytes()


def test_without_masks_the_region_function_places_the_window(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data", masks=False)
    asked = []

    def regions(category, samples):
        asked.extend(s.path.name for s in samples)
        return {s.path: part(defect=(30, 50, 40, 60))[1] for s in samples}

    folder, _ = write_suite(data, tmp_path / "out", "border", "widget", regions=regions)
    assert len(asked) == 6  # defect images only, never the normals
    assert len(list((folder / "good").iterdir())) == 4


def test_bad_output_and_category(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        write_suite(data, tmp_path / "file", "grey", "widget")
    with pytest.raises(DataError, match="category 'nut' not found"):
        write_suite(data, tmp_path / "out", "grey", "nut")


def test_cli_writes_and_keeps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path / "data")
    parser = argparse.ArgumentParser()
    data_cmd.register(parser.add_subparsers())
    argv = ["data", "suite", "--data", str(data), "--out", str(tmp_path / "o")]
    args = parser.parse_args([*argv, "--suites", "grey", "pose", "--categories", "widget"])
    assert args.func(args) == 0
    assert (tmp_path / "o/grey/widget" / STAMP).is_file() and (tmp_path / "o/pose/widget").is_dir()
    args.func(args)
    assert capsys.readouterr().out.count("kept (finished)") == 2
    with pytest.raises(ConfigError, match="unknown suite 'blur'"):
        bad = parser.parse_args([*argv, "--suites", "grey", "blur", "--categories", "widget"])
        bad.func(bad)
    assert not (tmp_path / "o/blur").exists()


def test_real_bottle_border(real_data: Path, tmp_path: Path) -> None:
    source = find_category(real_data, "bottle")
    folder, _ = write_suite(real_data, tmp_path, "border", "bottle")
    cat = load_category(folder, "folder")
    assert len(cat.train) == len(source.train)
    assert cat.defect_types == source.defect_types
    assert [s.path.stem for s in cat.test] == [s.path.stem for s in source.test if not s.is_good]


def _rows(category: str, method: str, seed: int, accuracy: float) -> dict:
    return {
        "dataset": "folder",
        "category": category,
        "method": method,
        "shots": 5,
        "seed": seed,
        "accuracy": accuracy,
        "n_query": 10,
        "chance": 0.3,
    }


def test_suite_table_compares_like_for_like() -> None:
    import pandas as pd

    from fsad.report import suite_table

    base = pd.DataFrame(
        [_rows(c, "m", s, 0.8) for c in ("a", "b") for s in (1, 2, 3)] + [_rows("c", "m", 1, 0.1)]
    )
    suite = pd.DataFrame([_rows(c, "m", s, 0.6 + 0.01 * s) for c in ("a", "b") for s in (1, 2)])
    row = suite_table(suite, base).iloc[0]
    assert row["untransformed"] == "80.00 ± 0.00"  # seeds 1-2 of a and b only, not c
    assert row["suite"] == "61.50 ± 0.71" and row["change"] == -18.5
    assert (row["seeds"], row["categories"], row["queries"], row["chance"]) == (2, 2, 20, 30.0)
    assert suite_table(suite.assign(category="z"), base).empty


def _preds(category: str, hits: list[bool], method: str = "m", prefix: str = "x") -> list[dict]:
    """Per-query prediction rows: query i right when ``hits[i]``."""
    return [
        {"category": category, "method": method, "shots": 5, "seed": 1,
         "query": f"{prefix}/{i:03d}.jpg", "true_label": "t", "predicted_label": "t" if h else "f"}
        for i, h in enumerate(hits)
    ]  # fmt: skip


def test_transform_costs_pair_each_query_with_its_untransformed_self() -> None:
    import pandas as pd

    from fsad.report import ALL_CATEGORIES, transform_costs

    base = pd.DataFrame(
        _preds("a", [True, True, False, True]) + _preds("b", [False, False])
        + _preds("a", [False] * 4, method="other")
    )  # fmt: skip
    pose = pd.DataFrame(_preds("a", [True, False, False, False]) + _preds("b", [True, False]))
    t = transform_costs({"pose": pose}, base, "m", 5, 1).set_index("category")
    a, b, both = t.loc["a"], t.loc["b"], t.loc[ALL_CATEGORIES]
    assert (a["queries"], a["untransformed"], a["transformed"], a["change"]) == (
        4,
        75.0,
        25.0,
        -50.0,
    )
    assert (a["lost"], a["gained"], a["p"]) == (2, 0, 0.5)  # two of two discordant pairs
    assert (b["lost"], b["gained"], b["p"]) == (0, 1, 1.0)
    assert (both["queries"], both["lost"], both["gained"]) == (6, 2, 1)
    assert both["untransformed"] == 50.0 and both["transformed"] == 33.3  # 3 of 6, 2 of 6
    # a category only one side holds is left out, and one suite category gives no pooled row
    only_a = transform_costs({"grey": pose[pose["category"] == "a"]}, base, "m", 5, 1)
    assert list(only_a["category"]) == ["a"]


def test_transform_costs_refuse_queries_that_are_not_the_same_images() -> None:
    import pandas as pd

    from fsad.errors import FsadError
    from fsad.report import transform_costs

    base = pd.DataFrame(_preds("a", [True, True]))
    other = pd.DataFrame(_preds("a", [True, True], prefix="y"))
    with pytest.raises(FsadError, match="suite 'pose', a: its 2 queries are not"):
        transform_costs({"pose": other}, base, "m", 5, 1)
    twice = pd.DataFrame(_preds("a", [True]) * 2)
    with pytest.raises(FsadError, match="'x/000.jpg' of a appears twice"):
        transform_costs({"pose": twice}, base, "m", 5, 1)


def test_lost_overlap_counts_the_images_all_loses_that_a_single_transform_loses_too() -> None:
    import pandas as pd

    from fsad.errors import FsadError
    from fsad.report import lost_overlap

    # queries 0-4 of a: right untransformed but 4; `all` loses 0 and 1; `pose` loses 1 and 2
    # (2 is kept by `all`); `grey` loses nothing; 4 is wrong everywhere, so never lost
    base = pd.DataFrame(_preds("a", [True, True, True, True, False]) + _preds("b", [True]))
    every = pd.DataFrame(
        _preds("a", [False, False, True, True, False])
        + _preds("a", [True] * 5, method="other")  # another method's cell: ignored
    )  # fmt: skip
    pose = pd.DataFrame(_preds("a", [True, False, False, True, False]))
    grey = pd.DataFrame(_preds("a", [True, True, True, True, False]))
    t = lost_overlap({"all": every, "pose": pose, "grey": grey}, base, "m", 5, 1)
    assert list(t.index) == ["a"]  # b: `all` holds no query of it
    assert t.loc["a"].to_dict() == {"lost_combined": 2, "also_lost_alone": 1, "lost_alone": 2}
    alone = lost_overlap({"all": every, "grey": grey}, base, "m", 5, 1).loc["a"]
    assert (alone["also_lost_alone"], alone["lost_alone"]) == (0, 0)
    with pytest.raises(FsadError, match="'all' and at least one single transform"):
        lost_overlap({"pose": pose}, base, "m", 5, 1)


def test_windows_one_pixel_off_square_are_made_square() -> None:
    from fsad.suite import ENGINE_SIDES, _near_square

    assert _near_square(316, 314) == (316, 316)  # letterboxed to 224 x 223
    assert _near_square(449, 448) == (449, 449)  # 448 x 447 at 448 px
    assert _near_square(200, 202) == (200, 202) and _near_square(300, 300) == (300, 300)
    img, mask = part(300, 300, (140, 140, 160, 160))
    for seed in range(60):
        for region in (mask, None):
            out, _ = draw("elongated", img, region, seed)
            short, long = sorted(out.shape[:2])
            assert all(round(s * short / long) != s - 1 for s in ENGINE_SIDES)
