"""The saved-model artefact: a folder that is safe to load (no pickle, hashes checked).

Layout of a model folder::

    MODEL/model.json            manifest: format, format version, fsad version, the JSON
                                metadata (class names, config, threshold, ...), the
                                SHA-256 of every tensor file and of the manifest itself
    MODEL/<group>.safetensors   one safetensors file per tensor group (e.g. "bank", "head")

Only tensors (safetensors) and JSON are ever read back, so loading a model from an untrusted
source cannot run code. Before anything is used, :func:`load_artifact` refuses, with one
:class:`ModelError` line naming the path: a missing or unreadable manifest, another format or
format version, a listed tensor file that is missing or whose SHA-256 differs (tampered or
truncated), and a manifest edited after saving. The hashes detect accidental or naive edits;
they are not a signature against someone who rewrites the manifest on purpose.

Saving is atomic: the folder is written under a temporary name next to the target and then
renamed into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fsad import __version__
from fsad.errors import FsadError
from fsad.utils import atomic_folder

FORMAT = "fsad-model"
#: Bumped whenever the meaning of the stored tensors or metadata changes.
FORMAT_VERSION = 2  # 2: a recipe, one bank per engine, support rows per group
MANIFEST = "model.json"
_GROUP_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ModelError(FsadError):
    """A model folder that cannot be used: missing, incompatible, corrupt or tampered."""


@dataclass
class Artifact:
    """A model as stored on disk.

    Attributes:
        meta: JSON-able metadata chosen by the caller (class names, config, threshold, ...).
        tensors: group name -> tensor name -> CPU tensor.
        fsad_version: version of fsad that wrote the model.
        format_version: :data:`FORMAT_VERSION` of the writer.
    """

    meta: dict[str, Any]
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    fsad_version: str = __version__
    format_version: int = FORMAT_VERSION


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``manifest`` without its own ``manifest_sha256``."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256_bytes(blob.encode("utf-8"))


def _tensor_bytes(group: str, tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    if not _GROUP_RE.match(group):
        raise ValueError(f"tensor group name must match {_GROUP_RE.pattern}: {group!r}")
    clean = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}
    return save(clean, metadata={"format": FORMAT, "group": group})


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_artifact(path: str | os.PathLike, artifact: Artifact) -> Path:
    """Write ``artifact`` as a model folder at ``path``, atomically.

    An existing model folder at ``path`` is replaced; any other existing file or non-empty
    folder is refused (so a typo cannot delete a user's data).

    Raises:
        ModelError: ``path`` exists and is not an fsad model folder.
    """
    path = Path(path).expanduser()
    _check_replaceable(path)
    with atomic_folder(path) as tmp:
        files: dict[str, str] = {}
        for group, tensors in sorted(artifact.tensors.items()):
            data = _tensor_bytes(group, tensors)
            name = f"{group}.safetensors"
            _write_file(tmp / name, data)
            files[name] = sha256_bytes(data)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fsad_version": __version__,
            "files": files,
            "meta": artifact.meta,
        }
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
        _write_file(tmp / MANIFEST, text.encode("utf-8"))
    return path


def _check_replaceable(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise ModelError(f"model output exists and is not a folder: {path}")
    if any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise ModelError(f"model output is a non-empty folder without {MANIFEST}: {path}")


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of the model folder ``path`` (format and self-hash verified).

    Raises:
        ModelError: missing folder or manifest, invalid JSON, another format or format
            version, or a manifest edited after saving.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model not found: {path}")
    if not path.is_dir():
        raise ModelError(f"model must be a folder holding {MANIFEST}: {path}")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ModelError(f"not an fsad model folder (no {MANIFEST}): {path}")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model manifest is not valid JSON ({exc}): {mpath}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"not an fsad model manifest (format != {FORMAT!r}): {mpath}")
    _check_version(manifest, path)
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ModelError(f"model manifest was modified after saving (hash mismatch): {mpath}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("meta"), dict):
        raise ModelError(f"model manifest lacks 'files' or 'meta': {mpath}")
    return manifest


def _check_version(manifest: dict[str, Any], path: Path) -> None:
    version = manifest.get("format_version")
    writer = manifest.get("fsad_version", "?")
    if version == FORMAT_VERSION:
        return
    hint = "upgrade fsad" if isinstance(version, int) and version > FORMAT_VERSION else "re-fit it"
    raise ModelError(
        f"incompatible model format version {version!r} (written by fsad {writer}); "
        f"fsad {__version__} reads version {FORMAT_VERSION}: {hint}: {path}"
    )


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Load and verify the model folder ``path``.

    Every tensor file listed in the manifest is read once, its SHA-256 compared with the
    manifest, and only then decoded (safetensors: tensors only, never code).

    Raises:
        ModelError: see :func:`read_manifest`; also a missing, truncated or modified tensor
            file, or a file name in the manifest that points outside the folder.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path).expanduser()
    manifest = read_manifest(path)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for name, digest in sorted(manifest["files"].items()):
        group = name.removesuffix(".safetensors")
        if not name.endswith(".safetensors") or not _GROUP_RE.match(group):
            raise ModelError(f"model manifest lists an invalid file name {name!r}: {path}")
        fpath = path / name
        try:
            data = fpath.read_bytes()
        except OSError as exc:
            raise ModelError(f"model file missing or unreadable: {fpath}") from exc
        if sha256_bytes(data) != digest:
            raise ModelError(
                f"model file does not match its SHA-256 in {MANIFEST} (tampered or "
                f"corrupt): {fpath}"
            )
        try:
            tensors[group] = dict(load(data))
        except (SafetensorError, ValueError) as exc:
            raise ModelError(f"model file is not valid safetensors ({exc}): {fpath}") from exc
    return Artifact(
        meta=manifest["meta"],
        tensors=tensors,
        fsad_version=str(manifest.get("fsad_version", "?")),
        format_version=int(manifest["format_version"]),
    )


def folder_size(path: str | os.PathLike) -> int:
    """Total size in bytes of the files in a model folder."""
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())
