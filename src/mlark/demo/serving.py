"""Demo steps for serving: the production model over HTTP while a promotion and a rollback happen under
load, then a file scored in batch with the scores recorded in the lineage."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from mlark.demo.context import DemoContext, step
from mlark.demo.data import ARTIFACT
from mlark.demo.models import MODEL, MODEL_ARTIFACT
from mlark.demo.tracking import PROJECT, _frames

SCORES = "digits-scores"
CLIENTS = 4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


class _Server:
    """The Starlette app of ``mlark serve`` under uvicorn, on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{_free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="demo-server", daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        self.wait(lambda: _request(self.url + "/readyz")[0] == 200, "the server to be ready")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def served_version(self) -> str:
        return _request(self.url + "/v1/models")[2]["models"][0]["version"]

    @staticmethod
    def wait(predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.05)


@dataclass
class _Load:
    """Clients sending one row at a time in a closed loop; every answer kept (status, version, prediction)."""

    url: str
    rows: list[dict[str, Any]]
    answers: list[tuple[int, int, int, str, Any]] = field(default_factory=list)  # (client, row, status, version, label)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "_Load":
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _client(self, start: int) -> None:
        i = start
        while not self.stop.is_set():
            index = i % len(self.rows)
            try:
                status, headers, doc = _request(self.url, {"records": [self.rows[index]]})
                label = doc["predictions"][0] if status == 200 else None
                self.answers.append((start, index, status, headers.get("mlark-model-version", ""), label))
            except OSError as exc:
                self.answers.append((start, index, 0, str(exc), None))
            i += CLIENTS


def _train_challenger(ctx: DemoContext) -> tuple[str, Any]:
    """A second candidate: a deeper forest on the same pinned data, logged and registered."""
    import mlark
    from sklearn.ensemble import RandomForestClassifier

    with mlark.start_run(project=PROJECT, name="challenger-forest", repo=ctx.repo,
                         params={"n_estimators": 200, "max_depth": None, "random_state": 11}) as run:
        data = run.use(f"{ARTIFACT}@best")
        X, y = _frames(data, "train")
        forest = RandomForestClassifier(n_estimators=200, random_state=11).fit(X, y)
        version = run.log_model(forest, name=MODEL_ARTIFACT, input_example=X.head(5),
                                message="Deeper random forest on the pinned digits data")
    number = mlark.registry.register(MODEL, version.ref, message="Challenger: 200 unpruned trees", repo=ctx.repo)
    return version.ref, (number, forest)


@step("Serve the production model; promote a challenger and roll back under load")
def serve(ctx: DemoContext) -> None:
    import mlark
    from mlark.ops.predict import repo_source
    from mlark.serving import ServeOptions, Sources, create_app

    champion_ref = ctx.state["production_ref"]
    champion = ctx.state["production_forest"]
    X_test, _ = ctx.state["test_split"]
    rows = [{k: int(v) for k, v in row.items()} for row in X_test.to_dict("records")]
    app = create_app([f"models:/{MODEL}@production"], Sources(repo_source(ctx.repo)), ServeOptions(poll_interval=0.2))
    ctx.out.command(f"mlark serve models:/{MODEL}@production --port 8080")
    with _Server(app) as server:
        endpoint = f"{server.url}/v1/models/{MODEL}/predict"
        status, headers, doc = _request(endpoint, {"records": rows})
        ctx.out.command(f"curl -X POST localhost:8080/v1/models/{MODEL}/predict -d '{{\"records\": [...]}}'")
        ctx.require(f"{len(rows)} rows in one request are answered by {champion_ref}",
                    status == 200 and headers.get("mlark-model-version") == champion_ref,
                    f"status {status}, version {headers.get('mlark-model-version')}")
        ctx.require("the served predictions equal the logged forest's",
                    doc["predictions"] == champion.predict(X_test).tolist())
        with _Load(endpoint, rows) as load:
            server.wait(lambda: len(load.answers) >= 50, "the first answers")
            challenger_ref, (number, challenger) = _train_challenger(ctx)
            mlark.registry.promote(MODEL, number, "production", message="Challenger promoted for a trial",
                                   repo=ctx.repo)
            ctx.out.command(f'mlark models promote {MODEL} {number} production -m "Challenger promoted for a trial"')
            server.wait(lambda: server.served_version() == challenger_ref, f"the server to serve {challenger_ref}")
            seen = len(load.answers)
            server.wait(lambda: len(load.answers) >= seen + 50, "answers from the challenger")
            mlark.registry.rollback(MODEL, "production", message="Trial over: back to the first forest",
                                    repo=ctx.repo)
            ctx.out.command(f"mlark models rollback {MODEL} production -m \"Trial over\"")
            server.wait(lambda: server.served_version() == champion_ref, f"the server to serve {champion_ref} again")
            seen = len(load.answers)
            server.wait(lambda: len(load.answers) >= seen + 50, "answers after the rollback")
    answers = list(load.answers)
    expected = {champion_ref: champion.predict(X_test).tolist(), challenger_ref: challenger.predict(X_test).tolist()}
    failed = [a for a in answers if a[2] != 200]
    wrong = [a for a in answers if a[2] == 200 and (a[3] not in expected or expected[a[3]][a[1]] != a[4])]
    # Each client sends its next request only after the previous answer, so its own answers are in time
    # order: each must go champion, challenger, champion, switching once each way and never back.
    order = [champion_ref, challenger_ref, champion_ref]
    counts = [0, 0, 0]
    clean = True
    for client in range(CLIENTS):
        phase = 0
        for _, _, _, version, _ in (a for a in answers if a[0] == client):
            while phase < len(order) and order[phase] != version:
                phase += 1
            if phase == len(order):
                clean = False
                break
            counts[phase] += 1
    ctx.out.table(f"{len(answers)} single-row requests from {CLIENTS} clients",
                  ["phase", "served by", "answers"],
                  [["before the promotion", champion_ref, str(counts[0])],
                   ["after the promotion", challenger_ref, str(counts[1])],
                   ["after the rollback", champion_ref, str(counts[2])]])
    ctx.require("no request failed during the promotion and the rollback", not failed,
                f"{len(failed)} failed, first: {failed[:1]}")
    ctx.require("every answer is the prediction of the version named in its header", not wrong,
                f"{len(wrong)} differ")
    ctx.require("every client saw the champion, then the challenger, then the champion again, never a mix",
                clean and all(counts), str(counts))
    ctx.summary["serving"] = {"requests": len(answers), "failed": len(failed), "phases": counts,
                              "challenger": challenger_ref}


@step("Score a file in batch and record the scores in the lineage")
def batch(ctx: DemoContext) -> None:
    import mlark
    import pyarrow.parquet as pq

    from mlark.ops.predict import PredictOptions, predict_recorded

    X_test, _ = ctx.state["test_split"]
    forest = ctx.state["production_forest"]
    folder = ctx.path("scoring")
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "digits-to-score.parquet"
    X_test.reset_index().to_parquet(source, index=False)
    output = folder / "scores.parquet"
    report, outcome = predict_recorded(ctx.repo, f"models:/{MODEL}@production", source, output, record=SCORES,
                                       message="Scores of the held-out digits by the production model",
                                       options=PredictOptions(passthrough=["sample_id"]))
    ctx.out.command(f"mlark predict models:/{MODEL}@production --input {source.name} --output {output.name} "
                    f"--passthrough sample_id --record {SCORES} -m \"Scores of the held-out digits ...\"")
    ctx.out.say(f"Predicted {report.rows} rows with {outcome['model_version']} and committed the scores as "
                f"{outcome['recorded']}, made by run {outcome['run'][:13]}… from {outcome['input_version']}.")
    scores = pq.read_table(output)
    ctx.require("the batch scores equal the logged forest's predictions",
                scores.column("prediction").to_pylist() == forest.predict(X_test).tolist()
                and scores.column("sample_id").to_pylist() == X_test.index.tolist())
    graph = mlark.lineage(outcome["recorded"], direction="up", repo=ctx.repo)
    order = [n.label for n in graph.topological()]
    ctx.out.command(f"mlark lineage {outcome['recorded']} --up")
    ctx.out.say("Upstream of the scores: " + "  ->  ".join(order))
    refs = {n.ref for n in graph.topological()}
    ctx.require("the scores trace back to the model version, the scored file and the training data",
                {outcome["model_version"], outcome["input_version"], f"{ARTIFACT}:v1"} <= refs, str(sorted(refs)))
    ctx.summary["batch"] = {"rows": report.rows, "recorded": outcome["recorded"], "run": outcome["run"],
                            "model_version": outcome["model_version"], "input_version": outcome["input_version"]}


STEPS = (serve, batch)
