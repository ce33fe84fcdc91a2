"""Cache housekeeping (fsad.cache_prune, ``fsad cache``): last use, what goes first, and what
is never touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fsad.cache import DiskCache
from fsad.cache_prune import entries, leftovers, select
from fsad.cli import main
from fsad.errors import ConfigError

NOW = 1_800_000_000.0
DAY = 86400.0


def _entry(root: Path, ns: str, name: str, size: int, age_days: float) -> Path:
    path = root / ns / f"{name * 20}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    _entry(tmp_path, "features", "a", 400, 10)
    _entry(tmp_path, "features", "b", 300, 1)
    _entry(tmp_path, "bank", "c", 200, 5)
    data = tmp_path / "embedded-v1-seed0" / "washer" / "good" / "000.png"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"png")
    (tmp_path / "bank" / "notes.pt").write_bytes(b"not an entry")
    return tmp_path


def test_entries_are_only_hashed_pt_files_least_recently_used_first(cache: Path) -> None:
    found = entries(cache)
    assert [(e.namespace, e.size) for e in found] == [("features", 400), ("bank", 200),
                                                      ("features", 300)]  # fmt: skip


def test_select_by_days_then_by_size_oldest_first(cache: Path) -> None:
    found = entries(cache)
    sizes = lambda doomed: [e.size for e in doomed]  # noqa: E731
    assert sizes(select(found, unused_days=7, now=NOW)) == [400]
    assert sizes(select(found, max_bytes=499, now=NOW)) == [400, 200]  # 900 -> 300
    assert sizes(select(found, max_bytes=500, now=NOW)) == [400]  # 900 -> 500: fits
    assert sizes(select(found, max_bytes=600, now=NOW)) == [400]  # 900 -> 500
    assert sizes(select(found, max_bytes=300, unused_days=7, now=NOW)) == [400, 200]
    assert select(found, max_bytes=10_000, unused_days=30, now=NOW) == []
    with pytest.raises(ConfigError, match="size limit or a number of days"):
        select(found)
    with pytest.raises(ConfigError, match="must be >= 0"):
        select(found, unused_days=-1)


def test_a_hit_marks_the_entry_used_so_it_is_kept(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    path = disk.save("bank", {"k": 1}, {"v": 2})
    os.utime(path, (NOW - 30 * DAY, NOW - 30 * DAY))
    assert disk.load("bank", {"k": 1}) == {"v": 2}
    assert time.time() - path.stat().st_mtime < 60  # touched by the hit
    assert select(entries(tmp_path), unused_days=7) == []


def test_leftover_temporary_files_go_fresh_ones_stay(tmp_path: Path) -> None:
    old = tmp_path / "features" / f".{'a' * 20}.pt.x1.tmp"
    new = tmp_path / "features" / f".{'b' * 20}.pt.x2.tmp"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half")
    new.write_bytes(b"half")
    os.utime(old, (NOW - 7200, NOW - 7200))
    os.utime(new, (NOW - 60, NOW - 60))
    assert [e.path for e in leftovers(tmp_path, now=NOW)] == [old]


def test_cli_prune_removes_entries_and_nothing_else(cache: Path, capsys) -> None:
    assert (
        main(["cache", "prune", "--cache", str(cache), "--max-size", "4.99e-7", "--dry-run"]) == 0
    )
    assert "would remove 2 of 3 entries" in capsys.readouterr().out
    assert len(entries(cache)) == 3  # a dry run removes nothing
    assert main(["cache", "prune", "--cache", str(cache), "--max-size", "4.99e-7"]) == 0
    assert [e.size for e in entries(cache)] == [300]  # the most recently used is kept
    assert (cache / "embedded-v1-seed0" / "washer" / "good" / "000.png").exists()
    assert (cache / "bank" / "notes.pt").exists()
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "features" in capsys.readouterr().out


def test_cli_names_a_missing_cache_folder(tmp_path: Path, capsys) -> None:
    assert main(["cache", "info", "--cache", str(tmp_path / "nope")]) == 2
    assert f"no cache folder at {tmp_path / 'nope'}" in capsys.readouterr().err
    assert main(["cache", "prune", "--cache", str(tmp_path)]) == 2
    assert "needs --max-size GB and/or --unused-days N" in capsys.readouterr().err
