"""The paper's registered methods on a fake residual engine (tiny D, 4 x 4 grids)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fsad.methods.paper as paper
from fsad.data import CategoryData, Sample
from fsad.errors import ConfigError
from fsad.methods import available_methods, get_method
from fsad.task import FewShotTask

D, H, W, C = 6, 4, 4, 3
NAMES = ("contrastive", "contrastive_shapes", "contrastive_nopretrain", "contrastive_raw",
         "contrastive_maml", "relationnet", "direct")  # fmt: skip
TINY = {"max_episodes": 3, "stop_accuracy": 1.0, "episode_classes": 4, "episode_queries": 3,
        "episode_groups": 2, "finetune_epochs": {2: 2, 3: 2}, "relation_epochs": 2,
        "progress": False}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeEngine:
    """Residual maps = class centre + noise, derived from the sample's file name."""

    def __init__(self, offset: float = 0.0) -> None:
        self.centres = torch.randn(C, D, H, W, generator=torch.Generator().manual_seed(0)) * 2
        self.offset = offset
        self.calls = 0

    def residuals(self, samples: list[Sample]) -> torch.Tensor:
        self.calls += 1
        out = []
        for s in samples:
            cls = int(Path(s.path).stem.split("_")[0][3:])
            g = torch.Generator().manual_seed(zlib.crc32(str(s.path).encode()))
            out.append(self.centres[cls] + 0.5 * torch.randn(D, H, W, generator=g))
        return torch.stack(out)

    def features(self, samples: list[Sample]) -> torch.Tensor:
        return self.residuals(samples) + self.offset + 1.0


def _sample(cls: int, i: int, label: str) -> Sample:
    return Sample(Path(f"/nowhere/cls{cls}_{i:03d}.png"), "fake", "test", label)


def make_task(shots: int, seed: int = 1, options: dict | None = None, engine=None) -> FewShotTask:
    classes = [f"defect{c}" for c in range(C)]
    support = [_sample(c, i, classes[c]) for c in range(C) for i in range(shots)]
    query = [_sample(c, i, "?") for c in range(C) for i in range(shots, shots + 4)]
    cat = CategoryData("fake", "mvtec_ad", Path("/nowhere"), train=[], test=support)
    return FewShotTask(
        dataset="mvtec_ad", category=cat, shots=shots, seed=seed, classes=classes,
        support=support, support_labels=np.repeat(np.arange(C), shots), query=query,
        engine=engine or FakeEngine(), options=dict(TINY if options is None else options),
    )  # fmt: skip


class FakeDataset:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def key(self) -> dict:
        return {"fake_synth": self.seed}


@pytest.fixture()
def fake_synth(monkeypatch: pytest.MonkeyPatch, tmp_cache: Path) -> dict:
    """Replace the synthetic pool by random labelled maps; count pool builds."""
    counter = {"pools": 0}

    def pool(task, dataset, raw, cache):
        counter["pools"] += 1
        g = torch.Generator().manual_seed(dataset.seed)
        labels = np.repeat(np.arange(6), 4)
        x = torch.randn(6, D, H, W, generator=g)[labels] + 0.3 * torch.randn(
            24, D, H, W, generator=g
        )
        return x, labels

    monkeypatch.setattr(paper, "_pseudo_dataset", lambda task, opts, cache: FakeDataset(task.seed))
    monkeypatch.setattr(paper, "_synthetic_pool", pool)
    monkeypatch.setattr(paper, "_pool_key", lambda task, ds, raw: [ds.key(), raw])
    return counter


def test_all_paper_methods_are_registered() -> None:
    names = available_methods()
    for n in NAMES:
        assert n in names and names[n]


def test_options_are_validated() -> None:
    assert paper.parse_options({}).max_episodes == 1000
    opts = paper.parse_options({"finetune_epochs": {"2": 3}, "code_bugs": True})
    assert opts.finetune_epochs == {1: 0, 2: 3, 3: 25, 4: 15, 5: 15}
    assert opts.pretrain_config().freeze_bn_after == 30
    with pytest.raises(ConfigError, match="unknown option.*max_epsiodes"):
        paper.parse_options({"max_epsiodes": 3})
    with pytest.raises(ConfigError, match="code_bugs"):
        paper.parse_options({"code_bugs": "yes"})


def test_contrastive_runs_caches_pretraining_and_is_deterministic(fake_synth: dict) -> None:
    method = get_method("contrastive")
    p2 = method(make_task(2))
    assert p2.labels.shape == (C * 4,) and p2.scores.shape == (C * 4, C)
    assert p2.labels.dtype == np.int64 and set(p2.labels.tolist()) <= set(range(C))
    assert p2.info["pretrain"]["episodes"] == 3 and not p2.info["pretrain"]["cached"]
    assert p2.info["finetune"]["steps"] == 2 * C * 2 * 1  # epochs * C * n * (n - 1)
    # another shot count of the same (category, seed) reuses the pretrained weights
    p3 = method(make_task(3))
    assert p3.info["pretrain"]["cached"] and fake_synth["pools"] == 1
    # same seed, same numbers (cached weights give what a fresh pretraining gave)
    again = method(make_task(2))
    assert np.array_equal(again.labels, p2.labels) and np.allclose(again.scores, p2.scores)
    # another seed pretrains again
    method(make_task(2, seed=2))
    assert fake_synth["pools"] == 2


def test_one_shot_uses_the_pretrained_model_directly(fake_synth: dict) -> None:
    p = get_method("contrastive")(make_task(1))
    assert p.info["finetune"] == {"epochs": 0, "steps": 0, "final_loss": None}
    assert p.labels.shape == (C * 4,)


def test_variants_run(fake_synth: dict) -> None:
    for name in ("contrastive_nopretrain", "contrastive_raw", "contrastive_maml", "relationnet"):
        p = get_method(name)(make_task(2))
        assert p.scores.shape == (C * 4, C), name
        assert ("pretrain" in p.info) == (name != "contrastive_nopretrain"), name
    # the separable fake task is solved by the residual contrastive head
    p = get_method("contrastive_nopretrain")(
        make_task(3, options={"progress": False, "finetune_epochs": {3: 5}})
    )
    truth = np.repeat(np.arange(C), 4)
    assert (p.labels == truth).mean() >= 0.75


def test_contrastive_shapes_pretrains_on_shape_varying_classes(
    monkeypatch: pytest.MonkeyPatch, fake_synth: dict
) -> None:
    """The same pipeline as contrastive, its synthetic classes from the "shapes" generator
    (a run's own generator option still wins)."""
    seen = []
    monkeypatch.setattr(
        paper, "_pseudo_dataset",
        lambda task, opts, cache: seen.append(opts.generator) or FakeDataset(task.seed),
    )  # fmt: skip
    get_method("contrastive_shapes")(make_task(2))
    get_method("contrastive_shapes")(make_task(2, options={**TINY, "generator": "polygon"}))
    get_method("contrastive")(make_task(2))
    assert seen == ["shapes", "polygon", "perlin"]


def test_code_bugs_option_changes_the_numbers(fake_synth: dict) -> None:
    a = get_method("contrastive")(make_task(2))
    b = get_method("contrastive")(make_task(2, options={**TINY, "code_bugs": True}))
    assert not np.allclose(a.scores, b.scores)


def test_direct_trains_only_a_new_head(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_embed(samples, fc, cache, batch_size=16):
        cls = np.array([int(Path(s.path).stem.split("_")[0][3:]) for s in samples])
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(C, 10, generator=g) * 3
        return centres[cls] + 0.1 * torch.randn(len(samples), 10, generator=g)

    monkeypatch.setattr(paper, "image_embeddings", fake_embed)
    task = make_task(2, options={"direct_lr": 1e-2, "direct_epochs": 30, "cache": False})
    p = get_method("direct")(task)
    assert p.scores.shape == (C * 4, C) and np.allclose(p.scores.sum(1), 1.0, atol=1e-5)
    assert p.info["steps"] == 30 * C * 2
    assert (p.labels == np.repeat(np.arange(C), 4)).mean() > 0.9
    assert np.array_equal(get_method("direct")(task).labels, p.labels)
