"""Shared fixtures: real data (skipped without FSAD_DATA), the embedded dataset, a tiny
category."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FSAD_NO_PROGRESS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs workers: the cores shared out
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))  # notebook kernels, Dask workers
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Root of the shared real images (``$FSAD_DATA``); skips when unset or missing."""
    root = os.environ.get("FSAD_DATA")
    if not root:
        pytest.skip("FSAD_DATA is not set: real-data tests need the MVTec/DTD images")
    path = Path(root)
    if not (path / "mvtec_ad").is_dir():
        pytest.skip(f"FSAD_DATA={root} has no mvtec_ad folder")
    return path


@pytest.fixture(scope="session")
def embedded_root() -> Path:
    """The embedded procedural dataset (MVTec AD layout) where the quick start and the book
    keep it (``$FSAD_CACHE/embedded-v<VERSION>-seed0``, as ``$FSAD_CACHE`` stands when a test
    process first asks): test processes and notebooks share one generation (about 15 s)
    instead of one per process. Tests only read it."""
    from fsad.embedded import ensure_embedded

    return ensure_embedded()


@pytest.fixture(scope="session")
def tiny_category(tmp_path_factory: pytest.TempPathFactory):
    """A 4-train / 5-test (2 good, 3 scratch) MVTec-layout category ``widget`` of 72 x 72
    images: the smallest real engine input (tests of the engine and of synthetic tasks)."""
    import cv2
    import numpy as np

    from fsad.data import load_category

    def write(path: Path, img: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    base = rng.integers(90, 110, size=(72, 72, 3), dtype=np.uint8)
    for i in range(4):
        write(
            root / "widget/train/good" / f"{i:03d}.png",
            base + rng.integers(0, 5, base.shape, dtype=np.uint8),
        )
    for i in range(2):
        write(root / "widget/test/good" / f"{i:03d}.png", base)
    for i in range(3):
        img = base.copy()
        img[20 + 5 * i : 40, 20:40] = 250
        write(root / "widget/test/scratch" / f"{i:03d}.png", img)
    return load_category(root, "mvtec_ad", "widget")


@pytest.fixture()
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder used through ``$FSAD_CACHE``."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FSAD_CACHE", str(cache))
    return cache


@pytest.fixture()
def one_torch_thread():
    """Run a test with one torch thread (tiny tensors: avoids OpenMP overhead on 2 cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
