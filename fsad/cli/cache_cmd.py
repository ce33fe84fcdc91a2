"""``fsad cache``: what the on-disk cache holds (``info``) and removing what has not been used
lately (``prune``), see :mod:`fsad.cache_prune`."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from fsad.cache import default_cache_dir
from fsad.cache_prune import entries, leftovers, remove, select
from fsad.errors import ConfigError, DataError

GB = 1e9


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cache",
        help="show or prune the on-disk cache of features, banks and residuals",
        description=(
            "The cache ($FSAD_CACHE or ~/.cache/fsad) keeps expensive intermediates keyed by "
            "everything that determines them; a removed entry is recomputed on its next use."
        ),
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="entries and size per kind")
    prune = sub.add_parser(
        "prune",
        help="remove entries unused for N days and/or the least recently used beyond a size",
    )
    for q in (info, prune):
        q.add_argument("--cache", help="cache folder (default: $FSAD_CACHE or ~/.cache/fsad)")
    prune.add_argument("--max-size", type=float, help="keep at most this many GB")
    prune.add_argument("--unused-days", type=float, help="remove entries unused for longer")
    prune.add_argument("--dry-run", action="store_true", help="list what would go, remove none")
    info.set_defaults(func=run_info)
    prune.set_defaults(func=run_prune)


def _root(args: argparse.Namespace) -> Path:
    root = Path(args.cache).expanduser() if args.cache else default_cache_dir()
    if not root.is_dir():
        raise DataError(f"no cache folder at {root}")
    return root


def run_info(args: argparse.Namespace) -> int:
    root = _root(args)
    sizes: dict[str, list[int]] = defaultdict(list)
    for e in entries(root):
        sizes[e.namespace].append(e.size)
    print(f"cache {root}")
    for name in sorted(sizes, key=lambda n: -sum(sizes[n])):
        print(f"  {name:<22} {len(sizes[name]):>6} entries {sum(sizes[name]) / GB:>8.2f} GB")
    total = sum(sum(v) for v in sizes.values())
    print(f"  {'total':<22} {sum(map(len, sizes.values())):>6} entries {total / GB:>8.2f} GB")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    if args.max_size is None and args.unused_days is None:
        raise ConfigError("fsad cache prune needs --max-size GB and/or --unused-days N")
    root = _root(args)
    found = entries(root)
    max_bytes = None if args.max_size is None else int(args.max_size * GB)
    doomed = select(found, max_bytes, args.unused_days) + leftovers(root)
    size = sum(e.size for e in doomed)
    if args.dry_run:
        for e in doomed:
            print(f"would remove {e.path} ({e.size / GB:.2f} GB)")
        print(f"would remove {len(doomed)} of {len(found)} entries, {size / GB:.2f} GB")
        return 0
    freed = remove(doomed)
    kept = sum(e.size for e in entries(root))
    print(f"removed {len(doomed)} files, {freed / GB:.2f} GB; {kept / GB:.2f} GB left in {root}")
    return 0
