"""Signal round 1 (issue #21): synthetic tasks on the product's own normal images, seen in
each method's support poses, as a label-free signal that has more than one point per
labelled image.

Why. The rounds so far decided on support leave-one-out (LOO). The paper's split uses the
same 15-25 support images in every seed, so one image is 1-1.7 points of the four
categories' mean, and LOO favoured two candidates (the relit bank, image pooling) whose
query record then fell. :mod:`research.synthtask` had more points, but it squashed every
image to a square and could not score methods fitted on turned support (``*_rot4``), the
choice that splits our two protocols.

The signal. In each cell (protocol, category, bank seed) the category *as the protocol
reads it* gives the sources: the MVTec images under the paper's protocol, the suite `all`
folder's normal images under the suite (already grey, turned, relit, in elongated windows,
as a user's own normals would be; the suite's transforms are never applied by this code).
``n_textures`` DTD classes drawn by the seed are pasted on ``n_sources`` of them
(:class:`fsad.synth.PseudoClassDataset`, ``"shapes"``: a blob, a stroke or a spot by turns),
every synthetic image is brought back to its source's aspect ratio, and the images are
described through the cell's engines exactly as real queries are
(:func:`fsad.recipe.inputs_rows`). ``n_tasks`` 4-way, 5-shot tasks are drawn among the
texture classes (:func:`research.synthtask.draw_tasks`; a task's support and query never
share an image); a method fitted on turned support gets each support image's other poses
too (:func:`fsad.poses.with_poses`), as :func:`fsad.recipe.support_rows` gives them for
real support. The signal is the mean query accuracy over the tasks. The same cell records
the method's support LOO and its query accuracy (through :func:`research.recipe_round.
score_variants`, the code ``fsad run`` uses).

The question and the rule, fixed before the first row. Over the seven methods below, on
seeds 1-3, each protocol's 21 pairs of methods are ordered by the synthetic signal and by
LOO (each averaged over the four categories and the seeds) and compared with the order of
the committed query record (``results/poses``, seeds 1-5, 5 shots; a tie counts half):

1. the synthetic signal replaces LOO as the deciding signal of later rounds when it orders
   more of the 42 pairs as the query record does than LOO does, *and* it gives the turned
   support of ``hires_poe_proto`` the query record's sign on both protocols (a loss on the
   MVTec protocol, a gain on the suite);
2. only then, a per-product choice is measured: fit ``hires_poe_proto_rot4`` when its
   synthetic accuracy in that cell exceeds ``hires_poe_proto``'s, else ``hires_poe_proto``.
   Its query accuracy is read from the committed rows of the method it picks
   (``results/poses``), and it is judged against the default as a grid is
   (:func:`fsad.report.guarded_grid`, on every seed whose cells hold the pair's synthetic
   accuracy: 1-3 from this round, 4-5 when the pair alone is run on them): recommended when
   on *each* protocol it is not below the default by more than the default's std.

The cost, measured before any synthetic figure was read: a trial cell (bottle, suite,
seed 1) with 12 textures on 8 sources each took 18 min on one core and 12.4 GB, 7 hours for
the planned 24 cells. The round therefore runs 8 textures on 7 sources (56 images, 5 shots
and 2 queries per class), seeds 1-2 first and 3 after them; the rule reads the seeds that
every cell holds.

What it found (seeds 1-3, ``results/explore/own_synth.csv``, run at 6e6b827): the
synthetic signal orders 13 and 19 of each protocol's 21 pairs as the record does, LOO 12 and
16; it gives the turned support +5.7 points on the suite (record +5.4) and +4.7 on the MVTec
protocol (record -6.5). Step 1 fails on that sign: LOO stays and step 2 is not read. A
texture pasted anywhere, in any orientation, stays in its class when turned; a fixed-pose
product's real defect types do not (chapter 10 shows the change per category).

Usage (one process per protocol, each writing its own file, never one file from two; the
files' rows together are ``results/explore/own_synth.csv``; ``--report`` prints the verdict)::

    python -m research.own_synth --protocols mvtec --out mvtec.csv
    python -m research.own_synth --suite "$SUITE/all" --protocols suite_all --out suite.csv
    python -m research.own_synth --out results/explore/own_synth.csv --report
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsad.blocks import Inputs
from fsad.data import CategoryData, read_image
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.evaluate import git_commit
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import posed_images
from fsad.recipe import Recipe, inputs_rows, recipe_engines, recipe_proba
from fsad.report import guarded_grid, order_agreement
from fsad.synth import PseudoClassDataset, TextureSource
from research import ROUND_BASELINE
from research.recipe_round import common_seeds, score_variants
from research.records import data_root
from research.robust import CATEGORIES, round_parser, run_paired_cells
from research.synthtask import SynthTaskConfig, draw_tasks
from research.synthtask import task_accuracy as synth_task_accuracy

#: the methods the signal is judged on: every shipped method with a committed query record
#: on both protocols (``results/poses``), in and out of support poses
METHODS = (
    "residual_proto",
    "residual_proto_rot4",
    "anomaly_lr",
    "anomaly_lr_rot4",
    "hires_poe_proto",
    "hires_poe_proto_rot4",
    ROUND_BASELINE,
)
#: the pair the per-product choice turns on (without, with turned support)
CHOICE = ("hires_poe_proto", "hires_poe_proto_rot4")
#: step 2's per-product choice, as its rows are named in a grid
CHOSEN = "own_synth_choice"
CELL = ["protocol", "category", "seed", "variant"]
#: a synthetic image made otherwise: ``(dataset, item index) -> (size, size, 3) uint8``
Relight = Callable[[PseudoClassDataset, int], np.ndarray]
ROUND_SEEDS = (1, 2, 3)
SHOTS = 5


@dataclass(frozen=True)
class OwnSynthConfig:
    """The synthetic images and tasks of one cell (the cell's bank seed draws them).

    Attributes:
        n_textures: DTD classes drawn per cell (each a synthetic defect type).
        n_sources: the product's normal images each class is pasted on.
        size: the longer side of a synthetic image, px.
        n_way, shots, n_tasks: the tasks (``n_sources - shots`` queries per class).
        generator: :class:`fsad.synth.PseudoClassDataset`'s masks.
    """

    n_textures: int = 8
    n_sources: int = 7
    size: int = 512
    n_way: int = 4
    shots: int = SHOTS
    n_tasks: int = 60
    generator: str = "shapes"

    def __post_init__(self) -> None:
        if self.n_textures < self.n_way:
            raise ConfigError(f"n_textures={self.n_textures} is fewer than n_way={self.n_way}")

    def tasks(self, seed: int) -> SynthTaskConfig:
        """The task draw (:func:`research.synthtask.draw_tasks`) of a cell's seed."""
        return SynthTaskConfig(
            n_sources=self.n_sources, size=self.size, n_way=self.n_way, shots=self.shots,
            n_tasks=self.n_tasks, seed=seed, generator=self.generator,
        )  # fmt: skip


def texture_subset(textures: TextureSource, n: int, seed: int) -> TextureSource:
    """``n`` of the texture classes, drawn by ``seed``, in their original order.

    Raises:
        ConfigError: fewer classes than ``n``.
    """
    if n > len(textures.classes):
        raise ConfigError(f"{n} texture classes asked, the source has {len(textures.classes)}")
    rng = np.random.default_rng([seed, 0x0575])
    picked = sorted(rng.choice(len(textures.classes), size=n, replace=False).tolist())
    names = [textures.classes[k] for k in picked]
    files = {c: textures.files[c] for c in names} if textures.files else {}
    return TextureSource(classes=names, files=files, seed=textures.seed, size=textures.size)


def restore_aspect(image: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """A square synthetic image ``(size, size, 3)`` brought back to a source of ``shape``
    ``(H, W)``: ``(h, w, 3)`` with ``max(h, w) = size`` and ``h / w = H / W``."""
    h, w = shape
    scale = size / max(h, w)
    target = (max(1, round(h * scale)), max(1, round(w * scale)))
    if target == image.shape[:2]:
        return image
    import cv2

    return cv2.resize(image, (target[1], target[0]), interpolation=cv2.INTER_AREA)


def synthetic_images(
    category: CategoryData,
    textures: TextureSource,
    config: OwnSynthConfig,
    seed: int,
    relight: Relight | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The cell's synthetic defect images and their classes.

    Args:
        relight: when given, item ``i``'s square image is ``relight(data, i)`` instead of
            ``data[i].image`` (signal round 3 lights the pasted texture as its source).

    Returns:
        ``n_textures * n_sources`` RGB images ``(h, w, 3) uint8``, each at its source's
        aspect ratio; labels ``(N,)`` int64: item ``i`` pastes class ``i // n_sources``.
    """
    data = PseudoClassDataset(
        category, texture_subset(textures, config.n_textures, seed), generator=config.generator,
        seed=seed, size=config.size, n_per_class=config.n_sources,
    )  # fmt: skip
    if data.n_sources < config.n_sources:
        raise ConfigError(
            f"{category.name} has {data.n_sources} normal images, fewer than "
            f"n_sources={config.n_sources}"
        )
    shapes = [read_image(s.path).shape[:2] for s in data.sources]
    square = (lambda i: data[i].image) if relight is None else (lambda i: relight(data, i))
    images = [
        restore_aspect(square(i), shapes[data.source_of(i)], config.size) for i in range(len(data))
    ]
    return images, data.labels


def method_rows(
    engine: ResidualEngine, recipes: Mapping[str, Recipe], images: Sequence[np.ndarray]
) -> dict[str, tuple[list[np.ndarray], list[np.ndarray] | None]]:
    """Each recipe's rows of ``images`` and, for a recipe with support poses, of their other
    poses; recipes on the same engines share its features and residuals.

    Returns:
        name -> (per group rows ``(N, D_g)``, per group rows ``(N * (P - 1), D_g)`` in
        :func:`fsad.poses.posed_images` order, or None when ``support_poses == 1``).
    """
    # every view stays in memory until the cell ends (about 12 GB at the round's size on
    # the hires engines): the price of computing each engine's features once
    poses = {r.support_poses for r in recipes.values() if r.support_poses > 1}
    views: dict[tuple[int, int], Inputs] = {}

    def inputs(e: ResidualEngine, n: int) -> Inputs:
        if (id(e), n) not in views:
            shown = list(images) if n == 1 else posed_images(list(images), n)
            views[(id(e), n)] = Inputs(e, images=shown)
        return views[(id(e), n)]

    if len(poses) > 1:
        raise ConfigError(f"one number of support poses at a time, got {sorted(poses)}")
    out = {}
    for name, recipe in recipes.items():
        engines = recipe_engines(engine, recipe)
        rows = inputs_rows(recipe, [inputs(e, 1) for e in engines])
        n = recipe.support_poses
        posed = inputs_rows(recipe, [inputs(e, n) for e in engines]) if n > 1 else None
        out[name] = (rows, posed)
    return out


def task_accuracy(
    recipe: Recipe,
    rows: list[np.ndarray],
    posed: list[np.ndarray] | None,
    labels: np.ndarray,
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
) -> float:
    """Mean over tasks of the recipe's query accuracy, its head fitted on each support image
    and, with ``posed``, the image's other poses (rows ``(N * (P - 1), D_g)``, ``P`` the
    recipe's support poses): :func:`research.synthtask.task_accuracy` with the recipe's
    head."""

    def head(xs, ys, xq, n):
        return recipe_proba(recipe, xs, ys, xq, n)

    return synth_task_accuracy(rows, labels, tasks, head, posed, recipe.support_poses)


def score_cell(
    engine: ResidualEngine,
    textures: TextureSource,
    methods: Sequence[str] = METHODS,
    config: OwnSynthConfig = OwnSynthConfig(),
    relight: Relight | None = None,
) -> list[dict[str, Any]]:
    """One cell: each method's synthetic accuracy (the signal), support LOO and query
    accuracy (the record, :func:`research.recipe_round.score_variants`); ``relight`` as in
    :func:`synthetic_images`."""
    t0 = time.time()
    images, labels = synthetic_images(engine.category, textures, config, engine.seed, relight)
    tasks = draw_tasks(labels, config.tasks(engine.seed))
    t_images = time.time() - t0
    real = {r["variant"]: r for r in score_variants(engine, {m: m for m in methods})}
    recipes = {m: RECIPES[m] for m in methods}
    t1 = time.time()
    rows = method_rows(engine, recipes, images)  # every method's rows share the engines
    t_rows = round(t_images + time.time() - t1, 1)
    out = []
    for name, (x, posed) in rows.items():
        t2 = time.time()
        synth = task_accuracy(recipes[name], x, posed, labels, tasks)
        out.append({
            **real[name], "synth_acc": synth, "n_synth": len(labels),
            "n_synth_queries": sum(len(q) for _, q in tasks), "synth_rows_seconds": t_rows,
            "synth_task_seconds": round(time.time() - t2, 1),
            "synth_config": str(asdict(config)),
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- the verdict
def query_record(results: Path, protocols: Sequence[str] = ("mvtec", "suite_all")) -> pd.DataFrame:
    """The committed query accuracy (%) at 5 shots, mean over seeds of the four categories'
    mean, per protocol (rows) and method (columns), from ``results/poses/<protocol>``."""
    out = {}
    for protocol in protocols:
        rows = pd.read_csv(results / "poses" / protocol / "results.csv")
        rows = rows[(rows["shots"] == SHOTS) & rows["category"].isin(CATEGORIES)]
        per_seed = rows.groupby(["method", "seed"])["accuracy"].mean()
        out[protocol] = per_seed.groupby("method").mean() * 100
    return pd.DataFrame(out).T


def signals(records: pd.DataFrame, seeds: Sequence[int] = ROUND_SEEDS) -> pd.DataFrame:
    """Per protocol and method, the mean over ``seeds`` (those every protocol and category
    hold) of the four categories' mean (%) of the synthetic signal, LOO and the in-cell
    query accuracy."""
    at = records[records["seed"].isin(seeds)]
    at = at[at["seed"].isin(common_seeds(at))]
    cols = ["synth_acc", "support_loo", "query_acc"]
    per_seed = at.groupby(["protocol", "variant", "seed"])[cols].mean()
    return per_seed.groupby(["protocol", "variant"]).mean() * 100


def verdict(records: pd.DataFrame, record: pd.DataFrame) -> dict[str, Any]:
    """The rule's two steps (module docstring): pair agreement of each signal per protocol,
    the turned support's sign, and whether the synthetic signal replaces LOO."""
    table = signals(records)
    agreement: dict[str, dict[str, float]] = {}
    signs: dict[str, bool] = {}
    for protocol in table.index.get_level_values("protocol").unique():
        t, q = table.loc[protocol], record.loc[protocol]
        agreement[protocol] = {
            s: order_agreement(t[s], q)[0] for s in ("synth_acc", "support_loo")
        } | {"pairs": order_agreement(t["synth_acc"], q)[1]}
        without, with_ = CHOICE
        signs[protocol] = bool(
            np.sign(t.at[with_, "synth_acc"] - t.at[without, "synth_acc"])
            == np.sign(q[with_] - q[without])
        )
    synth = sum(a["synth_acc"] for a in agreement.values())
    loo = sum(a["support_loo"] for a in agreement.values())
    both = set(agreement) == {"mvtec", "suite_all"}  # the rule reads both protocols' 42 pairs
    replaces = bool(both and synth > loo and all(signs.values()))
    return {"agreement": agreement, "synth": synth, "loo": loo, "signs": signs,
            "replaces_loo": replaces}  # fmt: skip


def choices(records: pd.DataFrame) -> pd.DataFrame:
    """Step 2's pick per cell: ``protocol, category, seed, method`` (:data:`CHOICE`'s turned
    method when its synthetic accuracy is higher, else the other), for every cell that holds
    both."""
    pair = records[records["variant"].isin(CHOICE)]
    wide = pair.pivot_table(
        index=["protocol", "category", "seed"], columns="variant", values="synth_acc"
    ).dropna()
    turned = wide[CHOICE[1]] > wide[CHOICE[0]]
    return wide.index.to_frame(index=False).assign(
        method=np.where(turned.to_numpy(), CHOICE[1], CHOICE[0])
    )


def choice_grid(records: pd.DataFrame, results: Path) -> dict[str, dict[str, Any]]:
    """Per protocol, the per-product choice's query accuracy (the committed rows of the
    method it picks in each cell, as :data:`CHOSEN`) against the default's, read by
    :func:`fsad.report.guarded_grid`."""
    picked = choices(records)
    out = {}
    for protocol, cells in picked.groupby("protocol"):
        rows = pd.read_csv(results / "poses" / protocol / "results.csv")
        rows = rows[(rows["shots"] == SHOTS) & rows["category"].isin(CATEGORIES)]
        chosen = rows.merge(
            cells[["category", "seed", "method"]], on=["category", "seed", "method"]
        )
        both = pd.concat([rows[rows["method"] == ROUND_BASELINE], chosen.assign(method=CHOSEN)])
        out[str(protocol)] = guarded_grid(both, CHOSEN, ROUND_BASELINE, SHOTS, len(CATEGORIES))
    return out


def report(out: Path, results: Path) -> str:
    """The round's signals table and verdict, and step 2 when step 1 holds, as text."""
    records = pd.read_csv(out)
    shown = signals(records).round(2).to_string()
    said = verdict(records, query_record(results))
    text = f"{shown}\n\nverdict: {said}"
    if said["replaces_loo"]:
        picked = choices(records).groupby(["protocol", "method"]).size().to_dict()
        text += f"\n\npicks: {picked}\nchoice grid: {choice_grid(records, results)}"
    return text


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = round_parser(__doc__, suite_required=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(ROUND_SEEDS))
    ap.add_argument("--report", action="store_true", help="print the signals and the verdict")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    if args.report:
        print(report(Path(args.out), repo / "results"))
        return
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder) is needed for the suite_all protocol")
    textures = TextureSource.from_dtd(data_root(args.data) / "dtd")
    run_paired_cells(args, lambda e: score_cell(e, textures), CELL, git_commit(repo))


if __name__ == "__main__":
    main()
