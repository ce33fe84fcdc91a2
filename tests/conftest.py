"""Shared fixtures: real data (skipped without FSAD_DATA) and the embedded dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FSAD_NO_PROGRESS", "1")


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
def embedded_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded procedural dataset (MVTec AD layout), generated once per session."""
    from fsad.embedded import generate

    out = tmp_path_factory.mktemp("embedded")
    generate(out, seed=0)
    return out


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
