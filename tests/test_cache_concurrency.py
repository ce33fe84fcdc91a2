"""The disk cache shared by many workers: two processes computing one key at once both
succeed and leave one valid file; a reader never sees a half-written entry; a truncated or
garbled file is a miss, recomputed and replaced, never read as data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.cache import DiskCache

KEY = {"what": "race", "n": 1}

#: a process that waits for the go file, then computes the key unless it is cached; a
#: computing racer waits (up to 60 s) until the other has missed the cache too, so both
#: write the same key at once however the machine schedules them
RACER = """
import sys, time
from pathlib import Path
import torch
from fsad.cache import DiskCache

root, go, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while not go.exists():
    time.sleep(0.01)
computed = []

def compute():
    computed.append(1)
    (go.parent / f"missed{me}").touch()
    deadline = time.time() + 60
    while len(list(go.parent.glob("missed*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)
    return {"x": torch.arange(1_000_000, dtype=torch.float32), "tag": "same"}

value = DiskCache(root).load_or_compute("ns", {"what": "race", "n": 1}, compute)
assert value["tag"] == "same" and value["x"][-1].item() == 999_999.0
print("computed" if computed else "loaded")
"""

#: a process that rewrites the key ``n`` times (the same value)
WRITER = """
import sys
from pathlib import Path
import torch
from fsad.cache import DiskCache

cache = DiskCache(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    cache.save("ns", {"what": "race", "n": 1}, {"x": torch.ones(500_000)})
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.strip()


def _entries(root: Path) -> list[Path]:
    return sorted((root / "ns").iterdir())


@pytest.mark.slow
def test_two_processes_racing_on_one_key_both_succeed_and_leave_one_file(tmp_path: Path):
    root, go = tmp_path / "cache", tmp_path / "go"
    racers = [_start(RACER, str(root), str(go), str(i)) for i in range(2)]
    go.touch()
    outcomes = [_finish(p) for p in racers]
    assert outcomes == ["computed", "computed"]  # both missed, both computed, both returned
    entries = _entries(root)
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # no temporary file left
    value = DiskCache(root).load("ns", KEY)
    assert value is not None and value["x"].shape == (1_000_000,)


@pytest.mark.slow
def test_a_reader_never_sees_a_half_written_entry(tmp_path: Path):
    root = tmp_path / "cache"
    writer = _start(WRITER, str(root), "40")
    cache, seen = DiskCache(root), {"miss": 0, "hit": 0}
    while writer.poll() is None:
        value = cache.load("ns", KEY)
        if value is None:
            seen["miss"] += 1  # not written yet
        else:
            assert torch.equal(value["x"], torch.ones(500_000))  # whole, never torn
            seen["hit"] += 1
    _finish(writer)
    assert seen["hit"] > 0
    assert len(_entries(root)) == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated (a killed writer without the rename)
        lambda b: b[:-1],  # one byte short
        lambda b: b"",  # empty
        lambda b: b"\x00" * len(b),  # garbled, same size
    ],
    ids=["half", "one_byte_short", "empty", "zeros"],
)
def test_a_damaged_entry_is_a_miss_recomputed_and_replaced(tmp_path: Path, damage) -> None:
    cache = DiskCache(tmp_path / "cache")
    value = {"x": np.arange(10_000, dtype=np.float32), "meta": {"a": 1}}
    path = cache.save("ns", KEY, value)
    path.write_bytes(damage(path.read_bytes()))
    assert cache.load("ns", KEY) is None  # detected, never returned as data
    calls = []

    def compute():
        calls.append(1)
        return value

    got = cache.load_or_compute("ns", KEY, compute)
    assert calls == [1] and np.array_equal(got["x"], value["x"])
    again = cache.load("ns", KEY)  # the file was replaced by a valid one
    assert again is not None and np.array_equal(again["x"], value["x"])
    assert cache.load_or_compute("ns", KEY, compute) is not None and calls == [1]
