"""Arrange one MVTec category as the folders an inspection engineer would have (issue 8).

Writes symbolic links (no image is copied) under ``OUT``::

    OUT/normal/                 the category's normal bank images (train/good)
    OUT/support/<defect type>/  the first ``--shots`` images of each type (the paper's split)
    OUT/query/<label>/          every other test image, good ones included (the truth is the
                                parent folder name, as benchmarks/bench_classify.py expects)

Example::

    python scripts/mvtec_as_folders.py $FSAD_DATA/mvtec_ad bottle /tmp/bottle --shots 5
    fsad fit --normal /tmp/bottle/normal --support /tmp/bottle/support --out /tmp/bottle_model
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fsad.data import GOOD, Sample, few_shot_split, load_category


def _link(samples: list[Sample], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in samples:
        target = folder / f"{s.label}_{s.path.name}"
        if not target.exists():
            os.symlink(s.path.resolve(), target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="dataset root, e.g. $FSAD_DATA/mvtec_ad")
    ap.add_argument("category")
    ap.add_argument("out", type=Path, help="output folder (must not exist)")
    ap.add_argument("--dataset", default="mvtec_ad")
    ap.add_argument("--shots", type=int, default=5)
    args = ap.parse_args()
    if args.out.exists():
        raise SystemExit(f"output folder exists already: {args.out}")
    cat = load_category(args.root, args.dataset, args.category)
    split = few_shot_split(cat.test, args.shots)
    _link(cat.train, args.out / "normal")
    for c, name in enumerate(split.classes):
        _link([s for s, y in zip(split.support, split.support_labels) if y == c],
              args.out / "support" / name)  # fmt: skip
    queries = split.query + [s for s in cat.test if s.label == GOOD and s not in cat.train]
    for label in sorted({s.label for s in queries}):
        _link([s for s in queries if s.label == label], args.out / "query" / label)
    print(
        f"{args.out}: {len(cat.train)} normal, {len(split.support)} support "
        f"({len(split.classes)} types x {args.shots}), {len(queries)} query images"
    )


if __name__ == "__main__":
    main()
