"""The grid on a real Dask cluster (2 worker processes): the same rows as a serial run, row by
row; only the client writes; a killed worker and a killed client lose nothing and duplicate
nothing; a failing group keeps the groups finished before it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.config import RunConfig
from fsad.errors import FsadError
from fsad.evaluate import KEY_COLUMNS, read_predictions, read_results, run_grid
from fsad.task import FewShotTask, Prediction

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
CLASSES = ("crack", "dent", "scratch")


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two categories of 64 x 64 noisy images; three defect types drawn small, in one grey,
    at varying places (a line, a square, a disc; 5 images each), so that not every query is
    classified right."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for cat, level in (("gadget", 90), ("widget", 140)):
        for i in range(4):
            _write(root / cat / "train" / "good" / f"{i:03d}.png", _noisy(rng, level))
        for i in range(5):
            x, y = 10 + 7 * i, 40 - 6 * i
            for label in CLASSES:
                img = _noisy(rng, level)
                if label == "crack":
                    cv2.line(img, (x, y), (x + 8, y + 5), (170, 170, 170), 1)
                elif label == "dent":
                    img[y : y + 4, x : x + 4] = 170
                else:
                    cv2.circle(img, (x + 3, y + 3), 3, (170, 170, 170), -1)
                _write(root / cat / "test" / label / f"{i:03d}.png", img)
    return root


def _noisy(rng: np.random.Generator, level: int) -> np.ndarray:
    return (level + rng.integers(0, 30, (64, 64, 3))).astype(np.uint8)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


@pytest.fixture(scope="module")
def cluster_address():
    """A LocalCluster of 2 worker processes (1 thread each) shared by this module's tests."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _grid(**kw) -> RunConfig:
    base = dict(categories=("gadget", "widget"), shots=(1, 2), seeds=(1, 2))
    return RunConfig(**{**{"methods": ("fake",)}, **base, **kw})


class FakeEngine:
    """Stands in for the residual engine (picklable: the workers build it)."""

    def __init__(self, category, config, seed) -> None:
        self.category, self.seed = category.name, seed


class SlowZero:
    """Predicts class 0 after ``seconds``; kills its worker process once, on the first task
    of ``die_on`` (category, seed), when ``marker`` does not exist yet."""

    def __init__(self, seconds: float = 0.0, die_on=None, marker: Path | None = None) -> None:
        self.seconds, self.die_on, self.marker = seconds, die_on, marker

    def __call__(self, task: FewShotTask) -> Prediction:
        if self.die_on == (task.category.name, task.seed) and self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
                os._exit(1)  # the worker process dies mid-group, once
            except FileExistsError:
                pass
        time.sleep(self.seconds)
        return Prediction(labels=np.zeros(len(task.query), dtype=np.int64))


class FailOn:
    """Fails on one category's tasks."""

    def __init__(self, category: str) -> None:
        self.category = category

    def __call__(self, task: FewShotTask) -> Prediction:
        if task.category.name == self.category:
            raise RuntimeError(f"boom on {self.category}")
        return Prediction(labels=np.zeros(len(task.query), dtype=np.int64))


def _sorted(frame, by=KEY_COLUMNS):
    return frame.sort_values(by, ignore_index=True)


def _no_duplicates(out: Path, finished_only: bool = False) -> None:
    """No row twice and every result row's predictions present; ``finished_only``: a client
    killed between the store's two writes (predictions first) may leave one group's
    predictions without its result rows, which a resumed run redoes and replaces."""
    rows, preds = read_results(out), read_predictions(out)
    assert not rows.duplicated(KEY_COLUMNS).any()
    assert not preds.duplicated(KEY_COLUMNS + ["query"]).any()
    if finished_only:
        preds = preds.merge(rows[KEY_COLUMNS], on=KEY_COLUMNS)
    assert len(preds) == rows["n_query"].sum()
    assert not list(out.glob(".*.tmp"))


def test_two_local_workers_equal_a_serial_run_row_by_row(
    shapes_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real engine and two real methods, each run from its own empty cache."""
    grid = _grid(
        methods=("residual_proto", "anomaly_lr"), engine={"dim": 64, "resize": 128, "crop": 112}
    )
    results = {}
    for name, workers in (("serial", 1), ("cluster", 2)):
        monkeypatch.setenv("FSAD_CACHE", str(tmp_path / f"cache_{name}"))
        results[name] = run_grid(grid, shapes_root, tmp_path / name, workers=workers)
        assert results[name].computed == 16
    cols = KEY_COLUMNS + ["accuracy", "macro_f1", "n_query", "n_support", "data_hash"]
    serial, cluster = (_sorted(results[n].results)[cols] for n in ("serial", "cluster"))
    assert serial.equals(cluster)
    assert serial.accuracy.nunique() > 1  # not trivially right or wrong everywhere
    by = KEY_COLUMNS + ["query"]
    a, b = (_sorted(read_predictions(tmp_path / n), by) for n in ("serial", "cluster"))
    assert a.equals(b)
    hosts = read_results(tmp_path / "cluster")["worker_host"]
    assert hosts.notna().all() and (hosts != "").all()
    _no_duplicates(tmp_path / "cluster")


def test_a_killed_worker_is_replaced_and_nothing_is_lost(
    shapes_root: Path, tmp_path: Path, cluster_address: str
) -> None:
    marker = tmp_path / "died"
    method = SlowZero(die_on=("widget", 1), marker=marker)
    res = run_grid(
        _grid(), shapes_root, tmp_path / "out", engine_factory=FakeEngine,
        methods={"fake": method}, scheduler=cluster_address,
    )  # fmt: skip
    assert marker.exists()  # a worker did die
    assert res.computed == 8 and len(res.results) == 8
    _no_duplicates(tmp_path / "out")


def test_a_failing_group_keeps_the_finished_groups(
    shapes_root: Path, tmp_path: Path, cluster_address: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom on widget"):
        run_grid(
            _grid(seeds=(1, 2, 3, 4)), shapes_root, out, engine_factory=FakeEngine,
            methods={"fake": FailOn("widget")}, scheduler=cluster_address,
        )  # fmt: skip
    rows = read_results(out)  # groups finished before the failure are kept, whole
    assert set(rows.category) <= {"gadget"} and len(rows) % 2 == 0
    _no_duplicates(out)


CLIENT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from fsad.evaluate import run_grid
from test_dask import FakeEngine, SlowZero, _grid
run_grid(_grid(seeds=(1, 2, 3, 4, 5, 6)), Path({root!r}), Path({out!r}),
         engine_factory=FakeEngine, methods={{"fake": SlowZero(1.0)}}, scheduler={address!r})
"""


def test_a_killed_client_resumes_with_every_finished_row(
    shapes_root: Path, tmp_path: Path, cluster_address: str
) -> None:
    out = tmp_path / "out"
    script = CLIENT.format(tests=str(HERE), root=str(shapes_root), out=str(out),
                           address=cluster_address)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        _wait_for_rows(out, proc, at_least=4)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and only it: its own session
        proc.wait()
    before = read_results(out)
    assert 4 <= len(before) < 24  # killed mid-grid, whole groups only
    assert len(before) % 2 == 0
    _no_duplicates(out, finished_only=True)
    res = run_grid(
        _grid(seeds=(1, 2, 3, 4, 5, 6)), shapes_root, out, engine_factory=FakeEngine,
        methods={"fake": SlowZero()}, scheduler=cluster_address,
    )  # fmt: skip
    assert res.skipped == len(before) and res.computed == 24 - len(before)
    after = read_results(out)
    assert len(after) == 24
    kept = after.merge(before[KEY_COLUMNS + ["timestamp"]], on=KEY_COLUMNS, suffixes=("", "_0"))
    assert len(kept) == len(before) and (kept.timestamp == kept.timestamp_0).all()
    _no_duplicates(out)


def _wait_for_rows(out: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "results.csv").exists() and len(read_results(out)) >= at_least:
            return
        assert proc.poll() is None, "the client ended before it was killed"
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} rows after 60 s")


def test_workers_must_be_positive_and_the_scheduler_reachable(
    shapes_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fsad.evaluate.cluster.CONNECT_TIMEOUT", "2s")
    kw = dict(engine_factory=FakeEngine, methods={"fake": SlowZero()})
    with pytest.raises(FsadError, match="workers must be an integer of at least 1, got 0"):
        run_grid(_grid(), shapes_root, tmp_path / "o", workers=0, **kw)
    with pytest.raises(FsadError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_grid(_grid(), shapes_root, tmp_path / "o", scheduler="tcp://127.0.0.1:9", **kw)
    assert not (tmp_path / "o").exists()  # nothing written, not even config.yaml
