"""Following aliases and stages under load: a real alias move, promotion and rollback while a load
generator sends requests. No request fails, no answer mixes versions, and once the new version has
answered, every later request is answered by it. Versions that fail to load or to predict on their
input example are refused while the old version keeps serving."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx  # noqa: E402
from serving_testkit import (  # noqa: E402
    COLUMNS,
    Broken,
    Load,
    ServerThread,
    check_clean_switch,
    churn_frame,
    log_model,
    new_repo,
    train,
)

from mlark.ops import registry  # noqa: E402
from mlark.serving import ServeOptions, Sources, create_app  # noqa: E402
from mlark.serving.source import RepoSource  # noqa: E402

ROWS = churn_frame(5, rows=4)[COLUMNS]
BODY = {"records": ROWS.to_dict("records")}
POLL = 0.1


def _source(repo: Any) -> Sources:
    from mlark.ops.run_inputs import materialise

    return Sources(RepoSource(repo.db, lambda v: materialise(repo, v)))


@pytest.fixture
def two_versions(tmp_path: Path, database_url: str) -> Iterator[dict[str, Any]]:
    """churn-rf v1 (@best) and v2, whose predictions are the opposite of v1's on every row; on SQLite and
    on PostgreSQL (the server polls the same queries on both)."""
    repo = new_repo(tmp_path / "project", database=database_url)
    m1, m2 = train(0), train(0, flip=True)
    v1 = log_model(repo, m1, "churn-rf", aliases=["best"])
    v2 = log_model(repo, m2, "churn-rf")
    expected = {v1.ref: m1.predict(ROWS).tolist(), v2.ref: m2.predict(ROWS).tolist()}
    assert expected[v1.ref] != expected[v2.ref]
    yield {"repo": repo, "v1": v1, "v2": v2, "expected": expected}
    repo.close()


def _wait_until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def _served_version(url: str, name: str) -> str | None:
    doc = httpx.get(url + "/v1/models", timeout=10).json()
    return next(m["version"] for m in doc["models"] if m["name"] == name)


def test_alias_move_under_load_switches_cleanly(two_versions: dict[str, Any]) -> None:
    w = two_versions
    repo, v1, v2 = w["repo"], w["v1"], w["v2"]
    app = create_app(["churn-rf@best"], _source(repo), ServeOptions(poll_interval=POLL))
    with ServerThread(app) as server, Load(server.url, "/v1/models/churn-rf/predict", BODY, clients=16) as load:
        load.wait_for_responses(200)
        moved_at = time.monotonic()
        repo.alias_set(v2.ref, "best", message="v2 is better on the June holdout")
        _wait_until(lambda: _served_version(server.url, "churn-rf") == v2.ref)
        load.wait_for_responses(300)
        load.stop()
        results = load.results
        assert not load.errors
        check_clean_switch(results, v1.ref, v2.ref, w["expected"])
        assert all(r["version"] == v1.ref for r in results if r["end"] < moved_at)
        listing = httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]
        assert listing["version"] == v2.ref and listing["digest"] == v2.digest
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        assert 'mlark_serving_reloads_total{model="churn-rf"} 1.0' in metrics
        assert f'version="{v2.ref}"}} 1.0' in metrics and f'version="{v1.ref}"}} 0.0' in metrics


def test_promotion_and_rollback_under_load(two_versions: dict[str, Any]) -> None:
    w = two_versions
    repo, v1, v2 = w["repo"], w["v1"], w["v2"]
    registry.register(repo, "churn", v1.ref, "First candidate")
    registry.register(repo, "churn", v2.ref, "Second candidate")
    registry.promote(repo, "churn", 1, "production", "Baseline goes live")
    app = create_app(["models:/churn@production"], _source(repo), ServeOptions(poll_interval=POLL))
    with ServerThread(app) as server:
        with Load(server.url, "/v1/models/churn/predict", BODY, clients=16) as load:
            load.wait_for_responses(150)
            registry.promote(repo, "churn", 2, "production", "Better recall on the June holdout")
            _wait_until(lambda: _served_version(server.url, "churn") == v2.ref)
            load.wait_for_responses(200)
        check_clean_switch(load.results, v1.ref, v2.ref, w["expected"])
        assert {r["registered"] for r in load.results} == {"models:/churn/1", "models:/churn/2"}
        with Load(server.url, "/v1/models/churn/predict", BODY, clients=16) as back:
            back.wait_for_responses(150)
            registry.rollback(repo, "churn", "production", "Complaints about v2")
            _wait_until(lambda: _served_version(server.url, "churn") == v1.ref)
            back.wait_for_responses(200)
        check_clean_switch(back.results, v2.ref, v1.ref, w["expected"])


@pytest.mark.parametrize("kind", ["smoke-test", "untrusted-pickle"])
def test_a_bad_version_is_refused_and_the_old_keeps_serving(two_versions: dict[str, Any], kind: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    w = two_versions
    repo, v1, v2 = w["repo"], w["v1"], w["v2"]
    if kind == "smoke-test":
        with pytest.warns(Warning):  # saving infers outputs by predicting: Broken fails there too
            bad = log_model(repo, Broken(), "churn-rf")
    else:
        bad = log_model(repo, train(3), "churn-rf", serialization="pickle")
    app = create_app(["churn-rf@best"], _source(repo), ServeOptions(poll_interval=POLL))
    with ServerThread(app) as server, caplog.at_level("INFO", logger="mlark.serving"):
        with Load(server.url, "/v1/models/churn-rf/predict", BODY, clients=8) as load:
            load.wait_for_responses(100)
            repo.alias_set(bad.ref, "best", message="try the new one")
            _wait_until(lambda: httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]["refused"])
            load.wait_for_responses(100)
        results = load.results
        assert all(r["status"] == 200 and r["version"] == v1.ref for r in results), results[:3]
        listing = httpx.get(server.url + "/v1/models", timeout=10).json()["models"][0]
        assert listing["version"] == v1.ref and listing["state"] == "ready"
        refused = listing["refused"][0]
        assert refused["version"] == bad.ref
        assert ("broken on purpose" in refused["reason"]) if kind == "smoke-test" else ("trust" in refused["reason"])
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        assert 'mlark_serving_reload_refusals_total{model="churn-rf"} 1.0' in metrics
        assert any("refused" in rec.getMessage() and bad.ref in rec.getMessage() for rec in caplog.records)
        time.sleep(3 * POLL)  # the refused digest is not tried again
        assert 'mlark_serving_reload_refusals_total{model="churn-rf"} 1.0' in httpx.get(server.url + "/metrics").text
        # A good version later is taken.
        repo.alias_set(v2.ref, "best", message="v2 after all")
        _wait_until(lambda: _served_version(server.url, "churn-rf") == v2.ref)


def test_removed_alias_keeps_the_last_version(two_versions: dict[str, Any]) -> None:
    w = two_versions
    repo, v1 = w["repo"], w["v1"]
    app = create_app(["churn-rf@best"], _source(repo), ServeOptions(poll_interval=POLL))
    with ServerThread(app) as server:
        repo.alias_remove("churn-rf", "best", message="retire the alias")
        _wait_until(lambda: httpx.get(server.url + "/v1/models").json()["models"][0]["unresolvable"])
        r = httpx.post(server.url + "/v1/models/churn-rf/predict", json=BODY, timeout=30)
        assert r.status_code == 200 and r.headers["mlark-model-version"] == v1.ref
        assert httpx.get(server.url + "/readyz").status_code == 200


def test_not_ready_until_loaded(two_versions: dict[str, Any]) -> None:
    """/readyz is 503 (and predictions 503) until every model is loaded; a model that cannot load keeps it 503."""
    w = two_versions
    repo = w["repo"]
    with pytest.warns(Warning):
        bad = log_model(repo, Broken(), "broken")
    app = create_app(["churn-rf@best", bad.ref], _source(repo), ServeOptions(poll_interval=POLL))
    with ServerThread(app, wait_ready=False) as server:
        _wait_until(lambda: all(m["state"] != "loading"
                                for m in httpx.get(server.url + "/v1/models").json()["models"]))
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["models"] == {"churn-rf": "ready", "broken": "failed"}
        r = httpx.post(server.url + "/v1/models/broken/predict", json=BODY)
        assert r.status_code == 503 and "broken on purpose" in r.json()["message"]
        assert httpx.post(server.url + "/v1/models/churn-rf/predict", json=BODY).status_code == 200
