"""Benchmark: synthetic 256 x 256 defect images per second once foreground masks are cached.

Usage::

    python benchmarks/bench_synth.py [--data ROOT] [--category bottle] [--dataset mvtec_ad]
                                     [--textures DTD] [--generator perlin] [--n 16] [--items 400]

Without ``--data`` (and ``$FSAD_DATA``) it runs on the embedded dataset. The first pass over
the sources (image decoding, foreground masks, texture loading) is timed separately; the
reported rate is the steady state: rendering items (mask draws + blending) from a warm
dataset. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--category", default=None)
    p.add_argument("--dataset", default="mvtec_ad")
    p.add_argument("--textures", type=Path, default=None)
    p.add_argument("--generator", default="perlin")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import cv2

    cv2.setNumThreads(args.threads)
    from fsad.cache import DiskCache
    from fsad.data import default_data_root, load_category
    from fsad.synth import PseudoClassDataset, TextureSource

    root = default_data_root(args.data)
    tmp = tempfile.TemporaryDirectory()
    if root is None:
        from fsad.embedded import generate

        generate(Path(tmp.name) / "embedded", seed=0)
        root, category = Path(tmp.name) / "embedded", args.category or "washer"
    else:
        category = args.category or "bottle"
        if (root / args.dataset).is_dir():
            root = root / args.dataset
    data = load_category(root, args.dataset, category)
    textures = (
        TextureSource.from_dtd(args.textures) if args.textures else TextureSource.procedural()
    )
    cache = DiskCache(Path(tmp.name) / "cache")
    ds = PseudoClassDataset(data, textures, args.generator, seed=0, n_per_class=args.n, cache=cache)

    t0 = time.perf_counter()
    for j in range(ds.n_sources):  # decode, resize, foreground (cached on disk)
        ds.source_foreground(j)
    for name in textures.classes:
        textures.image(name)
    warm = time.perf_counter() - t0

    # a fresh dataset object: foreground masks now come from the disk cache
    ds = PseudoClassDataset(data, textures, args.generator, seed=0, n_per_class=args.n, cache=cache)
    t0 = time.perf_counter()
    for j in range(ds.n_sources):
        ds.source_foreground(j)
    cached = time.perf_counter() - t0

    items = min(args.items, len(ds))
    t0 = time.perf_counter()
    area = 0.0
    for i in range(items):
        area += float(ds[i].mask.mean())
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "category": category,
                "generator": args.generator,
                "textures": "dtd" if args.textures else "procedural",
                "threads": args.threads,
                "cpus": os.cpu_count(),
                "sources": ds.n_sources,
                "first_pass_s": round(warm, 2),
                "cached_sources_s": round(cached, 3),
                "items": items,
                "images_per_s": round(items / dt, 1),
                "mean_mask_area": round(area / items, 4),
            }
        )
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
