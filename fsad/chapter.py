"""Where a run's images come from: the data root rules shared by ``fsad run`` and the book.

Every book chapter opens with the parameters ``config`` and ``data_root``;
:func:`chapter_setup` turns them into the run configuration and the folders to read, by the
same rules everywhere:

- ``data_root`` is a path: that folder (real images);
- ``data_root`` is ``"embedded"``: fsad's embedded procedural dataset;
- ``data_root`` is empty: ``$FSAD_DATA`` when it is set, else the embedded dataset;
- ``config`` empty: ``quick`` on real images, ``ci`` on the embedded dataset. A config that
  pins ``data: embedded`` (such as ``ci``) keeps the embedded dataset even where
  ``$FSAD_DATA`` is set, unless ``data_root`` names a folder.

``fsad run`` (:func:`resolve_data_root`) follows the same order and also honours a config's
``data:`` path; chapters take theirs from ``data_root`` or ``$FSAD_DATA`` only.

A chapter never prints a machine's absolute folders: :func:`shown_path` writes a path
relative to the repository (``results/beyond``), to ``$FSAD_DATA`` or to the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from fsad.cache import default_cache_dir
from fsad.config import RunConfig, load_config
from fsad.data import default_data_root
from fsad.embedded import ensure_embedded
from fsad.evaluate import resolve_dataset_root

#: the repository a chapter runs in (the folder holding ``fsad/`` and ``pyproject.toml``)
REPO_ROOT = Path(__file__).resolve().parent.parent


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a book page shows it, without the machine's absolute folders.

    The most specific of these roots that holds ``path`` names it: ``$FSAD_DATA/...``,
    ``$FSAD_CACHE/...`` (``~/.cache/fsad/...`` when that variable is unset), the repository
    (a relative path such as ``results/beyond``), the home folder (``~/...``). A path under
    none of them is shown by its last component only (``.../name``); a relative path as is.

    Args:
        path: a file or folder (it need not exist).

    Returns:
        The path as text, with ``/`` separators.
    """
    path = Path(path).expanduser()
    if not path.is_absolute():
        return path.as_posix()
    path = Path(os.path.abspath(path))
    roots: list[tuple[Path, str]] = [(REPO_ROOT, ""), (Path.home(), "~")]
    cache_label = "$FSAD_CACHE" if os.environ.get("FSAD_CACHE") else "~/.cache/fsad"
    roots.append((default_cache_dir(), cache_label))
    if os.environ.get("FSAD_DATA"):
        roots.append((Path(os.environ["FSAD_DATA"]).expanduser(), "$FSAD_DATA"))
    best: tuple[int, str] | None = None
    for root, label in roots:
        root = Path(os.path.abspath(root))
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        text = "/".join(p for p in (label, rel.as_posix()) if p and p != ".") or "."
        if best is None or len(root.parts) > best[0]:
            best = (len(root.parts), text)
    return best[1] if best else f".../{path.name}"


class ChapterSetup(NamedTuple):
    """What a chapter works on.

    Attributes:
        config: the run configuration.
        root: the data root (``$FSAD_DATA``-like: holds ``mvtec_ad/``, ``dtd/``...).
        dataset_root: the folder holding ``config.dataset``'s categories.
        real: True for real images, False for the embedded dataset.
    """

    config: RunConfig
    root: Path
    dataset_root: Path
    real: bool


def resolve_data_root(explicit: str | os.PathLike | None, config: RunConfig) -> Path:
    """``explicit``, else the config's ``data`` ("embedded" or a path), else ``$FSAD_DATA``,
    else the embedded dataset (written on first use)."""
    if explicit is None and config.data and config.data != "embedded":
        explicit = Path(os.path.expandvars(config.data))
    root = default_data_root(explicit) if config.data != "embedded" or explicit else None
    if root is not None:
        return root
    return ensure_embedded()


def chapter_setup(config: str = "", data_root: str = "") -> ChapterSetup:
    """The configuration and data folders of a book chapter from its two parameters.

    Args:
        config: config name or YAML path; empty: ``quick`` on real data, ``ci`` on embedded.
        data_root: a folder, ``"embedded"``, or empty (see the module docstring).

    Returns:
        a :class:`ChapterSetup` (a named tuple: ``cfg, root, dataset_root, real = ...``).
    """
    explicit = None if data_root in ("", "embedded") else data_root
    real = data_root != "embedded" and bool(explicit or os.environ.get("FSAD_DATA"))
    cfg = load_config(config or ("quick" if real else "ci"))
    real = real and (bool(explicit) or cfg.data != "embedded")
    root = Path(explicit or os.environ["FSAD_DATA"]).expanduser() if real else ensure_embedded()
    return ChapterSetup(cfg, root, resolve_dataset_root(root, cfg.dataset), real)
