"""On-disk cache of expensive intermediates (features, banks, residuals, masks).

Every entry is keyed by a dict of everything that determines it. The key is hashed into the
file name *and* stored inside the file, and checked on read, so a stale or foreign entry can
never be returned as fresh. Inputs on disk enter the key through
:func:`files_fingerprint`: a hash of every file's *content*, in order. A dataset copied
afresh (new modification times), another clone's virtual environment or a moved folder
therefore hits the same entries, while a changed byte misses them. A hit marks the entry as
used now (its modification time), so ``fsad cache prune`` (:mod:`fsad.cache_prune`) can
remove the least recently used entries first.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fsad.utils import atomic_write_bytes

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$FSAD_CACHE`` if set, else ``~/.cache/fsad``."""
    env = os.environ.get("FSAD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fsad"


def fingerprint(obj: Any) -> str:
    """Stable short SHA-256 of a JSON-able object (dict keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


#: content digests already computed in this process, by (resolved path, size, mtime in ns)
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 hex digest of a file's content (memoised per process while the file's
    path, size and mtime stay the same)."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        with open(p, "rb") as f:
            digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16))
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def files_fingerprint(paths: Iterable[str | os.PathLike]) -> str:
    """Fingerprint of a list of files: the content digest of each, in order.

    Paths and modification times do not enter it, so a copy of the same files (a dataset
    copied again, a fresh clone's packaged weights) has the same fingerprint. Reading the
    126 MB of the shared data takes well under a second, once per process.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    return fingerprint([file_digest(p) for p in paths])


class DiskCache:
    """A folder of ``<namespace>/<hash>.pt`` entries written atomically.

    Args:
        root: cache folder; defaults to :func:`default_cache_dir`.
        enabled: when False, ``load_or_compute`` always computes and never writes.
    """

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path_for(self, namespace: str, key: dict[str, Any]) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        return self.root / namespace / f"{fingerprint({'format': CACHE_FORMAT, **key})}.pt"

    def load(self, namespace: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """Return the stored value for ``key``, or None when absent, unreadable or stale."""
        import torch

        path = self.path_for(namespace, key)
        if not (self.enabled and path.exists()):
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # a truncated or foreign file is treated as a miss
            return None
        if not isinstance(blob, dict) or blob.get("key") != _normalise(key):
            return None
        _touch(path)
        return blob["value"]

    def save(self, namespace: str, key: dict[str, Any], value: dict[str, Any]) -> Path:
        """Store ``value`` under ``key`` atomically and return its path."""
        import torch

        path = self.path_for(namespace, key)
        if not self.enabled:
            return path
        buf = io.BytesIO()
        torch.save({"key": _normalise(key), "value": value}, buf)
        return atomic_write_bytes(path, buf.getvalue())

    def load_or_compute(
        self,
        namespace: str,
        key: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Return the cached value for ``key``, computing and storing it on a miss."""
        hit = self.load(namespace, key)
        if hit is not None:
            return hit
        value = compute()
        self.save(namespace, key, value)
        return value


def _touch(path: Path) -> None:
    """Mark an entry as used now (its modification time), which :mod:`fsad.cache_prune`
    reads as its last use; a read-only or vanished file is left as it is."""
    try:
        os.utime(path)
    except OSError:
        pass


def _normalise(key: dict[str, Any]) -> Any:
    """The key as it round-trips through JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(key, sort_keys=True, default=str))
