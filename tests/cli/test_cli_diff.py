"""`mlark diff`: versions, tables, models and runs of a real repository (built by tests/ops/diff_testkit.py),
in text, JSON and Markdown, and every bad input as one line and a named exit status.

Most cases call the command's entry point in this process (``mlark.cli.main.main``); a few run the
installed console script to check the real thing end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")
pytest.importorskip("onnx")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import diff_testkit  # noqa: E402

from mlark.cli.exit import ExitStatus  # noqa: E402
from mlark.cli.main import main  # noqa: E402
from mlark.ops.repo import Repo  # noqa: E402

MLARK = Path(sys.executable).with_name("mlark")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info = diff_testkit.build(tmp_path_factory.mktemp("cli-diff") / "project")
    repo = Repo.open(info["root"])
    try:
        diff_testkit.broken_versions(repo, info["work"])
    finally:
        repo.close()
    return info


class Result:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err

    def one_line_error(self, fragment: str) -> None:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mlark: ") and fragment in lines[0], self.err
        assert "Traceback" not in self.err + self.out


def run(built: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str,
        status: ExitStatus = ExitStatus.OK) -> Result:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--repo", str(built["root"]), "diff", *args])
    out, err = capsys.readouterr()
    code = exit_.value.code if isinstance(exit_.value.code, int) else 0
    assert code == status, (args, code, out[-3000:], err[-3000:])
    return Result(code, out, err)


def test_files_in_text_with_exit_code(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = run(built, capsys, "churn-data:v1", "churn-data:v2").out
    assert out.startswith("Diff churn-data:v1 -> churn-data:v2 (dataset)\n")
    assert "Files: 1 added, 1 removed, 3 modified, 1 renamed, 1 unchanged" in out
    assert "renamed   docs/schema.md -> schema.md" in out and "shared" in out
    run(built, capsys, "churn-data:v1", "churn-data:v2", "--exit-code", status=ExitStatus.DIFFERS)
    out = run(built, capsys, "churn-data:v1", "churn-data:v1", "--exit-code").out
    assert "0 added, 0 removed, 0 modified, 0 renamed, 6 unchanged" in out


def test_table_by_key_as_json_and_markdown(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(run(built, capsys, "churn-data:v1", "churn-data:v2", "--table", "train.parquet",
                         "--key", "customer_id", "--json").out)
    table = doc["tables"]["train.parquet"]
    assert (table["rows"]["added"], table["rows"]["removed"], table["rows"]["changed"]) == (1, 1, 2)
    assert table["a"]["path"] == "churn-data:v1/train.parquet"
    doc = json.loads(run(built, capsys, "churn-data:v1", "churn-data:v2", "--key", "customer_id", "-f", "json").out)
    assert doc["tables"]["train.parquet"]["rows"]["changed"] == 2  # --key alone: the one table of each version
    md = run(built, capsys, "churn-data:v1", "churn-data:v2", "--table", "--key", "customer_id",
             "--format", "markdown", "--sample", "1").out
    assert md.startswith("## Diff `churn-data:v1` -> `churn-data:v2` (dataset)\n")
    assert "### Files" in md and "### Table `train.parquet`" in md and "#### Changed rows (first 1 of 2)" in md
    text = run(built, capsys, "churn-data:v1", "churn-data:v2", "--table", "train.parquet").out
    assert "note: rows matched by content (no key)" in text


def test_models(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = run(built, capsys, "churn-net:v1", "churn-net:v2").out
    assert "State dict diff" in out and "body.2.weight  changed" in out
    out = run(built, capsys, "churn-lr:v1", "churn-lr:v2").out
    assert "Model manifest" in out and "input spend" in out and "requirement pandas" in out
    doc = json.loads(run(built, capsys, "churn-onnx:v1", "churn-onnx:v2", "--json").out)
    slice_change = doc["models"]["model.onnx"]["nodes"]["changed"][0]
    assert slice_change["a"]["op_type"] == "Slice"
    md = run(built, capsys, "churn-onnx:v1", "churn-onnx:v2", "-f", "markdown").out
    assert "### Weights `model.onnx` (ONNX graph)" in md and "#### Nodes" in md


def test_runs(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = f"run:{built['run_a']}", f"run:{built['run_b']}"
    out = run(built, capsys, a, b).out
    assert "* max_depth  4    8       +4" in out and "lr" in out and "* differs; deltas are new - old" in out
    out = run(built, capsys, a, b, "--only-diff").out
    assert "max_depth" in out and "lr " not in out and "loss" not in out
    doc = json.loads(run(built, capsys, a, b, "--only-diff", "--json").out)
    assert [p["key"] for p in doc["params"]] == ["max_depth"] and doc["only_differences"] is True
    md = run(built, capsys, a, b, "--format", "markdown").out
    assert "### Params" in md and "### Metrics" in md and "| val_auc.last |" in md


@pytest.mark.parametrize("args, status, fragment", [
    (("churn-data:v1", "churn-lr:v1"), ExitStatus.USAGE,
     "cannot diff churn-data:v1 (a dataset version) with churn-lr:v1 (a model version)"),
    (("churn-data:v1", "RUN_A"), ExitStatus.USAGE, "(a dataset version) with run:"),
    (("broken-data:v1", "broken-data:v2", "--table", "train.parquet"), ExitStatus.USAGE,
     "cannot read broken-data:v2/train.parquet as parquet"),
    (("churn-data:v1", "churn-data:v2", "--table", "train.parquet", "--key", "id"), ExitStatus.USAGE,
     "key column 'id' is not in churn-data:v1/train.parquet; its columns are: customer_id, tenure, plan, spend"),
    (("churn-data:v1", "churn-data:v2", "--key", "plan"), ExitStatus.USAGE,
     "3 key value(s) occur more than once (2,000 rows), e.g. plan="),
    (("churn-data:v1", "churn-data:v2", "--key", "customer_id,"), ExitStatus.USAGE, "--key takes column names"),
    (("churn-onnx:v2", "churn-onnx:v3"), ExitStatus.USAGE, "cannot read churn-onnx:v3/model.onnx as ONNX"),
    (("churn-data:v1", "churn-data:v7"), ExitStatus.NOT_FOUND, "churn-data:v7 does not exist"),
    (("nothing", "churn-data:v1"), ExitStatus.NOT_FOUND, "nothing"),
    (("churn-data:v1", "run:ffffffff"), ExitStatus.NOT_FOUND, "no run with id 'ffffffff'"),
    (("churn-data:v1", "churn-data:v2", "--table", "x.parquet"), ExitStatus.NOT_FOUND,
     "churn-data:v1 has no file or folder 'x.parquet'; its table files: train.parquet"),
    (("churn-data:zz", "churn-data:v1"), ExitStatus.USAGE, "is neither v<number> nor a digest prefix"),
    (("RUN_A", "RUN_B", "--table"), ExitStatus.USAGE, "runs are compared by their params and metrics"),
])
def test_bad_input(built: dict[str, Any], capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                   status: ExitStatus, fragment: str) -> None:
    args = tuple(a.replace("RUN_A", f"run:{built['run_a']}").replace("RUN_B", f"run:{built['run_b']}") for a in args)
    result = run(built, capsys, *args, status=status)
    result.one_line_error(fragment)
    assert result.out == ""
    leftovers = list((built["root"] / ".mlark" / "tmp").glob("diff-*"))
    assert not leftovers


def test_bad_input_as_json(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    result = run(built, capsys, "churn-data:v1", "churn-lr:v2", "--json", status=ExitStatus.USAGE)
    doc = json.loads(result.out)
    assert doc["error"] == "KindMismatch" and doc["exit_status"] == "USAGE"
    assert (doc["kind_a"], doc["kind_b"]) == ("dataset", "model")


def _console(built: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    env["COLUMNS"] = "160"
    return subprocess.run([str(MLARK), "diff", *args], cwd=built["root"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_console_script(built: dict[str, Any]) -> None:
    proc = _console(built, "churn-data:v1", "churn-data@latest", "--table", "train.parquet", "--key", "customer_id")
    assert proc.returncode == ExitStatus.OK, proc.stderr
    assert "Table diff" in proc.stdout and "old: churn-data:v1/train.parquet" in proc.stdout
    proc = _console(built, "churn-data:v1", "churn-lr:v1")
    assert proc.returncode == ExitStatus.USAGE and proc.stdout == ""
    assert proc.stderr.startswith("mlark: cannot diff churn-data:v1 (a dataset version)") and "Traceback" not in proc.stderr
    help_text = subprocess.run([str(MLARK), "diff", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--table [PATH]" in help_text and "--key COL[,COL...]" in help_text and "--only-diff" in help_text
