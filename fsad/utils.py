"""Small shared helpers: seeding, device choice, atomic writes, progress bars."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

T = TypeVar("T")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh NumPy generator.

    Nothing in fsad seeds on import: call this (or pass explicit generators) where a run
    starts, so the same seed gives the same numbers on the same machine.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else CUDA when available, else CPU."""
    import torch

    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; readers never see a partial file."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV (no index) atomically; gzip-compressed when ``path`` ends in .gz.

    The gzip header carries no timestamp, so the same table gives the same bytes.
    """
    data = frame.to_csv(index=False).encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    return atomic_write_bytes(path, data)


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a ``with`` block, then put back the
    previous values (unsetting those that were unset), also when the block raises."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def progress(iterable: Iterable[T], **kwargs) -> Iterator[T]:
    """A tqdm progress bar; silent when ``FSAD_NO_PROGRESS`` is set (tests, CI logs)."""
    from tqdm.auto import tqdm

    disable = kwargs.pop("disable", None)
    if disable is None:
        disable = bool(os.environ.get("FSAD_NO_PROGRESS"))
    return iter(tqdm(iterable, disable=disable, dynamic_ncols=True, **kwargs))


def progress_bar(total: int, **kwargs) -> Any:
    """A tqdm bar of ``total`` steps advanced with ``.update(n)``; silent as :func:`progress`."""
    from tqdm.auto import tqdm

    disable = kwargs.pop("disable", None)
    if disable is None:
        disable = bool(os.environ.get("FSAD_NO_PROGRESS"))
    return tqdm(total=total, disable=disable, dynamic_ncols=True, **kwargs)
