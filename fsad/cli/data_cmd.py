"""``fsad data check``, ``fsad data synth`` and ``fsad data suite``: inspect a dataset layout,
write the embedded set, write the generalisation suite."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fsad.data import (
    CategoryData,
    available_datasets,
    default_data_root,
    get_reader,
    guess_dataset,
    list_categories,
    load_category,
)
from fsad.embedded import generate
from fsad.errors import DataError
from fsad.suite import LEAVE_ONE_OUT, SUITES, SuiteSettings, steps, write_suite


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect datasets; write the embedded dataset")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    check = dsub.add_parser("check", help="print categories, defect types and counts of a dataset")
    check.add_argument("path", type=Path, help="dataset root (or one category folder)")
    check.add_argument(
        "--dataset",
        choices=available_datasets(),
        default=None,
        help="layout (default: guessed from the folder names)",
    )
    check.add_argument("--normal", default="good", help="normal folder name (folder layout)")
    check.set_defaults(func=cmd_check)

    synth = dsub.add_parser("synth", help="write the embedded procedural dataset (MVTec AD layout)")
    synth.add_argument("out", type=Path, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth)

    suite = dsub.add_parser(
        "suite",
        help="write the generalisation suite: shared categories re-shot as folder datasets",
        description="Re-shoot shared categories the way factories shoot (grey, elongated "
        "windows, defects at the border, pose, illumination; 'all' combines them, 'none' "
        "copies the images unchanged, 'all_but_<transform>' is 'all' without one of them, "
        "each kept step starting from the generator state it starts from in 'all') and "
        "write each (suite, category) as a folder dataset OUT/<suite>/<category> for "
        "`fsad run --dataset folder --data OUT/<suite>/<category>`. Deterministic; a "
        "finished folder with the same generator version and settings is kept on rerun.",
    )
    suite.add_argument(
        "--data", type=Path, default=None, help="shared data root (default: $FSAD_DATA)"
    )
    suite.add_argument(
        "--out", type=Path, required=True, help="output folder (scratch, not the repo)"
    )
    suite.add_argument(
        "--suites", nargs="+", default=["all"], help=f"from: {' '.join(SUITES + LEAVE_ONE_OUT)}"
    )
    suite.add_argument(
        "--categories",
        nargs="+",
        default=["bottle", "transistor", "screw", "metal_nut"],
        help="shared categories (MVTec AD or MVTec 3D-AD names)",
    )
    suite.add_argument("--seed", type=int, default=0, help="generator seed")
    suite.set_defaults(func=cmd_suite)


def _resolve(path: Path, dataset: str) -> tuple[Path, list[str]]:
    """(dataset root, categories) for ``path``, which may also be a single category folder."""
    if not get_reader(dataset).single and (path / "test").is_dir():
        return path.parent, [path.name]
    return path, list_categories(path, dataset)


def _rows(data: CategoryData) -> list[tuple[str, str, int, int, str]]:
    """(category, label, n_train, n_test, masks) per label; train counts on the good row."""
    rows = []
    n_train = len(data.train) if data.bank_source == "train" else 0
    labels = ["good"] + data.defect_types
    for label in labels:
        test = [s for s in data.test if s.label == label]
        if label == "good" and not test and not n_train:
            continue
        masks = sum(s.mask_path is not None for s in test)
        mask_txt = "-" if label == "good" else f"{masks}/{len(test)}"
        rows.append((data.name, label, n_train if label == "good" else 0, len(test), mask_txt))
    return rows


def cmd_check(args: argparse.Namespace) -> int:
    path: Path = args.path.expanduser()
    dataset = args.dataset or guess_dataset(path)
    root, categories = _resolve(path, dataset)
    print(f"{dataset} at {path}")
    header = f"{'category':<14} {'label':<20} {'train':>6} {'test':>6} {'masks':>8}"
    print(header)
    print("-" * len(header))
    for cat in categories:
        data = load_category(root, dataset, cat, normal=args.normal)
        for c, label, n_train, n_test, masks in _rows(data):
            print(f"{c:<14} {label:<20} {n_train or '':>6} {n_test:>6} {masks:>8}")
        extra = _split_note(data)
        if extra:
            print(f"{'':<14} note: {extra}")
    return 0


def _split_note(data: CategoryData) -> str:
    if data.bank_source != "train":
        return f"no train normals: the memory bank uses the {len(data.train)} good test images"
    splits = sorted({s.split for s in data.train})
    if splits != ["train"]:
        counts = ", ".join(f"{sp} {sum(s.split == sp for s in data.train)}" for sp in splits)
        return f"normals for the bank: {counts}"
    return ""


def cmd_synth(args: argparse.Namespace) -> int:
    out = generate(args.out.expanduser(), seed=args.seed)
    print(f"embedded dataset written to {out}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    data = default_data_root(args.data)
    if data is None:
        raise DataError("no data root: pass --data or set FSAD_DATA")
    for name in args.suites:
        steps(name)  # an unknown suite fails before any work
    settings = SuiteSettings(seed=args.seed)
    for name in args.suites:
        for category in args.categories:
            start = time.perf_counter()
            folder, written = write_suite(data, args.out, name, category, settings)
            what = "written" if written else "kept (finished)"
            seconds = time.perf_counter() - start
            print(f"{name:<20} {category:<12} {what:<16} {seconds:6.1f} s  {folder}")
    return 0
