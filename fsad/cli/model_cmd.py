"""``fsad fit`` and ``fsad classify``: use fsad on your own product from folders.

::

    fsad fit --normal normal/ --support support/ --out models/bottle
    fsad classify --model models/bottle new_images/ more.png --out sorted/ [--explain]

``fit`` prints how each engine frames an image (the default's 448 px engine at the
product's scale, with the side it took from the normal images) and the leave-one-out
estimate of the defect-type accuracy (from the support images alone). ``classify`` writes
``OUT/results.csv`` (one row per input image, skipped ones included with their error; the
probability of every defect type, a low-confidence flag) and
``OUT/overlays/<name>.png`` heat maps over the whole image; every file is written
atomically. ``--adapt`` is transductive (the batch's proportions; marked in the output).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fsad.artifact import folder_size
from fsad.cache import DiskCache
from fsad.errors import DataError
from fsad.inspector import (
    DEFAULT_METHOD,
    METHODS,
    Inspector,
    Result,
    framing_text,
    trust_text,
)
from fsad.utils import atomic_write_csv
from fsad.viz.overlay import save_png


def register(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser(
        "fit",
        help="fit a model from a normal folder and a folder per defect type",
        description="Build the normal memory banks, the anomaly threshold (leave-out "
        "scores of the normal images) and the defect-type classifier (a grid method's recipe, "
        "computed as fsad run does), estimate its accuracy by leave-one-out over the support "
        "images, and save one model folder.",
    )
    fit.add_argument("--normal", type=Path, required=True, help="folder of normal images")
    fit.add_argument(
        "--support", type=Path, required=True, help="folder with one sub-folder per defect type"
    )
    fit.add_argument("--out", type=Path, required=True, help="model folder to write")
    fit.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        choices=list(METHODS),
        help=f"defect-type classifier: one of the grid's inductive methods, computed by the "
        f"same code as 'fsad run' (default {DEFAULT_METHOD}, the last round's pick; "
        "residual_proto is the fast, training-free option)",
    )
    fit.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm name or lite0/1/2")
    fit.add_argument("--weights", default=None, help="local weights file (other backbones)")
    fit.add_argument("--seed", type=int, default=1)
    fit.add_argument("--coreset-ratio", type=float, default=0.1)
    fit.add_argument("--folds", type=int, default=10, help="folds of the leave-out threshold")
    fit.add_argument(
        "--quantile", type=float, default=0.99, help="leave-out score quantile = threshold"
    )
    fit.add_argument("--resize", type=int, default=256)
    fit.add_argument("--crop", type=int, default=224)
    fit.add_argument(
        "--framing",
        choices=("letterbox", "crop"),
        default="letterbox",
        help="letterbox: the whole image, padded to a square (any aspect ratio; default); "
        "crop: the paper's centre crop of the --resize shorter side",
    )
    fit.add_argument(
        "--no-cache", action="store_true", help="do not read/write the feature and bank cache"
    )
    fit.set_defaults(func=cmd_fit)

    cls = sub.add_parser(
        "classify",
        help="classify images with a fitted model (CSV + heat-map overlays)",
        description="Score images against the normal bank, decide normal vs defective and "
        "predict the defect type. Unreadable images are reported and skipped.",
    )
    cls.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    cls.add_argument("--model", type=Path, required=True, help="model folder from 'fsad fit'")
    cls.add_argument("--out", type=Path, required=True, help="output folder")
    cls.add_argument("--threshold", type=float, default=None, help="override the threshold")
    cls.add_argument("--explain", action="store_true", help="print per-class support distances")
    cls.add_argument("--no-overlays", action="store_true", help="skip the heat-map PNGs")
    cls.add_argument("--batch-size", type=int, default=8)
    cls.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="flag a defect-type call whose probability is below this (default 0.5)",
    )
    cls.add_argument(
        "--adapt",
        action="store_true",
        help="TRANSDUCTIVE: re-estimate the defect-type proportions over the defective images "
        "of this batch (never any label; as the grid's hires_poe_em); marked in the output",
    )
    cls.set_defaults(func=cmd_classify)


def cmd_fit(args: argparse.Namespace) -> int:
    insp = Inspector(
        method=args.method,
        backbone=args.backbone,
        seed=args.seed,
        coreset_ratio=args.coreset_ratio,
        folds=args.folds,
        quantile=args.quantile,
        resize=args.resize,
        crop=args.crop,
        framing=args.framing,
        weights=args.weights,
        cache=DiskCache(enabled=False) if args.no_cache else None,
    ).fit(args.normal, args.support)
    for path, reason in insp.skipped:
        print(f"fsad: skipped {path}: {reason}", file=sys.stderr)
    out = insp.save(args.out)
    info = insp.info
    counts = ", ".join(f"{c} {n}" for c, n in info["n_support"].items())
    banks = " + ".join(str(n) for n in info["bank_sizes"])
    print(f"model written to {out} ({folder_size(out) / 1e6:.1f} MB)")
    print(f"  normal images {info['n_normal']}, banks of {banks} patches")
    print(f"  defect types: {counts}; method {insp.config.method}")
    print(f"  {framing_text(insp.config.framing, insp.config.crop, insp.recipe)}")
    if "light_test" in info:
        light = info["light_test"]
        undone = "every image's light undone" if light["varies"] else "images as shot"
        print(f"  light test: the product's light {light['summary']}: {undone}")
    if "pose_test" in info:
        pose = info["pose_test"]
        turned = "support as shot" if pose["holds_pose"] else "support turned"
        print(f"  pose test: the product {pose['summary']}: {turned}")
    print(f"  threshold {insp.threshold:.4f} (quantile {args.quantile} of leave-out scores)")
    print(f"  {trust_text(insp.trust)}")
    return 0


def _overlay_name(path: Path, used: set[str]) -> str:
    """A unique, readable PNG name for ``path`` (parent folder + stem)."""
    base = f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem
    base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)
    name, i = f"{base}.png", 1
    while name in used:
        name, i = f"{base}_{i}.png", i + 1
    used.add(name)
    return name


def cmd_classify(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.out.exists() and not args.out.is_dir():
        raise DataError(f"output is not a folder: {args.out}")
    insp = Inspector.load(args.model)
    rows, used = [], set()
    n_err = 0
    results = insp.iter_classify(
        args.inputs,
        args.threshold,
        args.batch_size,
        min_confidence=args.min_confidence,
        adapt=args.adapt,
    )
    for res, image in results:
        row = {**res.row(), **{f"p_{c}": res.probabilities.get(c) for c in insp.classes}}
        row["overlay"] = ""
        if res.ok and not args.no_overlays:
            name = _overlay_name(Path(res.path), used)
            save_png(args.out / "overlays" / name, insp.overlay(res, image))
            row["overlay"] = os.path.join("overlays", name)
        if not res.ok:
            n_err += 1
            print(f"fsad: skipped {res.path}: {res.error}", file=sys.stderr)
        elif args.explain:
            print(insp.explain(res))
        rows.append(row)
    probs = [f"p_{c}" for c in insp.classes]
    frame = pd.DataFrame(rows, columns=[*Result(path="").row().keys(), *probs, "overlay"])
    csv = atomic_write_csv(args.out / "results.csv", frame)
    ok = frame[frame["error"].isna()]
    n_def = int((~ok["is_normal"].astype(bool)).sum())
    n_low = int(ok["low_confidence"].astype(bool).sum())
    mode = " [transductive: proportions adapted to this batch]" if args.adapt else ""
    print(
        f"{len(frame)} images: {len(ok) - n_def} normal, {n_def} defective ({n_low} "
        f"low-confidence), {n_err} skipped{mode} "
        f"(threshold {insp.threshold if args.threshold is None else args.threshold:.4f}); "
        f"results in {csv}"
    )
    return 0
