"""Real repositories for the diff tests (``tests/ops/test_ops_diff.py``, ``tests/cli/test_cli_diff.py``).

- ``churn-data`` v1 -> v2: a file edited, one removed, one added, one renamed (same bytes at a new
  path), a large file edited in the middle (most chunks shared), an unchanged file, and a
  Parquet table edited by key (rows changed, one removed, one added).
- ``churn-lr`` v1 -> v2: scikit-learn models saved with mlark.models (v2 takes one more column,
  another type for one, and an extra requirement).
- ``churn-net`` v1 -> v2: a PyTorch module saved with the pytorch flavor, one layer changed.
- ``churn-onnx`` v1 -> v2: an ONNX model whose Slice takes other starts and ends.
- two finished runs with different params, metrics, tags, inputs and outputs.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from mlark.ops.repo import Repo


class TinyNet(nn.Module):
    """Saved by class path (``diff_testkit:TinyNet``) with the pytorch flavor."""

    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def customers(n: int = 2000) -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table({
        "customer_id": np.arange(n, dtype=np.int64),
        "tenure": rng.integers(0, 72, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "spend": np.round(rng.normal(50, 10, n), 2),
    })


def dataset_versions(repo: Repo, work: Path) -> None:
    data = work / "churn-data"
    data.mkdir(parents=True)
    rng = random.Random(1)
    big = bytearray(rng.randbytes(3_000_000))
    (data / "big.bin").write_bytes(big)
    (data / "README.txt").write_text("May export\n")
    (data / "notes.txt").write_text("to be removed\n")
    (data / "docs").mkdir()
    (data / "docs" / "schema.md").write_text("# Columns\n\n" + "customer_id, tenure, plan, spend\n" * 50)
    (data / "same.txt").write_text("unchanged\n")
    pq.write_table(customers(), data / "train.parquet")
    repo.add(data, name="churn-data", type="dataset", message="Export of the May customers")

    big[1_500_000:1_500_100] = b"x" * 100  # an edit in the middle: only the chunks around it change
    (data / "big.bin").write_bytes(big)
    (data / "README.txt").write_text("May export, relabelled\n")
    (data / "notes.txt").unlink()
    (data / "docs" / "schema.md").rename(data / "schema.md")  # renamed: same bytes, new path
    (data / "docs").rmdir()
    (data / "extra.json").write_text("{\"a\": 1}\n")
    t = customers().to_pydict()
    t["spend"][10] = 999.0  # changed rows
    t["plan"][20] = "enterprise"
    t["spend"][20] = 1.5
    for column in t:  # customer 30 removed, 5000 added
        del t[column][30]
    t["customer_id"].append(5000)
    t["tenure"].append(1)
    t["plan"].append("basic")
    t["spend"].append(10.0)
    pq.write_table(pa.table(t), data / "train.parquet")
    repo.add(data, name="churn-data", type="dataset", message="Relabel two customers, drop one, add one")


def sklearn_versions(repo: Repo, work: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlark.models import save_model

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"tenure": rng.integers(0, 72, 100), "calls": rng.integers(0, 9, 100)})
    y = (X["calls"] > 4).astype("int64")
    save_model(LogisticRegression().fit(X, y), work / "lr1", input_example=X.head())
    repo.add(work / "lr1", name="churn-lr", type="model", message="Logistic regression on tenure and calls")
    X2 = X.assign(calls=X["calls"].astype("float64"), spend=rng.normal(50, 10, 100))
    save_model(LogisticRegression(C=0.5).fit(X2, y), work / "lr2", input_example=X2.head(),
               requirements=["pandas>=2"])
    repo.add(work / "lr2", name="churn-lr", type="model", message="Spend added as a feature, calls as float")


def torch_versions(repo: Repo, work: Path) -> None:
    from mlark.models import save_model

    torch.manual_seed(0)
    net = TinyNet()
    example = np.zeros((2, 4), dtype=np.float32)
    save_model(net, work / "net1", flavor="pytorch", input_example=example)
    repo.add(work / "net1", name="churn-net", type="model", message="Two-layer net")
    with torch.no_grad():
        net.body[2].weight.add_(0.5)  # the output layer changes; the hidden one does not
    save_model(net, work / "net2", flavor="pytorch", input_example=example)
    repo.add(work / "net2", name="churn-net", type="model", message="Output layer fine-tuned")


def slice_model(starts: int, ends: int) -> Any:
    """x[N, 6] -> Slice(axis 1, starts..ends) -> MatMul(W[3, 2]) -> y[N, 2]; starts/ends are initializers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 10, "W")
    consts = [numpy_helper.from_array(np.array(v, dtype=np.int64), n)
              for n, v in (("starts", [starts]), ("ends", [ends]), ("axes", [1]))]
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["s"], name="slice"),
         helper.make_node("MatMul", ["s", "W"], ["y"], name="project")],
        "churn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[w, *consts],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="diff-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def onnx_versions(repo: Repo, work: Path) -> None:
    from mlark.models import save_model

    save_model(slice_model(0, 3), work / "onnx1")
    repo.add(work / "onnx1", name="churn-onnx", type="model", message="Columns 0-2")
    save_model(slice_model(1, 4), work / "onnx2")
    repo.add(work / "onnx2", name="churn-onnx", type="model", message="Columns 1-3")


def runs(repo: Repo) -> tuple[str, str]:
    from mlark.ops import run_start
    from mlark.tracking.capture import Capture

    ids = []
    for depth, lr, data in ((4, 0.1, "churn-data:v1"), (8, 0.1, "churn-data:v2")):
        with run_start.start_run(repo, "churn", f"rf-depth-{depth}", {"max_depth": depth, "lr": lr, "model": "rf"},
                                 tags={"team": "growth", "seed": str(depth)}, capture_options=Capture.none()) as run:
            run.use(data)
            for step in range(5):
                run.log({"val_auc": 0.6 + depth / 100 + step / 100, "loss": 1.0 / (step + 1)}, step=step)
        ids.append(run.id)
    return ids[0], ids[1]


def build(root: Path, database: str | None = None) -> dict[str, Any]:
    """Every version and run above in a new repository at ``root`` (closed again); returns the run ids."""
    work = root.parent / "work"
    work.mkdir()
    repo = Repo.init(root, database=database, author="alice")
    try:
        dataset_versions(repo, work)
        sklearn_versions(repo, work)
        torch_versions(repo, work)
        onnx_versions(repo, work)
        run_a, run_b = runs(repo)
    finally:
        repo.close()
    return {"root": root, "work": work, "run_a": run_a, "run_b": run_b}


def broken_versions(repo: Repo, work: Path) -> None:
    """``broken-data`` v1 -> v2 whose train.parquet does not parse in v2; ``churn-onnx`` v3 whose model.onnx
    does not load (a folder with a valid manifest around garbage)."""
    data = work / "broken"
    data.mkdir()
    pq.write_table(customers(50), data / "train.parquet")
    repo.add(data, name="broken-data", type="dataset", message="A fine table")
    (data / "train.parquet").write_bytes(b"PAR1 this is not a parquet file at all")
    repo.add(data, name="broken-data", type="dataset", message="A truncated upload")
    bad = work / "onnx-bad"
    bad.mkdir()
    (bad / "mlark-model.json").write_bytes((work / "onnx2" / "mlark-model.json").read_bytes())
    (bad / "model.onnx").write_bytes(os.urandom(64))
    repo.add(bad, name="churn-onnx", type="model", message="A corrupted upload")
