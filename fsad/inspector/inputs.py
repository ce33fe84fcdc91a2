"""Finding and reading the inspector's images: normal folders, support folders, inputs.

Unreadable files never stop a batch: :func:`read_images` records one ``(path, reason)`` per
file, where ``reason`` is the one-line :class:`fsad.errors.DataError` message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from fsad.data import IMAGE_EXTENSIONS, Sample, natural_key, read_image
from fsad.errors import DataError

PathLike = str | os.PathLike
#: ``(path, reason)`` of an image that could not be read
Skipped = tuple[str, str]


def images_in(folder: PathLike, what: str) -> list[Path]:
    """Image files inside ``folder`` and its sub-folders (hidden ones skipped; natural
    order; upper-case extensions and symbolic links count).

    Raises:
        DataError: the folder is missing, not a folder, or holds no image files.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder: {folder}")
    files = _folder_images(folder)
    if not files:
        raise DataError(f"{what} has no images (png, jpg, bmp, tif): {folder}")
    return files


def image_files(files: PathLike | Iterable[PathLike], what: str) -> list[Path]:
    """The images of a folder (:func:`images_in`) or a list of image files (kept in order).

    Args:
        files: a folder, or image files.
        what: what the images are, for messages (``"normal"``: "normal folder not found").

    Raises:
        DataError: a missing folder or file, or no images at all.
    """
    if isinstance(files, str | os.PathLike):
        return images_in(files, f"{what} folder")
    paths = [Path(p).expanduser() for p in files]
    for p in paths:
        if not p.is_file():
            raise DataError(f"{what} image not found: {p}")
    if not paths:
        raise DataError(f"no {what} images given")
    return paths


def support_folders(root: PathLike) -> dict[str, list[Path]]:
    """``{defect type: image files}`` from ``root/<defect type>/*`` (natural order).

    Raises:
        DataError: ``root`` missing, without defect-type sub-folders, or a defect type
            folder without images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"support folder not found: {root}")
    subdirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
        key=natural_key,
    )
    if not subdirs:
        raise DataError(f"support folder has no defect-type sub-folders: {root}")
    return {d.name: images_in(d, f"defect type folder '{d.name}'") for d in subdirs}


def support_files(
    support: PathLike | Mapping[str, PathLike | Iterable[PathLike]],
) -> dict[str, list[Path]]:
    """``{defect type: image files}`` from a folder of ``<defect type>/`` sub-folders
    (:func:`support_folders`) or a mapping defect type -> folder or list of image files.

    Raises:
        DataError: see :func:`support_folders` and :func:`image_files`.
    """
    if isinstance(support, str | os.PathLike):
        return support_folders(support)
    if not support:
        raise DataError("support has no defect types")
    return {str(k): image_files(v, f"defect type '{k}'") for k, v in support.items()}


def _folder_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, hidden parts skipped, natural order."""
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda p: [natural_key(s) for s in p.relative_to(folder).parts])


def collect_inputs(inputs: Iterable[PathLike]) -> list[Path]:
    """Files given directly plus image files found (recursively) in given folders.

    Raises:
        DataError: a path does not exist, a folder holds no images, or nothing was given.
    """
    out: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            found = _folder_images(path)
            if not found:
                raise DataError(f"input folder has no images (png, jpg, bmp, tif): {path}")
            out += found
        else:
            raise DataError(f"input not found: {path}")
    if not out:
        raise DataError("no input images given")
    return out


def _read_or_skip(path: Path, skipped: list[Skipped]) -> np.ndarray | None:
    """RGB ``(H, W, 3)`` uint8 image of ``path``, or None after adding it to ``skipped``."""
    try:
        return read_image(path)
    except DataError as exc:
        skipped.append((str(path), str(exc)))
        return None


def read_images(
    paths: Sequence[Path], skipped: list[Skipped]
) -> tuple[list[np.ndarray], list[Path]]:
    """Decode ``paths`` to RGB ``(H, W, 3)`` uint8 images.

    Args:
        paths: image files.
        skipped: receives ``(path, reason)`` for each unreadable file.

    Returns:
        The readable images and their paths (in the order of ``paths``).
    """
    pairs = [(img, p) for p in paths if (img := _read_or_skip(p, skipped)) is not None]
    return [img for img, _ in pairs], [p for _, p in pairs]


def readable(paths: Sequence[Path], skipped: list[Skipped]) -> list[Path]:
    """The files of ``paths`` that decode as images (one at a time, none kept); the
    others are added to ``skipped`` as ``(path, reason)``."""
    return [p for p in paths if _read_or_skip(p, skipped) is not None]


def support_samples(
    files: Mapping[str, Sequence[Path]], skipped: list[Skipped]
) -> tuple[list[str], list[Sample], np.ndarray]:
    """The readable support images of every defect type, as samples labelled by type.

    Args:
        files: defect type -> image files (from :func:`support_files`).
        skipped: receives ``(path, reason)`` for each unreadable file.

    Returns:
        classes ``(C,)``, samples ``(S,)`` and labels ``(S,)`` int64 class index.

    Raises:
        DataError: a defect type without a readable image.
    """
    classes, samples, labels = [], [], []
    for name, paths in files.items():
        kept = readable(paths, skipped)
        if not kept:
            raise DataError(f"defect type '{name}' has no readable images: {paths[0].parent}")
        labels += [len(classes)] * len(kept)
        samples += [Sample(p, "support", "test", name) for p in kept]
        classes.append(name)
    return classes, samples, np.asarray(labels, dtype=np.int64)


def load_images(images: PathLike | Sequence[PathLike | np.ndarray]) -> list[np.ndarray]:
    """RGB images from a file or folder, or a sequence of files, folders and RGB arrays
    ``(H, W, 3)`` uint8 (kept as given); folders expand as in :func:`collect_inputs`.

    Raises:
        DataError: a missing path or an empty folder; unreadable files (one line each).
    """
    single = isinstance(images, str | os.PathLike | np.ndarray)
    items = [images] if single else list(images)
    out: list[np.ndarray] = []
    skipped: list[Skipped] = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[2] != 3 or item.dtype != np.uint8:
                raise DataError(
                    f"image {i}: expected an RGB array (H, W, 3) uint8, "
                    f"got shape {item.shape} {item.dtype}"
                )
            out.append(item)
        else:
            out += read_images(collect_inputs([item]), skipped)[0]
    if skipped:
        raise DataError("\n".join(reason for _, reason in skipped))
    if not out:
        raise DataError("no input images given")
    return out
