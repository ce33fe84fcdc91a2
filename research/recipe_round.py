"""The harness of the rounds whose variants are recipes (robustness rounds 6-13,
photometric rounds 5-7; robustness rounds 12-13 and photometric rounds 6-7 score their cells
themselves through :func:`cell_main` and report through :func:`candidate_report`): each
variant's support leave-one-out and (recorded) query accuracy, cell by cell, through the
code ``fsad run`` uses (:func:`fsad.recipe.support_rows`, :func:`fsad.recipe.sample_rows`,
:func:`fsad.recipe.recipe_proba`), and the rule those rounds share: a candidate is adopted
when its leave-one-out averaged over the MVTec protocol and the suite ``all`` beats the
baseline's by at least 1 point and, on each protocol alone, is not below the baseline's by
more than the baseline's sample std over seeds in the same record (robustness rounds 9-11,
whose candidates cannot move the MVTec protocol, apply it to the suite alone:
:func:`suite_verdict`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data import FewShotSplit, few_shot_split
from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe, leave_one_out, recipe_proba, sample_rows, support_rows
from fsad.report import augmentation_round, augmentation_verdicts, guarded_grid, round_shown
from research import ROUND_BASELINE
from research.robust import PROTOCOLS, round_parser, run_paired_cells

SHOTS = 5
CELL = ["protocol", "category", "seed", "variant"]
MARGIN = 1.0


def score_variants(engine: ResidualEngine, variants: Mapping[str, str | Recipe]) -> list[dict]:
    """Each variant's (``name -> registered method``, or a recipe the library does not
    register) support leave-one-out and query accuracy on one cell; variants whose recipes
    share their blocks share the rows (and their caches), so a head-only candidate costs its
    head alone."""
    out = []
    for variant, method in variants.items():
        t0 = time.time()
        recipe = RECIPES[method] if isinstance(method, str) else method
        method = method if isinstance(method, str) else variant
        seen = cell_predictions(engine, recipe)
        out.append({
            "variant": variant, "method": method, "shots": SHOTS,
            "support_loo": float(seen.loo_correct.mean()), "n_left_out": len(seen.left_out),
            "query_acc": float(seen.query_correct.mean()), "n_query": len(seen.query_correct),
            "rows_seconds": round(seen.rows_seconds, 1), "seconds": round(time.time() - t0, 1),
        })  # fmt: skip
    return out


@dataclass(frozen=True)
class CellPredictions:
    """One recipe's per-image outcomes on one cell (5 shots): which support images the
    leave-one-out scores (``left_out``, indices into ``split.support``, ``(K,)``) and whether
    each is right (``loo_correct``, ``(K,)``), and whether each query is (``query_correct``,
    ``(Q,)``, in ``split.query``'s order)."""

    split: FewShotSplit
    left_out: np.ndarray
    loo_correct: np.ndarray
    query_correct: np.ndarray
    rows_seconds: float


def cell_predictions(engine: ResidualEngine, recipe: Recipe) -> CellPredictions:
    """The recipe's support leave-one-out and query outcomes on the engine's cell, image by
    image, through the code ``fsad run`` uses (:func:`score_variants` averages them)."""
    split = few_shot_split(engine.category.test, SHOTS)
    t0 = time.time()
    xs, source = support_rows(engine, recipe, split.support)
    xq = sample_rows(engine, recipe, split.query)
    return predictions(recipe, split, xs, source, xq, time.time() - t0)


def predictions(
    recipe: Recipe,
    split: FewShotSplit,
    xs: Sequence[np.ndarray],
    source: np.ndarray,
    xq: Sequence[np.ndarray],
    rows_seconds: float = 0.0,
) -> CellPredictions:
    """The recipe's head on rows already built: support rows per group ``(R, D_g)`` with
    ``source`` ``(R,)`` (the support image of each row), query rows per group ``(Q, D_g)``;
    leave-one-out takes an image out with all its rows."""
    labels, truth = np.asarray(split.support_labels), np.asarray(split.query_labels)
    index, scores = leave_one_out(recipe, xs, labels[source], split.n_classes, source)
    p = recipe_proba(recipe, xs, labels[source], xq, split.n_classes)
    return CellPredictions(
        split, index, predict(scores) == labels[index], predict(p) == truth, rows_seconds
    )


def verdict(
    records: pd.DataFrame,
    margin: float = MARGIN,
    protocols: Sequence[str] = tuple(PROTOCOLS),
    seeds: Sequence[int] | None = None,
    probe: str = ROUND_BASELINE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The round's table (:func:`fsad.report.augmentation_round` by protocol, on the seeds
    that every protocol and category hold) and the rule's verdict on each candidate
    (:func:`fsad.report.augmentation_verdicts`: ``margin`` points averaged over the
    protocols, a guard on each); ``protocols`` and ``seeds`` (None: all) select the rows;
    ``probe`` names the baseline's method in the table."""
    records = records[records["protocol"].isin(protocols)]
    if seeds is not None:
        records = records[records["seed"].isin(seeds)]
    records = records[records["seed"].isin(common_seeds(records))]
    table = augmentation_round(records.assign(probe=probe), by=["protocol"])
    return table, augmentation_verdicts(table, margin, {"protocol": tuple(protocols)})


def common_seeds(records: pd.DataFrame) -> list[int]:
    """The seeds every (protocol, category) of a record holds, sorted."""
    held = records.groupby(["protocol", "category"])["seed"].agg(set)
    return sorted(set.intersection(*held)) if len(held) else []


#: the suite rounds' rule (robustness rounds 9-11, whose candidate cannot move the MVTec
#: protocol): leave-one-out gain on the suite ``all`` alone, over these seeds
SUITE_MARGIN = 2.0
SUITE_SEEDS = (1, 2, 3)


def suite_verdict(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A suite round's table (:data:`SUITE_SEEDS` that every suite category holds) and its
    rule's verdict (:func:`verdict` on the suite alone, margin :data:`SUITE_MARGIN`)."""
    return verdict(records, SUITE_MARGIN, ("suite_all",), SUITE_SEEDS)


def suite_report(out: Path, candidate: str) -> str:
    """A suite round's table, verdict and grid (``candidate``'s), as text."""
    records = pd.read_csv(out)
    shown, said = shown_verdict(*suite_verdict(records))
    grid_line = suite_grid(records, candidate)
    return f"{shown}\n\nverdict (seeds {list(SUITE_SEEDS)}): {said}\n\ngrid: {grid_line}"


def shown_verdict(table: pd.DataFrame, verdicts: pd.DataFrame) -> tuple[str, str]:
    """A suite round's table as text and its verdict line (each candidate adopted or lost,
    with its leave-one-out gain in points)."""
    shown = round_shown(table).drop(columns=["probe"]).to_string(index=False)
    said = ", ".join(
        f"{v} {'adopted' if a else 'lost'} (gain {g:+.2f})"
        for v, a, g in zip(verdicts["variant"], verdicts["adopted"], verdicts["gain"], strict=True)
    )
    return shown, said


def suite_grid(records: pd.DataFrame, candidate: str) -> dict:
    """A suite round's grid: :func:`protocol_grid` on the suite ``all``."""
    return protocol_grid(records, candidate, "suite_all")


def protocol_grid(records: pd.DataFrame, candidate: str, protocol: str) -> dict:
    """A round's grid on one protocol: ``candidate``'s query accuracy against the baseline's
    over the seeds both hold, four categories, as :func:`fsad.report.guarded_grid` reads a
    grid (the guard: the baseline's sample std over seeds of the categories' mean;
    ``below_guard``: the default stays)."""
    at = records[records["protocol"] == protocol]
    rows = at.drop(columns="method", errors="ignore").rename(
        columns={"variant": "method", "query_acc": "accuracy"}
    )
    return guarded_grid(rows.assign(dataset=protocol), candidate, "baseline", SHOTS, 4)


def protocol_grids(records: pd.DataFrame, candidate: str) -> dict[str, dict]:
    """:func:`protocol_grid` on each protocol of :data:`research.robust.PROTOCOLS`."""
    return {protocol: protocol_grid(records, candidate, protocol) for protocol in PROTOCOLS}


def candidate_report(out: Path, candidate: str, baseline: str) -> str:
    """A two-protocol round's table, verdict (seeds 1-3) and grid (``candidate`` against
    the pinned method ``baseline``), as text; the grid is called a record that decides
    nothing when the verdict did not adopt the candidate."""
    records = pd.read_csv(out)
    table, verdicts = verdict(records, seeds=(1, 2, 3), probe=baseline)
    shown, said = shown_verdict(table, verdicts)
    lines = [shown, "", f"verdict (seeds 1-3): {said}", ""]
    adopted = bool(verdicts["adopted"].iloc[0])
    for protocol, g in protocol_grids(records, candidate).items():
        lines.append(
            f"{'grid' if adopted else 'query record (decides nothing)'} {protocol}: "
            f"{g[candidate]} against {g['baseline']} "
            f"({g['change']:+.2f} points, guard {g['guard']:.2f}, seeds {g['seeds']}, "
            f"cells {g['cells']})"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class CandidateRound:
    """A two-protocol round of one candidate against a pinned baseline that scores its cells
    itself (robustness rounds 12 and 13, photometric rounds 6 and 7): its grid, report and
    command line, from its docstring, names and ``score_cell``."""

    doc: str
    candidate: str
    baseline: str
    score_cell: Callable[[ResidualEngine], list[dict]]

    def grid(self, records: pd.DataFrame) -> dict[str, dict]:
        """The grid per protocol (:func:`protocol_grids`, four categories)."""
        return protocol_grids(records, self.candidate)

    def report(self, out: Path) -> str:
        """The round's table, verdict (seeds 1-3) and grid, as text (:func:`candidate_report`)."""
        return candidate_report(out, self.candidate, self.baseline)

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Run the round's pending cells into ``--out``, or print its report (``--report``)."""
        cell_main(self.doc, self.score_cell, self.report, argv)


def cell_main(
    doc: str,
    score_cell: Callable[[ResidualEngine], list[dict]],
    report_of: Callable[[Path], str],
    argv: Sequence[str] | None = None,
) -> None:
    """The command line of a round that scores its cells itself (``score_cell``): run its
    pending cells (seeds 1-3 unless ``--seeds``) into ``--out``, or print
    ``report_of(--out)`` (``--report``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = round_parser(doc, suite_required=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--report", action="store_true", help="print the table and the verdict")
    args = ap.parse_args(argv)
    if args.report:
        print(report_of(Path(args.out)))
        return
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder) is needed for the suite_all protocol")
    commit = git_commit(Path(__file__).resolve().parents[1])
    run_paired_cells(args, score_cell, CELL, commit)


def report(out: Path) -> str:
    """A round's table and verdict, as text."""
    table, verdicts = verdict(pd.read_csv(out))
    shown = round_shown(table).drop(columns=["probe"]).to_string(index=False)
    pairs = zip(verdicts["variant"], verdicts["adopted"], strict=True)
    said = ", ".join(f"{v} {'adopted' if a else 'lost'}" for v, a in pairs)
    seeds = common_seeds(pd.read_csv(out))
    return f"seeds {seeds}\n{shown}\n\nverdict: {said}"


def main(
    doc: str,
    variants: Mapping[str, str | Recipe],
    argv: Sequence[str] | None = None,
    retired: str | None = None,
) -> None:
    """The command line of a round (``doc``: its docstring) over ``variants``; a round whose
    candidate has left the library (``retired``: the git tag that keeps its code) only
    reports."""
    ap = round_parser(doc, suite_required=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--report", action="store_true", help="print the table and the verdict")
    args = ap.parse_args(argv)
    if args.report:
        print(report(Path(args.out)))
        return
    if retired:
        ap.error(f"the round's candidate left the library: rerun it from `git checkout {retired}`")
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder) is needed for the suite_all protocol")
    commit = git_commit(Path(__file__).resolve().parents[1])
    run_paired_cells(args, lambda e: score_variants(e, variants), CELL, commit)


def suite_main(
    doc: str,
    variants: Mapping[str, str | Recipe],
    report_of: Callable[[Path], str],
    argv: Sequence[str] | None = None,
) -> None:
    """A suite round's command line: ``--report --out CSV`` prints ``report_of(CSV)``, else
    :func:`main` runs its cells."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--report" in argv:
        print(report_of(Path(argv[argv.index("--out") + 1])))
        return
    main(doc, variants, argv)
