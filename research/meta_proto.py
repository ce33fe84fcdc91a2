"""Learner (b) of issue #23: a projection of the frozen blocks, meta-trained with a
prototypical loss on synthetic defect classes, then fine-tuned on support + transplants.

Rows: ``anomaly_lr``'s blocks (:data:`fsad.methods.anomaly_guided.ANOMALY_BLOCKS`, the
224 px engine, ``D = 1920``), each row L2-normalised as the heads see it. The model is one
linear map ``W`` ``(D, d)``; a row ``x`` becomes ``z = x W`` and a class is the mean of its
rows' unit ``z``; a query's class scores are ``scale`` times its cosine to each class
(the prototypical loss of Snell et al., with cosine logits).

1. **Meta-training** (label-free for the real defects): the category's own normal training
   images with a Perlin region pasted with one DTD texture per class
   (:func:`research.synthtask.synthetic_rows`, 22 classes x 8 sources, the paper's
   synthetic classes); episodes of ``meta_way`` classes, ``meta_shots`` support rows per
   class and the class's other rows as queries. Every class pastes on the same 8 sources,
   so ``W`` must learn to read the pasted region, not the product around it.
2. **Fine-tuning** on the support rows and their transplants
   (:mod:`fsad.synth.transplant`, Poisson blend, as :mod:`research.transplant_heads`):
   episodes split each class's rows at random into prototype and query halves.
3. **Prediction**: cosine prototypes of the support + transplant rows in ``z``.

Variants (each fixed before the run; the ablations of the issue):

- ``meta_tp``: 1 + 2 + 3 (**learner b**);
- ``meta_no_tp``: transplants off (fine-tuned and prototyped on the support alone);
- ``scratch_tp``: pretraining off (``W`` from its seeded random init, then 2 + 3);
- ``frozen_tp``: fine-tuning off (1, then 3);
- ``hires_poe_proto_meta``: the recommended inductive recipe ``hires_poe_proto`` with
  ``meta_tp``'s probabilities as one more expert of its product;
- references: ``anomaly_lr`` (the same rows, logistic regression) and ``hires_poe_proto``.

Signal: leave-one-out inside the largest support set (5 shots; tire 4); an image leaves
with its transplants; ``W``'s meta-training never sees a support image, so it is not
repeated. Query accuracy at 1 and 5 (tire 4) shots is recorded for the report and the
issue's targets, never used.

The rule, fixed before the run: ``meta_tp`` is *adopted* (registered as a method of the
grid) when its support leave-one-out averaged over the five categories and seeds 1-5 beats
``anomaly_lr``'s by at least 1 point; ``hires_poe_proto_meta`` replaces the recommended
``hires_poe_proto`` when its average beats ``hires_poe_proto``'s by at least 1 point. The
ablations are reported, never chosen among. Usage::

    python -m research.meta_proto --data "$FSAD_DATA" --out results/explore/meta_proto.csv
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fsad.blocks import Inputs
from fsad.cache import fingerprint
from fsad.data import few_shot_split, load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import l2_normalise, multiply_proba, predict, softmax
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import inputs_rows, leave_one_out, recipe_proba, sample_rows
from fsad.synth import TextureSource
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged, record_parser
from research.synthtask import SynthTaskConfig, synthetic_rows
from research.transplant_heads import transplant_images

#: (dataset, category, shot counts; the last is the signal's)
GRID = (
    ("mvtec_ad", "bottle", (1, 5)),
    ("mvtec_ad", "transistor", (1, 5)),
    ("mvtec_ad", "screw", (1, 5)),
    ("mvtec_ad", "metal_nut", (1, 5)),
    ("mvtec_3d", "tire", (1, 4)),
)
PROBE = "anomaly_lr"
REFERENCE = "hires_poe_proto"
LEARNED = ("meta_tp", "meta_no_tp", "scratch_tp", "frozen_tp")
#: the variants that never see a transplant
UNTRANSPLANTED = (PROBE, REFERENCE, "meta_no_tp")
CELL = ["category", "seed", "shots", "variant"]
#: draws one episode: ``rng`` -> (prototype row indices ``(P,)``, query row indices ``(Q,)``)
Episode = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
#: scores a left-out image: (rows kept ``(R,)`` bool, image index) -> probabilities ``(1, C)``
LeftOut = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class MetaConfig:
    """The learner's settings, fixed before its first run.

    Attributes:
        dim: width ``d`` of the projection.
        scale: softmax scale of the cosine logits (as ``hires_poe_proto``'s prototype
            experts use 20 on unit vectors; 10 is softer for a learnt space).
        meta_steps / meta_way / meta_shots: meta-training episodes, classes per episode,
            prototype rows per class (the other rows of the class are its queries).
        tune_steps: fine-tuning episodes on support + transplants.
        lr: Adam's step size (both stages); ``decay``: Adam's weight decay.
    """

    dim: int = 64
    scale: float = 10.0
    meta_steps: int = 300
    meta_way: int = 5
    meta_shots: int = 3
    tune_steps: int = 50
    lr: float = 1e-3
    decay: float = 1e-4


def init_projection(d_in: int, config: MetaConfig, seed: int) -> torch.Tensor:
    """A seeded random orthonormal ``W`` ``(D, d)`` (the start of both stages)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.linalg.qr(torch.randn(d_in, config.dim, generator=g, dtype=torch.float64))[0]
    return w.float()


def proto_logits(w: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                 n: int, scale: float) -> torch.Tensor:  # fmt: skip
    """``scale`` x cosine of each projected query ``(Q, D)`` to the mean of each class's
    unit projected support rows ``(S, D)`` (labels ``ys`` in ``range(n)``): ``(Q, n)``."""
    zs, zq = F.normalize(xs @ w, dim=1), F.normalize(xq @ w, dim=1)
    protos = torch.zeros(n, w.shape[1]).index_add_(0, ys, zs)
    return scale * zq @ F.normalize(protos, dim=1).T


def halves(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each class's rows split at random into prototype and query halves (a class with
    one row is in both): index arrays ``(P,)``, ``(Q,)``."""
    proto, query = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        k = max(1, len(rows) // 2)
        proto.append(rows[:k])
        query.append(rows[k:] if len(rows) > 1 else rows)
    return np.concatenate(proto), np.concatenate(query)


def train(w: torch.Tensor, x: np.ndarray, y: np.ndarray, steps: int, config: MetaConfig,
          episode: Episode, seed: int) -> torch.Tensor:  # fmt: skip
    """``steps`` Adam steps of the prototypical loss from ``w``; ``episode(rng)`` draws
    ``(prototype rows, query rows)`` indices of ``x`` ``(N, D)`` (labels ``y`` ``(N,)``)."""
    w = w.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=config.lr, weight_decay=config.decay)
    xt, rng = torch.from_numpy(l2_normalise(x)).float(), np.random.default_rng(seed)
    for _ in range(steps):
        p, q = episode(rng)
        classes, yp = np.unique(y[p], return_inverse=True)
        yq = torch.from_numpy(np.searchsorted(classes, y[q]))
        logits = proto_logits(w, xt[p], torch.from_numpy(yp), xt[q], len(classes), config.scale)
        loss = F.cross_entropy(logits, yq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def meta_train(x: np.ndarray, y: np.ndarray, config: MetaConfig, seed: int) -> torch.Tensor:
    """``W`` ``(D, d)`` meta-trained on synthetic rows ``x`` ``(N, D)`` of classes ``y``."""
    classes = np.unique(y)

    def episode(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        proto, query = [], []
        for c in rng.choice(classes, config.meta_way, replace=False):
            rows = rng.permutation(np.flatnonzero(y == c))
            proto.append(rows[: config.meta_shots])
            query.append(rows[config.meta_shots :])
        return np.concatenate(proto), np.concatenate(query)

    w0 = init_projection(x.shape[1], config, seed)
    return train(w0, x, y, config.meta_steps, config, episode, seed)


def fine_tune(w: torch.Tensor, x: np.ndarray, y: np.ndarray, config: MetaConfig,
              seed: int) -> torch.Tensor:  # fmt: skip
    """``w`` after ``tune_steps`` episodes on the support (+ transplant) rows ``x``."""
    return train(w, x, y, config.tune_steps, config, lambda rng: halves(y, rng), seed)


def meta_proba(w: torch.Tensor, xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n: int,
               config: MetaConfig) -> np.ndarray:  # fmt: skip
    """Class probabilities ``(Q, n)`` of cosine prototypes in the projected space."""
    t = [torch.from_numpy(l2_normalise(a)).float() for a in (xs, xq)]
    with torch.no_grad():
        logits = proto_logits(w, t[0], torch.from_numpy(ys), t[1], n, config.scale)
    return softmax(logits.double().numpy())


def learned_proba(variant: str, w_meta: torch.Tensor, xs: np.ndarray, ys: np.ndarray,
                  shot: np.ndarray, xq: np.ndarray, n: int, config: MetaConfig,
                  seed: int) -> np.ndarray:  # fmt: skip
    """One learned variant's probabilities ``(Q, n)`` from support (+ transplant) rows
    ``xs`` ``(R, D)``; ``shot`` ``(R,)`` marks the support images as shot (``meta_no_tp``
    keeps only those)."""
    if variant == "meta_no_tp":
        xs, ys = xs[shot], ys[shot]
    if variant == "frozen_tp":
        w = w_meta
    else:
        start = init_projection(xs.shape[1], config, seed) if variant == "scratch_tp" else w_meta
        w = fine_tune(start, xs, ys, config, seed)
    return meta_proba(w, xs, ys, xq, n, config)


def loo_probas(proba_of: LeftOut, source: np.ndarray, labels: np.ndarray,
               n: int) -> dict[int, np.ndarray]:  # fmt: skip
    """Leave-one-out over the support images as shot: image ``i`` scored by
    ``proba_of(keep, i)`` from the rows ``keep`` (``source != i``: it leaves with its
    transplants); an image whose class would be left empty is skipped.

    Args:
        source: ``(R,)`` each row's support image (images as shot are rows ``0..S-1``).
        labels: ``(R,)`` each row's class.

    Returns:
        image index -> its probabilities ``(1, n)``.
    """
    out = {}
    for i in range(int(source.max()) + 1):
        keep = source != i
        if len(set(labels[keep].tolist())) < n:
            continue
        out[i] = proba_of(keep, i)
    return out


def loo_hits(proba_of: LeftOut, source: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """1 or 0 per left-out image of :func:`loo_probas`: its top class is its label."""
    probas = loo_probas(proba_of, source, labels, n)
    return [int(predict(p)[0] == labels[i]) for i, p in probas.items()]


def score_cell(engine: ResidualEngine, dataset: str, shots: int, seed: int,
               synth: tuple[np.ndarray, np.ndarray], config: MetaConfig,
               signal: bool) -> list[dict]:  # fmt: skip
    """Every variant of one (category, seed, shots)."""
    split = few_shot_split(engine.category.test, shots)
    y, n, yq = np.asarray(split.support_labels), split.n_classes, np.asarray(split.query_labels)
    probe, ref = RECIPES[PROBE], RECIPES[REFERENCE]
    t0 = time.time()
    images, made_from = transplant_images(engine, dataset, split, seed, ("poisson",))["poisson"]
    paste_s = time.time() - t0
    [xs] = sample_rows(engine, probe, split.support)
    [xq] = sample_rows(engine, probe, split.query)
    if len(images):
        [xt] = inputs_rows(probe, [Inputs(engine, images=images)])
        xs = np.concatenate([xs, xt])
    source = np.concatenate([np.arange(len(y)), made_from]).astype(int)
    labels = y[source]
    t0 = time.time()
    w_meta = meta_train(*synth, config, seed)
    meta_s = time.time() - t0

    shot = np.arange(len(source)) < len(y)

    def learned(variant: str, keep: np.ndarray, rows_q: np.ndarray) -> np.ndarray:
        return learned_proba(variant, w_meta, xs[keep], labels[keep], shot[keep], rows_q, n,
                             config, seed)  # fmt: skip

    ref_s, ref_q = sample_rows(engine, ref, split.support), sample_rows(engine, ref, split.query)
    every = np.ones(len(source), bool)
    probas = {PROBE: recipe_proba(probe, [xs[: len(y)]], y, [xq], n),
              REFERENCE: recipe_proba(ref, ref_s, y, ref_q, n)}  # fmt: skip
    for v in LEARNED:
        probas[v] = learned(v, every, xq)
    probas["hires_poe_proto_meta"] = multiply_proba([probas[REFERENCE], probas["meta_tp"]])
    loo = dict.fromkeys(probas, float("nan"))
    if signal:
        loo.update(signal_loo(xs, labels, source, y, n, ref_s, learned))
    out = []
    for variant, p in probas.items():
        out.append({"variant": variant, "shots": shots, "support_loo": loo[variant],
                    "query_acc": float((predict(p) == yq).mean()), "n_support": len(y),
                    "n_rows": len(y) if variant in UNTRANSPLANTED else len(source),
                    "n_query": len(yq), "chance": float(np.bincount(yq).max() / len(yq)),
                    "paste_seconds": round(paste_s, 1), "meta_seconds": round(meta_s, 1),
                    "config": fingerprint(asdict(config))[:12]})  # fmt: skip
    return out


def signal_loo(xs: np.ndarray, labels: np.ndarray, source: np.ndarray, y: np.ndarray, n: int,
               ref_s: list[np.ndarray],
               learned: Callable[[str, np.ndarray, np.ndarray], np.ndarray]) -> dict[str, float]:  # fmt: skip
    """Support leave-one-out accuracy of every variant.

    Args:
        xs: ``(R, D)`` probe rows: the ``S`` support images as shot, then their transplants;
            ``labels``, ``source`` ``(R,)``: each row's class and support image.
        y: ``(S,)`` the support images' classes; ``ref_s``: the reference recipe's support
            rows per group ``(S, D_g)``.
        learned: ``(variant, rows kept (R,) bool, query rows (Q, D))`` -> ``(Q, n)``.

    ``hires_poe_proto_meta`` multiplies the reference's and ``meta_tp``'s probabilities of
    the same left-out image.
    """
    probe, ref, s = RECIPES[PROBE], RECIPES[REFERENCE], len(y)
    first = xs[:s]

    def probe_of(keep: np.ndarray, i: int) -> np.ndarray:
        return recipe_proba(probe, [first[keep[:s]]], y[keep[:s]], [first[i : i + 1]], n)

    out = {PROBE: float(np.mean(loo_hits(probe_of, source[:s], y, n)))}
    index, ref_scores = leave_one_out(ref, ref_s, y, n)
    out[REFERENCE] = float(np.mean(predict(ref_scores) == y[index]))
    meta_left_out: dict[int, np.ndarray] = {}
    for v in LEARNED:
        probas = loo_probas(lambda keep, i, v=v: learned(v, keep, xs[i : i + 1]), source, labels, n)
        out[v] = float(np.mean([predict(p)[0] == labels[i] for i, p in probas.items()]))
        if v == "meta_tp":
            meta_left_out = probas
    both = [multiply_proba([ref_scores[k : k + 1], meta_left_out[i]]) for k, i in enumerate(index)]
    out["hires_poe_proto_meta"] = float(
        np.mean([predict(p)[0] == y[i] for p, i in zip(both, index, strict=True)])
    )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = record_parser(__doc__, [c for _, c, _ in GRID]).parse_args(argv)
    root, config = data_root(args.data), MetaConfig()
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    done = {c[:3] for c in done_cells(out, CELL)}
    textures = TextureSource.from_dtd(Path(root) / "dtd")
    for dataset, name, shot_counts in GRID:
        if name not in args.categories:
            continue
        category = load_category(Path(root) / dataset, dataset, name)
        for seed in args.seeds:
            todo = [k for k in shot_counts if (name, seed, k) not in done]
            if not todo:
                continue
            engine = ResidualEngine(category, EngineConfig(), seed=seed)
            t0 = time.time()
            synth = synthetic_rows(engine, RECIPES[PROBE], textures, SynthTaskConfig())
            synth = (synth[0][0], synth[1])
            synth_s = time.time() - t0
            for shots in todo:
                t0 = time.time()
                rows = score_cell(
                    engine, dataset, shots, seed, synth, config, shots == shot_counts[-1]
                )
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                for row in rows:
                    row.update(dataset=dataset, category=name, seed=seed, git_commit=commit,
                               synth_seconds=round(synth_s, 1), cell_seconds=round(time.time() - t0, 1),
                               timestamp=stamp)  # fmt: skip
                    print(f"{name} seed {seed} {shots}-shot {row['variant']}: loo "
                          f"{row['support_loo']:.3f} query {row['query_acc']:.3f}", flush=True)  # fmt: skip
                atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
