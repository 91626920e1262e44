"""`mlark lineage`, `mlark impact`, `mlark derive`: the real console script on a repository holding a
pipeline made by real runs and registered in the model registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import mlark
from mlark.cli.exit import ExitStatus
from mlark.ops import registry
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture

MLARK = Path(sys.executable).with_name("mlark")
DOT = shutil.which("dot")


def mlark_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    base["COLUMNS"] = "200"
    result = subprocess.run([str(MLARK), *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"mlark {' '.join(args)} exited {result.returncode}\n{result.stdout!r}\n"
                             f"{result.stderr.decode(errors='replace')}")
    return result


def out(*args: str, cwd: Path) -> str:
    return mlark_cli(*args, cwd=cwd).stdout.decode()


def folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """churn-data:v1 -> run featurize -> churn-features:v1 -> run train -> churn-rf:v1 -> models:/churn/1
    (production, champion); churn-data:v2 unused."""
    root = tmp_path_factory.mktemp("lineage-cli")
    repo = Repo.init(root / "project", author="alice")
    quiet = Capture.none()
    repo.add(folder(root / "raw", {"train.csv": "a,b\n1,2\n"}), name="churn-data", type="dataset",
             message="May export of customers")
    with mlark.start_run("churn", "featurize", repo=repo, capture=quiet) as run:
        run.use("churn-data:v1")
        run.log_artifact(folder(root / "features", {"f.csv": "f\n1\n"}), name="churn-features",
                         message="Tenure buckets")
    with mlark.start_run("churn", "train", repo=repo, capture=quiet) as run:
        run.use("churn-features:v1")
        run.log_artifact(folder(root / "model", {"w.bin": "forest\n"}), name="churn-rf", type="model",
                         message="Random forest", aliases=["best"])
    repo.add(folder(root / "raw", {"train.csv": "a,b\n1,2\n3,4\n"}), name="churn-data", message="June export")
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.promote(repo, "churn", 1, "production", "Passed offline evaluation")
    registry.set_alias(repo, "churn", 1, "champion", "Best so far")
    repo.close()
    yield root / "project"


def test_lineage_up_prints_a_tree_back_to_the_raw_data(project: Path) -> None:
    lines = out("lineage", "models:/churn@production", "--up", cwd=project).splitlines()
    assert lines[0] == "models:/churn/1 [production, champion]"
    assert lines[1] == "└── registered from churn-rf:v1 @best"
    assert lines[2].startswith("    └── produced by run train (")
    assert lines[3] == "        └── used churn-features:v1"
    assert lines[4].startswith("            └── produced by run featurize (")
    assert lines[5] == "                └── used churn-data:v1"
    assert out("lineage", "models:/churn@production", cwd=project).splitlines() == lines  # --up is the default


def test_lineage_down_with_a_depth(project: Path) -> None:
    done = mlark_cli("lineage", "churn-data:v1", "--down", "--depth", "2", cwd=project)
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "churn-data:v1" and lines[1].startswith("└── used by run featurize (")
    assert lines[2] == "    └── produced churn-features:v1 (more: raise --depth)"
    assert "--depth 2 left part of the graph out" in done.stderr.decode()
    whole = out("lineage", "churn-data:v1", "--down", cwd=project)
    assert "registered as models:/churn/1 [production, champion]" in whole


def test_lineage_json(project: Path) -> None:
    doc = json.loads(out("lineage", "churn-data:v1", "--down", "--json", cwd=project))
    assert doc["schema"] == "mlark.lineage/1" and doc["direction"] == "down" and doc["depth"] is None
    assert {n["ref"] for n in doc["nodes"]} >= {"churn-data:v1", "churn-rf:v1", "models:/churn/1"}
    assert len(doc["edges"]) == 5
    assert json.loads(out("lineage", "churn-data:v1", "--down", "--format", "json", cwd=project)) == doc


def test_lineage_mermaid_for_a_markdown_file(project: Path, tmp_path: Path) -> None:
    text = out("lineage", "models:/churn@production", "--up", "--format", "mermaid", cwd=project)
    assert text.startswith("```mermaid\nflowchart LR\n") and text.endswith("```\n")
    assert '{{"models:/churn/1 [production, champion]"}}' in text and "==>|registered_as|" in text
    mlark_cli("lineage", "models:/churn/1", "-f", "mermaid", "-o", str(tmp_path / "g.mmd"), cwd=project)
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart LR\n")  # raw for Mermaid tools
    mlark_cli("lineage", "models:/churn/1", "-f", "mermaid", "-o", str(tmp_path / "lineage.md"), cwd=project)
    assert (tmp_path / "lineage.md").read_text() == text


def test_lineage_dot_svg_png(project: Path, tmp_path: Path) -> None:
    dot = out("lineage", "churn-rf:v1", "--format", "dot", cwd=project)
    assert dot.startswith("digraph lineage {") and '"churn-features:v1"' in dot
    if DOT is None:
        pytest.skip("Graphviz dot is not installed")
    subprocess.run([DOT, "-Tsvg"], input=dot.encode(), check=True, capture_output=True)
    done = mlark_cli("lineage", "churn-rf:v1", "--format", "svg", "-o", str(tmp_path / "g.svg"), cwd=project)
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()[:400] and b"wrote" in done.stderr
    mlark_cli("lineage", "churn-rf:v1", "--format", "png", "-o", str(tmp_path / "g.png"), cwd=project)
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    piped = mlark_cli("lineage", "churn-rf:v1", "--format", "png", cwd=project).stdout
    assert piped.startswith(b"\x89PNG")


def test_images_without_graphviz_are_refused_clearly(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-programs"
    empty.mkdir()
    done = mlark_cli("lineage", "churn-rf:v1", "--format", "svg", "-o", str(tmp_path / "g.svg"), cwd=project,
                     env={"PATH": str(empty)}, check=False)
    assert done.returncode == ExitStatus.USAGE
    assert "needs Graphviz's dot program, which is not on PATH: install Graphviz" in done.stderr.decode()
    assert not (tmp_path / "g.svg").exists()
    ok = mlark_cli("lineage", "churn-rf:v1", "--format", "dot", cwd=project, env={"PATH": str(empty)})
    assert ok.stdout.startswith(b"digraph")


def test_impact(project: Path) -> None:
    text = out("impact", "churn-data:v1", cwd=project)
    assert text.startswith("impact of churn-data:v1: 2 runs, 2 versions, 1 registered model version depend on it")
    assert "PRODUCTION depends on it:\n  models:/churn@production -> models:/churn/1\n" in text
    assert "models:/churn@champion" in text and "churn-rf@best" in text
    doc = json.loads(out("impact", "churn-data:v1", "--json", cwd=project))
    assert doc["counts"] == {"runs": 2, "versions": 2, "registered_model_versions": 1}
    assert [h["ref"] for h in doc["production"]] == ["models:/churn@production"]
    assert doc["registered_model_versions"][0]["path"][0] == "churn-data:v1"
    unused = out("impact", "churn-data:v2", cwd=project)
    assert unused.startswith("nothing was made from churn-data:v2: no run used it")


@pytest.mark.parametrize("args, status, message", [
    (("lineage", "nope:v3"), ExitStatus.NOT_FOUND, "no artifact named 'nope'"),
    (("lineage", "churn-data:v7"), ExitStatus.NOT_FOUND, "churn-data:v7 does not exist"),
    (("lineage", "models:/churn@canary"), ExitStatus.NOT_FOUND, "has no alias 'canary'"),
    (("lineage", "models:/fraud/1"), ExitStatus.NOT_FOUND, "no registered model named 'fraud'"),
    (("lineage", "run:ffff0000"), ExitStatus.NOT_FOUND, "no run with id"),
    (("lineage", "bad name!"), ExitStatus.USAGE, "is not a version"),
    (("lineage", "churn-rf:v1", "--depth", "-1"), ExitStatus.USAGE, "-1 is not in the range"),
    (("lineage", "churn-rf:v1", "--format", "pdf"), ExitStatus.USAGE, "'pdf' is not one of"),
    (("impact", "nope@best"), ExitStatus.NOT_FOUND, "no artifact named 'nope'"),
    (("impact", "churn-data:zz"), ExitStatus.USAGE, "is not a version"),
])
def test_bad_references_exit_with_named_statuses(project: Path, args: tuple[str, ...], status: ExitStatus,
                                                 message: str) -> None:
    done = mlark_cli(*args, cwd=project, check=False)
    assert done.returncode == status, done.stderr
    assert message in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_errors_as_json_and_outside_a_repository(project: Path, tmp_path: Path) -> None:
    done = mlark_cli("impact", "run:ffff0000", "--json", cwd=project, check=False)
    assert done.returncode == ExitStatus.NOT_FOUND
    assert json.loads(done.stdout)["exit_status"] == "NOT_FOUND"
    outside = mlark_cli("lineage", "churn-data", cwd=tmp_path, check=False)
    assert outside.returncode == ExitStatus.NOT_A_REPOSITORY


def test_derive(project: Path, tmp_path: Path) -> None:
    mlark_cli("add", str(folder(tmp_path / "fixed", {"train.csv": "a,b\n1,3\n"})), "--name", "churn-data-fixed",
              "-m", "Hand-checked labels", cwd=project)
    done = mlark_cli("derive", "churn-data-fixed:v1", "--from", "churn-data:v2", "-m", "Fixed 1 label by hand",
                     cwd=project)
    assert done.stdout.decode().strip() == "churn-data-fixed:v1 derived from churn-data:v2"
    again = json.loads(out("derive", "churn-data-fixed:v1", "--from", "churn-data:v2", "-m", "Again", "--json",
                           cwd=project))
    assert again["created"] is False and again["message"] == "Fixed 1 label by hand" and again["author"]
    assert "derived from churn-data:v2" in out("lineage", "churn-data-fixed:v1", cwd=project)
    cycle = mlark_cli("derive", "churn-data:v1", "--from", "churn-rf:v1", "-m", "Labels from the model",
                      cwd=project, check=False)
    assert cycle.returncode == ExitStatus.CONFLICT
    assert "cycle: churn-data:v1 --used--> run featurize (" in cycle.stderr.decode()
    vague = mlark_cli("derive", "churn-data-fixed:v1", "--from", "churn-data:v1", "-m", "update", cwd=project)
    assert b"warning: the message 'update' does not say what changed" in vague.stderr
