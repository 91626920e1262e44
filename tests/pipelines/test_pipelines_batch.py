"""Batch prediction over files: Parquet and CSV in record batches, predictions and passthrough columns
out as Parquet, progress, clear errors, no half-written output, and bounded memory (a file several times
the batch size is never loaded whole: peak resident memory of a subprocess, VmHWM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pyarrow")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from mlark.errors import InvalidInput, NotFound  # noqa: E402
from mlark.models import load_model, save_model  # noqa: E402
from mlark.pipelines import Predictor, predict_file  # noqa: E402

FEATURES = ["tenure", "monthly", "support_calls", "age"]


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": np.arange(n, dtype=np.int64),
        "tenure": rng.integers(0, 72, n),
        "monthly": rng.normal(60.0, 20.0, n).round(2),
        "support_calls": rng.integers(0, 9, n),
        "age": rng.integers(18, 90, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })


def _fit(kind: str = "rf") -> Any:
    frame = customers(2000, seed=1)
    y = ((frame["support_calls"] > 4) | (frame["tenure"] < 6)).astype(int)
    if kind == "rf":
        return RandomForestClassifier(n_estimators=20, random_state=0).fit(frame[FEATURES], y)
    return LogisticRegression(max_iter=500).fit(frame[FEATURES], y)


@pytest.fixture(scope="module")
def rf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch") / "churn-rf"
    save_model(_fit("rf"), folder, input_example=customers(3)[FEATURES])
    return folder


class Recorder:
    def __init__(self) -> None:
        self.started: tuple[Any, Any] | None = None
        self.rows = 0
        self.bytes = 0
        self.calls = 0
        self.finished = False

    def start(self, total_rows: int | None, total_bytes: int | None) -> None:
        self.started = (total_rows, total_bytes)

    def advance(self, rows: int, nbytes: int = 0) -> None:
        self.rows += rows
        self.bytes += nbytes
        self.calls += 1

    def finish(self) -> None:
        self.finished = True


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_predicts_every_row_in_batches(rf_dir: Path, tmp_path: Path, fmt: str) -> None:
    data = customers(25_000, seed=3)
    src = tmp_path / f"customers.{fmt}"
    if fmt == "parquet":
        data.to_parquet(src, row_group_size=4000)
    else:
        data.to_csv(src, index=False)
    out = tmp_path / "scores.parquet"
    progress = Recorder()
    report = predict_file(Predictor(load_model(rf_dir)), src, out, passthrough=["customer_id", "region"],
                          batch_size=3000, progress=progress)
    got = pd.read_parquet(out)
    assert list(got.columns) == ["customer_id", "region", "prediction"]
    assert got["customer_id"].tolist() == data["customer_id"].tolist()
    assert got["region"].tolist() == data["region"].tolist()
    assert got["prediction"].tolist() == _fit("rf").predict(data[FEATURES]).tolist()
    assert report.rows == 25_000 and report.batches >= 9 and report.accelerated
    assert progress.rows == 25_000 and progress.finished and progress.calls == report.batches
    if fmt == "parquet":
        assert progress.started == (25_000, None)
        assert pq.ParquetFile(out).metadata.num_row_groups == report.batches
    else:
        assert progress.started == (None, src.stat().st_size) and progress.bytes == src.stat().st_size


def test_outputs_of_several_columns(tmp_path: Path) -> None:
    data = customers(1000)
    folder = tmp_path / "proba"
    save_model(_fit("rf"), folder, input_example=data[FEATURES].head(3), method="predict_proba")
    src = tmp_path / "in.parquet"
    data.to_parquet(src)
    out = tmp_path / "out.parquet"
    predict_file(load_model(folder), src, out, batch_size=300, prediction_column="p")
    table = pq.read_table(out)
    assert table.schema.field("p").type == pa.list_(pa.float64(), 2)
    assert np.allclose(np.stack(table.column("p").to_numpy(zero_copy_only=False)), _fit("rf").predict_proba(data[FEATURES]))


def test_model_without_a_signature_gets_every_column(tmp_path: Path) -> None:
    folder = tmp_path / "nosig"
    model = _fit("logistic")
    save_model(model, folder)  # no example, no signature
    data = customers(500)[FEATURES]
    src = tmp_path / "in.csv"
    data.to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    report = predict_file(load_model(folder), src, out, batch_size=100)
    assert report.model_columns is None
    assert pd.read_parquet(out)["prediction"].tolist() == model.predict(data).tolist()


def test_errors_say_what_to_change(rf_dir: Path, tmp_path: Path) -> None:
    model = load_model(rf_dir)
    data = customers(100)
    src = tmp_path / "in.parquet"
    data.to_parquet(src)
    out = tmp_path / "out.parquet"
    with pytest.raises(NotFound, match="no input file"):
        predict_file(model, tmp_path / "missing.parquet", out)
    with pytest.raises(InvalidInput, match="passthrough column 'nope'"):
        predict_file(model, src, out, passthrough=["nope"])
    with pytest.raises(InvalidInput, match="lacks column 'age'"):
        data.drop(columns=["age"]).to_parquet(tmp_path / "noage.parquet")
        predict_file(model, tmp_path / "noage.parquet", out)
    with pytest.raises(InvalidInput, match="passthrough column"):
        predict_file(model, src, out, passthrough=["region"], prediction_column="region")
    with pytest.raises(InvalidInput, match="batch size"):
        predict_file(model, src, out, batch_size=0)
    with pytest.raises(InvalidInput, match="is a folder"):
        predict_file(model, src, tmp_path)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1" + b"\x00" * 100)
    with pytest.raises(InvalidInput, match="cannot read"):
        predict_file(model, junk, out)
    assert not out.exists()


def test_a_bad_row_fails_the_run_naming_it_and_leaves_no_output(rf_dir: Path, tmp_path: Path) -> None:
    data = customers(10_000).astype({"tenure": "float64"})
    data.loc[7_345, "tenure"] = 2.5  # not a whole number: the int64 column refuses it
    src = tmp_path / "in.parquet"
    data.to_parquet(src)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(InvalidInput) as err:
        predict_file(load_model(rf_dir), src, out, batch_size=1000)
    assert "row 7345" in str(err.value) and "tenure" in str(err.value)
    assert out.read_bytes() == b"previous output"  # untouched: the new output was never renamed into place
    assert not list(tmp_path.glob(".out.parquet.*"))


def test_csv_values_that_do_not_parse(rf_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    data = customers(20).astype({"tenure": object})
    data.loc[3, "tenure"] = "three"
    data.to_csv(src, index=False)
    with pytest.raises(InvalidInput, match="cannot read .*three"):
        predict_file(load_model(rf_dir), src, tmp_path / "out.parquet")


# --------------------------------------------------------------------------- bounded memory

HWM_SCRIPT = """
import json, sys
from mlark.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"hwm_kib": hwm, "code": code}), file=sys.stderr)
"""


def _peak_kib(args: list[str], cwd: Path) -> int:
    done = subprocess.run([sys.executable, "-c", HWM_SCRIPT, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    last = done.stderr.strip().splitlines()[-1]
    doc = json.loads(last)
    assert doc["code"] == 0, done.stderr
    return int(doc["hwm_kib"])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_memory_stays_bounded(tmp_path: Path, fmt: str) -> None:
    """Predicting a file 6x larger raises peak memory by far less than the extra data would take in memory.

    3.6 million rows of 6 columns are about 165 MiB as arrays (several times that through pandas), 90 times
    the batch size of 40,000 rows; the model is a logistic regression so the test stays fast. The smaller
    file is already larger than the CSV reader's read-ahead, so both runs reach their steady state.
    """
    folder = tmp_path / "model"
    save_model(_fit("logistic"), folder, input_example=customers(3)[FEATURES])
    small, large = 600_000, 3_600_000
    files = {}
    for n in (small, large):
        data = customers(n, seed=n)
        path = tmp_path / f"c{n}.{fmt}"
        if fmt == "parquet":
            data.to_parquet(path, row_group_size=50_000)
        else:
            data.to_csv(path, index=False)
        files[n] = path
        del data
    peaks = {}
    for n, path in files.items():
        peaks[n] = _peak_kib(["predict", str(folder), "--input", str(path), "--output", str(tmp_path / f"o{n}.parquet"),
                              "--passthrough", "customer_id", "--batch-size", "40000", "--workers", "1", "--json"],
                              tmp_path)
        assert pq.ParquetFile(tmp_path / f"o{n}.parquet").metadata.num_rows == n
    extra_data_mib = (large - small) * 6 * 8 / 2**20  # ~137 MiB as plain arrays
    growth_mib = (peaks[large] - peaks[small]) / 1024
    print(f"peak memory {peaks} KiB: growth {growth_mib:.1f} MiB for {extra_data_mib:.0f} MiB more data")
    assert growth_mib < extra_data_mib / 3, (peaks, growth_mib, extra_data_mib)


# --------------------------------------------------------------------------- the command, with lineage


def test_mlark_predict_records_the_output_with_lineage(tmp_path: Path) -> None:
    from mlark.ops import registry
    from mlark.ops.repo import Repo
    from mlark.ops.run_start import start_run
    from mlark.tracking.capture import Capture

    root = tmp_path / "project"
    repo = Repo.init(root, author="tester@batch")
    model = _fit("rf")
    with start_run(repo, "train", None, None, None, capture_options=Capture.none()) as run:
        mv = run.log_model(model, name="churn-rf", input_example=customers(3)[FEATURES], message="baseline forest")
    registry.register(repo, "churn", mv.ref, "First candidate")
    registry.promote(repo, "churn", 1, "production", "Goes live")
    data = customers(5000, seed=9)
    src = tmp_path / "customers.parquet"
    data.to_parquet(src)
    out = tmp_path / "scores.parquet"
    mlark = str(Path(sys.executable).with_name("mlark"))
    env = {"MLARK_CAPTURE": "0", "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [mlark, "--repo", str(root), "predict", "models:/churn@production", "--input", str(src), "--output", str(out),
         "--passthrough", "customer_id,region", "--batch-size", "1000", "--record", "churn-scores",
         "-m", "Scores of the May customers for the retention campaign", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["rows"] == 5000 and doc["recorded"] == "churn-scores:v1" and doc["model_version"] == mv.ref
    assert doc["registered"] == "models:/churn/1" and doc["input_version"] == "customers:v1"
    got = pd.read_parquet(out)
    assert got["prediction"].tolist() == model.predict(data[FEATURES]).tolist()
    output = repo.resolve("churn-scores:v1")
    assert output.type == "dataset" and output.message.startswith("Scores of the May customers")
    producer = repo.producer_of(output)
    assert producer is not None and producer.id == doc["run"] and producer.status == "finished"
    assert {v.ref for v in producer.inputs()} == {mv.ref, "customers:v1"}
    assert producer.params["registered_version"] == "models:/churn/1"
    assert [r.id for r in repo.runs_using(mv.ref)][-1] == producer.id
    # The same input again is the same input version; a second output version is made.
    done = subprocess.run(
        [mlark, "--repo", str(root), "predict", "churn-rf:v1", "--input", "customers:v1", "--output",
         str(tmp_path / "again.parquet"), "--record", "churn-scores", "-m", "Scores again, same customers", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again["input_version"] == "customers:v1"
    repo.close()


def test_mlark_predict_errors(rf_dir: Path, tmp_path: Path) -> None:
    mlark = str(Path(sys.executable).with_name("mlark"))
    src = tmp_path / "in.parquet"
    customers(10).to_parquet(src)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([mlark, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)

    done = run("predict", str(rf_dir), "--input", str(src), "--output", str(tmp_path / "o.parquet"), "--record", "x")
    assert done.returncode == 2 and "message" in done.stderr
    done = run("predict", str(rf_dir), "--input", str(src), "--output", str(tmp_path / "o.parquet"), "-p", "nope")
    assert done.returncode == 2 and "passthrough column 'nope'" in done.stderr
    done = run("predict", str(rf_dir), "--input", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "o.parquet"))
    assert done.returncode == 4  # not a file, so a reference: and no repository here
    done = run("predict", str(rf_dir), "--input", str(src), "--output", str(tmp_path / "o.parquet"))
    assert done.returncode == 0 and "predicted 10 rows" in done.stdout
