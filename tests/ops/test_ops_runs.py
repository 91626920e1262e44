"""The Run handle with versions: use (through the run cache, verified), log_artifact, log_dataset, lineage queries."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlark.errors import Conflict, InvalidInput, NotFound
from mlark.ops import run_search, run_start
from mlark.ops import runs as ops_runs
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture

QUIET = Capture.none()


def start(repo: Repo, **kwargs: object) -> ops_runs.Run:
    return run_start.start_run(repo, "churn", capture_options=QUIET, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def data(repo: Repo, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "part-0.csv").write_text("id,y\n1,0\n2,1\n")
    (folder / "test.csv").write_text("id,y\n3,1\n")
    repo.add(folder, name="churn-data", type="dataset", message="May export")
    return folder


def test_use_returns_a_verified_local_path_and_records_the_input(repo: Repo, data: Path) -> None:
    with start(repo) as run:
        path = run.use("churn-data@latest")
        version = repo.resolve("churn-data:v1")
        assert path == repo.meta_dir / "cache" / "versions" / version.digest
        assert (path / "train" / "part-0.csv").read_text() == "id,y\n1,0\n2,1\n"
        assert (path / "test.csv").read_text() == "id,y\n3,1\n"
        assert run.use("churn-data:v1") == path  # the same version again: same folder, one edge
    assert [v.ref for v in run.inputs()] == ["churn-data:v1"]
    assert [r.id for r in run_search.runs_using(repo, "churn-data:v1")] == [run.id]
    assert [r.id for r in repo.runs_using("churn-data@latest")] == [run.id]


def test_use_with_a_path_inside_the_version(repo: Repo, data: Path) -> None:
    with start(repo) as run:
        train = run.use("churn-data:train@latest")
        assert train.is_dir() and (train / "part-0.csv").exists()
        one = run.use("churn-data:train/part-0.csv@latest")
        assert one.read_text() == "id,y\n1,0\n2,1\n"
        with pytest.raises(NotFound, match="no file or folder 'nope'"):
            run.use("churn-data:nope@latest")
    assert [v.ref for v in run.inputs()] == ["churn-data:v1"]  # the edge records the whole version


def test_a_damaged_cached_copy_is_repaired_on_use(repo: Repo, data: Path) -> None:
    with start(repo) as run:
        path = run.use("churn-data")
        target = path / "test.csv"
        os.chmod(target, 0o644)
        target.write_text("tampered\n")
        os.utime(target, (1, 1))
        (path / "train" / "part-0.csv").unlink()
        again = run.use("churn-data")
    assert (again / "test.csv").read_text() == "id,y\n3,1\n"
    assert (again / "train" / "part-0.csv").read_text() == "id,y\n1,0\n2,1\n"


def test_use_of_a_missing_version(repo: Repo, data: Path) -> None:
    with start(repo) as run:
        with pytest.raises(NotFound):
            run.use("churn-data:v7")
        with pytest.raises(NotFound):
            run.use("other-data")
    assert run.inputs() == []


def test_log_artifact_records_the_output(repo: Repo, tmp_path: Path) -> None:
    out = tmp_path / "out" / "features"
    out.mkdir(parents=True)
    (out / "f.csv").write_text("a\n1\n")
    with start(repo, name="featurize") as run:
        version = run.log_artifact(out, name="churn-features", type="dataset", message="Tenure buckets added",
                                   metadata={"rows": 1}, aliases=["candidate"])
    assert version.ref == "churn-features:v1" and version.message == "Tenure buckets added"
    assert version.aliases == ("candidate", "latest")
    assert [v.ref for v in run.outputs()] == ["churn-features:v1"]
    producer = run_search.producer_of(repo, "churn-features@candidate")
    assert producer is not None and producer.id == run.id and producer.name == "featurize"
    assert repo.producer_of("churn-features") == producer  # type: ignore[attr-defined]
    assert run_search.producer_of(repo, version) == producer


def test_log_artifact_has_a_default_message(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    with start(repo, name="train") as run:
        version = run.log_artifact(tmp_path / "m.bin", name="churn-model", type="model")
    assert version.message == f"Output of run churn/train ({run.id})"


def test_log_dataset_writes_a_dataframe_as_parquet(repo: Repo, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "tenure": [0.5, 1.5, 2.5], "segment": ["a", "b", "a"]})
    with start(repo) as run:
        version = run.log_dataset(frame, name="churn-table", message="Cleaned table")
        again = run.log_dataset(frame.copy(), name="churn-table", message="Same table again")
    assert again.id == version.id  # identical content: no new version
    assert version.type == "dataset" and version.metadata["rows"] == 3
    assert version.metadata["columns"] == ["id", "tenure", "segment"]
    folder = repo.get("churn-table", to=tmp_path / "back")
    back = pq.read_table(folder / "churn-table.parquet").to_pandas()
    pd.testing.assert_frame_equal(back, frame)
    assert [v.ref for v in run.outputs()] == ["churn-table:v1"]
    assert not any((repo.meta_dir / "tmp").iterdir())  # the staging file is gone


def test_log_dataset_takes_an_arrow_table_or_a_path(repo: Repo, tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2]})
    csv = tmp_path / "t.csv"
    csv.write_text("x\n1\n")
    with start(repo) as run:
        a = run.log_dataset(table, name="arrow-table", message="From arrow", filename="x.parquet")
        b = run.log_dataset(csv, name="csv-table", message="From a file")
        with pytest.raises(InvalidInput, match="DataFrame, a pyarrow Table or a path"):
            run.log_dataset([1, 2], name="bad", message="no")
        with pytest.raises(InvalidInput, match="plain file name"):
            run.log_dataset(table, name="bad", message="no", filename="a/b.parquet")
    assert repo.tree(a).entries[0].path == "x.parquet"
    assert repo.tree(b).entries[0].path == "t.csv"
    assert {v.ref for v in run.outputs()} == {"arrow-table:v1", "csv-table:v1"}


def test_a_run_cannot_produce_what_it_used(repo: Repo, data: Path) -> None:
    with start(repo) as run:
        run.use("churn-data")
        with pytest.raises(Conflict, match="acyclic"):
            run.log_artifact(data, name="churn-data", message="The same content again")
    assert run.outputs() == []


def test_a_run_cannot_use_what_it_produced(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    with start(repo) as run:
        run.log_artifact(tmp_path / "m.bin", name="model", type="model", message="Trained")
        with pytest.raises(Conflict, match="acyclic"):
            run.use("model")
    assert run.inputs() == []


def test_inputs_and_outputs_across_runs(repo: Repo, data: Path, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    with start(repo, name="train") as train:
        train.use("churn-data")
        model = train.log_artifact(tmp_path / "m.bin", name="model", type="model", message="Trained")
    with start(repo, name="evaluate") as evaluate:
        evaluate.use("churn-data")
        evaluate.use("model")
    assert [r.name for r in run_search.runs_using(repo, "churn-data:v1")] == ["train", "evaluate"]
    assert [r.name for r in run_search.runs_using(repo, model)] == ["evaluate"]
    assert run_search.producer_of(repo, "churn-data:v1") is None
    assert {v.ref for v in evaluate.inputs()} == {"churn-data:v1", "model:v1"}
