"""The paper's methods as registered few-shot methods (Table 1, Table 3, Appendices B-G).

============================  ==========================================================
name                          what it is
============================  ==========================================================
``contrastive``               contrastive classifier on residual maps, pretrained on
                              synthetic classes, fine-tuned on the support (Table 1)
``contrastive_nopretrain``    the same without pretraining (Table 3)
``contrastive_raw``           raw patch features instead of residuals (Appendix E); the
                              pretraining pool is then ``f(synthetic)``
``contrastive_maml``          first-order MAML pretraining (Appendix G)
``relationnet``               the vanilla baseline: RelationNet on residual maps, weighted
                              BCE, pretrained (Appendix B)
``direct``                    a new last layer on the ImageNet backbone, trained on the
                              support images (Appendix D)
============================  ==========================================================

Options (``task.options``, from the run configuration; defaults are the paper's):

- ``code_bugs`` (false): reproduce the authors' unpermuted reshape (scrambled layout) and
  frozen BatchNorm from the first periodic evaluation on (episode 30, and fine-tuning).
- ``max_episodes`` (1000), ``stop_accuracy`` (0.4), ``episode_classes`` (10),
  ``episode_queries`` (9), ``episode_groups`` (9): pretraining episodes and stop rule.
- ``lr`` (1e-4): Adam for pretraining and fine-tuning.
- ``finetune_epochs`` ({2: 45, 3: 25, 4: 15, 5: 15}): contrastive fine-tuning epochs per
  shot count; ``relation_epochs`` (45).
- ``finetune_batch`` ("pair"): "pair" = one Adam step per (query, positive) pair as the
  paper (``C * n * (n - 1)`` steps per epoch); "query" = one step per query image with its
  ``n - 1`` positives batched (``C * n`` steps per epoch, about 3x faster at 5 shots).
- ``direct_lr`` (1e-5), ``direct_epochs`` (100): the direct baseline (Adam, batch 1).
- ``generator`` ("perlin"), ``n_per_class`` (16): synthetic classes (see
  :class:`fsad.synth.PseudoClassDataset`).
- ``cache`` (true: pretrained weights are cached on disk, shared by every
  shot count of a (category, seed)), ``progress`` (true).

Pretrained weights depend on (category, seed, engine, synthetic classes, options) but not on
the shot count, so a grid pretrains once per (category, seed, method).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fsad.cache import DiskCache, files_fingerprint
from fsad.data import read_image
from fsad.errors import ConfigError
from fsad.features import FeatureConfig, load_backbone, preprocess
from fsad.methods import register
from fsad.models import ContrastiveEncoder, RelationNet
from fsad.synth import PseudoClassDataset, TextureSource
from fsad.synth.pool import pool_key, synthetic_residual_pool
from fsad.task import FewShotTask, Prediction
from fsad.train import (
    CODE_BUGS_EVAL_EVERY,
    FINETUNE_EPOCHS,
    RELATION_EPOCHS,
    PretrainConfig,
    finetune_contrastive,
    finetune_epochs,
    finetune_relation,
    predict_contrastive,
    predict_relation,
    pretrain,
)
from fsad.utils import get_device, seed_everything

#: bump when pretraining changes meaning: cached pretrained weights then miss
PRETRAIN_VERSION = 1


@dataclass(frozen=True)
class PaperOptions:
    """Validated ``task.options`` of the paper's methods (see the module docstring)."""

    code_bugs: bool = False
    max_episodes: int = 1000
    stop_accuracy: float = 0.4
    episode_classes: int = 10
    episode_queries: int = 9
    episode_groups: int = 9
    lr: float = 1e-4
    finetune_epochs: dict[int, int] = field(default_factory=lambda: dict(FINETUNE_EPOCHS))
    finetune_batch: str = "pair"
    relation_epochs: int = RELATION_EPOCHS
    direct_lr: float = 1e-5
    direct_epochs: int = 100
    generator: str = "perlin"
    n_per_class: int | None = 16
    cache: bool = True
    progress: bool = True

    def pretrain_config(self, maml: bool = False) -> PretrainConfig:
        """The :class:`PretrainConfig` these options describe."""
        return PretrainConfig(
            episode_classes=self.episode_classes,
            episode_queries=self.episode_queries,
            episode_groups=self.episode_groups,
            max_episodes=self.max_episodes,
            stop_accuracy=self.stop_accuracy,
            lr=self.lr,
            freeze_bn_after=CODE_BUGS_EVAL_EVERY if self.code_bugs else None,
            maml=maml,
        )


def parse_options(options: dict[str, Any] | None) -> PaperOptions:
    """Validate a method's options.

    Raises:
        ConfigError: unknown option name or a value of the wrong type.
    """
    options = dict(options or {})
    known = {f.name: f for f in dataclasses.fields(PaperOptions)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for the paper's methods "
            f"(known: {', '.join(sorted(known))})"
        )
    if "finetune_epochs" in options:
        try:
            given = {int(k): int(v) for k, v in options["finetune_epochs"].items()}
            options["finetune_epochs"] = {**FINETUNE_EPOCHS, **given}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(
                f"finetune_epochs must map shots to epochs, got {options['finetune_epochs']!r}"
            ) from None
    for name, value in options.items():
        default = getattr(PaperOptions(), name)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"option {name} must be true or false, got {value!r}")
        if isinstance(default, int | float) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"option {name} must be a number, got {value!r}")
    if options.get("finetune_batch", "pair") not in ("pair", "query"):
        raise ConfigError(
            f"finetune_batch must be 'pair' or 'query', got {options['finetune_batch']!r}"
        )
    return PaperOptions(**options)


# ----------------------------------------------------------------------------- inputs
def _maps(task: FewShotTask, raw: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Support and query maps ``(S, D, h, w)``, ``(Q, D, h, w)``: residuals or raw features."""
    get = task.engine.features if raw else task.engine.residuals
    return get(list(task.support)).float(), get(list(task.query)).float()


def _pseudo_dataset(task: FewShotTask, opts: PaperOptions, cache: DiskCache | None) -> Any:
    """The synthetic pseudo-class dataset of this (category, seed)."""
    textures = (
        TextureSource.from_dtd(task.textures) if task.textures else TextureSource.procedural(seed=0)
    )
    return PseudoClassDataset(
        task.category, textures, generator=opts.generator, seed=task.seed,
        n_per_class=opts.n_per_class, cache=cache,
    )  # fmt: skip


def _synthetic_pool(task: FewShotTask, dataset: Any, raw: bool, cache: DiskCache | None):
    """Pool maps ``(K*n, D, h, w)`` and labels ``(K*n,)``: residuals or raw ``f(synthetic)``."""
    # float16 rows (half the memory); episodes convert the rows they draw to float32
    pool = synthetic_residual_pool(task.engine, dataset, cache, dtype=torch.float16, raw=raw)
    return pool["residuals"], np.asarray(pool["labels"])


def _pool_key(task: FewShotTask, dataset: Any, raw: bool) -> Any:
    """What determines the pretraining pool (synthetic dataset, feature settings, raw)."""
    return pool_key(task.engine, dataset, raw)


# ----------------------------------------------------------------------------- pretraining
def _pretrained(
    task: FewShotTask,
    model: nn.Module,
    opts: PaperOptions,
    head: str,
    raw: bool,
    maml: bool = False,
) -> dict[str, Any]:
    """Pretrain ``model`` on the synthetic pool, or load the cached weights of that run.

    The cache key holds everything that determines the weights: head, the pool's key
    (synthetic dataset, feature settings, raw or residual), seed, pretraining options, map
    shape; not the shot count (nor the coreset: pretraining residuals need no bank).
    """
    cache = DiskCache(enabled=opts.cache)
    dataset = _pseudo_dataset(task, opts, cache)
    cfg = opts.pretrain_config(maml)
    key = {
        "version": PRETRAIN_VERSION,
        "head": head,
        "scrambled": opts.code_bugs,
        "pool": _pool_key(task, dataset, raw),
        "seed": task.seed,
        # the removed options maml_inner_lr and relation_pairs keep their old values in the key
        "pretrain": {**asdict(cfg), "maml_inner_lr": 1e-3, "relation_pairs": "matched"},
        "shape": [model.in_channels, *model.grid],
        "torch": torch.__version__,
    }
    computed = False

    def compute() -> dict[str, Any]:
        nonlocal computed
        computed = True
        pool, labels = _synthetic_pool(task, dataset, raw, cache)
        t0 = time.perf_counter()
        log = pretrain(model, pool, labels, task.seed, cfg, show_progress=opts.progress)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        info = {
            **log.as_dict(),
            "seconds": round(time.perf_counter() - t0, 2),
            "pool_size": int(len(labels)),
            "pool_classes": int(len(np.unique(labels))),
        }
        return {"state": state, "info": info}  # fmt: skip

    value = cache.load_or_compute("pretrained", key, compute)
    model.load_state_dict(value["state"])
    return {**value["info"], "cached": not computed}


# ----------------------------------------------------------------------------- runners
def _setup(task: FewShotTask) -> tuple[PaperOptions, torch.device]:
    opts = parse_options(task.options)
    seed_everything(task.seed)
    return opts, get_device()


def _result(scores: torch.Tensor, info: dict[str, Any], t0: float) -> Prediction:
    info["seconds"] = round(time.perf_counter() - t0, 2)
    s = scores.detach().cpu().numpy().astype(np.float64)
    return Prediction(labels=s.argmax(1).astype(np.int64), scores=s, info=info)


def run_contrastive(
    task: FewShotTask, raw: bool = False, use_pretraining: bool = True, maml: bool = False
) -> Prediction:
    """Contrastive classifier: (pretrain) -> fine-tune on the support -> prototypes.

    Args:
        task: the few-shot task.
        raw: raw patch features ``f`` instead of residuals ``r = f - m*``.
        use_pretraining: pretrain on synthetic classes first (cached per category and seed).
        maml: first-order MAML pretraining.

    Returns:
        the :class:`Prediction`; ``scores`` are cosine similarities to the class prototypes.
    """
    t0 = time.perf_counter()
    opts, device = _setup(task)
    support, query = _maps(task, raw)
    y = np.asarray(task.support_labels, dtype=np.int64)
    torch.manual_seed(task.seed)  # network initialisation
    model = ContrastiveEncoder(
        support.shape[1], tuple(support.shape[2:]), scrambled=opts.code_bugs
    ).to(device)
    info: dict[str, Any] = {}
    if use_pretraining:
        head = "contrastive_maml" if maml else "contrastive"
        info["pretrain"] = _pretrained(task, model, opts, head, raw, maml)
    epochs = finetune_epochs(task.shots, opts.finetune_epochs)
    log = finetune_contrastive(
        model, support, y, epochs, opts.lr,
        frozen_bn=opts.code_bugs and use_pretraining, show_progress=opts.progress,
        batch=opts.finetune_batch,
    )  # fmt: skip
    info["finetune"] = {"epochs": epochs, "steps": log.steps,
                        "final_loss": log.losses[-1] if log.losses else None}  # fmt: skip
    return _result(predict_contrastive(model, support, y, query), info, t0)


def run_relationnet(task: FewShotTask, use_pretraining: bool = True) -> Prediction:
    """Vanilla baseline: RelationNet on residual maps, (pretrain), fine-tune, mean relation."""
    t0 = time.perf_counter()
    opts, device = _setup(task)
    support, query = _maps(task, raw=False)
    y = np.asarray(task.support_labels, dtype=np.int64)
    torch.manual_seed(task.seed)
    model = RelationNet(support.shape[1], tuple(support.shape[2:]), scrambled=opts.code_bugs).to(
        device
    )
    info: dict[str, Any] = {}
    if use_pretraining:
        info["pretrain"] = _pretrained(task, model, opts, "relationnet", raw=False)
    log = finetune_relation(
        model, support, y, opts.relation_epochs, opts.lr,
        frozen_bn=opts.code_bugs and use_pretraining, show_progress=opts.progress,
    )  # fmt: skip
    info["finetune"] = {"epochs": opts.relation_epochs, "steps": log.steps}
    return _result(predict_relation(model, support, y, query), info, t0)


# ----------------------------------------------------------------------------- direct
def _feature_config(engine: Any) -> Any:
    """The engine's :class:`fsad.features.FeatureConfig` (the default one if it has none)."""
    cfg = getattr(engine, "config", None)
    for cand in (getattr(cfg, "features", None), cfg):
        if isinstance(cand, FeatureConfig):
            return cand
    return FeatureConfig()


def image_embeddings(
    samples: Sequence[Any], feature_config: Any, cache: DiskCache | None, batch_size: int = 16
) -> torch.Tensor:
    """Pooled penultimate ImageNet features of images (the input of the new last layer).

    Args:
        samples: images (``.path``) to embed.
        feature_config: backbone, weights and resolution (:class:`fsad.features.FeatureConfig`).
        cache: disk cache (key: files fingerprint + feature config), or None.
        batch_size: images per forward pass.

    Returns:
        ``(N, F)`` float32, ``F`` the classifier's input width (1280 for EfficientNet-Lite0).
    """

    def compute() -> dict[str, torch.Tensor]:
        net = load_backbone(feature_config.backbone, feature_config.weights, features_only=False)
        out = []
        with torch.inference_mode():
            for i in range(0, len(samples), batch_size):
                imgs = [read_image(s.path) for s in samples[i : i + batch_size]]
                x = preprocess(imgs, feature_config)
                out.append(net.forward_head(net.forward_features(x), pre_logits=True))
        return {"x": torch.cat(out).float()}

    if cache is None:
        return compute()["x"]
    key = {
        "files": files_fingerprint([s.path for s in samples]),
        "features": feature_config.cache_key(),
        "kind": "pre_logits",
    }
    return cache.load_or_compute("direct_features", key, compute)["x"]


def train_linear_head(
    x: torch.Tensor,
    y: np.ndarray,
    n_classes: int,
    seed: int,
    epochs: int = 100,
    lr: float = 1e-5,
) -> nn.Linear:
    """A new last layer trained with Adam, batch size 1, shuffled each epoch (Appendix D).

    Args:
        x: ``(S, F)`` support features; y ``(S,)`` classes.
        n_classes: ``C``.
        seed: fixes the initialisation and the order.
        epochs: passes over the support (100).
        lr: Adam learning rate (1e-5).

    Returns:
        the trained ``nn.Linear(F, C)`` in eval mode.
    """
    torch.manual_seed(seed)
    head = nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    for _ in range(epochs):
        for i in rng.permutation(len(x)):
            loss = nn.functional.cross_entropy(head(x[i : i + 1]), yt[i : i + 1])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return head.eval()


# ----------------------------------------------------------------------------- registry
@register("contrastive", "contrastive classifier + residual + synthetic pretraining (Table 1)")
def contrastive(task: FewShotTask) -> Prediction:
    """The paper's best model: residual maps, pretraining, fine-tuning, prototypes."""
    return run_contrastive(task)


@register(
    "contrastive_shapes",
    "contrastive, pretrained on synthetic classes of several shapes: blob, stroke, spot (not in "
    "the paper)",
)
def contrastive_shapes(task: FewShotTask) -> Prediction:
    """:func:`contrastive` with ``generator="shapes"`` unless the run sets a generator: each
    texture class's masks are a Perlin blob, a thin stroke or a small spot, by turns
    (:class:`fsad.synth.PseudoClassDataset`), so the synthetic classes differ in shape and
    extent as real defect types do, not in appearance only."""
    options = {"generator": "shapes", **task.options}
    return run_contrastive(dataclasses.replace(task, options=options))


@register("contrastive_nopretrain", "contrastive classifier + residual, no pretraining (Table 3)")
def contrastive_nopretrain(task: FewShotTask) -> Prediction:
    """Residual maps, fine-tuning from a random initialisation (1-shot: random encoder)."""
    return run_contrastive(task, use_pretraining=False)


@register("contrastive_raw", "contrastive classifier + pretraining on raw features (App. E)")
def contrastive_raw(task: FewShotTask) -> Prediction:
    """Raw patch features instead of residuals; the pretraining pool is ``f(synthetic)``."""
    return run_contrastive(task, raw=True)


@register("contrastive_maml", "contrastive + residual + first-order MAML pretraining (App. G)")
def contrastive_maml(task: FewShotTask) -> Prediction:
    """First-order MAML pretraining, then the usual fine-tuning."""
    return run_contrastive(task, maml=True)


@register("relationnet", "vanilla baseline: RelationNet + residual + pretraining (App. B)")
def relationnet(task: FewShotTask) -> Prediction:
    """RelationNet on residual maps with weighted BCE, pretrained on synthetic classes."""
    return run_relationnet(task)


@register("direct", "new last layer on the ImageNet backbone, trained on the support (App. D)")
def direct(task: FewShotTask) -> Prediction:
    """Fine-tune only a new classifier layer of the backbone on the support images.

    The backbone is frozen, so its pooled penultimate features are computed once (and
    cached); training the head on them is the same as fine-tuning the last layer.
    """
    t0 = time.perf_counter()
    opts, _ = _setup(task)
    cache = DiskCache(enabled=opts.cache)
    fc = _feature_config(task.engine)
    # support + query are the category's defect images whatever the shot count: embedding
    # them in path order gives one cache entry shared by every shot count
    samples = list(task.support) + list(task.query)
    order = sorted(range(len(samples)), key=lambda i: str(samples[i].path))
    emb = image_embeddings([samples[i] for i in order], fc, cache)
    x = emb.new_empty(emb.shape)
    x[torch.as_tensor(order)] = emb
    xs, xq = x[: len(task.support)], x[len(task.support) :]
    head = train_linear_head(
        xs, task.support_labels, task.n_classes, task.seed, opts.direct_epochs, opts.direct_lr
    )
    with torch.no_grad():
        scores = torch.softmax(head(xq), dim=1)
    info = {"backbone": fc.backbone, "features": int(x.shape[1]),
            "steps": opts.direct_epochs * len(xs)}  # fmt: skip
    return _result(scores, info, t0)
