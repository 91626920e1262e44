"""`mlark models ...`: the real console script on a repository with real scikit-learn models logged by runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from mlark.cli.exit import ExitStatus  # noqa: E402

MLARK = Path(sys.executable).with_name("mlark")
AUTHOR = "erin@example"


def models_cli(cwd: Path, *args: str, status: ExitStatus = ExitStatus.OK) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    env.update({"MLARK_AUTHOR": AUTHOR, "COLUMNS": "200", "NO_COLOR": "1"})
    proc = subprocess.run([str(MLARK), "models", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == status, (args, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def as_json(cwd: Path, *args: str) -> Any:
    return json.loads(models_cli(cwd, *args, "--json").stdout)


def one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlark: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def project(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """A repository with churn-data v1/v2, and churn-rf v1 (depth 3, on v1) and v2 (depth 6, on v2) logged by runs."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    from mlark.ops import run_start
    from mlark.ops.repo import Repo
    from mlark.tracking.capture import Capture

    root = tmp_path / "project"
    repo = Repo.init(root, database=database_url, author="alice")
    out = tmp_path / "export"
    out.mkdir()
    runs = []
    try:
        for i, depth in enumerate((3, 6)):
            rng = np.random.default_rng(i)
            frame = pd.DataFrame({"tenure": rng.integers(0, 72, 200), "calls": rng.integers(0, 9, 200)})
            frame["churned"] = (frame["calls"] > 4).astype("int64")
            frame.to_csv(out / "train.csv", index=False)
            repo.add(out, name="churn-data", type="dataset", message=f"Export number {i + 1}")
            with run_start.start_run(repo, "churn", f"rf-depth-{depth}", {"max_depth": depth},
                                     capture_options=Capture.none()) as run:
                data = pd.read_csv(run.use(f"churn-data:v{i + 1}") / "train.csv")
                X = data[["tenure", "calls"]]
                model = RandomForestClassifier(max_depth=depth, n_estimators=5, random_state=0).fit(X, data["churned"])
                run.log({"val_auc": 0.8 + depth / 100})
                run.log_model(model, name="churn-rf", input_example=X.head())
            runs.append(run.id)
    finally:
        repo.close()
    return {"root": root, "runs": runs}


def test_models_lifecycle_through_the_cli(project: dict[str, Any]) -> None:
    root = project["root"]
    assert "no registered models yet" in models_cli(root, "ls").stdout
    assert as_json(root, "ls") == []

    doc = as_json(root, "register", "churn", "churn-rf:v1", "-m", "First candidate: depth 3")
    assert (doc["number"], doc["version"], doc["stage"], doc["source_run"]) == (1, "churn-rf:v1", "development",
                                                                                 project["runs"][0])
    out = models_cli(root, "register", "churn", "churn-rf:v2", "-m", "Depth 6 on the second export").stdout
    assert "registered churn-rf:v2 as churn version 2 (models:/churn/2), stage development" in out

    models_cli(root, "promote", "churn", "1", "production", "-m", "Passed offline eval")
    out = models_cli(root, "promote", "churn", "2", "production", "-m", "AUC +0.03 over v1 on the holdout").stdout
    assert "churn version 1: production -> archived" in out and "churn version 2: development -> production" in out
    models_cli(root, "promote", "churn", "1", "staging", "-m", "Fallback candidate")
    events = as_json(root, "promote", "churn", "1", "production", "-m", "Canary beside v2", "--keep-previous")
    assert [(e["number"], e["from"], e["to"]) for e in events] == [(1, "staging", "production")]
    assert "already in production; nothing changed" in models_cli(root, "promote", "churn", "1", "production",
                                                                  "-m", "Again").stdout
    assert as_json(root, "rollback", "churn", "production")[0]["to"] == "staging"  # the canary ends

    models_cli(root, "alias", "churn", "2", "champion", "-m", "Best AUC so far")
    models_cli(root, "alias", "churn", "1", "champion", "-m", "Calibration bug in v2")
    out = models_cli(root, "rollback", "churn", "champion", "-m", "Calibration fixed").stdout
    assert "churn @champion: version 1 -> version 2" in out

    listed = as_json(root, "ls")
    assert [(m["name"], m["stages"], m["aliases"]) for m in listed] == [
        ("churn", {"staging": [1], "production": [2]}, {"champion": 2})]
    table = models_cli(root, "ls").stdout
    assert "production: 2" in table and "@champion -> 2" in table

    shown = as_json(root, "show", "churn")
    assert [(v["number"], v["stage"], v["aliases"], v["source_run"], v["inputs"]) for v in shown["versions"]] == [
        (1, "staging", [], project["runs"][0], ["churn-data:v1"]),
        (2, "production", ["champion"], project["runs"][1], ["churn-data:v2"]),
    ]
    text = models_cli(root, "show", "churn").stdout
    assert "churn-data:v2" in text and "rf-depth-6" in text and "production" in text

    lin = as_json(root, "show", "models:/churn@production")
    assert lin["version"]["ref"] == "churn-rf:v2" and lin["run"]["id"] == project["runs"][1]
    assert lin["run"]["params"] == {"max_depth": 6} and lin["run"]["metrics"]["val_auc"] == pytest.approx(0.86)
    assert [v["ref"] for v in lin["inputs"]] == ["churn-data:v2"]
    text = models_cli(root, "show", "churn@production").stdout
    assert "params: max_depth=6" in text and "churn-data:v2  (dataset" in text and "val_auc=0.86" in text

    history = as_json(root, "history", "churn")
    assert len(history) == 11
    assert all(e["author"] == AUTHOR and e["at"] and e["message"] for e in history)
    assert (history[0]["kind"], history[0]["field"], history[0]["from"], history[0]["to"], history[0]["message"]) == (
        "alias", "champion", "1", "2", "rollback of @champion to version 2: Calibration fixed")
    text = models_cli(root, "history", "churn").stdout
    for word in ("when", "change", "from", "to", "who", "why", "AUC +0.03 over v1 on the holdout", AUTHOR):
        assert word in text
    assert len(as_json(root, "history", "churn", "--limit", "2")) == 2

    assert as_json(root, "unalias", "churn", "champion")[0]["to"] is None
    assert as_json(root, "ls")[0]["aliases"] == {}


def test_models_cli_errors_change_nothing(project: dict[str, Any]) -> None:
    root = project["root"]
    models_cli(root, "register", "churn", "churn-rf:v1", "-m", "First candidate")
    models_cli(root, "register", "fraud", "churn-rf:v2", "-m", "Borrowed for fraud")
    models_cli(root, "promote", "churn", "1", "production", "-m", "Go live")
    before = (as_json(root, "ls"), as_json(root, "history", "churn"), as_json(root, "history", "fraud"))

    proc = models_cli(root, "promote", "churn", "1", "live", "-m", "Typo", status=ExitStatus.USAGE)
    one_line_error(proc, "unknown stage 'live'; the stages are: development, staging, production, archived")
    proc = models_cli(root, "promote", "nope", "1", "staging", "-m", "x", status=ExitStatus.NOT_FOUND)
    one_line_error(proc, "no registered model named 'nope'")
    proc = models_cli(root, "promote", "churn", "models:/fraud/1", "staging", "-m", "Wrong", status=ExitStatus.USAGE)
    one_line_error(proc, "names a version of registered model fraud, not of churn")
    proc = models_cli(root, "promote", "churn", "7", "staging", "-m", "Wrong", status=ExitStatus.NOT_FOUND)
    one_line_error(proc, "registered model churn has no version 7; its versions: 1")
    proc = models_cli(root, "register", "churn", "churn-data:v1", "-m", "The data", status=ExitStatus.USAGE)
    one_line_error(proc, "churn-data:v1 is a version of 'dataset' artifact churn-data, not of a model")
    proc = models_cli(root, "register", "churn", "churn-rf:v1", "-m", "Twice", status=ExitStatus.CONFLICT)
    one_line_error(proc, "already registered in churn as version 1")
    proc = models_cli(root, "rollback", "churn", "production", status=ExitStatus.CONFLICT)
    one_line_error(proc, "churn@production has no earlier holder")
    proc = models_cli(root, "alias", "churn", "1", "staging", "-m", "A stage", status=ExitStatus.USAGE)
    one_line_error(proc, "alias 'staging' is a lifecycle stage")
    proc = models_cli(root, "show", "models:/churn@best", status=ExitStatus.NOT_FOUND)
    one_line_error(proc, "registered model churn has no alias 'best'")
    proc = models_cli(root, "show", "models:/churn/x", "--json", status=ExitStatus.USAGE)
    err = json.loads(proc.stdout)
    assert err["exit_status"] == "USAGE" and err["error"] == "InvalidRef"

    assert (as_json(root, "ls"), as_json(root, "history", "churn"), as_json(root, "history", "fraud")) == before

    proc = models_cli(root, "promote", "churn", "1", "staging", "-m", "wip")
    assert "warning: the message 'wip' does not say what changed or why" in proc.stderr
