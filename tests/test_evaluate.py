"""The experiment grid runner: resumability, atomic incremental rows, no query labels leak,
clear errors with nothing written, and a tiny end-to-end grid on the embedded dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.cli import main
from fsad.config import RunConfig, load_config
from fsad.errors import ConfigError, DataError, FsadError
from fsad.evaluate import (
    HIDDEN,
    KEY_COLUMNS,
    RESULT_COLUMNS,
    LazyEngine,
    read_predictions,
    read_results,
    run_grid,
    score,
)
from fsad.task import FewShotTask, Prediction

CLASSES = {"crack": 4, "dent": 5, "scratch": 4}


def _img(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    """Two mvtec_ad categories, 3 defect types of 4-5 images, 3 train normals each."""
    root = tmp_path / "data"
    for cat in ("gadget", "widget"):
        for i in range(3):
            _img(root / cat / "train" / "good" / f"{i:03d}.png", 100)
        _img(root / cat / "test" / "good" / "000.png", 100)
        for k, (label, n) in enumerate(CLASSES.items()):
            for i in range(n):
                _img(root / cat / "test" / label / f"{i:03d}.png", 20 * k + i)
    return root


class FakeEngine:
    """Stands in for the residual engine; records what was built."""

    def __init__(self, category, config, seed):
        self.category, self.seed = category.name, seed
        self.config = type("Cfg", (), {"backbone": "fake_backbone"})()


class Counter:
    """A counting fake method: predicts class 0 everywhere, keeps every task it is given."""

    def __init__(self, fail_at: int | None = None, touch_engine: bool = True) -> None:
        self.tasks: list[FewShotTask] = []
        self.fail_at = fail_at
        self.touch_engine = touch_engine

    def __call__(self, task: FewShotTask) -> Prediction:
        if self.fail_at is not None and len(self.tasks) == self.fail_at:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-grid
        self.tasks.append(task)
        if self.touch_engine:
            assert task.engine.seed == task.seed
        return Prediction(
            labels=np.zeros(len(task.query), dtype=np.int64), info={"n": len(self.tasks)}
        )


def _factory(log: list):
    def build(category, config, seed):
        log.append((category.name, seed))
        return FakeEngine(category, config, seed)

    return build


def _config(**kw) -> RunConfig:
    base = dict(categories=("gadget", "widget"), methods=("fake",), shots=(1, 2), seeds=(1, 2))
    return RunConfig(**{**base, **kw})


def test_grid_rows_resume_and_engine_once_per_category_seed(tiny_root: Path, tmp_path: Path):
    out, built, method = tmp_path / "out", [], Counter()
    res = run_grid(
        _config(), tiny_root, out, engine_factory=_factory(built), methods={"fake": method}
    )
    assert (res.computed, res.skipped) == (8, 0)
    assert sorted(built) == [("gadget", 1), ("gadget", 2), ("widget", 1), ("widget", 2)]
    rows = read_results(out)
    assert list(rows.columns) == RESULT_COLUMNS
    assert len(rows) == 8 and not rows.duplicated(KEY_COLUMNS).any()
    one = rows[(rows.category == "gadget") & (rows.shots == 2) & (rows.seed == 1)].iloc[0]
    # queries: 2 crack + 3 dent + 2 scratch; class 0 (crack) predicted everywhere
    assert (one.n_query, one.n_support, one.n_classes) == (7, 6, 3)
    assert one.accuracy == pytest.approx(2 / 7) and one.chance == pytest.approx(3 / 7)
    assert one.backbone == "fake_backbone" and one.data_hash and one.git_commit
    assert (out / "config.yaml").is_file()
    assert load_config(out / "config.yaml").config_hash("fake") == one.config_hash

    # second run: every row exists -> no method call, no engine built, nothing rewritten
    before = (out / "results.csv").stat().st_mtime_ns
    again = run_grid(
        _config(), tiny_root, out, engine_factory=_factory(built), methods={"fake": method}
    )
    assert (again.computed, again.skipped) == (0, 8)
    assert len(method.tasks) == 8 and len(built) == 4
    assert (out / "results.csv").stat().st_mtime_ns == before

    # growing the grid computes only the new rows; another option -> another config hash
    run_grid(
        _config(shots=(1, 2, 3)),
        tiny_root,
        out,
        engine_factory=_factory(built),
        methods={"fake": method},
    )
    assert len(method.tasks) == 12
    # a call of the same configuration for part of the grid (all rows done) keeps the
    # folder's whole grid in config.yaml, shots and seeds sorted
    run_grid(
        _config(seeds=(2,), shots=(3, 1)),
        tiny_root,
        out,
        engine_factory=_factory(built),
        methods={"fake": method},
    )
    saved = load_config(out / "config.yaml")
    assert len(method.tasks) == 12 and saved.shots == (1, 2, 3) and saved.seeds == (1, 2)
    run_grid(
        _config(options={"fake": {"lr": 1}}, seeds=(1,)),
        tiny_root,
        out,
        engine_factory=_factory(built),
        methods={"fake": method},
    )
    assert len(method.tasks) == 16 and read_results(out)["config_hash"].nunique() == 2
    saved = load_config(out / "config.yaml")  # other settings: the latest configuration only
    assert saved.options == {"fake": {"lr": 1}} and saved.seeds == (1,)


def test_task_holds_no_query_labels_and_support_not_in_query(tiny_root: Path, tmp_path: Path):
    method = Counter()
    run_grid(
        _config(),
        tiny_root,
        tmp_path / "out",
        engine_factory=_factory([]),
        methods={"fake": method},
    )
    assert method.tasks
    for task in method.tasks:
        assert not hasattr(task, "query_labels")
        assert all(q.label == HIDDEN and q.mask_path is None for q in task.query)
        query_paths = {q.path for q in task.query}
        support_paths = {s.path for s in task.support}
        assert not query_paths & support_paths
        assert len(task.support) == task.shots * task.n_classes
        # the category handed over holds the labelled support only, not the queries
        assert {s.path for s in task.category.test} == support_paths
        assert [task.classes[i] for i in task.support_labels] == [s.label for s in task.support]


def test_interrupted_run_keeps_finished_rows_and_resumes(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_grid(
            _config(),
            tiny_root,
            out,
            engine_factory=_factory([]),
            methods={"fake": Counter(fail_at=3)},
        )
    rows = read_results(out)
    assert len(rows) == 3  # rows are written as they finish, each write complete
    preds = read_predictions(out)
    assert len(preds) == rows["n_query"].sum()
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    method = Counter()
    res = run_grid(_config(), tiny_root, out, engine_factory=_factory([]), methods={"fake": method})
    assert (res.computed, res.skipped, len(method.tasks)) == (5, 3, 5)
    assert len(read_predictions(out)) == read_results(out)["n_query"].sum()


def test_predictions_of_earlier_versions_are_read_and_compressed(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    run_grid(_config(), tiny_root, out, engine_factory=_factory([]), methods={"fake": Counter()})
    before = read_predictions(out)
    # an earlier version's folder: plain predictions.csv, one result row missing
    (out / "predictions.csv.gz").unlink()
    before.to_csv(out / "predictions.csv", index=False)
    rows = read_results(out)
    rows.iloc[1:].to_csv(out / "results.csv", index=False)
    assert read_predictions(out).equals(before)  # the plain file is read
    res = run_grid(
        _config(), tiny_root, out, engine_factory=_factory([]), methods={"fake": Counter()}
    )
    assert res.computed == 1  # resumes on the plain file's rows
    assert not (out / "predictions.csv").exists()  # replaced by the .gz, rows kept
    after = read_predictions(out)
    assert len(after) == len(before) == read_results(out)["n_query"].sum()
    head = (out / "predictions.csv.gz").read_bytes()[:8]
    assert head[:2] == b"\x1f\x8b" and head[4:8] == bytes(4)  # gzip, no timestamp: same
    # table, same bytes (git sees no change when a rerun computes nothing new)


def test_predictions_file_matches_scores(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    run_grid(_config(), tiny_root, out, engine_factory=_factory([]), methods={"fake": Counter()})
    preds = read_predictions(out)
    assert preds["query"].str.match(r"^(gadget|widget)/test/\w+/\d{3}\.png$").all()
    acc = (
        (preds.true_label == preds.predicted_label).groupby([preds[c] for c in KEY_COLUMNS]).mean()
    )
    rows = read_results(out).set_index(KEY_COLUMNS)["accuracy"]
    assert np.allclose(acc.sort_index().to_numpy(), rows.sort_index().to_numpy())


def test_errors_write_nothing(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    kw = dict(engine_factory=_factory([]), methods={"fake": Counter()})
    with pytest.raises(DataError, match=r"category 'gadget'.*shots=4.*'crack'"):
        run_grid(_config(shots=(1, 4)), tiny_root, out, **kw)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        run_grid(_config(methods=("nope",)), tiny_root, out)
    with pytest.raises(DataError, match="missing"):
        run_grid(_config(categories=("missing",)), tiny_root, out, **kw)
    with pytest.raises(DataError, match="texture folder not found"):
        run_grid(_config(textures="{data}/dtd"), tiny_root, out, **kw)
    assert not out.exists()


def test_results_of_other_images_are_refused(tiny_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    kw = dict(engine_factory=_factory([]), methods={"fake": Counter()})
    run_grid(_config(seeds=(1,)), tiny_root, out, **kw)
    _img(tiny_root / "gadget" / "test" / "dent" / "099.png", 7)
    with pytest.raises(FsadError, match="other images"):
        run_grid(_config(seeds=(2,)), tiny_root, out, **kw)


def test_lazy_engine_builds_on_first_use_only():
    calls = []
    lazy = LazyEngine(("c", 1), lambda: calls.append(1) or FakeEngineStub())
    assert not lazy.built and not calls
    assert lazy.value == 42 and lazy.value == 42
    assert calls == [1] and lazy.built


class FakeEngineStub:
    value = 42


def test_score_known_values():
    s = score(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert s["accuracy"] == pytest.approx(0.5)
    # F1: class 0 = 2/3, class 1 = 2/4, class 2 = 0 -> mean 7/18
    assert s["macro_f1"] == pytest.approx(7 / 18)


def test_cli_random_grid_on_embedded_dataset(tmp_path: Path, capsys):
    from fsad.embedded import generate

    # a small instance of the embedded dataset (same generator, fewer and smaller images)
    embedded_root = generate(tmp_path / "emb", n_train=3, n_test_per_type=4, n_good_test=1, size=64)
    out = tmp_path / "res"
    args = [
        "run",
        "--data",
        str(embedded_root),
        "--categories",
        "all",
        "--method",
        "random",
        "--shots",
        "1",
        "2",
        "--seeds",
        "1",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    rows = read_results(out)
    assert len(rows) == rows["category"].nunique() * 2 * 2 >= 8
    # uniform guessing: mean accuracy near 1/C over many queries
    assert abs((rows.accuracy - 1 / rows.n_classes).mean()) < 0.1
    assert main(args) == 0
    assert "0 run(s) computed" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "random on mvtec_ad" in text and "Average" in text
    assert main([*args[:-2], "--shots", "99", "--out", str(tmp_path / "bad")]) == 2
    assert "shots=99" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_data_root_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from fsad.chapter import resolve_data_root

    monkeypatch.setenv("FSAD_DATA", str(tmp_path))
    monkeypatch.setattr("fsad.chapter.ensure_embedded", lambda: Path("/embedded"))
    assert resolve_data_root(None, load_config("ci")) == Path("/embedded")  # ci: embedded
    assert resolve_data_root(None, load_config("paper")) == tmp_path
    assert resolve_data_root(Path("/x"), load_config("ci")) == Path("/x")
    monkeypatch.delenv("FSAD_DATA")
    assert resolve_data_root(None, RunConfig()) == Path("/embedded")


def test_chapter_setup_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from fsad.chapter import chapter_setup

    embedded = tmp_path / "embedded"
    (embedded / "mvtec_ad").mkdir(parents=True)
    (tmp_path / "real" / "mvtec_ad").mkdir(parents=True)
    monkeypatch.setattr("fsad.chapter.ensure_embedded", lambda: embedded)
    monkeypatch.delenv("FSAD_DATA", raising=False)
    cfg, root, dataset_root, real = chapter_setup()
    assert (cfg.name, root, dataset_root, real) == ("ci", embedded, embedded / "mvtec_ad", False)
    monkeypatch.setenv("FSAD_DATA", str(tmp_path / "real"))
    cfg, root, dataset_root, real = chapter_setup()
    assert (cfg.name, root, real) == ("quick", tmp_path / "real", True)
    assert dataset_root == tmp_path / "real" / "mvtec_ad"
    assert chapter_setup(data_root="embedded").real is False  # forced, FSAD_DATA set
    assert chapter_setup("ci").root == embedded  # ci pins the embedded data
    assert chapter_setup("ci", str(tmp_path / "real")).real is True  # a named folder wins
    with pytest.raises(DataError, match="not found"):
        chapter_setup("quick", str(tmp_path / "missing"))


def test_dry_run_counts_and_writes_nothing(tiny_root: Path, tmp_path: Path):
    out, method = tmp_path / "out", Counter()
    res = run_grid(
        _config(),
        tiny_root,
        out,
        engine_factory=_factory([]),
        methods={"fake": method},
        dry_run=True,
    )
    assert (res.pending, res.skipped, res.computed) == (8, 0, 0)
    assert not method.tasks and not out.exists()


def test_engine_settings_flat_or_nested_and_unknown_rejected():
    from fsad.evaluate import engine_config_from_dict

    cfg = engine_config_from_dict({"backbone": "lite1", "coreset_ratio": 0.05, "layers": [2, 3]})
    assert cfg.features.backbone == "tf_efficientnet_lite1" and cfg.coreset_ratio == 0.05
    assert engine_config_from_dict({"features": {"dim": 64}}).features.dim == 64
    with pytest.raises(ConfigError, match="unknown engine setting 'bogus'"):
        engine_config_from_dict({"bogus": 1})


def test_git_commit_is_dirty_for_code_changes_only(tmp_path: Path) -> None:
    import subprocess

    from fsad.evaluate import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "fsad").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "fsad" / "m.py").write_text("x = 1\n")
    (tmp_path / "results" / "r.csv").write_text("a\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_commit(tmp_path / "fsad")
    assert clean != "unknown" and not clean.endswith("+dirty")
    (tmp_path / "results" / "r.csv").write_text("a\n1\n")  # a grid writing its results
    assert git_commit(tmp_path / "fsad") == clean
    (tmp_path / "fsad" / "m.py").write_text("x = 2\n")
    assert git_commit(tmp_path / "fsad") == clean + "+dirty"


def test_query_paths_of_a_folder_of_links_stay_under_its_root(tmp_path: Path) -> None:
    """A folder dataset made of symbolic links into another dataset: the predictions name
    the queries by their place in the folder, never by the link targets' machine paths."""
    from fsad.evaluate.execute import _relative

    target = tmp_path / "elsewhere" / "img.png"
    target.parent.mkdir()
    target.write_bytes(b"x")
    root = tmp_path / "product"
    (root / "scratch").mkdir(parents=True)
    (root / "scratch" / "001.png").symlink_to(target)
    assert _relative(root / "scratch" / "001.png", root) == "scratch/001.png"
    assert _relative(target, root) == target.as_posix()  # outside the root: as given
