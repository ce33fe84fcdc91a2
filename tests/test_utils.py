"""Small shared helpers: temporary environment variables, gzip CSV writes."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from fsad.utils import atomic_write_csv, environment


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
