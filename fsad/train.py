"""Training of the few-shot heads: episodic pretraining, fine-tuning, prediction.

Everything here works on plain tensors of residual maps ``(N, D, h, w)`` so it can be tested
without a backbone; :mod:`fsad.methods.paper` glues it to the residual engine and the
synthetic pool. Schedules follow the paper (section 4.1.3, Algorithm 1, Appendix G) and the
authors' code (notes/official-implementation.md):

- Pretraining (proxy task on synthetic classes): each episode draws ``C = 10`` pool classes,
  ``Q = 9`` queries and ``G = 9`` support groups of one image per class; every query is
  scored against every group (``G * Q`` rows of ``C`` logits); one Adam step per episode;
  stop as soon as an episode's accuracy exceeds 0.4, or after 1000 episodes.
- Fine-tuning (contrastive): for each class ``i``, each support image ``j`` of ``i`` is a
  query, each other support image ``l`` of ``i`` its positive key, and one support image of
  every other class a negative: ``C * n * (n - 1)`` steps per epoch; 45 / 25 / 15 / 15 epochs
  for 2 / 3 / 4 / 5 shots, so 1-shot uses the pretrained model as it is.
- Fine-tuning (RelationNet): the first support image of each class is the support, the other
  ``n - 1`` are queries, one step per query, 45 epochs.
- MAML (Appendix G), first-order: an inner SGD step on one episode's classes, the outer Adam
  step with the gradient of a second episode (other classes) at the adapted weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fsad.models import (
    ContrastiveEncoder,
    RelationNet,
    contrastive_logits,
    info_nce_loss,
    weighted_bce,
)
from fsad.utils import progress

# epochs of contrastive fine-tuning per shot count (section 4.1.3); 1-shot: none
FINETUNE_EPOCHS = {1: 0, 2: 45, 3: 25, 4: 15, 5: 15}
RELATION_EPOCHS = 45  # the vanilla baseline traverses the real support 45 times
CODE_BUGS_EVAL_EVERY = 30  # authors evaluate every 30 episodes and never call .train() again
MAML_INNER_LR = 1e-3  # SGD step of the MAML inner loop (the authors' ``update_lr``)

Model = ContrastiveEncoder | RelationNet


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining hyper-parameters (defaults: the paper's values).

    Attributes:
        episode_classes: ``C``, pool classes per episode (10).
        episode_queries: ``Q``, queries per episode (9).
        episode_groups: ``G``, support groups of one image per class (9).
        max_episodes: cap on episodes (1000).
        stop_accuracy: stop as soon as an episode's accuracy exceeds this (0.4).
        lr: Adam learning rate (1e-4).
        freeze_bn_after: when set, BatchNorm runs in eval mode from this episode on and in
            fine-tuning (the authors' bug; ``code_bugs`` sets it to 30).
        maml: first-order MAML episodes (Appendix G) instead of plain ones.
    """

    episode_classes: int = 10
    episode_queries: int = 9
    episode_groups: int = 9
    max_episodes: int = 1000
    stop_accuracy: float = 0.4
    lr: float = 1e-4
    freeze_bn_after: int | None = None
    maml: bool = False


@dataclass
class Episode:
    """One pretraining episode, as indices into the pool.

    Attributes:
        classes: ``(C,)`` pool class ids of the episode, in key order.
        query: ``(Q,)`` pool rows of the queries.
        targets: ``(Q,)`` position of each query's class in ``classes``.
        keys: ``(G, C)`` pool rows; ``keys[g, c]`` is an image of ``classes[c]``.
    """

    classes: np.ndarray
    query: np.ndarray
    targets: np.ndarray
    keys: np.ndarray


@dataclass
class TrainLog:
    """What a training run did (JSON-able through :meth:`as_dict`)."""

    episodes: int = 0
    steps: int = 0
    stopped: bool = False
    accuracies: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "episodes": self.episodes,
            "steps": self.steps,
            "stopped": self.stopped,
            "final_accuracy": self.accuracies[-1] if self.accuracies else None,
            "final_loss": self.losses[-1] if self.losses else None,
        }


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam (the paper's optimiser); the fused kernel when this torch build has one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


# ----------------------------------------------------------------------------- episodes
def sample_episode(
    labels: np.ndarray,
    rng: np.random.Generator,
    n_classes: int = 10,
    n_queries: int = 9,
    n_groups: int = 9,
    exclude: np.ndarray | None = None,
) -> Episode:
    """Draw one episode from a labelled pool.

    Classes are drawn without replacement (all of them when the pool has fewer than
    ``n_classes``; classes in ``exclude`` only when needed to fill ``n_classes``). Query
    classes are uniform over the episode's classes. Within a class, the queries and the
    ``n_groups`` keys are distinct images while the class has enough of them (they wrap
    around otherwise).

    Args:
        labels: ``(N,)`` int class id of every pool row.
        rng: NumPy generator (the run seed fixes the draws).
        n_classes, n_queries, n_groups: ``C``, ``Q``, ``G``.
        exclude: class ids to avoid (MAML's second episode avoids the first one's classes).

    Returns:
        the :class:`Episode`.
    """
    labels = np.asarray(labels)
    all_classes = np.unique(labels)
    c = min(n_classes, len(all_classes))
    rest = all_classes if exclude is None else np.setdiff1d(all_classes, exclude)
    if len(rest) >= c:
        classes = rng.choice(rest, size=c, replace=False)
    else:  # every non-excluded class, topped up with excluded ones
        extra = rng.choice(np.setdiff1d(all_classes, rest), size=c - len(rest), replace=False)
        classes = rng.permutation(np.concatenate([rest, extra]))
    targets = rng.integers(0, c, size=n_queries)
    query = np.empty(n_queries, dtype=np.int64)
    keys = np.empty((n_groups, c), dtype=np.int64)
    for pos, cls in enumerate(classes):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        q_pos = np.flatnonzero(targets == pos)
        order = np.resize(rows, len(q_pos) + n_groups)  # wraps around when the class is small
        query[q_pos] = order[: len(q_pos)]
        keys[:, pos] = order[len(q_pos) :]
    return Episode(classes=classes, query=query, targets=targets.astype(np.int64), keys=keys)


def _gather(pool: torch.Tensor, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of the pool ``(len(rows), D, h, w)`` as float32 on ``device``."""
    idx = torch.as_tensor(np.asarray(rows).reshape(-1), dtype=torch.long)
    return pool[idx].to(device=device, dtype=torch.float32)


def _set_mode(model: nn.Module, frozen_bn: bool) -> None:
    """Train mode, unless the authors' frozen-BatchNorm behaviour is requested."""
    model.train(not frozen_bn)


def _call(model: nn.Module, params: dict[str, torch.Tensor] | None, *args: torch.Tensor):
    if params is None:
        return model(*args)
    return torch.func.functional_call(model, params, args)


def _contrastive_episode_loss(
    model: ContrastiveEncoder,
    pool: torch.Tensor,
    ep: Episode,
    device: torch.device,
    params: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, float]:
    """InfoNCE of one episode: every query against every group of detached keys."""
    g, c = ep.keys.shape
    with torch.no_grad():  # keys: same encoder, no gradient
        k = _call(model, params, _gather(pool, ep.keys, device)).view(g, c, -1)
    q = _call(model, params, _gather(pool, ep.query, device))
    logits = contrastive_logits(q, k)  # (G*Q, C)
    targets = torch.as_tensor(np.tile(ep.targets, g), device=device)
    loss = info_nce_loss(logits, targets)
    acc = (logits.argmax(1) == targets).float().mean().item()
    return loss, acc


def _relation_episode_loss(
    model: RelationNet, pool: torch.Tensor, ep: Episode, device: torch.device
) -> tuple[torch.Tensor, float]:
    """Weighted BCE of one episode (query ``j`` paired with group ``j``: ``Q * C`` pairs);
    accuracy = argmax relation over classes."""
    g, c = ep.keys.shape
    qn = len(ep.query)
    support = _gather(pool, ep.keys, device)  # (G*C, D, h, w), row g*C + c
    query = _gather(pool, ep.query, device)
    rows = []  # (group, query) rows, each with C pairs
    for j in range(qn):
        rows.append((j % g, j))
    rows_a = np.asarray(rows)
    s_idx = (rows_a[:, :1] * c + np.arange(c)[None, :]).reshape(-1)
    q_idx = np.repeat(rows_a[:, 1], c)
    pair_idx = torch.as_tensor(np.stack([s_idx, q_idx], 1), device=device)
    logits = model(support, query, pair_idx).view(len(rows_a), c)
    tgt = torch.as_tensor(ep.targets[rows_a[:, 1]], device=device)
    onehot = nn.functional.one_hot(tgt, c).float()
    loss = weighted_bce(logits.reshape(-1), onehot.reshape(-1), c)
    acc = (logits.argmax(1) == tgt).float().mean().item()
    return loss, acc


def _episode_loss(model, pool, ep, device, cfg: PretrainConfig):
    if isinstance(model, RelationNet):
        return _relation_episode_loss(model, pool, ep, device)
    return _contrastive_episode_loss(model, pool, ep, device)


# ----------------------------------------------------------------------------- pretraining
def run_episodes(
    step: Callable[[int], tuple[float, float]],
    max_episodes: int,
    stop_accuracy: float,
    show_progress: bool = True,
) -> TrainLog:
    """The paper's stop rule around an episode function.

    Args:
        step: ``step(episode_index) -> (loss, accuracy)``; does one training step.
        max_episodes: cap on episodes.
        stop_accuracy: stop right after the first episode whose accuracy is ``>`` this.
        show_progress: show a progress bar.

    Returns:
        the :class:`TrainLog` (``stopped`` is True when the accuracy rule fired).
    """
    log = TrainLog()
    episodes = range(max_episodes)
    it = progress(episodes, desc="pretrain", leave=False) if show_progress else iter(episodes)
    for e in it:
        loss, acc = step(e)
        log.episodes = log.steps = e + 1
        log.losses.append(float(loss))
        log.accuracies.append(float(acc))
        if acc > stop_accuracy:
            log.stopped = True
            break
    return log


def pretrain(
    model: Model,
    pool: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    seed: int,
    config: PretrainConfig | None = None,
    show_progress: bool = True,
) -> TrainLog:
    """Pretrain a head on a labelled pool of synthetic residual maps (the proxy task).

    Args:
        model: :class:`ContrastiveEncoder` or :class:`RelationNet`, trained in place.
        pool: ``(N, D, h, w)`` residual maps (any device; rows are moved as needed).
        labels: ``(N,)`` pseudo-class id per row.
        seed: fixes the episode draws (the model's initialisation is the caller's).
        config: :class:`PretrainConfig` (paper defaults when None).
        show_progress: show a progress bar.

    Returns:
        the :class:`TrainLog` (episodes, whether the stop rule fired, accuracies, losses).
    """
    cfg = config or PretrainConfig()
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    opt = make_optimizer(model, cfg.lr)

    def frozen(e: int) -> bool:
        return cfg.freeze_bn_after is not None and e >= cfg.freeze_bn_after

    def plain_step(e: int) -> tuple[float, float]:
        _set_mode(model, frozen(e))
        ep = sample_episode(
            labels, rng, cfg.episode_classes, cfg.episode_queries, cfg.episode_groups
        )
        loss, acc = _episode_loss(model, pool, ep, device, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item(), acc

    def maml_step(e: int) -> tuple[float, float]:
        if not isinstance(model, ContrastiveEncoder):
            raise TypeError("MAML pretraining is defined for the contrastive encoder only")
        _set_mode(model, frozen(e))
        return _maml_step(model, opt, pool, labels, rng, device, cfg)

    log = run_episodes(
        maml_step if cfg.maml else plain_step, cfg.max_episodes, cfg.stop_accuracy, show_progress
    )
    model.eval()
    return log


def _maml_step(
    model: ContrastiveEncoder,
    opt: torch.optim.Optimizer,
    pool: torch.Tensor,
    labels: np.ndarray,
    rng: np.random.Generator,
    device: torch.device,
    cfg: PretrainConfig,
) -> tuple[float, float]:
    """First-order MAML (Appendix G): inner step on episode A, outer gradient from B."""
    args = (cfg.episode_classes, cfg.episode_queries, cfg.episode_groups)
    ep_a = sample_episode(labels, rng, *args)
    ep_b = sample_episode(labels, rng, *args, exclude=ep_a.classes)
    params = dict(model.named_parameters())
    loss_a, _ = _contrastive_episode_loss(model, pool, ep_a, device, params)
    grads = torch.autograd.grad(loss_a, list(params.values()))
    # theta' = theta - alpha * grad L_A(theta); first order: theta' is a leaf
    fast = {
        n: (p - MAML_INNER_LR * g).detach().requires_grad_(True)
        for (n, p), g in zip(params.items(), grads, strict=True)
    }
    loss_b, acc_b = _contrastive_episode_loss(model, pool, ep_b, device, fast)
    grads_b = torch.autograd.grad(loss_b, list(fast.values()))
    opt.zero_grad(set_to_none=True)
    for p, g in zip(params.values(), grads_b, strict=True):
        p.grad = g
    opt.step()
    return loss_b.item(), acc_b


# ----------------------------------------------------------------------------- fine-tuning
def finetune_epochs(shots: int, schedule: dict[int, int] | None = None) -> int:
    """Contrastive fine-tuning epochs for ``shots`` (45/25/15/15 for 2/3/4/5; 0 for 1)."""
    schedule = schedule or FINETUNE_EPOCHS
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    return schedule.get(shots, schedule[max(schedule)])


def steps_per_epoch(n_classes: int, shots: int) -> int:
    """Contrastive fine-tuning steps per epoch: ``C * n * (n - 1)``."""
    return n_classes * shots * (shots - 1)


def class_rows(support_labels: np.ndarray) -> list[np.ndarray]:
    """Support rows of each class, in support order; classes ``0..C-1``."""
    y = np.asarray(support_labels)
    return [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]


def contrastive_finetune_plan(support_labels: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
    """The steps of one fine-tuning epoch (Algorithm 1).

    For class ``i``, support image ``j`` of ``i`` is the query; each other image ``l`` of
    ``i`` is the positive key; the negatives are, for every other class, its image at
    position ``n - 1 - pos(l)`` (fixed for a given positive, as in the authors' code).

    Args:
        support_labels: ``(S,)`` class of every support row (classes ``0..C-1``).

    Returns:
        ``[(query row, key rows (C,) in class order, target class), ...]`` of length
        ``C * n * (n - 1)`` when every class has ``n`` images.
    """
    rows = class_rows(support_labels)
    plan = []
    for i, own in enumerate(rows):
        for j in own:
            for p, pos in enumerate(own):  # pos: the positive key (image l of the paper)
                if pos == j:
                    continue
                keys = np.array(
                    [pos if c == i else r[(len(r) - 1 - p) % len(r)] for c, r in enumerate(rows)]
                )
                plan.append((int(j), keys, i))
    return plan


def finetune_contrastive(
    model: ContrastiveEncoder,
    support: torch.Tensor,
    support_labels: np.ndarray,
    epochs: int,
    lr: float = 1e-4,
    frozen_bn: bool = False,
    show_progress: bool = True,
    batch: str = "pair",
) -> TrainLog:
    """Fine-tune the contrastive encoder on the real n-shot support (Algorithm 1).

    Args:
        model: the encoder, trained in place (left in eval mode).
        support: ``(S, D, h, w)`` support residual maps.
        support_labels: ``(S,)`` class ids ``0..C-1``.
        epochs: passes over the plan (:func:`finetune_epochs`); 0 does nothing.
        lr: Adam learning rate.
        frozen_bn: keep BatchNorm in eval mode (the authors' bug).
        show_progress: show a progress bar.
        batch: ``"pair"`` (the paper: one Adam step per (query, positive) pair,
            ``C * n * (n - 1)`` steps per epoch) or ``"query"`` (faster: one step per query
            image with its ``n - 1`` positive key sets batched, mean loss, ``C * n`` steps
            per epoch; the same pairs, fewer and larger steps).

    Returns:
        a :class:`TrainLog` with ``steps = epochs * C * n * (n - 1)`` (``"pair"``) or
        ``epochs * C * n`` (``"query"``).
    """
    log = TrainLog()
    if batch not in ("pair", "query"):
        raise ValueError(f"batch must be 'pair' or 'query', got {batch!r}")
    plan = contrastive_finetune_plan(support_labels)
    if batch == "query":  # group the plan's rows by query image, keeping the plan's order
        grouped: dict[int, list[tuple[int, np.ndarray, int]]] = {}
        for row in plan:
            grouped.setdefault(row[0], []).append(row)
        plan = [(j, np.stack([r[1] for r in rows]), rows[0][2]) for j, rows in grouped.items()]
    if epochs <= 0 or not plan:
        model.eval()
        return log
    device = next(model.parameters()).device
    x = support.to(device=device, dtype=torch.float32)
    opt = make_optimizer(model, lr)
    _set_mode(model, frozen_bn)
    steps = [s for _ in range(epochs) for s in plan]
    it = progress(steps, desc="fine-tune", leave=False) if show_progress else steps
    model.inplace_head_grad = True  # reuse the head's 12.8 M-weight gradient buffer
    try:
        for j, keys, target in it:
            with torch.no_grad():  # detached keys: (C, E), or (G, C, E) when batched
                k = model(x[torch.as_tensor(keys).reshape(-1)]).view(*keys.shape, -1)
            q = model(x[j : j + 1])  # (1, E)
            logits = contrastive_logits(q, k)  # (1, C) or (G, C)
            targets = torch.full((len(logits),), target, device=device, dtype=torch.long)
            loss = info_nce_loss(logits, targets)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            log.steps += 1
            log.losses.append(loss.item())
    finally:
        model.inplace_head_grad = False
        opt.zero_grad(set_to_none=True)
    model.eval()
    return log


def finetune_relation(
    model: RelationNet,
    support: torch.Tensor,
    support_labels: np.ndarray,
    epochs: int = RELATION_EPOCHS,
    lr: float = 1e-4,
    frozen_bn: bool = False,
    show_progress: bool = True,
) -> TrainLog:
    """Fine-tune the RelationNet: first image per class = support, the rest = queries.

    One step per query (its ``C`` pairs, weighted BCE); ``C * (n - 1)`` steps per epoch, so
    1-shot does nothing.

    Args:
        model: the RelationNet, trained in place (left in eval mode).
        support: ``(S, D, h, w)`` support residual maps.
        support_labels: ``(S,)`` class ids ``0..C-1``.
        epochs: passes (45 in the paper).
        lr: Adam learning rate.
        frozen_bn: keep BatchNorm in eval mode (the authors' bug).
        show_progress: show a progress bar.

    Returns:
        a :class:`TrainLog`.
    """
    log = TrainLog()
    rows = class_rows(support_labels)
    anchors = np.array([r[0] for r in rows])
    queries = [(int(q), i) for i, r in enumerate(rows) for q in r[1:]]
    if epochs <= 0 or not queries:
        model.eval()
        return log
    device = next(model.parameters()).device
    x = support.to(device=device, dtype=torch.float32)
    c = len(rows)
    opt = make_optimizer(model, lr)
    _set_mode(model, frozen_bn)
    steps = [s for _ in range(epochs) for s in queries]
    it = progress(steps, desc="fine-tune", leave=False) if show_progress else steps
    for q, i in it:
        pairs = torch.stack([torch.arange(c), torch.zeros(c, dtype=torch.long)], 1).to(device)
        logits = model(x[torch.as_tensor(anchors)], x[q : q + 1], pairs)
        loss = weighted_bce(logits, nn.functional.one_hot(torch.tensor(i), c).to(device), c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log.steps += 1
        log.losses.append(loss.item())
    model.eval()
    return log


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_contrastive(
    model: ContrastiveEncoder,
    support: torch.Tensor,
    support_labels: np.ndarray,
    query: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """Cosine similarity of each query to each class prototype (eval mode).

    The prototype of class ``c`` is the embedding of the pixel-wise mean of its support maps.

    Args:
        model: the encoder.
        support: ``(S, D, h, w)``; support_labels ``(S,)`` in ``0..C-1``.
        query: ``(Q, D, h, w)``.
        batch_size: queries per forward pass.

    Returns:
        ``(Q, C)`` cosine similarities (argmax = predicted class).
    """
    model.eval()
    device = next(model.parameters()).device
    means = torch.stack(
        [support[torch.as_tensor(r)].float().mean(0) for r in class_rows(support_labels)]
    )
    protos = model(means.to(device))  # (C, E), unit norm
    out = [
        model(query[i : i + batch_size].to(device=device, dtype=torch.float32)) @ protos.T
        for i in range(0, len(query), batch_size)
    ]
    return torch.cat(out).cpu()


@torch.no_grad()
def predict_relation(
    model: RelationNet,
    support: torch.Tensor,
    support_labels: np.ndarray,
    query: torch.Tensor,
    batch_size: int = 16,
) -> torch.Tensor:
    """Mean relation score of each query against the support images of each class.

    Args:
        model: the RelationNet.
        support: ``(S, D, h, w)``; support_labels ``(S,)`` in ``0..C-1``.
        query: ``(Q, D, h, w)``.
        batch_size: queries per forward pass.

    Returns:
        ``(Q, C)`` mean sigmoid relation scores (argmax = predicted class).
    """
    model.eval()
    device = next(model.parameters()).device
    y = torch.as_tensor(np.asarray(support_labels))
    s = support.to(device=device, dtype=torch.float32)
    n_classes = int(y.max()) + 1
    out = []
    for i in range(0, len(query), batch_size):
        qb = query[i : i + batch_size].to(device=device, dtype=torch.float32)
        grid = torch.cartesian_prod(torch.arange(len(qb)), torch.arange(len(s)))  # (q, s)
        pairs = grid[:, [1, 0]].to(device)
        score = torch.sigmoid(model(s, qb, pairs)).view(len(qb), len(s)).cpu()
        out.append(torch.stack([score[:, y == c].mean(1) for c in range(n_classes)], 1))
    return torch.cat(out)
