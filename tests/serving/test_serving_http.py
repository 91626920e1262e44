"""The HTTP API on a real server: every input shape, MLflow's /invocations, versions in answers, listings,
health, metrics and the OpenAPI description."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from serving_testkit import COLUMNS, PROBE, ServerThread, churn_frame, log_model, new_repo, train  # noqa: E402

from mlark.ops import registry  # noqa: E402
from mlark.serving import ServeOptions, Sources, create_app  # noqa: E402
from mlark.serving.source import RepoSource  # noqa: E402

ROWS = churn_frame(5, rows=6)[COLUMNS]


def _source(repo: Any) -> Sources:
    from mlark.ops.run_inputs import materialise

    return Sources(RepoSource(repo.db, lambda v: materialise(repo, v)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serving-http")
    repo = new_repo(root / "project")
    model = train(0)
    v1 = log_model(repo, model, "churn-rf", aliases=["best"])
    registry.register(repo, "churn", v1.ref, "First candidate for churn")
    registry.promote(repo, "churn", 1, "production", "Passed the offline evaluation")
    expected = model.predict(ROWS).tolist()
    app = create_app(["models:/churn@production", "churn-rf@best"], _source(repo), ServeOptions(poll_interval=0.2))
    with ServerThread(app) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield {"repo": repo, "server": server, "client": client, "expected": expected, "v1": v1, "model": model}
    repo.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One model, served from its folder: /invocations answers."""
    from mlark.models import save_model

    folder = tmp_path_factory.mktemp("serving-single") / "churn-rf"
    model = train(1)
    save_model(model, folder, input_example=churn_frame(99, rows=3)[COLUMNS])
    with ServerThread(create_app([str(folder)], Sources(), ServeOptions())) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield {"client": client, "expected": model.predict(ROWS).tolist(), "model": model}


def _records() -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in ROWS.to_dict("records")]


def _bodies() -> dict[str, Any]:
    records = _records()
    columns = {c: ROWS[c].tolist() for c in COLUMNS}
    split = {"columns": COLUMNS, "data": ROWS.to_numpy().tolist()}
    return {
        "records": {"records": records},
        "columns": {"columns": columns},
        "split": {"split": split},
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs-records": {"inputs": records},
        "inputs-columns": {"inputs": columns},
        "inputs-rows": {"inputs": ROWS.to_numpy().tolist()},
        "bare-list": records,
    }


@pytest.mark.parametrize("shape", list(_bodies()))
def test_every_json_shape_predicts_like_the_model(world: dict[str, Any], shape: str) -> None:
    r = world["client"].post("/v1/models/churn-rf/predict", json=_bodies()[shape])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["predictions"] == world["expected"]
    assert doc["version"] == "churn-rf:v1" and doc["model"] == "churn-rf"
    assert r.headers["mlark-model-version"] == "churn-rf:v1"
    assert r.headers["mlark-model-digest"] == world["v1"].digest


def test_single_instance_and_bare_object(world: dict[str, Any]) -> None:
    client = world["client"]
    want = world["model"].predict(pd.DataFrame([PROBE])[COLUMNS]).tolist()
    for body in ({"instance": PROBE}, PROBE):
        r = client.post("/v1/models/churn-rf/predict", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want


@pytest.mark.parametrize("path", [
    "/v1/models/churn/predict",
    "/v1/models/" + quote("models:/churn@production", safe="") + "/predict",
    "/v1/models/models:/churn@production/predict",
    "/v1/models/churn@production/predict",  # as the curl writes it: the registered model, scheme left out
])
def test_registered_model_by_name_or_url_encoded_reference(world: dict[str, Any], path: str) -> None:
    r = world["client"].post(path, json={"records": _records()})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == world["expected"]
    assert r.json()["registered"] == "models:/churn/1"
    assert r.headers["mlark-registered-version"] == "models:/churn/1"
    assert r.headers["mlark-model-version"] == "churn-rf:v1"


def test_artifact_reference_url_encoded(world: dict[str, Any]) -> None:
    r = world["client"].post("/v1/models/" + quote("churn-rf@best", safe="") + "/predict", json={"records": _records()})
    assert r.status_code == 200 and r.json()["predictions"] == world["expected"]


def test_columns_are_matched_by_name_and_extra_ones_ignored(world: dict[str, Any]) -> None:
    records = [{"extra": "x", **dict(reversed(list(rec.items())))} for rec in _records()]
    r = world["client"].post("/v1/models/churn-rf/predict", json={"records": records})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == world["expected"]


def test_numeric_strings_are_converted_by_the_signature_rules(world: dict[str, Any]) -> None:
    rec = {k: str(v) for k, v in PROBE.items()}
    r = world["client"].post("/v1/models/churn-rf/predict", json={"records": [rec]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == world["model"].predict(pd.DataFrame([PROBE])[COLUMNS]).tolist()


def _arrow(frame: pd.DataFrame, file: bool = False) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["arrow-stream", "arrow-file", "parquet", "csv"])
def test_table_bodies(world: dict[str, Any], kind: str) -> None:
    big = churn_frame(8, rows=3000)[COLUMNS]
    body, ctype = {
        "arrow-stream": (_arrow(big), "application/vnd.apache.arrow.stream"),
        "arrow-file": (_arrow(big, file=True), "application/vnd.apache.arrow.file"),
        "parquet": (_parquet(big), "application/vnd.apache.parquet"),
        "csv": (big.to_csv(index=False).encode(), "text/csv"),
    }[kind]
    r = world["client"].post("/v1/models/churn-rf/predict", content=body, headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == world["model"].predict(big).tolist()


def test_arrow_answer_when_asked(world: dict[str, Any]) -> None:
    r = world["client"].post("/v1/models/churn-rf/predict", content=_arrow(ROWS),
                             headers={"content-type": "application/vnd.apache.arrow.stream",
                                      "accept": "application/vnd.apache.arrow.stream"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.apache.arrow.stream")
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.column("prediction").to_pylist() == world["expected"]
    assert r.headers["mlark-model-version"] == "churn-rf:v1"


def test_422_names_the_field(world: dict[str, Any]) -> None:
    client = world["client"]
    missing = {k: v for k, v in PROBE.items() if k != "age"}
    r = client.post("/v1/models/churn-rf/predict", json={"records": [missing]})
    assert r.status_code == 422
    assert r.json()["field"] == "age" and "age" in r.json()["message"]
    bad = {**PROBE, "tenure": "three"}
    r = client.post("/v1/models/churn-rf/predict", json={"records": [bad]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "tenure" and "three" in r.json()["message"]
    r = client.post("/v1/models/churn-rf/predict", json={"records": [{**PROBE, "tenure": 2.5}]})
    assert r.status_code == 422 and r.json()["field"] == "tenure"


def test_one_bad_request_does_not_fail_its_batch(world: dict[str, Any]) -> None:
    import concurrent.futures as cf

    good = {"records": _records()}
    bad = {"records": [{**PROBE, "age": "old"}]}

    def send(body: Any) -> httpx.Response:
        with httpx.Client(base_url=world["server"].url, timeout=30) as c:
            return c.post("/v1/models/churn-rf/predict", json=body)

    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, [bad if i % 4 == 0 else good for i in range(64)]))
    for i, r in enumerate(results):
        if i % 4 == 0:
            assert r.status_code == 422 and r.json()["field"] == "age"
        else:
            assert r.status_code == 200 and r.json()["predictions"] == world["expected"]


def test_unknown_model_is_404_listing_what_is_served(world: dict[str, Any]) -> None:
    r = world["client"].post("/v1/models/nope/predict", json={"records": _records()})
    assert r.status_code == 404
    assert set(r.json()["served"]) == {"churn", "churn-rf"}
    r = world["client"].post("/v1/models/" + quote("models:/other@production", safe="") + "/predict", json={})
    assert r.status_code == 404


def test_invocations_only_with_one_model(world: dict[str, Any]) -> None:
    r = world["client"].post("/invocations", json={"dataframe_records": _records()})
    assert r.status_code == 404 and "/v1/models/" in r.json()["message"]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS.to_numpy().tolist()}},
    {"dataframe_split": {"columns": COLUMNS, "data": ROWS.to_numpy().tolist(), "index": list(range(len(ROWS)))}},
    {"dataframe_records": "records"},
    {"instances": "records"},
    {"inputs": "records"},
    {"inputs": ROWS.to_numpy().tolist()},
    {"dataframe_records": "records", "params": {}},
])
def test_mlflow_invocations_shapes(single: dict[str, Any], body: dict[str, Any]) -> None:
    body = {k: (_records() if v == "records" else v) for k, v in body.items()}
    r = single["client"].post("/invocations", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": single["expected"]}
    assert "mlark-model-version" in r.headers


def test_mlflow_invocations_csv_and_errors(single: dict[str, Any]) -> None:
    client = single["client"]
    r = client.post("/invocations", content=ROWS.to_csv(index=False), headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json() == {"predictions": single["expected"]}
    r = client.post("/invocations", json={"records": _records()})  # an mlark shape, not MLflow's
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    r = client.post("/invocations", json={"dataframe_records": _records(), "params": {"temperature": 1}})
    assert r.status_code == 422 and r.json()["field"] == "params"
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200


def test_listing_health_and_readiness(world: dict[str, Any]) -> None:
    client = world["client"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "models": {"churn": "ready", "churn-rf": "ready"}}
    doc = client.get("/v1/models").json()
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["churn"]["ref"] == "models:/churn@production"
    assert by_name["churn"]["version"] == "churn-rf:v1"
    assert by_name["churn"]["registered"] == "models:/churn/1"
    assert by_name["churn"]["stage"] == "production"
    assert by_name["churn"]["follows"] is True
    assert by_name["churn"]["resolves_since"] is not None and by_name["churn"]["serving_since"] is not None
    assert by_name["churn-rf"]["version"] == "churn-rf:v1" and by_name["churn-rf"]["resolves_since"] is not None
    assert by_name["churn-rf"]["loaded"]["signature"]["inputs"]["columns"][0]["name"] == "tenure"
    one = client.get("/v1/models/" + quote("churn-rf@best", safe=""))
    assert one.status_code == 200 and one.json()["name"] == "churn-rf"
    assert client.get("/v1/models/churn-rf/predict").status_code == 405


def test_metrics(world: dict[str, Any]) -> None:
    client = world["client"]
    client.post("/v1/models/churn-rf/predict", json={"records": _records()})
    client.post("/v1/models/churn-rf/predict", json={"records": [{}]})
    text = client.get("/metrics").text
    for name in ("mlark_serving_requests_total", "mlark_serving_request_errors_total",
                 "mlark_serving_request_duration_seconds_bucket", "mlark_serving_batch_rows_bucket",
                 "mlark_serving_batch_requests_bucket", "mlark_serving_predict_duration_seconds_bucket",
                 "mlark_serving_model_ready", "mlark_serving_queue_depth"):
        assert name in text, name
    assert 'mlark_serving_model_info{digest="%s",model="churn-rf",ref="churn-rf@best",registered="",' \
           'version="churn-rf:v1"} 1.0' % world["v1"].digest in text
    assert 'registered="models:/churn/1"' in text
    assert 'mlark_serving_requests_total{endpoint="predict",model="churn-rf",status="422"}' in text


def test_openapi(world: dict[str, Any]) -> None:
    doc = world["client"].get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/models/{ref}/predict" in doc["paths"] and "/metrics" in doc["paths"]
    assert "/invocations" not in doc["paths"]  # two models are served
    record = doc["x-mlark-models"]["churn-rf"]["record"]
    assert set(record["properties"]) == set(COLUMNS)
    assert record["properties"]["tenure"]["type"] == "integer"
    json.dumps(doc)


def test_empty_rows_give_empty_predictions(world: dict[str, Any]) -> None:
    r = world["client"].post("/v1/models/churn-rf/predict", json={"records": []})
    assert r.status_code == 200 and r.json()["predictions"] == []


def test_predictions_of_a_table_model_are_records(tmp_path: Path) -> None:
    """A model returning a DataFrame answers one object per row; NaN becomes null."""
    from mlark.models import save_model

    folder = tmp_path / "m"
    save_model(train(2), folder, input_example=churn_frame(9, rows=3)[COLUMNS], method="predict_proba")
    with ServerThread(create_app([str(folder)], Sources(), ServeOptions())) as server:
        r = httpx.post(server.url + "/v1/models/m/predict", json={"records": _records()[:2]}, timeout=30)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert len(preds) == 2 and len(preds[0]) == 2 and abs(sum(preds[0]) - 1) < 1e-9
        assert np.allclose(preds, train(2).predict_proba(ROWS[:2]))
