"""The normality pass on the light (research wing): the relighting in the log domain, the
two-stage search for the light the engine finds most normal, and the probe's summary."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fsad import light_estimate as le
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.light_test import undone_category
from research import normality_light as nl
from tests.test_light_test import lit_product


class LogStatsEngine:
    """A stand-in engine: each image's anomaly map is the distance of its log grey levels'
    mean and spread from those of a ``target`` image (a 2 x 2 map of that value), so the most
    normal relighting is the one that gives the target's light."""

    def __init__(self, target: np.ndarray, config: str = "stand-in") -> None:
        self.target = self._stats(target)
        self.calls = 0
        self.config, self.seed = config, 1  # what the relit images' key reads

    @staticmethod
    def _stats(image: np.ndarray) -> torch.Tensor:
        log = le.log_domain(image)
        return torch.tensor([float(log.mean()), float(log.std())])

    def features_of_images(self, images: list[np.ndarray]) -> torch.Tensor:
        self.calls += len(images)
        return torch.stack([self._stats(im) for im in images])

    def residuals_of(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = (features - self.target).abs() @ torch.tensor([1.0, 3.0])
        return torch.zeros(0), d[:, None, None].expand(-1, 2, 2)


def _image(level: int) -> np.ndarray:
    return np.full((8, 12, 3), level, np.uint8)


def _gradient() -> np.ndarray:
    """``(8, 64, 3) uint8``: grey levels from 40 to 200, left to right."""
    row = np.linspace(40, 200, 64).round().astype(np.uint8)
    return np.repeat(np.broadcast_to(row, (8, 64))[..., None], 3, axis=2).copy()


def test_relight_identity_and_known_gain() -> None:
    image = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    assert np.array_equal(nl.relight(image, 0.0, 0.0), image)
    # c = log 1.5 multiplies y + 0.5 by 1.5 (the library's log domain): 100.5 * 1.5 - 0.5
    assert nl.relight(_image(100), 0.0, float(np.log(1.5)))[0, 0, 0] == 150
    # a gamma of 2 (log a = log 2) squares (y + 0.5) / 256
    expected = round(256 * ((64.5 / 256) ** 2) - 0.5)
    assert nl.relight(_image(64), float(np.log(2)), 0.0)[0, 0, 0] == expected


@pytest.mark.parametrize("grid,step", [("wide", 0.2), ("narrow", 0.15)])
def test_most_normal_finds_the_grid_point_and_refines_it(grid: str, step: float) -> None:
    image = _gradient()
    # the target's light lies at (log a, c) = (step, step / 2): stage 1 gets log a = step and
    # c 0 or step, stage 2 moves c by step / 2
    engine = LogStatsEngine(nl.relight(image, step, step / 2))
    relit, log_a, c = nl.most_normal(engine, image, grid)
    assert (log_a, c) == pytest.approx((step, step / 2))
    assert np.array_equal(relit, nl.relight(image, step, step / 2))
    assert engine.calls == sum(len(g) for g in nl.GRIDS[grid])


def test_the_guard_refuses_a_washed_out_candidate() -> None:
    image = _gradient()
    washed = nl.relight(image, -0.375, 0.375)  # most of the frame clipped to white
    assert nl.outside_share(washed) > nl.outside_share(image) + nl.GUARDS["narrow_guarded"]
    relit, log_a, c = nl.most_normal(LogStatsEngine(washed), image, "narrow")
    assert (log_a, c) == pytest.approx((-0.375, 0.375))  # unguarded, it goes all the way
    relit, log_a, c = nl.most_normal(LogStatsEngine(washed), image, "narrow_guarded")
    assert nl.outside_share(relit) <= nl.outside_share(image) + nl.GUARDS["narrow_guarded"]
    assert (log_a, c) != pytest.approx((-0.375, 0.375))


def test_most_normal_keeps_the_image_when_it_already_looks_normal() -> None:
    image = _gradient()
    relit, log_a, c = nl.most_normal(LogStatsEngine(image), image)
    assert (log_a, c) == (0.0, 0.0)
    assert np.array_equal(relit, image)


def test_normality_category_relights_the_defects_only_and_writes_them_once(
    tmp_path: Path, monkeypatch
) -> None:
    category = lit_product(tmp_path / "data", varies=True)
    cache = DiskCache(tmp_path / "cache")
    undone = undone_category(category, cache)
    target = read_image(undone.train[0].path)
    monkeypatch.setattr(nl, "default_engine", lambda seen, which: LogStatsEngine(target))
    seen = nl.normality_category(category, cache)
    assert [s.path for s in seen.train] == [s.path for s in undone.train]
    assert [s.label for s in seen.test] == [s.label for s in undone.test]
    for s, u in zip(seen.test, undone.test, strict=True):
        image = read_image(u.path)
        expected = image if s.label == "good" else nl.most_normal(LogStatsEngine(target), image)[0]
        np.testing.assert_array_equal(read_image(s.path), expected)
    assert any(not np.array_equal(read_image(s.path), read_image(u.path))
               for s, u in zip(seen.test, undone.test, strict=True))  # fmt: skip

    def no_pass(*args, **kwargs):
        raise AssertionError("the relit images were computed again")

    relit = nl.most_normal
    monkeypatch.setattr(nl, "most_normal", no_pass)
    assert nl.normality_category(category, cache).test[1].path == seen.test[1].path
    monkeypatch.setattr(nl, "most_normal", relit)
    # another search, another engine or another version of the pass: other files
    monkeypatch.setattr(nl, "default_engine", lambda seen, which: LogStatsEngine(target))
    assert nl.normality_category(category, cache, "wide").root == seen.root
    assert nl.normality_category(category, cache, "wide").test[1].path != seen.test[1].path
    guarded = nl.normality_category(category, cache, "narrow_guarded")
    assert guarded.test[1].path != seen.test[1].path
    monkeypatch.setattr(nl, "default_engine", lambda seen, which: LogStatsEngine(target, "b"))
    assert nl.normality_category(category, cache).test[1].path != seen.test[1].path
    monkeypatch.setattr(nl, "default_engine", lambda seen, which: LogStatsEngine(target))
    monkeypatch.setattr(nl, "PASS_VERSION", nl.PASS_VERSION + 1)
    assert nl.normality_category(category, cache).test[1].path != seen.test[1].path
    off = nl.normality_category(category, DiskCache(tmp_path / "off", enabled=False))
    assert not (tmp_path / "off").exists()
    assert off.test[1].path.read_bytes() == seen.test[1].path.read_bytes()


class GridEngine:
    """A stand-in engine whose features are a fixed ``(N, 1, 4, 4)`` grid per image (the
    image's mean grey level times the patch's index) and whose map is the features
    themselves, so a strided mean is known."""

    def features_of_images(self, images: list[np.ndarray]) -> torch.Tensor:
        grid = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
        return torch.stack([float(im.mean()) * grid[0] for im in images])

    def residuals_of(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features, features[:, 0]


def test_normality_over_every_second_patch() -> None:
    image = _image(2)
    # patches 0..15 on a 4 x 4 grid: all of them average 7.5, rows and columns 0 and 2
    # (patches 0, 2, 8, 10) average 5; each times the image's mean grey level 2
    assert nl.normality(GridEngine(), [image])[0] == pytest.approx(15.0)
    assert nl.normality(GridEngine(), [image], stride=2)[0] == pytest.approx(10.0)
    assert nl.STRIDES["narrow_guarded_fast"] == 2
    assert nl.GRIDS["narrow_guarded_fast"] == nl.GRIDS["narrow_guarded"]
    assert nl.GUARDS["narrow_guarded_fast"] == nl.GUARDS["narrow_guarded"]


def test_relit_normals_meets_each_normal_with_the_other_fold_only(
    tmp_path: Path, monkeypatch
) -> None:
    category = lit_product(tmp_path / "data", varies=True)
    normals = category.train[:5]
    built: list[list[Path]] = []

    def engine(seen, which):
        built.append([s.path for s in seen.train])
        return LogStatsEngine(read_image(seen.train[0].path))

    monkeypatch.setattr(nl, "default_engine", engine)
    (tmp_path / "out").mkdir()
    relit = nl.relit_normals(category, normals, "narrow", tmp_path / "out")
    # fold 0 (positions 0, 2, 4) meets the odd ones, fold 1 (1, 3) the even ones
    assert built == [[normals[1].path, normals[3].path],
                     [normals[0].path, normals[2].path, normals[4].path]]  # fmt: skip
    assert [s.path.parent for s in relit] == [tmp_path / "out"] * 5
    assert [s.label for s in relit] == [s.label for s in normals]
    target = read_image(normals[1].path)
    expected = nl.most_normal(LogStatsEngine(target), read_image(normals[2].path))[0]
    np.testing.assert_array_equal(read_image(relit[2].path), expected)
    with pytest.raises(ValueError, match="2 normals or more"):
        nl.relit_normals(category, normals[:1], "narrow", tmp_path / "out")


def test_normality_category_with_the_bank_relit(tmp_path: Path, monkeypatch) -> None:
    category = lit_product(tmp_path / "data", varies=True)
    cache = DiskCache(tmp_path / "cache")
    undone = undone_category(category, cache)
    # a target lit away from every undone normal, so that relighting moves the bank
    target = nl.relight(read_image(undone.train[0].path), 0.15, 0.15)
    monkeypatch.setattr(nl, "default_engine", lambda seen, which: LogStatsEngine(target))
    plain = nl.normality_category(category, cache, "narrow")

    # the pass's engine reads its bank: its target is the first normal it holds, lit away
    def bank_engine(bank: Path) -> LogStatsEngine:
        return LogStatsEngine(nl.relight(read_image(bank), 0.15, 0.15))

    monkeypatch.setattr(nl, "default_engine", lambda seen, which: bank_engine(seen.train[0].path))
    relit = nl.normality_category(category, cache, "narrow", relit_bank=True)
    assert relit.root == plain.root
    # the bank is the relit normals, in the cache folder with the relit defects
    assert len(relit.train) == len(undone.train)
    assert all(s.path.parent == relit.test[0].path.parent for s in relit.train)
    assert relit.test[1].path != plain.test[1].path
    assert any(not np.array_equal(read_image(r.path), read_image(u.path))
               for r, u in zip(relit.train, undone.train, strict=True))  # fmt: skip
    # the defects are relit against the relit bank, not the undone one (whose first normal
    # differs, so a pass on the undone bank would aim elsewhere)
    assert not np.array_equal(read_image(relit.train[0].path), read_image(undone.train[0].path))
    bank_target = bank_engine(relit.train[0].path)
    for s, u in zip(relit.test, undone.test, strict=True):
        if s.label != "good":
            expected = nl.most_normal(bank_target, read_image(u.path))[0]
            np.testing.assert_array_equal(read_image(s.path), expected)


def test_shrunk_rows_move_each_pick_toward_the_library(monkeypatch) -> None:
    library = [_gradient(), _image(90)]
    truth = [im[..., 0] for im in library]
    probes = nl.ProbeSet(undone=None, names=["000", "001"], library=library, truth=truth,
                         drawn_gk=library)  # fmt: skip
    monkeypatch.setattr(nl, "probe_set", lambda data, suite, name: probes)
    monkeypatch.setattr(nl, "stamp", lambda: {"git_commit": "x"})
    # the picks as a probe CSV holds them, in another order than the probe's
    picked = pd.DataFrame({"image": ["001", "000"], "grid": "narrow_guarded",
                           "log_a": [0.3, -0.15], "c": [0.15, 0.3]})  # fmt: skip
    rows = pd.DataFrame(nl.shrunk_rows(Path("d"), Path("s"), "screw", picked, 0.5))
    assert rows["grid"].tolist() == ["narrow_guarded*0.5"] * 2
    assert rows["image"].tolist() == ["000", "001"]
    assert rows["log_a"].tolist() == pytest.approx([-0.075, 0.15])
    assert rows["c"].tolist() == pytest.approx([0.15, 0.075])
    # the library's images are their own truth here: it leaves no light, a shrunk pick some
    assert rows["left_library"].tolist() == pytest.approx([0.0, 0.0])
    assert (rows["left_pick"] > 0).all()
    none = pd.DataFrame(nl.shrunk_rows(Path("d"), Path("s"), "screw", picked, 0.0))
    assert none["left_pick"].tolist() == pytest.approx([0.0, 0.0])
    mixed = picked.assign(grid=["narrow", "narrow_guarded"])
    with pytest.raises(ValueError, match="one search's picks at a time"):
        nl.shrunk_rows(Path("d"), Path("s"), "screw", mixed, 0.5)


def test_the_second_probe_set_never_meets_the_first_or_the_bank() -> None:
    first, second = nl.probe_positions(209), nl.probe_positions(209, second=True)
    assert first == list(range(1, 80, 2)) and second == list(range(81, 160, 2))
    assert len(nl.probe_positions(100, second=True)) == 10  # 50 odd positions, 40 + 10
    assert nl.probe_positions(10) == [1, 3, 5, 7, 9]
    assert nl.probe_positions(10, second=True) == []


def test_rows_written_keep_a_commit_of_digits(tmp_path: Path) -> None:
    from research.light_rows_study import rows_written

    assert rows_written(tmp_path / "none.csv").empty
    path = tmp_path / "rows.csv"
    pd.DataFrame({"category": ["screw"], "git_commit": ["0282761"]}).to_csv(path, index=False)
    assert rows_written(path)["git_commit"].tolist() == ["0282761"]


def test_relight_by_table_equals_the_formula_pixel_by_pixel() -> None:
    image = np.random.default_rng(1).integers(0, 256, (33, 51, 3), dtype=np.uint8)
    for log_a, c in [(0.0, 0.3), (-0.375, 0.375), (0.15, -0.075), (0.4, -0.4)]:
        x = 256.0 * np.exp(np.exp(log_a) * le.log_domain(image) + c) - 0.5
        formula = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(nl.relight(image, log_a, c), formula)


class ShapeEngine(GridEngine):
    """:class:`GridEngine` that records the ``(h, w)`` of every map it is asked for."""

    def __init__(self) -> None:
        self.shapes: set[tuple[int, int]] = set()

    def residuals_of(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.shapes.add(tuple(features.shape[-2:]))
        return super().residuals_of(features)


@pytest.mark.parametrize("grid,shape", [("narrow_guarded", (4, 4)),
                                        ("narrow_guarded_fast", (2, 2))])  # fmt: skip
def test_the_fast_search_scores_every_second_patch(grid: str, shape: tuple[int, int]) -> None:
    engine = ShapeEngine()
    nl.most_normal(engine, _gradient(), grid)
    assert engine.shapes == {shape}


def test_shrink_refuses_what_it_would_ignore_or_overwrite(tmp_path: Path) -> None:
    picks = tmp_path / "picks.csv"
    picks.write_text("category,grid,image,log_a,c\n")
    base = ["--suite", str(tmp_path), "--shrink", "0.5", "--picks", str(picks)]
    with pytest.raises(SystemExit):
        nl.main([*base, "--out", str(picks)])
    with pytest.raises(SystemExit):
        nl.main([*base, "--out", str(tmp_path / "out.csv"), "--second-probe"])
    assert picks.read_text() == "category,grid,image,log_a,c\n"
    assert not (tmp_path / "out.csv").exists()
