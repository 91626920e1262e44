"""Micro-batching: concurrent requests share predict calls, each gets its own rows back, a lone client
is not kept waiting, and requests of different shapes are batched apart."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx  # noqa: E402
from serving_testkit import COLUMNS, Load, ServerThread, churn_frame, train  # noqa: E402

from mlark.models import save_model  # noqa: E402
from mlark.serving import ServeOptions, Sources, create_app  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batching") / "churn-rf"
    save_model(train(0, n_estimators=30), out, input_example=churn_frame(99, rows=3)[COLUMNS])
    return out


def _histogram(metrics: str, name: str) -> tuple[float, float]:
    total = float(re.search(rf"^{name}_sum\{{[^}}]*\}} (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(rf"^{name}_count\{{[^}}]*\}} (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    return total, count


def test_concurrent_requests_share_predict_calls(folder: Path) -> None:
    model = train(0, n_estimators=30)
    rows = [churn_frame(s, rows=2)[COLUMNS] for s in range(4)]
    app = create_app([str(folder)], Sources(), ServeOptions(max_batch=256, max_wait_ms=20))
    with ServerThread(app) as server:
        loads = [Load(server.url, "/v1/models/churn-rf/predict", {"records": r.to_dict("records")}, clients=8)
                 for r in rows]
        for load in loads:
            load.__enter__()
        for load in loads:
            load.wait_for_responses(100)
        for load in loads:
            load.stop()
        for r, load in zip(rows, loads, strict=True):  # each request got its own rows' predictions
            want = model.predict(r).tolist()
            assert all(x["status"] == 200 and x["predictions"] == want for x in load.results)
        metrics = httpx.get(server.url + "/metrics").text
        requests, batches = _histogram(metrics, "mlark_serving_batch_requests")
        rows_sum, _ = _histogram(metrics, "mlark_serving_batch_rows")
        assert requests / batches > 2.0, (requests, batches)  # 32 clients: many requests per predict call
        assert rows_sum == 2 * requests


def test_a_lone_client_is_not_kept_waiting(folder: Path) -> None:
    """With a long --max-wait-ms, one client alone still gets answers at once: the batcher waits only for
    requests that are in flight."""
    app = create_app([str(folder)], Sources(), ServeOptions(max_wait_ms=2000))
    body = {"records": churn_frame(3, rows=1)[COLUMNS].to_dict("records")}
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/v1/models/churn-rf/predict", json=body)
        time.sleep(1.2)  # forget any earlier peak
        started = time.monotonic()
        for _ in range(10):
            assert client.post("/v1/models/churn-rf/predict", json=body).status_code == 200
        assert (time.monotonic() - started) / 10 < 0.5


def test_different_shapes_are_batched_apart(folder: Path) -> None:
    model = train(0, n_estimators=30)
    frame = churn_frame(4, rows=3)[COLUMNS]
    want = model.predict(frame).tolist()
    bodies = [
        {"records": frame.to_dict("records")},
        {"inputs": frame.to_numpy().tolist()},
        {"columns": {c: frame[c].tolist() for c in COLUMNS}},
        {"records": [{**r, "extra": "ignored"} for r in frame.to_dict("records")]},
        {"split": {"columns": list(reversed(COLUMNS)), "data": frame[list(reversed(COLUMNS))].to_numpy().tolist()}},
    ]
    app = create_app([str(folder)], Sources(), ServeOptions(max_wait_ms=20))
    with ServerThread(app) as server:
        loads = [Load(server.url, "/v1/models/churn-rf/predict", b, clients=4) for b in bodies]
        for load in loads:
            load.__enter__()
        for load in loads:
            load.wait_for_responses(40)
        for load in loads:
            load.stop()
        for load in loads:
            assert all(x["status"] == 200 and x["predictions"] == want for x in load.results), load.results[:2]


def test_requests_larger_than_max_batch_are_predicted_alone(folder: Path) -> None:
    model = train(0, n_estimators=30)
    big = churn_frame(6, rows=500)[COLUMNS]
    app = create_app([str(folder)], Sources(), ServeOptions(max_batch=16))
    with ServerThread(app) as server:
        r = httpx.post(server.url + "/v1/models/churn-rf/predict", json={"records": big.to_dict("records")}, timeout=30)
        assert r.status_code == 200 and r.json()["predictions"] == model.predict(big).tolist()
