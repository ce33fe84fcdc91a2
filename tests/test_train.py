"""Tests of pretraining, fine-tuning schedules and prediction on tiny random tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.models import ContrastiveEncoder, RelationNet
from fsad.train import (
    PretrainConfig,
    contrastive_finetune_plan,
    finetune_contrastive,
    finetune_epochs,
    finetune_relation,
    predict_contrastive,
    predict_relation,
    pretrain,
    run_episodes,
    sample_episode,
    steps_per_epoch,
)

D, H, W = 6, 4, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _encoder(seed: int = 0) -> ContrastiveEncoder:
    torch.manual_seed(seed)
    return ContrastiveEncoder(D, (H, W), hidden=8, channels=4, embed_dim=8)


def _pool(n_classes: int = 12, per_class: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, D, H, W, generator=g) * 2
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + 0.3 * torch.randn(len(labels), D, H, W, generator=g)
    return x, labels


def _support(n_classes: int = 3, shots: int = 3, seed: int = 1):
    x, y = _pool(n_classes, shots + 4, seed)
    s_idx = np.concatenate([np.flatnonzero(y == c)[:shots] for c in range(n_classes)])
    q_idx = np.setdiff1d(np.arange(len(y)), s_idx)
    return x[s_idx], y[s_idx], x[q_idx], y[q_idx]


def test_sample_episode_structure() -> None:
    _, labels = _pool(12, 20)
    ep = sample_episode(labels, np.random.default_rng(0), n_classes=10, n_queries=9, n_groups=9)
    assert ep.classes.shape == (10,) and len(set(ep.classes.tolist())) == 10
    assert ep.query.shape == (9,) and ep.keys.shape == (9, 10)
    assert np.all(labels[ep.query] == ep.classes[ep.targets])
    assert np.all(labels[ep.keys] == ep.classes[None, :])
    # with enough images per class, a query image never doubles as a key of its class
    for j, t in zip(ep.query, ep.targets, strict=True):
        assert j not in ep.keys[:, t]
    # small pools: fewer classes than requested are all used
    ep2 = sample_episode(np.repeat(np.arange(3), 2), np.random.default_rng(0), 10, 4, 5)
    assert sorted(ep2.classes.tolist()) == [0, 1, 2] and ep2.keys.shape == (5, 3)
    # exclusion (MAML's second episode)
    first = np.array([0, 1, 2, 3, 4])
    ep3 = sample_episode(labels, np.random.default_rng(1), 5, 3, 2, exclude=first)
    assert not set(ep3.classes.tolist()) & set(first.tolist())
    ep4 = sample_episode(labels, np.random.default_rng(1), 10, 3, 2, exclude=first)
    assert set(range(5, 12)) <= set(ep4.classes.tolist())  # topped up from the excluded


def test_stop_rule_fires_above_threshold_and_caps() -> None:
    accs = [0.1, 0.4, 0.3, 0.41, 0.9]
    log = run_episodes(lambda e: (1.0, accs[e]), 100, 0.4, show_progress=False)
    assert log.stopped and log.episodes == 4  # 0.4 is not > 0.4; 0.41 is
    log = run_episodes(lambda e: (1.0, 0.0), 7, 0.4, show_progress=False)
    assert not log.stopped and log.episodes == 7 and len(log.accuracies) == 7


def test_pretrain_contrastive_stops_and_is_deterministic() -> None:
    x, y = _pool()
    cfg = PretrainConfig(
        episode_classes=4, episode_queries=3, episode_groups=2, max_episodes=5, stop_accuracy=2.0
    )  # never fires: runs the cap
    m1, m2 = _encoder(0), _encoder(0)
    log1 = pretrain(m1, x, y, seed=3, config=cfg, show_progress=False)
    log2 = pretrain(m2, x, y, seed=3, config=cfg, show_progress=False)
    assert log1.episodes == 5 and not log1.stopped
    assert log1.losses == log2.losses
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    easy = PretrainConfig(
        episode_classes=4, episode_queries=3, episode_groups=2, max_episodes=50, stop_accuracy=0.0
    )
    log = pretrain(_encoder(0), x, y, seed=3, config=easy, show_progress=False)
    assert log.stopped and log.episodes <= 50 and log.accuracies[-1] > 0.0


def test_pretrain_relation_and_maml_run() -> None:
    x, y = _pool()
    cfg = PretrainConfig(
        episode_classes=4, episode_queries=3, episode_groups=2, max_episodes=2, stop_accuracy=2.0
    )
    torch.manual_seed(0)
    rn = RelationNet(D, (H, W), hidden=8, channels=4, embed_dim=6)
    assert pretrain(rn, x, y, seed=0, config=cfg, show_progress=False).episodes == 2
    enc = _encoder(0)
    before = [p.clone() for p in enc.parameters()]
    maml = PretrainConfig(
        episode_classes=4,
        episode_queries=3,
        episode_groups=2,
        max_episodes=2,
        stop_accuracy=2.0,
        maml=True,
    )
    log = pretrain(enc, x, y, seed=0, config=maml, show_progress=False)
    assert log.episodes == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, enc.parameters(), strict=True))
    with pytest.raises(TypeError, match="MAML"):
        pretrain(rn, x, y, seed=0, config=maml, show_progress=False)


def test_finetune_schedule_and_step_count() -> None:
    assert [finetune_epochs(n) for n in (1, 2, 3, 4, 5)] == [0, 45, 25, 15, 15]
    assert finetune_epochs(7) == 15
    assert steps_per_epoch(3, 5) == 60 and steps_per_epoch(4, 1) == 0
    y = np.repeat(np.arange(3), 4)
    plan = contrastive_finetune_plan(y)
    assert len(plan) == steps_per_epoch(3, 4)
    for j, keys, target in plan:
        assert y[j] == target and keys[target] != j and y[keys[target]] == target
        assert list(y[keys]) == [0, 1, 2]  # one key per class, in class order
    s, sy, _, _ = _support(3, 3)
    log = finetune_contrastive(_encoder(), s, sy, epochs=2, show_progress=False)
    assert log.steps == 2 * steps_per_epoch(3, 3)
    log = finetune_contrastive(_encoder(), s, sy, epochs=2, show_progress=False, batch="query")
    assert log.steps == 2 * 3 * 3  # one step per query image: C * n per epoch
    with pytest.raises(ValueError, match="batch"):
        finetune_contrastive(_encoder(), s, sy, epochs=1, show_progress=False, batch="x")


def test_one_shot_does_no_finetuning() -> None:
    s, sy, _, _ = _support(3, 1)
    enc = _encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    log = finetune_contrastive(enc, s, sy, epochs=finetune_epochs(1), show_progress=False)
    assert log.steps == 0
    # even when epochs are forced, 1-shot has no (query, positive) pair
    assert finetune_contrastive(enc, s, sy, epochs=5, show_progress=False).steps == 0
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    torch.manual_seed(0)
    rn = RelationNet(D, (H, W), hidden=8, channels=4, embed_dim=6)
    assert finetune_relation(rn, s, sy, epochs=45, show_progress=False).steps == 0


def test_predict_shapes_determinism_and_learning() -> None:
    s, sy, q, qy = _support(3, 3)
    preds = []
    for _ in range(2):
        enc = _encoder(5)
        finetune_contrastive(enc, s, sy, epochs=3, show_progress=False)
        scores = predict_contrastive(enc, s, sy, q)
        assert scores.shape == (len(q), 3)
        assert torch.all(scores <= 1 + 1e-5) and torch.all(scores >= -1 - 1e-5)
        preds.append(scores)
    assert torch.equal(preds[0], preds[1])  # same seed, same numbers
    assert (preds[0].argmax(1).numpy() == qy).mean() > 0.6  # separable clusters

    torch.manual_seed(0)
    rn = RelationNet(D, (H, W), hidden=8, channels=4, embed_dim=6)
    log = finetune_relation(rn, s, sy, epochs=2, show_progress=False)
    assert log.steps == 2 * 3 * 2  # C * (n - 1) per epoch
    rs = predict_relation(rn, s, sy, q, batch_size=4)
    assert rs.shape == (len(q), 3) and torch.all((rs > 0) & (rs < 1))
