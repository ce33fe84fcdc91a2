"""Housekeeping of the on-disk cache (:class:`fsad.cache.DiskCache`): what it holds, and
removing what has not been used lately.

Features of the 448 px engine run to hundreds of megabytes per image set, and every
generated suite, copy or configuration adds its own, so a cache left alone grows without
bound (64 GB after a few days of rounds on this project's machine). An entry's modification
time is the time it was last used: :meth:`DiskCache.load` touches it on every hit. Pruning
removes entries by that time, oldest first; a removed entry is only recomputed on its next
use, never read stale (its key is checked on read). Only entries (``<namespace>/<hash>.pt``)
and the temporary files of interrupted writes are ever removed: the embedded dataset and
anything else in the folder stay.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from fsad.errors import ConfigError

#: an entry's file name: the 20 hex digits of :func:`fsad.cache.fingerprint`
ENTRY_NAME = re.compile(r"[0-9a-f]{20}\.pt")
#: a temporary file of :func:`fsad.utils.atomic_write_bytes` older than this is a leftover
TEMP_AGE_S = 3600.0


@dataclass(frozen=True)
class Entry:
    """One cache file: its path, namespace, size in bytes and last use (epoch seconds)."""

    path: Path
    namespace: str
    size: int
    last_used: float


def _entry(path: Path) -> Entry | None:
    try:
        st = path.stat()
    except FileNotFoundError:  # removed meanwhile by another process
        return None
    return Entry(path, path.parent.name, st.st_size, st.st_mtime)


def entries(root: Path) -> list[Entry]:
    """Every entry under ``root`` (``<namespace>/<hash>.pt``), least recently used first."""
    found = (_entry(p) for p in root.glob("*/*.pt") if ENTRY_NAME.fullmatch(p.name))
    return sorted((e for e in found if e is not None), key=lambda e: e.last_used)


def leftovers(root: Path, now: float | None = None) -> list[Entry]:
    """Temporary files of interrupted writes (``<namespace>/.<name>.*.tmp``) older than
    :data:`TEMP_AGE_S`."""
    now = time.time() if now is None else now
    found = (_entry(p) for p in root.glob("*/.*.tmp"))
    return [e for e in found if e is not None and now - e.last_used > TEMP_AGE_S]


def select(
    found: list[Entry],
    max_bytes: int | None = None,
    unused_days: float | None = None,
    now: float | None = None,
) -> list[Entry]:
    """The entries to remove: those unused for more than ``unused_days``, then the least
    recently used until the rest fit in ``max_bytes``.

    Args:
        found: entries, least recently used first (:func:`entries`).

    Raises:
        ConfigError: neither limit given, or a negative one.
    """
    if max_bytes is None and unused_days is None:
        raise ConfigError("give a size limit or a number of days (or both)")
    if (max_bytes is not None and max_bytes < 0) or (unused_days is not None and unused_days < 0):
        raise ConfigError(f"limits must be >= 0, got size {max_bytes}, days {unused_days}")
    now = time.time() if now is None else now
    drop = []
    if unused_days is not None:
        drop = [e for e in found if now - e.last_used > unused_days * 86400.0]
    if max_bytes is not None:
        gone = {e.path for e in drop}
        total = sum(e.size for e in found if e.path not in gone)
        for e in found:
            if total <= max_bytes:
                break
            if e.path not in gone:
                drop.append(e)
                total -= e.size
    return drop


def remove(doomed: list[Entry]) -> int:
    """Delete the files; returns the bytes freed (a file already gone counts 0)."""
    freed = 0
    for e in doomed:
        try:
            e.path.unlink()
        except FileNotFoundError:
            continue
        freed += e.size
    return freed
