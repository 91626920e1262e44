"""`mlark runs ls/show/compare/plot`: the real console script on a repository of real runs.

The runs are made by ``mlark.start_run`` in a child process (a training
script, as a user would write it); every command then runs as a subprocess of
the installed ``mlark`` script.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlark.cli.exit import ExitStatus

MLARK = Path(sys.executable).with_name("mlark")

TRAIN = textwrap.dedent(
    """
    import json, math, sys
    import mlark

    ids = {}
    for depth in (4, 8, 12):
        with mlark.start_run(project="churn", name=f"rf-depth-{depth}",
                             params={"max_depth": depth, "n_estimators": 200, "model": "rf"},
                             tags={"team": "growth"}) as run:
            if depth == 8:
                data = run.use("churn-data@latest")
                assert (data / "train.csv").exists()
            best = 0.0
            for step in range(30):
                auc = 0.5 + depth / 40 * (1 - math.exp(-step / 6))
                best = max(best, auc)
                run.log({"val_auc": auc, "loss": 1 / (step + 1) + depth / 100}, step=step)
            if depth == 8:
                run.log_artifact(sys.argv[1], name="churn-features", type="dataset", message="Tenure buckets added")
            run.summary["best_val_auc"] = best
        ids[run.name] = run.id
    try:
        with mlark.start_run(project="churn", name="gbm-broken", params={"max_depth": 3, "model": "gbm"}) as run:
            run.log({"val_auc": 0.55}, step=0)
            ids[run.name] = run.id
            raise RuntimeError("diverged")
    except RuntimeError:
        pass
    with mlark.start_run(project="other", name="elsewhere", params={"max_depth": 20}) as run:
        ids[run.name] = run.id
    print(json.dumps(ids))
    """
)


def mlark_cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    env["COLUMNS"] = "200"
    result = subprocess.run([str(MLARK), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"mlark {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def prefix(ids: dict[str, str], name: str) -> str:
    """The shortest prefix (at least 6 characters) of run ``name``'s id that no other run shares."""
    target = ids[name]
    others = [i for n, i in ids.items() if n != name]
    for n in range(6, len(target) + 1):
        if not any(o.startswith(target[:n]) for o in others):
            return target[:n]
    return target


def as_json(*args: str, cwd: Path) -> Any:
    return json.loads(mlark_cli(*args, "--json", cwd=cwd).stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("runs-project")
    mlark_cli("init", cwd=root)
    data = root / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,churn\n1,0\n2,1\n")
    mlark_cli("add", "data", "--name", "churn-data", "-m", "May export of customers", cwd=root)
    features = root / "features"
    features.mkdir()
    (features / "tenure.csv").write_text("id,bucket\n1,a\n2,b\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    env["MLARK_CAPTURE_PACKAGES"] = "0"  # faster; the rest of capture stays on
    out = subprocess.run([sys.executable, "-c", TRAIN, str(features)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    return root, ids


# --------------------------------------------------------------------------- ls


def test_ls_lists_the_project_newest_first(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    runs = as_json("runs", "ls", "churn", cwd=root)
    assert [r["name"] for r in runs] == ["gbm-broken", "rf-depth-12", "rf-depth-8", "rf-depth-4"]
    by_name = {r["name"]: r for r in runs}
    assert by_name["rf-depth-8"]["id"] == ids["rf-depth-8"]
    assert by_name["rf-depth-8"]["params"] == {"max_depth": 8, "model": "rf", "n_estimators": 200}
    assert by_name["rf-depth-8"]["status"] == "finished"
    assert by_name["gbm-broken"]["status"] == "failed"
    assert by_name["rf-depth-8"]["tags"] == {"team": "growth"}
    assert by_name["rf-depth-8"]["duration"] >= 0
    everything = as_json("runs", "ls", cwd=root)
    assert {r["name"] for r in everything} == set(ids)


def test_ls_filter_order_limit(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    runs = as_json("runs", "ls", "churn", "--filter", "params.max_depth >= 8 and metrics.val_auc > 0.6",
                   "--order-by", "metrics.val_auc desc", "--limit", "10", cwd=root)
    assert [r["name"] for r in runs] == ["rf-depth-12", "rf-depth-8"]
    assert runs[0]["metrics"]["val_auc"] > runs[1]["metrics"]["val_auc"]
    top = as_json("runs", "ls", "churn", "-f", "status = 'finished'", "--order-by", "metrics.loss.min",
                  "-n", "1", cwd=root)
    assert [r["name"] for r in top] == ["rf-depth-4"]
    failed = as_json("runs", "ls", "churn", "-f", "status = 'failed' or name like 'rf-depth-1%'", cwd=root)
    assert {r["name"] for r in failed} == {"gbm-broken", "rf-depth-12"}
    assert as_json("runs", "ls", "churn", "-f", "params.max_depth > 100", cwd=root) == []


def test_ls_table(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    out = mlark_cli("runs", "ls", "churn", "--filter", "params.max_depth >= 8", "--order-by", "metrics.val_auc desc",
                    cwd=root).stdout
    assert "rf-depth-12" in out and "rf-depth-8" in out and "rf-depth-4" not in out
    assert out.index("rf-depth-12") < out.index("rf-depth-8")
    assert ids["rf-depth-8"][:8] in out
    assert "max_depth=12" in out and "val_auc=" in out and "finished" in out
    empty = mlark_cli("runs", "ls", "churn", "--filter", "params.max_depth > 100", cwd=root).stdout
    assert "no runs" in empty


def test_bad_filter_is_a_usage_error_with_a_caret(project: tuple[Path, dict[str, str]]) -> None:
    root, _ = project
    result = mlark_cli("runs", "ls", "churn", "--filter", "params.max_depth 8", cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE
    lines = result.stderr.rstrip("\n").split("\n")
    assert lines[0] == ("mlark: invalid filter: expected a comparison operator (=, !=, <, <=, >, >=, in, like) "
                        "at position 17, found '8'")
    assert lines[1].strip() == "params.max_depth 8"
    assert lines[2].index("^") == lines[1].index("8")
    assert result.stdout == ""


def test_bad_filter_with_json(project: tuple[Path, dict[str, str]]) -> None:
    root, _ = project
    result = mlark_cli("runs", "ls", "--filter", "__import__('os')", "--json", cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE
    doc = json.loads(result.stdout)
    assert doc["error"] == "FilterSyntaxError"
    assert doc["position"] == 0
    assert doc["exit_status"] == "USAGE"
    assert doc["expected"].startswith("a field")


def test_bad_order_by_and_limit(project: tuple[Path, dict[str, str]]) -> None:
    root, _ = project
    result = mlark_cli("runs", "ls", "--order-by", "metrics.val_auc downwards", cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE
    assert "invalid order-by" in result.stderr and "^" in result.stderr
    result = mlark_cli("runs", "ls", "--limit", "-1", cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE


def test_bad_filter_outside_a_repository_is_still_a_usage_error(tmp_path: Path) -> None:
    result = mlark_cli("runs", "ls", "--filter", "metrics.x >", cwd=tmp_path, check=False)
    assert result.returncode == ExitStatus.USAGE
    result = mlark_cli("runs", "ls", cwd=tmp_path, check=False)
    assert result.returncode == ExitStatus.NOT_A_REPOSITORY


# --------------------------------------------------------------------------- show


def test_show_json(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    doc = as_json("runs", "show", prefix(ids, "rf-depth-8"), cwd=root)
    assert doc["id"] == ids["rf-depth-8"]
    assert doc["name"] == "rf-depth-8" and doc["project"] == "churn" and doc["status"] == "finished"
    assert doc["params"] == {"max_depth": 8, "model": "rf", "n_estimators": 200}
    auc = doc["metrics"]["val_auc"]
    assert auc["count"] == 30 and auc["last_step"] == 29
    assert auc["min"] == pytest.approx(0.5) and auc["max"] == pytest.approx(auc["last"])
    assert doc["summary"]["best_val_auc"] == pytest.approx(auc["max"])
    assert doc["tags"] == {"team": "growth"}
    assert doc["duration"] > 0
    assert doc["command"] and doc["environment"]["python"].startswith("3.")
    assert [v["name"] for v in doc["inputs"]] == ["churn-data"]
    assert [v["name"] for v in doc["outputs"]] == ["churn-features"]
    failed = as_json("runs", "show", ids["gbm-broken"], cwd=root)
    assert failed["status"] == "failed" and "diverged" in failed["error"]


def test_show_text(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    out = mlark_cli("runs", "show", ids["rf-depth-8"], cwd=root).stdout
    for needle in (ids["rf-depth-8"], "churn/rf-depth-8", "finished", "max_depth", "val_auc", "best_val_auc",
                   "team: growth", "churn-data:v1", "churn-features:v1", "environment:", "code:", "duration:"):
        assert needle in out, needle
    broken = mlark_cli("runs", "show", ids["gbm-broken"], cwd=root).stdout
    assert "failed" in broken and "diverged" in broken


# --------------------------------------------------------------------------- run ids


def test_run_id_prefixes(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    result = mlark_cli("runs", "show", ids["rf-depth-4"][:5], cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE
    assert "too short" in result.stderr and "at least 6" in result.stderr
    # all runs were made within the same second: their first 8 characters are shared
    common = os.path.commonprefix(list(ids.values()))
    if len(common) >= 6:
        result = mlark_cli("runs", "show", common, cwd=root, check=False)
        assert result.returncode == ExitStatus.USAGE
        assert "ambiguous" in result.stderr and ids["rf-depth-4"] in result.stderr
    result = mlark_cli("runs", "show", "ffffffffffff", cwd=root, check=False)
    assert result.returncode == ExitStatus.NOT_FOUND
    assert "no run" in result.stderr


# --------------------------------------------------------------------------- compare


def test_compare_json(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    doc = as_json("runs", "compare", ids["rf-depth-4"], prefix(ids, "rf-depth-8"), ids["rf-depth-12"], cwd=root)
    assert [r["name"] for r in doc["runs"]] == ["rf-depth-4", "rf-depth-8", "rf-depth-12"]
    assert doc["baseline"] == ids["rf-depth-4"]
    params = {p["key"]: p for p in doc["params"]}
    assert params["max_depth"]["values"] == [4, 8, 12]
    assert params["max_depth"]["deltas"] == [0.0, 4.0, 8.0]
    assert not params["n_estimators"]["differs"]
    metrics = {(m["key"], m["aggregate"]): m for m in doc["metrics"]}
    last = metrics[("val_auc", "last")]
    assert last["deltas"][0] == 0.0 and last["deltas"][1] > 0 and last["deltas"][2] > last["deltas"][1]
    assert not metrics[("val_auc", "min")]["differs"]  # every curve starts at 0.5

    diff = as_json("runs", "compare", ids["rf-depth-4"], ids["rf-depth-8"], "--only-diff", cwd=root)
    assert diff["only_differences"] is True
    assert [p["key"] for p in diff["params"]] == ["max_depth"]
    assert all(m["differs"] for m in diff["metrics"])
    assert ("val_auc", "min") not in {(m["key"], m["aggregate"]) for m in diff["metrics"]}


def test_compare_text(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    out = mlark_cli("runs", "compare", ids["rf-depth-4"], ids["rf-depth-12"], "--only-diff", cwd=root).stdout
    assert "params.max_depth" in out and "(+8)" in out
    assert "params.n_estimators" not in out
    assert "metrics.val_auc.last" in out
    assert "deltas are relative to rf-depth-4" in out
    full = mlark_cli("runs", "compare", ids["rf-depth-4"], ids["rf-depth-12"], cwd=root).stdout
    assert "params.n_estimators" in full


def test_compare_needs_two_runs(project: tuple[Path, dict[str, str]]) -> None:
    root, ids = project
    result = mlark_cli("runs", "compare", ids["rf-depth-4"], cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE


# --------------------------------------------------------------------------- plot


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_a_png(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, ids = project
    out = tmp_path / "auc.png"
    result = mlark_cli("runs", "plot", ids["rf-depth-4"], ids["rf-depth-8"], prefix(ids, "rf-depth-12"),
                       "--metric", "val_auc", "-o", str(out), cwd=root)
    assert f"wrote {out}" in result.stdout and "3 run(s), 90 point(s)" in result.stdout
    assert _png_size(out) == (960, 600)
    assert out.stat().st_size > 10_000


def test_plot_json_and_a_run_without_the_metric(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, ids = project
    out = tmp_path / "loss.png"
    doc = as_json("runs", "plot", ids["rf-depth-4"], ids["elsewhere"], "--metric", "loss", "-o", str(out), cwd=root)
    assert doc["path"] == str(out)
    assert doc["runs"] == [{"id": ids["rf-depth-4"], "name": "rf-depth-4", "points": 30}]
    assert [s["name"] for s in doc["skipped"]] == ["elsewhere"]
    assert _png_size(out) == (960, 600)
    result = mlark_cli("runs", "plot", ids["elsewhere"], "--metric", "loss", "-o", str(tmp_path / "n.png"),
                       cwd=root, check=False)
    assert result.returncode == ExitStatus.NOT_FOUND
    assert not (tmp_path / "n.png").exists()
    result = mlark_cli("runs", "plot", ids["rf-depth-4"], "--metric", "loss", "-o", str(tmp_path / "n.jpg"),
                       cwd=root, check=False)
    assert result.returncode == ExitStatus.USAGE and ".png" in result.stderr


def test_runs_help_stays_light() -> None:
    code = (
        "import sys; from mlark.cli.main import cli; from mlark.cli import runs_commands; "
        "print(','.join(m for m in ('sqlalchemy', 'rich', 'numpy', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    result = subprocess.run([str(MLARK), "runs", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("ls", "show", "compare", "plot"):
        assert command in result.stdout
