"""Learner (b) of issue #23 (research.meta_proto) on small synthetic rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from research.meta_proto import (
    MetaConfig,
    halves,
    init_projection,
    learned_proba,
    loo_hits,
    meta_proba,
    meta_train,
    proto_logits,
)

SMALL = MetaConfig(dim=8, meta_steps=300, tune_steps=20, lr=1e-2)


def rows(n_classes: int, per_class: int, seed: int, d: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Classes that differ in the first 4 columns only; the other columns are loud noise
    shared by all classes (the nuisance a projection must learn to drop)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 4)) * 3
    y = np.repeat(np.arange(n_classes), per_class)
    x = rng.normal(size=(len(y), d)) * 2.0
    x[:, :4] = centres[y] + rng.normal(size=(len(y), 4)) * 0.3
    return x.astype(np.float32), y


def test_halves_split_each_class_and_keep_singletons():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    proto, query = halves(y, np.random.default_rng(0))
    assert set(y[proto]) == set(y[query]) == {0, 1, 2}
    both = set(proto) & set(query)
    assert both == {7}  # the single row of class 2 is in both halves, no other row is


def test_proto_logits_shape_and_value():
    w = torch.eye(3)
    xs = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    logits = proto_logits(w, xs, torch.tensor([0, 1]), torch.tensor([[0, 2.0, 0]]), 2, 10.0)
    assert logits.shape == (1, 2)
    assert torch.allclose(logits, torch.tensor([[0.0, 10.0]]))


def test_meta_training_transfers_to_new_classes():
    """Meta-trained on some classes, W separates classes it never saw better than the
    random start does (the nuisance columns dominate a random projection; the first 4
    columns alone give 0.94 here)."""
    x_meta, y_meta = rows(12, 8, seed=0)
    x_new, y_new = rows(4, 10, seed=1)
    support = np.concatenate([np.flatnonzero(y_new == c)[:2] for c in range(4)])
    query = np.setdiff1d(np.arange(len(y_new)), support)

    def accuracy(w: torch.Tensor) -> float:
        p = meta_proba(w, x_new[support], y_new[support], x_new[query], 4, SMALL)
        return float((p.argmax(1) == y_new[query]).mean())

    trained = meta_train(x_meta, y_meta, SMALL, seed=0)
    assert accuracy(init_projection(40, SMALL, seed=0)) < 0.4  # chance: 0.25
    assert accuracy(trained) >= 0.75


def test_same_seed_same_projection():
    x, y = rows(6, 8, seed=2)
    assert torch.equal(meta_train(x, y, SMALL, seed=3), meta_train(x, y, SMALL, seed=3))
    assert not torch.equal(meta_train(x, y, SMALL, seed=3), meta_train(x, y, SMALL, seed=4))


@pytest.mark.parametrize("variant", ["meta_tp", "meta_no_tp", "scratch_tp", "frozen_tp"])
def test_learned_variants_give_probabilities(variant):
    x, y = rows(3, 6, seed=4)
    shot = np.arange(len(y)) < 9
    w = init_projection(40, SMALL, seed=0)
    p = learned_proba(variant, w, x, y, shot, x[:5], 3, SMALL, seed=0)
    assert p.shape == (5, 3)
    assert np.allclose(p.sum(1), 1.0)


def test_transplants_off_ignores_transplant_rows():
    x, y = rows(3, 6, seed=5)
    y = np.tile(np.arange(3), 6)  # every class among the first rows
    shot = np.arange(len(y)) < 6
    w = init_projection(40, SMALL, seed=0)
    changed = x.copy()
    changed[6:] += 100.0  # the transplant rows move, the images as shot do not
    a = learned_proba("meta_no_tp", w, x, y, shot, x[:4], 3, SMALL, seed=0)
    b = learned_proba("meta_no_tp", w, changed, y, shot, x[:4], 3, SMALL, seed=0)
    c = learned_proba("meta_tp", w, changed, y, shot, x[:4], 3, SMALL, seed=0)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_loo_leaves_an_image_with_its_transplants():
    labels = np.array([0, 0, 1, 1, 0, 0, 1])  # images 0-3, then transplants of 0, 0, 3
    source = np.array([0, 1, 2, 3, 0, 0, 3])
    seen = []

    def proba_of(keep: np.ndarray, i: int) -> np.ndarray:
        seen.append((i, set(np.flatnonzero(keep).tolist())))
        return np.eye(2)[[labels[i]]]

    assert loo_hits(proba_of, source, labels, 2) == [1, 1, 1, 1]
    assert seen[0] == (0, {1, 2, 3, 6})
    assert seen[3] == (3, {0, 1, 2, 4, 5})


def test_frozen_uses_the_meta_trained_map_and_scratch_ignores_it():
    x, y = rows(3, 6, seed=6)
    shot = np.ones(len(y), bool)
    w_meta = meta_train(*rows(6, 8, seed=7), SMALL, seed=0)
    frozen = learned_proba("frozen_tp", w_meta, x, y, shot, x[:4], 3, SMALL, seed=0)
    assert np.array_equal(frozen, meta_proba(w_meta, x, y, x[:4], 3, SMALL))
    other = init_projection(40, SMALL, seed=9)
    a = learned_proba("scratch_tp", w_meta, x, y, shot, x[:4], 3, SMALL, seed=0)
    b = learned_proba("scratch_tp", other, x, y, shot, x[:4], 3, SMALL, seed=0)
    assert np.array_equal(a, b)


def test_record_parser_defaults_and_refuses_an_unknown_category():
    from research.records import record_parser

    args = record_parser("A round.\nmore", ["bottle", "tire"]).parse_args(["--out", "x.csv"])
    assert (args.seeds, args.categories, args.out) == ([1, 2, 3, 4, 5], ["bottle", "tire"], "x.csv")
    with pytest.raises(SystemExit):
        record_parser("A round.", ["bottle"]).parse_args(["--out", "x", "--categories", "cable"])
    assert not hasattr(record_parser("A round.").parse_args(["--out", "x"]), "categories")


def test_signal_loo_matches_the_library_leave_one_out_and_pairs_the_expert():
    """The probe's and the reference's leave-one-out equal fsad.recipe.leave_one_out on
    the images as shot, and the expert multiplies the two probabilities of the same image."""
    from fsad.heads import multiply_proba, predict
    from fsad.methods.anomaly_guided import RECIPES
    from fsad.recipe import leave_one_out
    from research.meta_proto import signal_loo

    x, y = rows(3, 4, seed=8)
    x, y = x[[0, *range(4, 12)]], y[[0, *range(4, 12)]]  # 9 images; class 0 has one
    extra = x[:6] + 0.1  # 6 transplants of images 0-5
    xs = np.concatenate([x, extra])
    source = np.concatenate([np.arange(9), np.arange(6)])
    labels = y[source]
    rng = np.random.default_rng(0)
    ref_s = [rng.normal(size=(9, 5)) + y[:, None] for _ in range(4)]  # 4 groups, as hires
    calls = []

    def learned(variant, keep, xq):
        calls.append((variant, int(keep.sum())))
        w = init_projection(40, SMALL, seed=0)
        return learned_proba("frozen_tp", w, xs[keep], labels[keep], keep[keep], xq, 3, SMALL, 0)

    out = signal_loo(xs, labels, source, y, 3, ref_s, learned)
    idx, scores = leave_one_out(RECIPES["anomaly_lr"], [x], y, 3)
    assert out["anomaly_lr"] == pytest.approx(float(np.mean(predict(scores) == y[idx])))
    idx, ref_scores = leave_one_out(RECIPES["hires_poe_proto"], ref_s, y, 3)
    assert out["hires_poe_proto"] == pytest.approx(float(np.mean(predict(ref_scores) == y[idx])))
    # image 0 (alone in its class) is never left out, so the k-th left-out image is i = k + 1;
    # image 1 leaves with its transplant (15 rows - 2), image 6 alone (15 - 1)
    assert list(idx) == list(range(1, 9))
    assert ("meta_tp", 13) in calls and ("meta_tp", 14) in calls
    hits = []
    for k, i in enumerate(idx):
        keep = source != i
        mine = learned("meta_tp", keep, xs[i : i + 1])
        hits.append(predict(multiply_proba([ref_scores[k : k + 1], mine]))[0] == y[i])
    assert out["hires_poe_proto_meta"] == pytest.approx(float(np.mean(hits)))
