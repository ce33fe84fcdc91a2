"""Robustness round 1 (issue #21, item 3): pose-invariant support sets, chosen without
query labels on the MVTec protocol and the generalisation suite together.

The suite's `all` images come in any pose; a support set of five images per type shows the
classifier few of them. The candidates add, for every support image, rows of the same image
turned (same label), so the head sees each defect in several poses; nothing changes for the
memory bank, the queries or the cached tables:

- ``baseline``: the probe recipe as registered;
- ``rot4``: the support plus its 90, 180 and 270 degree rotations;
- ``dihedral8``: the support plus its rotations and their mirror images (8 poses).

Probes: ``anomaly_lr`` (the block set inside every recommended recipe, the cheapest learned
head) and ``residual_proto`` (cosine prototypes). Signal: leave-one-out accuracy inside the
5-shot support set (an image and all its turned copies leave together), seeds 1-5, on the
MVTec protocol (centre crop, ``$FSAD_DATA/mvtec_ad``) and on the suite `all` (whole image,
``--suite``, written by ``fsad data suite``). Query accuracy is recorded for the appendix,
never used.

The rule, fixed before the run: a candidate is *adopted* (to be measured with the
recommended recipe next) when, for a probe, its support leave-one-out averaged over the two
protocols beats the baseline's by at least 1 point, and on the MVTec protocol alone it is not
below the baseline by more than one sample standard deviation over seeds (of the baseline's
category-averaged leave-one-out). Usage::

    python -m research.robust --data "$FSAD_DATA" --suite "$OUT/all" \\
        --out results/explore/robust.csv
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fsad.blocks import Inputs
from fsad.data import CategoryData, few_shot_split, load_category, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import other_poses
from fsad.recipe import Recipe, inputs_rows, recipe_proba, sample_rows
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged

CATEGORIES = ("bottle", "transistor", "screw", "metal_nut")
PROBES = ("anomaly_lr", "residual_proto")
SHOTS = 5
#: the protocols: name -> (dataset layout, framing)
PROTOCOLS = {"mvtec": ("mvtec_ad", "crop"), "suite_all": ("folder", "letterbox")}
CELL = ["protocol", "category", "seed", "probe", "variant"]


def dihedral(image: np.ndarray) -> list[np.ndarray]:
    """The other 7 elements of the image's dihedral group: rotations, then mirror images
    (:func:`fsad.poses.other_poses`, which the shipped ``*_rot4`` methods use)."""
    return other_poses(image, 8)


#: candidate -> how many of :func:`dihedral`'s poses join each support image (the first k:
#: the rotations come first)
VARIANTS: dict[str, int] = {"baseline": 0, "rot4": 3, "dihedral8": 7}


def loo(recipe: Recipe, rows, labels: np.ndarray, source: np.ndarray, n: int) -> float:
    """Leave-one-out accuracy over the original support images; an image leaves with all
    its poses; ``labels`` and ``source`` are per row (the originals first)."""
    hits = []
    for i in range(int(source.max()) + 1):
        keep = source != i
        if len(set(labels[keep].tolist())) < n:
            continue
        me = np.flatnonzero(source == i)[:1]  # the original image
        p = recipe_proba(recipe, [g[keep] for g in rows], labels[keep], [g[me] for g in rows], n)
        hits.append(int(predict(p)[0] == labels[me[0]]))
    return float(np.mean(hits)) if hits else float("nan")


def score_engine(engine: ResidualEngine) -> list[dict]:
    """Every (probe, variant) of one engine (category, protocol, seed): support
    leave-one-out and (the record) query accuracy."""
    split = few_shot_split(engine.category.test, SHOTS)
    labels, n = np.asarray(split.support_labels), split.n_classes
    poses = [dihedral(read_image(s.path)) for s in split.support]  # 7 per support image
    turned = Inputs(engine, images=[img for p in poses for img in p])  # shared by the probes
    out = []
    for probe in PROBES:
        recipe = RECIPES[probe]
        base = sample_rows(engine, recipe, split.support)
        more = inputs_rows(recipe, [turned])  # rows of image i, pose k at 7 i + k
        xq = sample_rows(engine, recipe, split.query)
        for variant, k in VARIANTS.items():
            t0 = time.time()
            pick = np.asarray([7 * i + j for i in range(len(labels)) for j in range(k)], int)
            rows = [np.concatenate([b, m[pick]]) for b, m in zip(base, more, strict=True)]
            source = np.concatenate([np.arange(len(labels)), pick // 7])
            p = recipe_proba(recipe, rows, labels[source], xq, n)
            out.append({
                "probe": probe, "variant": variant, "shots": SHOTS,
                "support_loo": loo(recipe, rows, labels[source], source, n),
                "query_acc": float((predict(p) == np.asarray(split.query_labels)).mean()),
                "n_support": len(labels), "n_query": len(split.query),
                "seconds": round(time.time() - t0, 1),
            })  # fmt: skip
    return out


def category_of(protocol: str, data: Path, suite: Path | None, name: str) -> CategoryData:
    """The category as the protocol reads it (``suite``: the suite `all` folder, needed by
    the suite protocol only)."""
    if protocol == "mvtec":
        return load_category(data / "mvtec_ad", "mvtec_ad", name)
    if suite is None:
        raise SystemExit(f"the {protocol} protocol needs --suite (the suite `all` folder)")
    return load_category(suite / name, "folder")


def round_parser(doc: str, suite_required: bool = True) -> argparse.ArgumentParser:
    """The arguments every robustness round takes: data, suite, output CSV, categories and
    protocols (``doc``'s first line describes the round)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument(
        "--suite", required=suite_required, help="the suite `all` folder (fsad data suite)"
    )
    ap.add_argument("--out", required=True, help="CSV to add rows to")
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    ap.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    return ap


def protocol_cells(args: argparse.Namespace) -> Iterator[tuple[str, str, EngineConfig]]:
    """``(protocol, category, the protocol's engine settings)`` of every cell ``args`` (from
    :func:`round_parser`) names, protocol by protocol."""
    for protocol in args.protocols:
        config = EngineConfig(features=FeatureConfig(framing=PROTOCOLS[protocol][1]))
        for name in args.categories:
            yield protocol, name, config


def pending_cells(
    args: argparse.Namespace, root: Path, done: set[tuple]
) -> Iterator[tuple[str, str, int, ResidualEngine]]:
    """``(protocol, category, seed, engine)`` of every cell ``args`` names (with ``seeds``)
    that is not in ``done``, protocol by protocol: how each round resumes."""
    for protocol, name, config in protocol_cells(args):
        suite = Path(args.suite) if args.suite else None
        category = category_of(protocol, root, suite, name)
        for seed in args.seeds:
            if (protocol, name, seed) not in done:
                yield protocol, name, seed, ResidualEngine(category, config, seed=seed)


def run_paired_cells(
    args: argparse.Namespace,
    score: Callable[[ResidualEngine], list[dict]],
    cell: Sequence[str],
    commit: str,
    variant: str | None = None,
) -> None:
    """Score every pending cell of a round whose variants come from one pass over the cell,
    cell by cell, and add its rows to ``args.out`` as soon as the cell is done (how the
    query-poses and support-views rounds run and resume).

    Args:
        args: :func:`round_parser`'s arguments with ``seeds``.
        score: the rows of one cell, each with ``variant``, ``support_loo``, ``query_acc``
            and ``seconds``.
        cell: the columns a row is keyed by: protocol, category, seed, variant.
        commit: the code's git commit, written on every row.
        variant: a cell is done only when it holds this variant's row (None: any row), so
            a record shared by several candidates resumes each of them.
    """
    out = Path(args.out)
    done = {c[:3] for c in done_cells(out, cell) if variant is None or c[3] == variant}
    for protocol, name, seed, engine in pending_cells(args, data_root(args.data), done):
        rows = score(engine)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        for row in rows:
            row.update(protocol=protocol, category=name, seed=seed, git_commit=commit,
                       timestamp=stamp)  # fmt: skip
            print(f"{protocol} {name} seed {seed} {row['variant']}: loo {row['support_loo']:.3f}"
                  f" query {row['query_acc']:.3f} ({row['seconds']} s)", flush=True)  # fmt: skip
        atomic_write_csv(out, merged(out, rows, cell))


def main(argv: Sequence[str] | None = None) -> None:
    ap = round_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = ap.parse_args(argv)
    root = data_root(args.data)
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    done = done_cells(out, ["protocol", "category", "seed"])
    for protocol, name, seed, engine in pending_cells(args, Path(root), done):
        t0 = time.time()
        rows = score_engine(engine)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        for row in rows:
            row.update(protocol=protocol, category=name, seed=seed, git_commit=commit,
                       cell_seconds=round(time.time() - t0, 1), timestamp=stamp)  # fmt: skip
            print(f"{protocol} {name} seed {seed} {row['probe']} {row['variant']}: loo "
                  f"{row['support_loo']:.3f} query {row['query_acc']:.3f}", flush=True)  # fmt: skip
        atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
