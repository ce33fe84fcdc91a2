"""``fsad run`` (the experiment grid) and ``fsad report`` (paper-style tables of a results folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fsad.chapter import resolve_data_root
from fsad.config import RunConfig, load_config
from fsad.data import available_datasets
from fsad.evaluate import run_grid
from fsad.features import FRAMINGS
from fsad.report import format_report, load_results


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``report`` sub-commands."""
    run = sub.add_parser(
        "run",
        help="run (or resume) an experiment grid: categories x methods x shots x seeds",
        description="Run the few-shot grid and write results.csv, predictions.csv.gz and "
        "config.yaml into --out. Finished rows are skipped, so an interrupted run resumes.",
    )
    run.add_argument(
        "--config", default=None, help="named config (ci, quick, paper, ablation) or a YAML path"
    )
    run.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data root (default: $FSAD_DATA, else the embedded dataset)",
    )
    run.add_argument("--dataset", default=None, choices=available_datasets(), help="dataset layout")
    run.add_argument(
        "--framing",
        default=None,
        choices=FRAMINGS,
        help="how an image enters the engine: crop (the paper's centre crop; the default for "
        "MVTec layouts), letterbox (the whole image padded to a square; the default for "
        "--dataset folder, whose products need not be square or centred) or fixed (the whole "
        "image at one scale per product: the longest side of its normal images fills the "
        "square, smaller images are padded)",
    )
    run.add_argument("--categories", nargs="+", default=None, help="category names, or 'all'")
    run.add_argument(
        "--methods", "--method", dest="methods", nargs="+", default=None, help="method names"
    )
    run.add_argument("--shots", nargs="+", type=int, default=None, help="n of the n-shot tasks")
    run.add_argument("--seeds", nargs="+", type=int, default=None, help="run seeds")
    run.add_argument("--textures", default=None, help="DTD root for synthetic pretraining classes")
    run.add_argument(
        "--include-good", action="store_true", default=None, help="good images form an extra class"
    )
    run.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/NAME")
    run.add_argument(
        "--dry-run", action="store_true", help="check the request and count pending runs only"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local worker processes (default 1: in this process). More start a Dask "
        "LocalCluster; each worker runs whole (category, seed) groups with cores/workers "
        "threads",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. tcp://host:8786): its workers run "
        "the groups, this process writes the results",
    )
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="print paper-style tables of a results folder")
    rep.add_argument("path", type=Path, help="results folder (or its results.csv)")
    rep.add_argument("--metric", default="accuracy", help="accuracy (default) or macro_f1")
    rep.add_argument("--paper", action="store_true", help="show the paper's numbers next to ours")
    rep.add_argument("--markdown", action="store_true", help="print markdown tables")
    rep.set_defaults(func=cmd_report)


def _config(args: argparse.Namespace) -> RunConfig:
    base = load_config(args.config) if args.config else RunConfig(name="cli")
    config = base.replace(
        dataset=args.dataset,
        categories=args.categories,
        methods=args.methods,
        shots=args.shots,
        seeds=args.seeds,
        textures=args.textures,
        include_good=args.include_good,
    )
    framing = args.framing
    if framing is None and config.dataset == "folder" and "framing" not in config.engine:
        framing = "letterbox"  # a folder of product images: every pixel reaches the engine
    if framing is not None:  # recorded in config.yaml and in the rows' config hash
        config = config.replace(engine={**config.engine, "framing": framing})
    return config


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    root = resolve_data_root(args.data, config)
    result = run_grid(
        config,
        root,
        args.out,
        dry_run=args.dry_run,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    if args.dry_run:
        print(f"{result.pending} run(s) to compute, {result.skipped} already done in {args.out}")
        if result.estimate is not None and result.pending:
            print(result.estimate.describe(max(2, args.workers)))
        return 0
    print(
        f"{result.computed} run(s) computed, {result.skipped} already done; "
        f"{len(result.results)} rows in {result.out / 'results.csv'}; "
        f"tables: fsad report {result.out}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(format_report(load_results(args.path), args.metric, args.paper, args.markdown))
    return 0
