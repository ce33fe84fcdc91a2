"""Cache keys: file fingerprints follow content, not paths or modification times."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fsad.cache import DiskCache, files_fingerprint


def _files(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / "a.bin", root / "b.bin"]
    paths[0].write_bytes(b"first image")
    paths[1].write_bytes(b"second image")
    return paths


def test_copy_elsewhere_with_new_mtime_has_the_same_fingerprint(tmp_path: Path) -> None:
    a, b = _files(tmp_path / "one")
    copy = tmp_path / "two"
    shutil.copytree(tmp_path / "one", copy)  # copytree keeps mtimes: move them on purpose
    os.utime(copy / "a.bin", ns=(1, 1))
    assert files_fingerprint([a, b]) == files_fingerprint([copy / "a.bin", copy / "b.bin"])


def test_one_changed_byte_or_order_changes_the_fingerprint(tmp_path: Path) -> None:
    a, b = _files(tmp_path)
    before = files_fingerprint([a, b])
    assert files_fingerprint([b, a]) != before
    a.write_bytes(b"first imagE")  # same size
    assert files_fingerprint([a, b]) != before


def test_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.png"):
        files_fingerprint([tmp_path / "nope.png"])


def test_cache_key_of_copied_files_finds_the_entry(tmp_path: Path) -> None:
    a, b = _files(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    cache, calls = DiskCache(tmp_path / "cache"), []

    def compute() -> dict:
        calls.append(1)
        return {"n": 1}

    cache.load_or_compute("x", {"files": files_fingerprint([a, b])}, compute)
    moved = [tmp_path / "two" / "a.bin", tmp_path / "two" / "b.bin"]
    assert cache.load_or_compute("x", {"files": files_fingerprint(moved)}, compute) == {"n": 1}
    assert len(calls) == 1
