"""diff through the Python API on a real repository: dataset versions (files, a Parquet table by key),
model versions saved with mlark.models (scikit-learn, PyTorch, ONNX), runs, and every kind of bad input.
The repository is built once per module by ``diff_testkit``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")
pytest.importorskip("onnx")

import diff_testkit  # noqa: E402

import mlark  # noqa: E402
from mlark.diff import DuplicateKeys, KeyColumnMissing, KindMismatch, OnnxDiff, TableDiff, TensorDiff  # noqa: E402
from mlark.diff import UnreadableFile  # noqa: E402
from mlark.errors import InvalidInput, InvalidRef, NotFound  # noqa: E402
from mlark.ops.diff import RunDiff, VersionDiff, diff  # noqa: E402
from mlark.ops.repo import Repo  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info = diff_testkit.build(tmp_path_factory.mktemp("diff") / "project")
    repo = Repo.open(info["root"])
    try:
        diff_testkit.broken_versions(repo, info["work"])
    finally:
        repo.close()
    return info


@pytest.fixture
def repo(built: dict[str, Any]) -> Iterator[Repo]:
    r = Repo.open(built["root"])
    yield r
    r.close()
    leftovers = list((built["root"] / ".mlark" / "tmp").glob("diff-*"))
    assert not leftovers, f"temporary copies left behind: {leftovers}"


# --------------------------------------------------------------------------- files


def test_files_added_removed_modified_renamed_and_shared_bytes(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlark.objectstore.store import ObjectStore

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a files diff must not read file bytes")

    monkeypatch.setattr(ObjectStore, "read_chunks", refuse)
    monkeypatch.setattr(ObjectStore, "read_blocks", refuse)
    d = diff(repo, "churn-data:v1", "churn-data@latest")
    assert isinstance(d, VersionDiff) and d.type == "dataset" and d.has_changes
    f = d.files
    assert [c.path for c in f.added] == ["extra.json"]
    assert [c.path for c in f.removed] == ["notes.txt"]
    assert [c.path for c in f.modified] == ["README.txt", "big.bin", "train.parquet"]
    assert [(c.old_path, c.path) for c in f.renamed] == [("docs/schema.md", "schema.md")]
    assert f.renamed[0].shared_bytes == f.renamed[0].size_b > 0
    assert [c.path for c in f.unchanged] == ["same.txt"]
    assert f.counts == {"added": 1, "removed": 1, "modified": 3, "renamed": 1, "unchanged": 1}
    readme = next(c for c in f.modified if c.path == "README.txt")
    assert (readme.size_a, readme.size_b) == (len("May export\n"), len("May export, relabelled\n"))
    assert f.removed[0].size_a == len("to be removed\n") and f.added[0].size_b == len('{"a": 1}\n')

    # shared bytes from the trees: the distinct chunks both versions reference
    ta, tb = repo.tree("churn-data:v1"), repo.tree("churn-data:v2")
    sizes_a = {c.digest: c.size for e in ta.files() for c in e.chunks}
    sizes_b = {c.digest: c.size for e in tb.files() for c in e.chunks}
    assert f.shared_bytes == sum(s for dg, s in sizes_b.items() if dg in sizes_a)
    assert f.stored_b == sum(sizes_b.values()) and f.new_bytes == f.stored_b - f.shared_bytes
    big = next(c for c in f.modified if c.path == "big.bin")
    assert 0.8 * big.size_b < big.shared_bytes < big.size_b  # an edit in the middle keeps most chunks
    assert f.shared_bytes > 0.9 * f.size_b


def _file(path: str, content: bytes, mode: int = 0o644, chunk: int = 4) -> Any:
    from blake3 import blake3

    from mlark.core.tree import ChunkRef, Entry

    parts = [content[i:i + chunk] for i in range(0, len(content), chunk)]
    return Entry(path, "file", mode=mode, size=len(content), digest=blake3(content).hexdigest(),
                 chunks=tuple(ChunkRef(blake3(p).hexdigest(), len(p)) for p in parts))


def test_tree_diff_rules() -> None:
    from mlark.core.tree import Entry, Tree
    from mlark.ops.diff_files import diff_trees

    a = Tree((
        _file("same.txt", b"same"), _file("exec.sh", b"#!/bin/sh"), _file("e1", b""), _file("x/dup1", b"dupdup"),
        _file("x/dup2", b"dupdup"), _file("becomes-link", b"data"), Entry("link", "symlink", target="same.txt"),
        Entry("empty", "dir", mode=0o755), _file("grow.bin", b"aaaabbbbcccc"),
    ))
    b = Tree((
        _file("same.txt", b"same"), _file("exec.sh", b"#!/bin/sh", mode=0o755), _file("e2", b""),
        _file("y/dup1", b"dupdup"), _file("x/dup2", b"dupdup"), Entry("becomes-link", "symlink", target="same.txt"),
        Entry("link", "symlink", target="exec.sh"), Entry("empty", "dir", mode=0o700),
        _file("grow.bin", b"aaaabbbbccccdddd"),
    ))
    d = diff_trees(a, b)
    status = {(c.status, c.old_path, c.path, c.type) for c in d.changes}
    assert status == {
        ("unchanged", None, "same.txt", "file"), ("unchanged", None, "x/dup2", "file"),
        ("modified", None, "exec.sh", "file"), ("modified", None, "link", "symlink"),
        ("modified", None, "empty", "dir"), ("modified", None, "grow.bin", "file"),
        ("renamed", "x/dup1", "y/dup1", "file"),
        ("added", None, "e2", "file"), ("removed", None, "e1", "file"),  # empty files are not paired as renames
        ("removed", None, "becomes-link", "file"), ("added", None, "becomes-link", "symlink"),
    }
    by_path = {(c.status, c.path): c for c in d.changes}
    assert by_path["modified", "exec.sh"].what() == "mode 644 -> 755"
    assert by_path["modified", "link"].what() == "link same.txt -> exec.sh"
    assert by_path["modified", "empty"].what() == "empty folder, mode 755 -> 700"
    assert by_path["modified", "grow.bin"].shared_bytes == 12  # aaaa bbbb cccc kept, dddd new
    assert d.shared_bytes == sum(len(p) for p in (b"same", b"#!/b", b"in/s", b"h", b"dupd", b"up", b"aaaa",
                                                 b"bbbb", b"cccc"))
    assert d.new_bytes == 4 and d.files_a == 7 and d.files_b == 6


def test_same_version_and_objects(repo: Repo) -> None:
    v1 = repo.resolve("churn-data:v1")
    d = diff(repo, v1, "churn-data:v1")
    assert not d.has_changes and d.files.counts["unchanged"] == len(repo.tree(v1).entries)
    assert "identical content" in d.summary()
    prefix = v1.digest[:8]
    assert diff(repo, f"churn-data:{prefix}", "churn-data@latest").b.ref == "churn-data:v2"


def test_all_databases_give_the_same_files_diff(database_url: str, tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "p", database=database_url, author="bob")
    try:
        diff_testkit.dataset_versions(repo, tmp_path / "w")
        d = diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id")
        assert d.files.counts == {"added": 1, "removed": 1, "modified": 3, "renamed": 1, "unchanged": 1}
        assert d.tables["train.parquet"].rows.changed == 2
    finally:
        repo.close()


# --------------------------------------------------------------------------- tables


def test_table_by_key(repo: Repo) -> None:
    d = diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id")
    t = d.tables["train.parquet"]
    assert isinstance(t, TableDiff)
    assert (t.rows.added, t.rows.removed, t.rows.changed) == (1, 1, 2)
    assert t.rows.changed_by_column == {"plan": 1, "spend": 2}
    assert t.a.path == "churn-data:v1/train.parquet" and t.b.path == "churn-data:v2/train.parquet"
    assert [(r.key, sorted(r.changes)) for r in t.changed_rows] == [({"customer_id": 10}, ["spend"]),
                                                                    ({"customer_id": 20}, ["plan", "spend"])]
    assert t.changed_rows[1].changes["plan"][1] == "enterprise"
    assert "churn-data:v2/train.parquet" in d.render(width=120)


def test_table_by_content_and_without_a_path(repo: Repo) -> None:
    d = diff(repo, "churn-data:v1", "churn-data:v2", table=True)  # one table file in each version
    t = d.tables["train.parquet"]
    assert (t.rows.added, t.rows.removed) == (3, 3)  # no key: a changed row is one removed plus one added
    d = diff(repo, "churn-data:v1", "churn-data:v2", key=["customer_id"])  # a key implies the table
    assert d.tables["train.parquet"].rows.changed == 2


def test_table_read_from_the_run_cache_only_when_it_matches(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlark.ops import diff_local

    cached = repo.meta_dir / "cache" / "versions" / repo.resolve("churn-data:v1").digest / "train.parquet"
    assert cached.exists()  # the runs of the test kit used v1 and v2
    written: list[str] = []
    original = diff_local.LocalFiles._write
    monkeypatch.setattr(diff_local.LocalFiles, "_write",
                        lambda self, entry, target: (written.append(entry.path), original(self, entry, target))[1])
    diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id")
    assert written == []  # both sides came from the verified cache

    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF  # someone edited the cached copy: it is not used
    cached.write_bytes(bytes(data))
    try:
        d = diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id")
        assert written == ["train.parquet"] and d.tables["train.parquet"].rows.changed == 2
    finally:
        data[100] ^= 0xFF
        cached.write_bytes(bytes(data))


# --------------------------------------------------------------------------- models


def test_sklearn_signature_and_requirements(repo: Repo) -> None:
    d = diff(repo, "churn-lr:v1", "churn-lr:v2")
    m = d.manifest
    assert m is not None and m.has_changes
    assert [(c.name, c.status, c.a, c.b) for c in m.inputs] == [("calls", "changed", "int64", "float64"),
                                                                 ("spend", "added", None, "float64")]
    assert [(c.name, c.status, c.b) for c in m.requirements] == [("pandas", "added", "pandas>=2")]
    assert not [c for c in m.fields if c.name == "flavor"]
    assert d.models == {}  # skops files are not weights the engines read
    assert "model.skops" in [c.path for c in d.files.modified]
    text = d.render(width=120)
    assert "input spend" in text and "pandas>=2" in text


def test_pytorch_one_layer_changed(repo: Repo) -> None:
    d = diff(repo, "churn-net:v1", "churn-net:v2")
    t = d.models["model.safetensors"]
    assert isinstance(t, TensorDiff)
    assert [x.name for x in t.tensors if x.status == "changed"] == ["body.2.weight"]
    assert {x.name for x in t.tensors if x.status == "unchanged"} == {"body.0.weight", "body.0.bias", "body.2.bias"}
    changed = next(x for x in t.tensors if x.name == "body.2.weight")
    assert changed.max_abs_diff == pytest.approx(0.5) and changed.changed_elements == 16
    assert t.a == "churn-net:v1/model.safetensors"
    assert d.manifest is not None and not d.manifest.has_changes


def test_onnx_slice_changed(repo: Repo) -> None:
    d = diff(repo, "churn-onnx:v1", "churn-onnx:v2")
    o = d.models["model.onnx"]
    assert isinstance(o, OnnxDiff)
    changes = o.changed_nodes("Slice")
    assert len(changes) == 1 and o.nodes_unchanged == 1
    inputs = {i.name: i for i in changes[0].inputs}
    assert list(inputs["starts"].a.values) == [0] and list(inputs["starts"].b.values) == [1]
    assert list(inputs["ends"].a.values) == [3] and list(inputs["ends"].b.values) == [4]


def test_registered_model_references(repo: Repo) -> None:
    from mlark.ops import registry

    registry.register(repo, "churn-torch", "churn-net:v1", "First net")
    registry.register(repo, "churn-torch", "churn-net:v2", "Output layer fine-tuned")
    d = diff(repo, "models:/churn-torch/1", "models:/churn-torch@latest")
    assert (d.a.ref, d.b.ref) == ("churn-net:v1", "churn-net:v2")
    assert "model.safetensors" in d.models


# --------------------------------------------------------------------------- runs


def test_runs_side_by_side(repo: Repo, built: dict[str, Any]) -> None:
    d = diff(repo, f"run:{built['run_a']}", f"run:{built['run_b']}")
    assert isinstance(d, RunDiff) and d.has_changes
    params = {r.key: r for r in d.params}
    assert params["max_depth"].values == (4, 8) and params["max_depth"].deltas[1] == 4
    assert not params["lr"].differs and params["lr"].deltas[1] == 0
    metrics = {r.label: r for r in d.metrics}
    assert metrics["val_auc.last"].deltas[1] == pytest.approx(0.04)
    assert not metrics["loss.last"].differs
    assert [(t.name, t.a, t.b) for t in d.tags] == [("seed", "4", "8")]
    assert (d.inputs.added, d.inputs.removed) == (("churn-data:v2",), ("churn-data:v1",))
    only = d.only_differences()
    assert [r.key for r in only.params] == ["max_depth"] and {r.key for r in only.metrics} == {"val_auc"}
    assert "lr" not in only.render(width=120) and "lr" in d.render(width=120)


def test_run_objects_and_prefixes(repo: Repo, built: dict[str, Any]) -> None:
    from mlark.ops.run_search import get_run

    a, b = get_run(repo, built["run_a"]), get_run(repo, built["run_b"])
    assert diff(repo, a, b, only_diff=True).only_diff
    width = next(n for n in range(6, 37) if built["run_a"][:n] != built["run_b"][:n])
    d = diff(repo, f"run:{built['run_a'][:width]}", f"run:{built['run_b'][:width]}")
    assert (d.a.id, d.b.id) == (built["run_a"], built["run_b"])


# --------------------------------------------------------------------------- output


def test_json_and_markdown(repo: Repo, built: dict[str, Any]) -> None:
    d = diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id")
    doc = json.loads(d.to_json())
    assert doc["kind"] == "version" and doc["type"] == "dataset" and doc["has_changes"] is True
    assert doc["files"]["counts"]["renamed"] == 1 and doc["files"]["renamed"][0]["old_path"] == "docs/schema.md"
    assert doc["tables"]["train.parquet"]["rows"]["changed"] == 2 and doc["manifest"] is None
    md = d.to_markdown()
    lines = md.splitlines()
    assert lines[0] == "## Diff `churn-data:v1` -> `churn-data:v2` (dataset)"
    headings = [line for line in lines if line.startswith("#")]
    assert headings[:3] == [lines[0], "### Files", "### Table `train.parquet`"]
    assert "#### Rows" in headings and not any(h.startswith("### Table diff") for h in headings)
    assert "| renamed | docs/schema.md -> schema.md | 1.6 KiB | 1.6 KiB |" in md

    for a, b, key in (("churn-net:v1", "churn-net:v2", "model.safetensors"), ("churn-onnx:v1", "churn-onnx:v2",
                                                                                "model.onnx")):
        doc = json.loads(json.dumps(diff(repo, a, b).to_dict(), allow_nan=False))
        assert doc["models"][key]["has_changes"] is True and doc["manifest"] is not None
    md = diff(repo, "churn-lr:v1", "churn-lr:v2").to_markdown()
    assert "### Model manifest" in md and "| input spend | added | - | float64 |" in md

    r = diff(repo, f"run:{built['run_a']}", f"run:{built['run_b']}", only_diff=True)
    doc = json.loads(r.to_json())
    assert doc["kind"] == "run" and [p["key"] for p in doc["params"]] == ["max_depth"]
    assert doc["params"][0]["values"] == [4, 8] and doc["inputs"]["added"] == ["churn-data:v2"]
    md = r.to_markdown()
    assert md.startswith("## Diff run `rf-depth-4` -> run `rf-depth-8`")
    assert "### Params" in md and "| max_depth | 4 | 8 | +4 | yes |" in md


# --------------------------------------------------------------------------- bad input


def test_different_types_are_refused(repo: Repo, built: dict[str, Any]) -> None:
    with pytest.raises(KindMismatch) as err:
        diff(repo, "churn-data:v1", "churn-lr:v1")
    assert "churn-data:v1 (a dataset version)" in str(err.value) and "churn-lr:v1 (a model version)" in str(err.value)
    with pytest.raises(KindMismatch, match=r"\(a run\) with churn-data:v1 \(a dataset version\)"):
        diff(repo, f"run:{built['run_a']}", "churn-data:v1")
    assert isinstance(err.value, InvalidInput)


def test_tables_that_do_not_parse_or_do_not_fit(repo: Repo) -> None:
    with pytest.raises(UnreadableFile) as err:
        diff(repo, "broken-data:v1", "broken-data:v2", table="train.parquet")
    message = str(err.value)
    assert "broken-data:v2/train.parquet" in message and ".mlark" not in message
    assert err.value.fields["file"] == "broken-data:v2/train.parquet"
    with pytest.raises(UnreadableFile, match="churn-data:v1/README.txt"):
        diff(repo, "churn-data:v1", "churn-data:v2", table="README.txt")
    with pytest.raises(KeyColumnMissing, match="key column 'id' is not in churn-data:v1/train.parquet; its columns "
                                               "are: customer_id, tenure, plan, spend"):
        diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="id")
    with pytest.raises(DuplicateKeys) as dup:
        diff(repo, "churn-data:v1", "churn-data:v2", table="train.parquet", key="plan")
    assert dup.value.fields["duplicates"] == 3 and dup.value.fields["examples"]
    assert str(dup.value).startswith("key is not unique in churn-data:v1/train.parquet: 3 key value(s) occur more "
                                     "than once (2,000 rows), e.g. plan=")
    with pytest.raises(NotFound, match=r"churn-data:v1 has no file or folder 'nope.parquet'; its table files: "
                                       r"train.parquet"):
        diff(repo, "churn-data:v1", "churn-data:v2", table="nope.parquet")
    with pytest.raises(InvalidInput, match=r"path '../train.parquet' has an empty, '.' or '..' part"):
        diff(repo, "churn-data:v1", "churn-data:v2", table="../train.parquet")


def test_several_or_no_tables_need_a_path(repo: Repo, built: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=r"churn-lr:v1 holds 0 table files .*nothing to compare as a table"):
        diff(repo, "churn-lr:v1", "churn-lr:v2", table=True)
    folder = built["work"] / "two-tables"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.csv", "sub/b.csv"):
        (folder / name).write_text("id,v\n1,2\n")
    repo.add(folder, name="two-tables", type="dataset", message="Two tables in one version")
    with pytest.raises(InvalidInput, match=r"two-tables:v1 holds 2 table files .*: a.csv, sub/b.csv; name the one"):
        diff(repo, "two-tables:v1", "two-tables:v1", key="id")
    d = diff(repo, "two-tables:v1", "two-tables:v1", table="sub", key="id")  # a folder of tables
    assert d.tables["sub"].rows.unchanged == 1

    from mlark.ops.run_inputs import materialise

    cached = materialise(repo, repo.resolve("two-tables:v1"))
    (cached / "sub" / "stray.csv").write_text("id,v\n7,8\n")  # not in the version: the cached folder is not used
    d = diff(repo, "two-tables:v1", "two-tables:v1", table="sub", key="id")
    assert (d.tables["sub"].a.rows, d.tables["sub"].rows.added) == (1, 0)


def test_onnx_that_does_not_load(repo: Repo) -> None:
    with pytest.raises(UnreadableFile) as err:
        diff(repo, "churn-onnx:v2", "churn-onnx:v3")
    assert "churn-onnx:v3/model.onnx" in str(err.value) and ".mlark" not in str(err.value)


@pytest.mark.parametrize("a, b, error, fragment", [
    ("nope:v1", "churn-data:v1", NotFound, "nope"),
    ("churn-data:v9", "churn-data:v1", NotFound, "churn-data:v9 does not exist; churn-data has versions v1 to v2"),
    ("churn-data@best", "churn-data:v1", NotFound, "churn-data has no alias 'best'"),
    ("churn-data:v1", "run:ffffffff", NotFound, "no run with id 'ffffffff'"),
    ("churn-data:v1", "models:/nope/1", NotFound, "nope"),
    ("bad ref!", "churn-data:v1", InvalidRef, "bad ref!"),
    ("run:", "churn-data:v1", InvalidRef, "names no run"),
    ("churn-data:train.parquet@latest", "churn-data:v1", InvalidRef, "--table train.parquet"),
    ("", "churn-data:v1", InvalidRef, "diff takes two references"),
])
def test_bad_references(repo: Repo, a: str, b: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as err:
        diff(repo, a, b)
    assert fragment in str(err.value)


def test_table_options_do_not_apply_to_runs(repo: Repo, built: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="runs are compared by their params and metrics"):
        diff(repo, f"run:{built['run_a']}", f"run:{built['run_b']}", key="id")


# --------------------------------------------------------------------------- mlark.diff


def test_mlark_diff_is_the_package_and_a_function(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import mlark.diff as engines

    assert mlark.diff is engines and callable(mlark.diff) and mlark.diff.diff_tables is engines.diff_tables
    d = mlark.diff("churn-data:v1", "churn-data:v2", table="train.parquet", key="customer_id", repo=built["root"])
    assert isinstance(d, VersionDiff) and d.tables["train.parquet"].rows.changed == 2
    monkeypatch.setenv("MLARK_REPO", str(built["root"]))
    r = mlark.diff(f"run:{built['run_a']}", f"run:{built['run_b']}", only_diff=True)
    assert isinstance(r, RunDiff) and [p.key for p in r.params] == ["max_depth"]


def test_mlark_diff_imports_no_layer_above_it() -> None:
    code = ("import sys, mlark.diff; assert callable(mlark.diff); "
            "print(','.join(m for m in sys.modules if m.startswith(('mlark.ops', 'mlark.api', 'mlark.meta'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
