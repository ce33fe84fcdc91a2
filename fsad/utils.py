"""Small shared helpers: seeding, device choice, atomic writes (files and folders), progress
bars."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
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
def atomic_folder(
    dest: str | os.PathLike, *, done: Callable[[], bool] | None = None
) -> Iterator[Path]:
    """Build a folder in a temporary sibling of ``dest``, then swap it in.

    ``with atomic_folder(dest) as tmp:`` yields a new, empty, hidden folder next to ``dest``
    (``.<name>.XXXXXXXX.tmp``: the same file system, the usual folder permissions; the
    parent is created). When the block ends without error, ``tmp`` is renamed to ``dest``:
    an existing ``dest`` is first moved aside, then deleted once the new folder is in place
    (or put back if that rename fails). When the block raises, ``tmp`` is deleted and
    ``dest`` is untouched. Either way no temporary folder is left behind, and ``dest`` is
    the old folder or the new complete one, never a half-written one.

    Args:
        dest: the folder to write.
        done: for writers racing to write the same content: True when ``dest`` already
            holds what the block wrote (another process finished first). It is asked before
            the swap, and again when the swap fails; if True, ``tmp`` is dropped and
            ``dest`` kept.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _hidden_sibling(dest, ".tmp")
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; use the usual folder mode
        yield tmp
        if done is None or not done():
            try:
                _swap_folder(tmp, dest)
            except OSError:
                if done is None or not done():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _hidden_sibling(dest: Path, suffix: str) -> Path:
    """A new, empty folder ``.<name>.XXXXXXXX<suffix>`` next to ``dest``."""
    return Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix))


def _swap_folder(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``. An existing ``dest`` is moved into a hidden sibling first
    and deleted after the rename, or moved back when the rename fails."""
    if not dest.exists():
        os.replace(tmp, dest)
        return
    old = _hidden_sibling(dest, ".old")
    os.replace(dest, old / dest.name)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old / dest.name, dest)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


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
