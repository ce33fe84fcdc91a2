"""The harness of the rounds recorded image by image (photometric round 8 on): every
left-out support image's and every query's outcome, one row each, so that
:func:`fsad.report.image_verdict` can weigh the moves against random signs.

A round module names its candidate and its copy (a function writing the candidate's images
from a dataset folder, :func:`research.light_round.copy_relit`) and calls :func:`main`: the
baseline runs on the images as they are, the candidate on the copies, through the same code
(:func:`research.paired_outcomes.outcome_rows`, :func:`research.recipe_round.cell_predictions`:
what ``fsad run`` computes). A candidate may instead be a recipe on the images as they are
(robustness round 15: :func:`main`'s ``recipe``) or score a cell its own way (photometric
round 10's two views: :func:`run`'s ``score``). A record row is one image of one cell
(:data:`IMAGE_ROW`); a cell's rows are written together as soon as it is done, so a run
resumes cell by cell.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.recipe import Recipe
from fsad.report import image_changes, image_record_gaps, image_verdict, record_identity
from fsad.utils import atomic_write_bytes, atomic_write_csv
from research import light_subspace_round as ls
from research.paired_outcomes import outcome_rows
from research.records import done_cells, merged
from research.robust import CATEGORIES, PROTOCOLS, data_root, pending_cells, round_parser

#: a record row: one image of one cell
IMAGE_ROW = ["protocol", "category", "seed", "variant", "set", "label", "image"]
CELL = ["protocol", "category", "seed", "variant"]
#: the seeds the rule reads
SEEDS = (1, 2, 3)
SHOTS = 5
#: the record's columns read as text (file names such as ``000`` keep their zeros)
TEXT = ("image", "label", "git_commit")


def read_record(path: Path) -> pd.DataFrame:
    """A per-image record, its :data:`TEXT` columns as strings."""
    return pd.read_csv(path, dtype=dict.fromkeys(TEXT, str))


#: the file a copy writes at its root: where its images came from and what wrote them
MANIFEST = "fsad-copy.json"


def tree_commit(root: Path | None = None) -> str:
    """The repository's commit, ``+dirty`` when any tracked file (the research wing's
    included, unlike :func:`fsad.evaluate.git_commit`) has uncommitted changes."""
    root = root or Path(__file__).resolve().parents[1]
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                            capture_output=True, text=True, check=False).stdout  # fmt: skip
    return git_commit(root).removesuffix("+dirty") + ("+dirty" if status.strip() else "")


def write_manifest(src: Path, dst: Path, copy: Callable[[Path, Path], int], n: int) -> None:
    """Write :data:`MANIFEST` in ``dst``: the source folder, the copy function, the images
    written, the time and the repository's commit (:func:`tree_commit`)."""
    module = sys.modules[copy.__module__]
    name = getattr(module.__spec__, "name", None) or copy.__module__  # not __main__ under -m
    stamp = {
        "source": str(src.resolve()), "copy": f"{name}.{copy.__qualname__}",
        "images": n, "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": tree_commit(),
    }  # fmt: skip
    atomic_write_bytes(dst / MANIFEST, json.dumps(stamp, indent=1).encode())


#: a round's own scoring of one cell: ``(protocol, engine) -> rows`` of
#: :func:`research.paired_outcomes.outcome_rows`'s columns
Score = Callable[[str, ResidualEngine], list[dict]]


def run(args: argparse.Namespace, recipe: Recipe | None = None, score: Score | None = None) -> None:
    """Score every cell of ``args.variant`` that ``args.out`` lacks, one image per row,
    writing each cell's rows as soon as it is done. ``recipe``: the candidate's, for a round
    whose candidate is a recipe rather than an image copy (the baseline always runs the
    default's); ``score``: a round's own scoring of a cell (both views of photometric round
    10), in place of :func:`research.paired_outcomes.outcome_rows`."""
    out, commit = Path(args.out), tree_commit()
    done = {c[:3] for c in done_cells(out, CELL) if c[3] == args.variant}
    for protocol, name, seed, engine in pending_cells(args, data_root(args.data), done):
        t0 = time.time()
        if score is not None:
            rows = score(protocol, engine)
        else:
            rows = outcome_rows(
                engine, args.variant, None if args.variant == "baseline" else recipe
            )
        stamp, seconds = datetime.now(UTC).isoformat(timespec="seconds"), time.time() - t0
        cell = {"protocol": protocol, "category": name, "seed": seed}
        stamped = {"git_commit": commit, "timestamp": stamp, "seconds": round(seconds, 1)}
        rows = [cell | r | {"image": Path(r["image"]).stem} | stamped for r in rows]
        accuracy = pd.DataFrame(rows).groupby("set")["correct"].mean()
        print(f"{protocol} {name} seed {seed} {args.variant}: loo {accuracy['loo']:.3f} "
              f"query {accuracy['query']:.3f} ({seconds:.0f} s)", flush=True)  # fmt: skip
        atomic_write_csv(out, merged(out, rows, IMAGE_ROW, TEXT))


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


def report(
    out: Path, candidate: str, unchanged: Sequence[str] = (), earlier: Path | None = None
) -> str:
    """The rule's verdict on ``candidate``'s leave-one-out (seeds 1-3), the query record
    beside it (it decides nothing) and, given an earlier round's record of the same baseline
    (``earlier``), how many of the baseline's cells it reproduces. ``unchanged``: the
    protocols the candidate cannot change by construction (not run; unmoved in the rule).
    No verdict is given while a run protocol's cell of either variant is missing."""
    rows = read_record(out)
    rows = rows[rows["seed"].isin(SEEDS)]
    ran = [p for p in PROTOCOLS if p not in unchanged]
    lines = image_record_gaps(rows, candidate, ran, CATEGORIES, SEEDS)
    for name, part in rows.groupby("set") if not lines else ():
        changes = image_changes(part, candidate, ["protocol", "category", "label", "image"])
        table = image_verdict(changes, protocols=list(PROTOCOLS))
        decides = name == "loo"
        lines.append(f"{name} ({'decides' if decides else 'decides nothing'}):")
        lines.append(table.drop(columns=[] if decides else ["adopted"]).round(3).to_string())
    cells = cell_accuracies(rows)
    means = cells.groupby(["protocol", "variant", "seed"])[["support_loo", "query_acc"]].mean()
    summary = (100 * means).groupby(["protocol", "variant"]).agg(["mean", "std"]).round(2)
    lines.append(summary.to_string())
    if earlier is not None:
        base = rows[rows["variant"] == "baseline"]
        held = pd.read_csv(earlier, dtype={"git_commit": str})
        held = held[(held["variant"] == "baseline") & held["seed"].isin(SEEDS)
                    & held["protocol"].isin(base["protocol"].unique())]  # fmt: skip
        same, n = record_identity(base, held)
        lines.append(f"baseline: {same} of {n} cells equal {earlier.name}'s baseline")
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None,
    doc: str,
    candidate: str,
    copy: Callable[[Path, Path], int] | None = None,
    unchanged: Sequence[str] = (),
    recipe: Recipe | None = None,
) -> None:
    """A round's command line (``doc``: its module docstring): ``--copy SRC DST`` writes the
    candidate's images (``copy``) and a manifest (:data:`MANIFEST`) naming the source and
    the code (None: the round writes no images); ``--variant baseline|candidate`` scores
    cells into ``--out``; ``--report`` prints the verdict (``unchanged``: :func:`report`);
    ``--cells CSV`` writes one row per cell; ``recipe``: the candidate's recipe, when it is
    one (:func:`run`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--copy"]:
        if copy is None:
            raise SystemExit(f"{candidate} writes no images: it has no --copy")
        if len(argv) != 3:
            raise SystemExit("usage: --copy SRC DST")
        n = copy(Path(argv[1]), Path(argv[2]))
        write_manifest(Path(argv[1]), Path(argv[2]), copy, n)
        print(f"{n} images written")
        return
    ap = round_parser(doc, suite_required=False)
    ap.add_argument("--variant", choices=("baseline", candidate))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--report", action="store_true", help="print the rule's verdict")
    ap.add_argument("--earlier", type=Path, help="an earlier record of the same baseline")
    ap.add_argument("--cells", type=Path, help="write --out's cell accuracies to this CSV")
    args = ap.parse_args(argv)
    if args.cells:
        atomic_write_csv(args.cells, cell_accuracies(read_record(Path(args.out))))
        return
    if args.report:
        print(report(Path(args.out), candidate, unchanged, args.earlier))
        return
    if args.variant is None:
        ap.error("--variant is needed to run cells")
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder, the candidate's copy for it) is needed")
    idle = [p for p in args.protocols if p in unchanged and args.variant == candidate]
    if idle:
        ap.error(f"{candidate} cannot change the {', '.join(idle)} protocol: leave it out")
    run(args, recipe)
