"""Run configurations: the named YAML files, validation messages, and the config hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsad.config import RunConfig, available_configs, load_config
from fsad.errors import ConfigError


def test_named_configs_load_and_validate():
    names = available_configs()
    assert {"ci", "quick", "paper", "ablation"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name and cfg.description
    paper = load_config("paper")
    assert paper.shots == (1, 2, 3, 4, 5) and paper.seeds == (1, 2, 3, 4, 5)
    assert paper.methods == ("contrastive",)
    ablation = load_config("ablation")
    assert ablation.shots == (2,) and len(ablation.methods) == 6
    assert ablation.methods[-1] == "contrastive_shapes"
    assert load_config("ci").textures is None  # CI needs no DTD


def test_hash_is_stable_and_covers_what_changes_numbers():
    cfg = RunConfig(engine={"backbone": "lite0", "coreset_ratio": 0.1}, options={"m": {"lr": 1e-4}})
    h = cfg.config_hash("m")
    assert h == RunConfig(
        engine={"coreset_ratio": 0.1, "backbone": "lite0"}, options={"m": {"lr": 1e-4}}
    ).config_hash("m")
    assert len(h) == 12 and int(h, 16) >= 0
    # the grid's extent and the name do not change a row's numbers
    assert cfg.replace(shots=[2], seeds=[9], categories=["x"], name="other").config_hash("m") == h
    # everything that does, changes the hash
    assert cfg.replace(engine={"backbone": "lite1", "coreset_ratio": 0.1}).config_hash("m") != h
    assert cfg.replace(options={"m": {"lr": 1e-3}}).config_hash("m") != h
    assert cfg.replace(include_good=True).config_hash("m") != h
    assert cfg.replace(textures="/dtd").config_hash("m") != h
    assert cfg.replace(dataset="mvtec_3d").config_hash("m") != h
    # options of another method leave this method's rows valid
    assert cfg.replace(options={"m": {"lr": 1e-4}, "other": {"x": 1}}).config_hash("m") == h


def test_hash_literal_is_pinned():
    # a change of this value invalidates every stored result row: bump CONFIG_FORMAT on purpose
    assert RunConfig().config_hash("contrastive") == "94d0876bfe19"


def test_yaml_round_trip(tmp_path: Path):
    cfg = load_config("paper").replace(options={"contrastive": {"epochs": 3}})
    path = tmp_path / "saved.yaml"
    path.write_text(cfg.to_yaml())
    back = load_config(path)
    assert back == cfg and back.config_hash("contrastive") == cfg.config_hash("contrastive")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shots: [1, 0]\n", "shots must be >= 1"),
        ("shots: [1, 1]\n", "repeats a value"),
        ("seeds: [a]\n", "list of integers"),
        ("dataset: imagenet\n", "unknown dataset 'imagenet'"),
        ("methodz: [x]\n", "unknown key(s) methodz"),
        ("include_good: maybe\n", "include_good must be true or false"),
        ("shots: [1\n", "cannot parse config"),
        ("options: {m: 3}\n", "'options' must map"),
    ],
)
def test_invalid_yaml_names_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown config 'nope' \(known: .*paper"):
        load_config("nope")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("missing.yaml")
