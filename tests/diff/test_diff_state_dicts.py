"""State-dict diffs: safetensors and PyTorch files (weights_only), folders, in-memory mappings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from mlark.diff import diff_paths, diff_state_dicts
from mlark.diff.errors import InputNotFound, UnreadableFile


@pytest.fixture()
def pair(tmp_path):
    torch.manual_seed(0)
    a = {
        "enc.weight": torch.randn(8, 4),
        "enc.bias": torch.zeros(4),
        "emb": torch.randn(6).to(torch.bfloat16),
        "old": torch.ones(2),
        "proj": torch.ones(2, 3),
        "head": torch.linspace(-1, 1, 5),
        "same": torch.arange(10, dtype=torch.int64),
    }
    b = {k: v.clone() for k, v in a.items()}
    b["enc.weight"][0, 0] += 0.5
    b["enc.weight"][1, 1] -= 0.25
    b["enc.bias"] = torch.ones(4)
    b["emb"][2] += 1
    del b["old"]
    b["new"] = torch.ones(3)
    b["proj"] = torch.ones(3, 2)
    b["head"] = a["head"].to(torch.float16)
    save_torch(a, tmp_path / "a.safetensors", metadata={"step": "100"})
    save_torch(b, tmp_path / "b.safetensors", metadata={"step": "200"})
    return tmp_path, a, b


def test_statuses_and_value_statistics(pair) -> None:
    tmp, a, b = pair
    d = diff_state_dicts(tmp / "a.safetensors", tmp / "b.safetensors")
    assert d.counts == {"added": 1, "removed": 1, "reshaped": 1, "retyped": 1, "changed": 3, "unchanged": 1}
    assert d.tensor("new").status == "added" and d.tensor("old").status == "removed"
    proj = d.tensor("proj")
    assert (proj.status, proj.shape_a, proj.shape_b, proj.max_abs_diff) == ("reshaped", (2, 3), (3, 2), None)
    head = d.tensor("head")
    assert (head.status, head.dtype_a, head.dtype_b) == ("retyped", "float32", "float16")
    assert head.max_abs_diff == pytest.approx((a["head"] - b["head"].float()).abs().max().item())
    w = d.tensor("enc.weight")
    assert w.status == "changed" and w.changed_elements == 2
    assert w.max_abs_diff == pytest.approx(0.5)
    expected = math.sqrt(0.5**2 + 0.25**2) / a["enc.weight"].norm().item()
    assert w.rel_l2 == pytest.approx(expected, rel=1e-6)
    bias = d.tensor("enc.bias")
    assert bias.rel_l2 == math.inf and bias.max_abs_diff == 1.0  # from all zeros
    emb = d.tensor("emb")
    assert emb.dtype_a == "bfloat16" and emb.changed_elements == 1
    assert emb.max_abs_diff == pytest.approx((a["emb"].float() - b["emb"].float()).abs().max().item())
    assert d.tensor("same").status == "unchanged"
    assert [(v.name, v.a, v.b) for v in d.values] == [("__metadata__.step", "100", "200")]
    assert d.params_a == 32 + 4 + 6 + 2 + 6 + 5 + 10 and d.has_changes


def test_identical_files_have_no_changes(pair) -> None:
    tmp, a, _ = pair
    save_torch(a, tmp / "a2.safetensors", metadata={"step": "100"})
    d = diff_state_dicts(tmp / "a.safetensors", tmp / "a2.safetensors")
    assert not d.has_changes and d.counts["unchanged"] == len(a)


def test_pytorch_files_are_read_with_weights_only(pair) -> None:
    tmp, a, b = pair
    torch.save({"state_dict": b, "epoch": 7, "lr": [0.1, 0.01]}, tmp / "ckpt.pt")
    torch.save(a, tmp / "a.pt")
    d = diff_state_dicts(tmp / "a.pt", tmp / "ckpt.pt")
    assert d.format_a == "pytorch"
    assert d.counts["changed"] == 3 and d.counts["added"] == 1
    assert any("prefix 'state_dict.'" in n for n in d.notes)
    assert {v.name: v.b for v in d.values} == {"epoch": 7, "lr.0": 0.1, "lr.1": 0.01}
    # safetensors against the same weights saved by torch.save
    assert not diff_state_dicts(tmp / "a.safetensors", tmp / "a.pt").changes


class Evil:
    def __reduce__(self):
        return (open, ("/tmp/mlark-diff-pwned", "w"))


def test_pickles_beyond_weights_are_refused_not_run(tmp_path) -> None:
    import os

    marker = "/tmp/mlark-diff-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"w": torch.ones(2), "obj": Evil()}, tmp_path / "evil.pt")
    if os.path.exists(marker):
        os.remove(marker)  # torch.save itself does not call __reduce__'s callable, but be sure
    with pytest.raises(UnreadableFile) as err:
        diff_state_dicts(tmp_path / "evil.pt", tmp_path / "evil.pt")
    assert "weights_only=True" in str(err.value) and str(tmp_path / "evil.pt") in str(err.value)
    assert not os.path.exists(marker)


def test_unreadable_and_missing_files(tmp_path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}!!!!!")
    with pytest.raises(UnreadableFile) as err:
        diff_state_dicts(bad, bad)
    assert str(bad) in str(err.value) and "safetensors" in str(err.value)
    trunc = tmp_path / "trunc.safetensors"
    save_numpy({"w": np.ones(1000, dtype=np.float32)}, trunc)
    trunc.write_bytes(trunc.read_bytes()[:500])
    with pytest.raises(UnreadableFile, match="trunc.safetensors"):
        diff_state_dicts(trunc, trunc)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip and not a pickle")
    with pytest.raises(UnreadableFile, match="junk.pt as PyTorch state dict"):
        diff_state_dicts(junk, junk)
    with pytest.raises(InputNotFound):
        diff_state_dicts(tmp_path / "nope.safetensors", junk)


def test_sharded_folders(tmp_path) -> None:
    for name, scale in (("v1", 1.0), ("v2", 2.0)):
        folder = tmp_path / name
        folder.mkdir()
        save_numpy({"a": np.ones(3, np.float32) * scale}, folder / "model-00001-of-00002.safetensors")
        save_numpy({"b": np.zeros(2, np.float32)}, folder / "model-00002-of-00002.safetensors")
        (folder / "model.safetensors.index.json").write_text("{}")
    d = diff_state_dicts(tmp_path / "v1", tmp_path / "v2")
    assert d.counts["changed"] == 1 and d.counts["unchanged"] == 1
    assert d.tensor("a").max_abs_diff == 1.0
    save_numpy({"a": np.ones(1, np.float32)}, tmp_path / "v2" / "extra.safetensors")
    with pytest.raises(UnreadableFile, match="tensor 'a' is in both"):
        diff_state_dicts(tmp_path / "v1", tmp_path / "v2")


def test_in_memory_mappings_nan_and_chunking(monkeypatch) -> None:
    import mlark.diff.tensors.compare as compare

    monkeypatch.setattr(compare, "CHUNK", 7)  # many chunks, with a short last one
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 10)).astype(np.float32)
    y = x.copy()
    y[3, 4] = np.nan
    y[9, 9] += 2
    z = x.copy()
    z[0, 0] = np.nan
    d = diff_state_dicts({"x": x, "n": z, "i": np.arange(5)}, {"x": y, "n": z.copy(), "i": np.arange(5) * 2})
    t = d.tensor("x")
    assert t.status == "changed" and t.changed_elements == 2 and math.isnan(t.max_abs_diff)
    assert d.tensor("n").status == "unchanged"  # NaN in the same place, same bits
    i = d.tensor("i")
    assert i.max_abs_diff == 4 and i.changed_elements == 4
    assert i.rel_l2 == pytest.approx(np.linalg.norm(np.arange(5)) / np.linalg.norm(np.arange(5)))
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert {e["name"]: e["max_abs_diff"] for e in data["tensors"]}["x"] == "NaN"
    assert data["unchanged"] == ["n"]


def test_large_tensor_matches_numpy(tmp_path) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=3_000_001).astype(np.float32)  # three chunks of 2**20 and a bit
    b = a.copy()
    idx = rng.choice(a.size, 1000, replace=False)
    b[idx] += rng.normal(size=1000).astype(np.float32)
    save_numpy({"w": a}, tmp_path / "a.safetensors")
    save_numpy({"w": b}, tmp_path / "b.safetensors")
    t = diff_state_dicts(tmp_path / "a.safetensors", tmp_path / "b.safetensors").tensor("w")
    diff = a.astype(np.float64) - b.astype(np.float64)
    assert t.changed_elements == int(np.count_nonzero(diff))
    assert t.max_abs_diff == pytest.approx(np.abs(diff).max())
    assert t.rel_l2 == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(a.astype(np.float64)))


def test_render_markdown_and_dispatch(pair) -> None:
    tmp, _, _ = pair
    d = diff_paths(tmp / "a.safetensors", tmp / "b.safetensors")
    text = d.render(width=80)
    assert "1 added, 1 removed, 1 reshaped, 1 retyped, 3 changed, 1 unchanged" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    wide = d.render(width=160)
    assert "[2,3] -> [3,2]" in wide and "float32 -> float16" in wide
    md = d.to_markdown()
    assert "| tensor | status |" in md and "| enc.weight | changed |" in md
    assert d.summary().endswith("1 added, 1 removed, 1 reshaped, 1 retyped, 3 changed, 1 unchanged")
