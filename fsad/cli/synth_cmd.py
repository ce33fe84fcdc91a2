"""``fsad synth``: write synthetic defect images, masks and a labels CSV for one category."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

from fsad.cache import DiskCache
from fsad.data import available_datasets, default_data_root, encode_image, load_category
from fsad.errors import DataError
from fsad.synth.pseudo import DEFAULT_N_PER_CLASS, GENERATORS, PseudoClassDataset
from fsad.synth.textures import TextureSource
from fsad.utils import atomic_folder, progress

CSV_COLUMNS = ("image", "mask", "label", "class", "texture", "source", "beta", "mask_area")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic defect classes (textures pasted on normal images) for a category",
        description=(
            "Paste every texture class onto N normal images of a category (paper section 3.5): "
            "writes OUT/images/*.png, OUT/masks/*.png, OUT/labels.csv and OUT/synth.json, "
            "deterministically by --seed. The folder appears complete or not at all."
        ),
    )
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: $FSAD_DATA)")
    p.add_argument("--category", required=True, help="category name, e.g. bottle")
    p.add_argument(
        "--dataset", choices=available_datasets(), default="mvtec_ad", help="dataset layout"
    )
    p.add_argument(
        "--textures", type=Path, default=None, help="DTD folder (default: procedural textures)"
    )
    p.add_argument("--generator", choices=GENERATORS, default="perlin", help="defect-mask shape")
    p.add_argument(
        "--n",
        type=int,
        default=DEFAULT_N_PER_CLASS,
        help=f"normal images per texture class (default {DEFAULT_N_PER_CLASS}); "
        "0 = all normal images (the paper)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="side of the square images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-cache", action="store_true", help="do not cache foreground masks")
    p.set_defaults(func=cmd_synth)


def _dataset_root(data: Path | None, dataset: str, category: str) -> Path:
    root = default_data_root(data)
    if root is None:
        raise DataError("no dataset root: pass --data ROOT or set FSAD_DATA")
    if not (root / category).is_dir() and (root / dataset / category).is_dir():
        return root / dataset  # an FSAD_DATA-style root holding mvtec_ad/, mvtec_3d/
    return root


def write_synthetic(dataset: PseudoClassDataset, out: Path, overwrite: bool = False) -> Path:
    """Write every item of ``dataset`` under ``out`` atomically (temp folder, then rename).

    Raises:
        DataError: ``out`` exists and ``overwrite`` is False.
    """
    out = out.expanduser()
    if out.exists() and not overwrite:
        raise DataError(f"output folder exists (use --overwrite): {out}")
    with atomic_folder(out) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        rows = []
        for i in progress(range(len(dataset)), desc="synth", unit="img"):
            s = dataset[i]
            name = f"{i:05d}.png"
            (tmp / "images" / name).write_bytes(encode_image(s.image))
            (tmp / "masks" / name).write_bytes(encode_image(s.mask.astype(np.uint8) * 255))
            rows.append((f"images/{name}", f"masks/{name}", s.label, s.class_name, s.texture,
                         str(s.source.path), f"{s.beta:.6f}", f"{s.mask.mean():.6f}"))  # fmt: skip
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
        (tmp / "labels.csv").write_text(buf.getvalue(), encoding="utf-8")
        (tmp / "synth.json").write_text(json.dumps(_info(dataset), indent=2) + "\n", "utf-8")
    return out


def _info(ds: PseudoClassDataset) -> dict[str, object]:
    tex = ds.textures
    return {
        "category": ds.data.name,
        "dataset": ds.data.dataset,
        "generator": ds.generator,
        "seed": ds.seed,
        "size": ds.size,
        "n_per_class": ds.n_sources,
        "foreground": ds.foreground_method,
        "textures": "procedural" if tex.is_procedural else "dtd",
        "texture_files": {c: [str(p) for p in tex.files[c]] for c in tex.classes}
        if tex.files
        else None,
        "classes": ds.classes,
        "sources": [str(s.path) for s in ds.sources],
    }


def cmd_synth(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise DataError(f"--n must be >= 0, got {args.n}")
    textures = (
        TextureSource.from_dtd(args.textures)
        if args.textures is not None
        else TextureSource.procedural(seed=args.seed)
    )
    root = _dataset_root(args.data, args.dataset, args.category)
    data = load_category(root, args.dataset, args.category)
    cache = None if args.no_cache else DiskCache()
    ds = PseudoClassDataset(
        data, textures, args.generator, args.seed, args.size, args.n or None, cache=cache
    )
    out = write_synthetic(ds, args.out, overwrite=args.overwrite)
    print(
        f"wrote {len(ds)} images ({len(ds.classes)} classes x {ds.n_sources} normal images) to {out}"
    )
    return 0
