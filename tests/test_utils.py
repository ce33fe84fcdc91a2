"""Small shared helpers: temporary environment variables, gzip CSV writes, atomic folders."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from fsad import utils
from fsad.utils import atomic_folder, atomic_write_csv, environment


def test_environment_sets_then_restores_even_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSAD_T_SET", "before")
    monkeypatch.delenv("FSAD_T_UNSET", raising=False)
    with pytest.raises(RuntimeError), environment({"FSAD_T_SET": "1", "FSAD_T_UNSET": "2"}):
        assert (os.environ["FSAD_T_SET"], os.environ["FSAD_T_UNSET"]) == ("1", "2")
        raise RuntimeError("inside")
    assert os.environ["FSAD_T_SET"] == "before"  # previous value back
    assert "FSAD_T_UNSET" not in os.environ  # unset again


def test_gzip_csv_round_trips_and_has_no_timestamp(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = atomic_write_csv(tmp_path / "t.csv.gz", frame)
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == bytes(4)  # gzip, MTIME zero
    assert pd.read_csv(path).equals(frame)
    assert gzip.decompress(data).decode() == frame.to_csv(index=False)
    plain = atomic_write_csv(tmp_path / "t.csv", frame)  # no .gz: plain text
    assert plain.read_text() == frame.to_csv(index=False)


def _listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> text)."""
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def _old_folder(tmp_path: Path) -> Path:
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "old.txt").write_text("old")
    return dest


def test_atomic_folder_swaps_in_a_new_folder_with_the_usual_mode(tmp_path: Path) -> None:
    dest = tmp_path / "parent" / "out"
    with atomic_folder(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".out.") and not dest.exists()
        (tmp / "a.txt").write_text("new")
    assert _listing(dest) == {"a.txt": "new"}
    assert [p.name for p in dest.parent.iterdir()] == ["out"]  # no temporary folder left
    probe = tmp_path / "probe"
    probe.mkdir()
    assert dest.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777  # not mkdtemp's 0700


def test_atomic_folder_replaces_an_existing_folder(tmp_path: Path) -> None:
    dest = _old_folder(tmp_path)
    with atomic_folder(dest) as tmp:
        (tmp / "b.txt").write_text("new")
    assert _listing(dest) == {"b.txt": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the old one moved aside is gone


def test_atomic_folder_error_keeps_the_old_folder_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = _old_folder(tmp_path)
    with pytest.raises(RuntimeError, match="disk full"), atomic_folder(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("disk full")
    assert _listing(dest) == {"sub/old.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "new") as tmp:
        raise KeyboardInterrupt  # not only Exception: an interrupt cleans up too
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing created


def test_atomic_folder_puts_the_old_folder_back_when_the_swap_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = _old_folder(tmp_path)
    real = os.replace

    def fail_on_tmp(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if str(src).endswith(".tmp"):
            raise OSError("rename refused")
        real(src, dst)

    monkeypatch.setattr(utils.os, "replace", fail_on_tmp)
    with pytest.raises(OSError, match="rename refused"), atomic_folder(dest) as tmp:
        (tmp / "b.txt").write_text("new")
    assert _listing(dest) == {"sub/old.txt": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_folder_done_keeps_what_another_writer_finished(tmp_path: Path) -> None:
    dest = _old_folder(tmp_path)
    with atomic_folder(dest, done=lambda: True) as tmp:
        (tmp / "b.txt").write_text("same content, written again")
    assert _listing(dest) == {"sub/old.txt": "old"}  # kept, not replaced
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
