"""The harness of the rounds recorded image by image (photometric round 8 on): every
left-out support image's and every query's outcome, one row each, so that
:func:`fsad.report.image_verdict` can weigh the moves against random signs.

A round module names its candidate and its copy (a function writing the candidate's images
from a dataset folder, :func:`research.light_round.copy_relit`) and calls :func:`main`: the
baseline runs on the images as they are, the candidate on the copies, through the same code
(:func:`research.paired_outcomes.outcome_rows`, :func:`research.recipe_round.cell_predictions`:
what ``fsad run`` computes). A record row is one image of one cell (:data:`IMAGE_ROW`); a
cell's rows are written together as soon as it is done, so a run resumes cell by cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fsad.evaluate import git_commit
from fsad.report import image_changes, image_verdict, record_identity
from fsad.utils import atomic_write_csv
from research import light_subspace_round as ls
from research.paired_outcomes import outcome_rows
from research.records import done_cells, merged
from research.robust import PROTOCOLS, data_root, pending_cells, round_parser

#: a record row: one image of one cell
IMAGE_ROW = ["protocol", "category", "seed", "variant", "set", "label", "image"]
CELL = ["protocol", "category", "seed", "variant"]
#: the seeds the rule reads
SEEDS = (1, 2, 3)
SHOTS = 5


def run(args: argparse.Namespace) -> None:
    """Score every cell of ``args.variant`` that ``args.out`` lacks, one image per row,
    writing each cell's rows as soon as it is done."""
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    done = {c[:3] for c in done_cells(out, CELL) if c[3] == args.variant}
    for protocol, name, seed, engine in pending_cells(args, data_root(args.data), done):
        t0 = time.time()
        rows = outcome_rows(engine, args.variant)
        stamp, seconds = datetime.now(UTC).isoformat(timespec="seconds"), time.time() - t0
        cell = {"protocol": protocol, "category": name, "seed": seed}
        stamped = {"git_commit": commit, "timestamp": stamp, "seconds": round(seconds, 1)}
        rows = [cell | r | {"image": Path(r["image"]).stem} | stamped for r in rows]
        accuracy = pd.DataFrame(rows).groupby("set")["correct"].mean()
        print(f"{protocol} {name} seed {seed} {args.variant}: loo {accuracy['loo']:.3f} "
              f"query {accuracy['query']:.3f} ({seconds:.0f} s)", flush=True)  # fmt: skip
        atomic_write_csv(out, merged(out, rows, IMAGE_ROW))


def cell_accuracies(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of the record: ``support_loo`` and ``query_acc``, as the earlier
    rounds' records hold them, with ``method``, ``shots``, the images counted and the
    cell's ``git_commit``."""
    keys = [*CELL, "git_commit"]
    acc = rows.groupby([*keys, "set"])["correct"].agg(["mean", "size"]).unstack("set")
    acc.columns = [f"{stat}_{name}" for stat, name in acc.columns]
    names = {"mean_loo": "support_loo", "mean_query": "query_acc", "size_loo": "n_left_out",
             "size_query": "n_query"}  # fmt: skip
    acc = acc.rename(columns=names).reset_index()
    return acc.assign(method=ls.BASELINE, shots=SHOTS)[[*CELL, "method", "shots", *names.values(),
                                                       "git_commit"]]  # fmt: skip


def report(out: Path, candidate: str, earlier: Path | None = None) -> str:
    """The rule's verdict on ``candidate``'s leave-one-out (seeds 1-3), the query record
    beside it (it decides nothing) and, given an earlier round's record of the same baseline
    (``earlier``), how many cells the baseline reproduces."""
    rows = pd.read_csv(out, dtype={"git_commit": str})
    rows = rows[rows["seed"].isin(SEEDS)]
    lines = [] if (rows["variant"] == candidate).any() else [f"no {candidate} rows yet"]
    for name, part in rows.groupby("set") if not lines else ():
        changes = image_changes(part, candidate, ["protocol", "category", "label", "image"])
        table = image_verdict(changes, protocols=list(PROTOCOLS))
        lines.append(f"{name} ({'decides' if name == 'loo' else 'decides nothing'}):")
        lines.append(table.round(3).to_string(index=False))
    cells = cell_accuracies(rows)
    means = cells.groupby(["protocol", "variant", "seed"])[["support_loo", "query_acc"]].mean()
    summary = (100 * means).groupby(["protocol", "variant"]).agg(["mean", "std"]).round(2)
    lines.append(summary.to_string())
    if earlier is not None:
        same, n = record_identity(rows[rows["variant"] == "baseline"], pd.read_csv(earlier))
        lines.append(f"baseline: {same} of {n} cells equal {earlier.name}")
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None,
    doc: str,
    candidate: str,
    copy: Callable[[Path, Path], int],
) -> None:
    """A round's command line (``doc``: its module docstring): ``--copy SRC DST`` writes the
    candidate's images (``copy``); ``--variant baseline|candidate`` scores cells into
    ``--out``; ``--report`` prints the verdict; ``--cells CSV`` writes one row per cell."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--copy"]:
        if len(argv) != 3:
            raise SystemExit("usage: --copy SRC DST")
        print(f"{copy(Path(argv[1]), Path(argv[2]))} images written")
        return
    ap = round_parser(doc, suite_required=False)
    ap.add_argument("--variant", choices=("baseline", candidate))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--report", action="store_true", help="print the rule's verdict")
    ap.add_argument("--earlier", type=Path, help="an earlier record of the same baseline")
    ap.add_argument("--cells", type=Path, help="write --out's cell accuracies to this CSV")
    args = ap.parse_args(argv)
    if args.cells:
        rows = pd.read_csv(args.out, dtype={"git_commit": str})
        atomic_write_csv(args.cells, cell_accuracies(rows))
        return
    if args.report:
        print(report(Path(args.out), candidate, args.earlier))
        return
    if args.variant is None:
        ap.error("--variant is needed to run cells")
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder, the candidate's copy for it) is needed")
    run(args)
