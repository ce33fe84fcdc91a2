"""The model artefact: round trip, atomic replace, and refusal of bad or tampered models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsad.artifact import (
    FORMAT_VERSION,
    MANIFEST,
    Artifact,
    ModelError,
    _manifest_digest,
    load_artifact,
    save_artifact,
    sha256_bytes,
)
from fsad.errors import FsadError


def _artifact() -> Artifact:
    g = torch.Generator().manual_seed(0)
    return Artifact(
        meta={"classes": ["crack", "stain"], "threshold": 1.5},
        tensors={
            "bank": {"features": torch.randn(50, 8, generator=g)},
            "head": {"prototypes": torch.randn(2, 8, generator=g), "labels": torch.arange(4)},
        },
    )


def _rewrite_manifest(model: Path, edit) -> None:
    """Edit the manifest and re-seal its own hash (so only the edited check can fire)."""
    manifest = json.loads((model / MANIFEST).read_text())
    edit(manifest)
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (model / MANIFEST).write_text(json.dumps(manifest))


def test_round_trip_is_exact(tmp_path: Path) -> None:
    art = _artifact()
    out = save_artifact(tmp_path / "m", art)
    back = load_artifact(out)
    assert back.meta == art.meta
    assert back.format_version == FORMAT_VERSION
    for group, tensors in art.tensors.items():
        for name, t in tensors.items():
            assert torch.equal(back.tensors[group][name], t)
            assert back.tensors[group][name].dtype == t.dtype
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == {"bank.safetensors", "head.safetensors"}
    assert manifest["files"]["bank.safetensors"] == sha256_bytes(
        (out / "bank.safetensors").read_bytes()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary leftovers


def test_replaces_existing_model_but_not_other_folders(tmp_path: Path) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    art2 = _artifact()
    art2.meta["threshold"] = 2.0
    save_artifact(out, art2)
    assert load_artifact(out).meta["threshold"] == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.png").write_bytes(b"x")
    with pytest.raises(ModelError, match="non-empty folder"):
        save_artifact(other, _artifact())
    assert (other / "keep.png").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="not a folder"):
        save_artifact(tmp_path / "file", _artifact())


def test_tampered_tensor_file_is_refused(tmp_path: Path) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    data = bytearray((out / "bank.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (out / "bank.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256.*bank.safetensors"):
        load_artifact(out)


def test_edited_manifest_is_refused(tmp_path: Path) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["meta"]["classes"] = ["stain", "crack"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="modified after saving"):
        load_artifact(out)


@pytest.mark.parametrize("version, hint", [(FORMAT_VERSION + 1, "upgrade fsad"), (0, "re-fit")])
def test_incompatible_format_version_is_refused(tmp_path: Path, version: int, hint: str) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    _rewrite_manifest(out, lambda m: m.update(format_version=version, fsad_version="9.9"))
    with pytest.raises(ModelError, match=f"incompatible model format version {version}.*{hint}"):
        load_artifact(out)


def test_missing_and_malformed_models(tmp_path: Path) -> None:
    with pytest.raises(FsadError, match="model not found"):
        load_artifact(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model.json"):
        load_artifact(tmp_path / "empty")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(ModelError, match="must be a folder"):
        load_artifact(tmp_path / "f.json")
    out = save_artifact(tmp_path / "m", _artifact())
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_artifact(out)


def test_missing_tensor_file_and_bad_names(tmp_path: Path) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    (out / "head.safetensors").unlink()
    with pytest.raises(ModelError, match="missing or unreadable.*head.safetensors"):
        load_artifact(out)
    out = save_artifact(tmp_path / "m2", _artifact())
    _rewrite_manifest(out, lambda m: m["files"].update({"../evil.safetensors": "0" * 64}))
    with pytest.raises(ModelError, match="invalid file name"):
        load_artifact(out)


def test_non_safetensors_payload_with_matching_hash_is_refused(tmp_path: Path) -> None:
    out = save_artifact(tmp_path / "m", _artifact())
    junk = b"\x80\x04not a tensor file at all"
    (out / "head.safetensors").write_bytes(junk)
    _rewrite_manifest(out, lambda m: m["files"].update({"head.safetensors": sha256_bytes(junk)}))
    with pytest.raises(ModelError, match="not valid safetensors"):
        load_artifact(out)
