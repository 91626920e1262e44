"""``mlark serve`` as a user runs it: a subprocess, --workers 2 on one port, each worker following the
stage; metrics summed over the workers; clear errors and exit statuses for bad references."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx  # noqa: E402
from serving_testkit import COLUMNS, ServerProcess, churn_frame, log_model, new_repo, train  # noqa: E402

from mlark.cli.exit import ExitStatus  # noqa: E402
from mlark.ops import registry  # noqa: E402

ROWS = churn_frame(5, rows=4)[COLUMNS]
BODY = {"records": ROWS.to_dict("records")}
MLARK = str(Path(sys.executable).with_name("mlark"))


def _metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_serve_with_two_workers_follows_the_stage(tmp_path: Path) -> None:
    root = tmp_path / "project"
    repo = new_repo(root)
    m1, m2 = train(0), train(0, flip=True)
    v1 = log_model(repo, m1, "churn-rf")
    v2 = log_model(repo, m2, "churn-rf")
    registry.register(repo, "churn", v1.ref, "First candidate")
    registry.register(repo, "churn", v2.ref, "Second candidate")
    registry.promote(repo, "churn", 1, "production", "Baseline goes live")
    want = {v1.ref: m1.predict(ROWS).tolist(), v2.ref: m2.predict(ROWS).tolist()}
    server = ServerProcess(root, ["models:/churn@production", "--workers", "2", "--poll-interval", "0.2",
                                  "--log-level", "info"])
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            deadline = time.monotonic() + 120
            streak = 0
            while streak < 20:  # both workers ready: /readyz answered by whichever accepts
                assert time.monotonic() < deadline, server.log()
                streak = streak + 1 if client.get("/readyz").status_code == 200 else 0
                client.close()
                client = httpx.Client(base_url=server.url, timeout=30)
            for _ in range(40):
                with httpx.Client(base_url=server.url, timeout=30) as fresh:  # new connections spread over workers
                    r = fresh.post("/v1/models/churn/predict", json=BODY)
                    assert r.status_code == 200 and r.json()["predictions"] == want[v1.ref]
                    assert r.headers["mlark-model-version"] == v1.ref
            r = client.post("/invocations", json={"dataframe_records": BODY["records"]})
            assert r.status_code == 200 and r.json() == {"predictions": want[v1.ref]}
            metrics = client.get("/metrics").text
            assert _metric_sum(metrics, "mlark_serving_requests_total", model="churn", status="200") == 41
            pids = set(re.findall(r'mlark_serving_model_info\{[^}]*pid="(\d+)"', metrics))
            assert len(pids) == 2, metrics  # two worker processes, each serving the model

            registry.promote(repo, "churn", 2, "production", "Better recall")
            deadline = time.monotonic() + 60
            streak = 0
            while streak < 30:  # every worker moved over: 30 answers in a row from v2 on fresh connections
                assert time.monotonic() < deadline, server.log()
                with httpx.Client(base_url=server.url, timeout=30) as fresh:
                    r = fresh.post("/v1/models/churn/predict", json=BODY)
                assert r.status_code == 200
                assert r.json()["predictions"] == want[r.headers["mlark-model-version"]]
                streak = streak + 1 if r.headers["mlark-model-version"] == v2.ref else 0
            metrics = client.get("/metrics").text
            assert _metric_sum(metrics, "mlark_serving_model_info", version=v2.ref) == 2
            assert _metric_sum(metrics, "mlark_serving_reloads_total", model="churn") == 2
            client.close()
    finally:
        log = server.stop()
        repo.close()
    assert server.proc.returncode == 0, log
    assert "now serving churn-rf:v2" in log


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLARK, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_serve_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    root = tmp_path / "project"
    repo = new_repo(root)
    log_model(repo, train(0), "churn-rf")
    data = tmp_path / "data.csv"
    churn_frame(1).to_csv(data, index=False)
    repo.add(data, name="churn-data", type="dataset", message="May export of customers")
    repo.close()
    cases: list[tuple[list[str], ExitStatus, str]] = [
        (["serve", "nope@best"], ExitStatus.NOT_FOUND, "nope"),
        (["serve", "churn-rf@nope"], ExitStatus.NOT_FOUND, "alias"),
        (["serve", "models:/missing@production"], ExitStatus.NOT_FOUND, "missing"),
        (["serve", "churn-data"], ExitStatus.USAGE, "not a model"),
        (["serve", "bad ref!"], ExitStatus.USAGE, "reference"),
        (["serve", "churn-rf", "churn-rf:v1", "--max-body", "lots"], ExitStatus.USAGE, "size"),
    ]
    for args, status, text in cases:
        done = _run(*args, cwd=root)
        assert done.returncode == status, (args, done.stdout, done.stderr)
        assert text in done.stderr, (args, done.stderr)
    done = _run("serve", "churn-rf", cwd=tmp_path)  # not inside a repository
    assert done.returncode == ExitStatus.NOT_A_REPOSITORY, done.stderr


def test_serve_a_model_folder_without_a_repository(tmp_path: Path) -> None:
    from mlark.models import save_model

    folder = tmp_path / "churn-rf"
    model = train(0)
    save_model(model, folder, input_example=ROWS)
    server = ServerProcess(tmp_path, [f"churn={folder}", "--json"])
    try:
        server.wait_ready()
        r = httpx.post(server.url + "/v1/models/churn/predict", json=BODY, timeout=30)
        assert r.status_code == 200 and r.json()["predictions"] == model.predict(ROWS).tolist()
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log
    assert '"level": "info"' in log  # --json: log lines are JSON objects
