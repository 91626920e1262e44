#!/usr/bin/env python3
"""Serving benchmark: ``mlark serve`` / ``mlark predict`` against ``mlflow models serve`` /
``mlflow.pyfunc``, on the same model, the same machine, the same load generator, in one run.

Usage (from the repository root, after ./bench/setup_mlflow.sh):

    .venv/bin/python bench/bench_serving.py                      # full size
    .venv/bin/python bench/bench_serving.py --duration 4 --rows 100000   # quick structural run

The model: one scikit-learn RandomForestClassifier (50 trees) trained once on 20,000 rows of 8
numeric features (``make_classification``), then saved by each tool from the same fitted object:
mlark logs it through a run (``run.log_model``, aliased ``production``); MLflow logs it with
``mlflow.sklearn.log_model`` (skops, the one type it asks to trust: ``sklearn.tree._tree.Tree``).

Scenarios and targets:

  serve    single-row requests from 8, 16 and 32 concurrent clients for --duration seconds
           (after --warmup), to ``mlflow models serve -m MODEL --env-manager local`` and to
           ``mlark serve churn-rf@production``, both with their default single worker process.
           Both get the same request bodies, at MLflow's scoring endpoint ``POST /invocations``
           (``{"dataframe_split": {"columns": [...], "data": [[...]]}}``, one row; mlark serves
           MLflow's protocol when it serves one model), cycling through 1,000 different rows.
           The load generator is this script's ``--loadgen`` mode in its own process: asyncio
           with one keep-alive connection per client, each client sending its next request when
           the previous answer has arrived (a closed loop), latencies measured per request.
                                            target: throughput >= 5x MLflow's, p99 <= MLflow's
  batch    predict --rows (1,000,000) rows of a Parquet file and write the predictions (with the
           row id) to Parquet: ``mlark predict churn-rf@production --input F --output O
           --passthrough id`` vs a script in MLflow's venv doing ``mlflow.pyfunc.load_model(uri)``,
           ``pd.read_parquet(F)``, ``model.predict(frame)`` and writing the same output. Both are
           timed from process start to exit (what a user waits for); the time inside the process
           (model load, read, predict, write) is reported too. The two outputs must be equal.
                                            target: mlark >= 3x faster (process start to exit)

Results go to stdout (tables, or JSON with --json) and to bench/.work/last_serving.json.
Exit status: 0 every target met, 1 a target missed, 3 a tool was missing or a step failed
(argparse usage errors are 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_MLARK_PY = REPO_ROOT / ".venv" / "bin" / "python"
DEFAULT_MLFLOW_PY = BENCH_DIR / ".venv-mlflow" / "bin" / "python"
WORK_ROOT = BENCH_DIR / ".work"
RESULT_NAME = "last_serving.json"

SEED = 20240611
FEATURES = [f"f{i}" for i in range(8)]
TRAIN_ROWS = 20_000
TREES = 50
REQUEST_ROWS = 1000  # distinct single-row bodies the load generator cycles through
SERVE_TARGET = 5.0
BATCH_TARGET = 3.0
READY_TIMEOUT = 300.0
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]
_MLFLOW_BIN = str(DEFAULT_MLFLOW_PY.parent)  # set from --mlflow-python in main()


# =========================================================================== workers (each tool's venv)


def _dataset(n: int, offset: int = 0) -> Any:
    """Rows ``offset .. offset+n`` of one fixed make_classification stream (training and scoring data
    come from the same distribution, as customers scored by a churn model do)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=offset + n, n_features=len(FEATURES), n_informative=6, n_redundant=1,
                               random_state=SEED)
    frame = pd.DataFrame(x[offset:], columns=FEATURES)
    frame.insert(0, "id", np.arange(offset, offset + n, dtype=np.int64))
    return frame, y[offset:]


def worker_prepare(a: dict[str, Any]) -> dict[str, Any]:
    """mlark's venv: train the forest, log it in a repository, write the data and the model for MLflow."""
    import pickle

    from sklearn.ensemble import RandomForestClassifier

    from mlark.ops.repo import Repo
    from mlark.ops.run_start import start_run
    from mlark.tracking.capture import Capture

    work = Path(a["work"])
    train, y = _dataset(TRAIN_ROWS)
    model = RandomForestClassifier(n_estimators=TREES, random_state=0).fit(train[FEATURES], y)
    repo = Repo.init(work / "mlark-repo", author="bench@serving")
    with start_run(repo, "bench", None, {"trees": TREES}, None, capture_options=Capture.none()) as run:
        version = run.log_model(model, name="churn-rf", input_example=train[FEATURES].head(5),
                                aliases=["production"], message="RandomForest(50) for the serving benchmark")
    repo.close()
    with open(work / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    train[FEATURES].head(5).to_parquet(work / "example.parquet")
    scoring, _ = _dataset(a["rows"], offset=TRAIN_ROWS)
    scoring.to_parquet(work / "batch.parquet", row_group_size=65_536)
    requests, _ = _dataset(REQUEST_ROWS, offset=TRAIN_ROWS + a["rows"])
    bodies = [json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row]}})
              for row in requests[FEATURES].to_numpy().tolist()]
    (work / "bodies.json").write_text(json.dumps(bodies))
    check = requests[FEATURES].head(100)
    (work / "check.json").write_text(json.dumps({
        "body": {"dataframe_split": {"columns": FEATURES, "data": check.to_numpy().tolist()}},
        "expected": model.predict(check).tolist(),
    }))
    return {"version": version.ref, "digest": version.digest}


def worker_mlflow_log(a: dict[str, Any]) -> dict[str, Any]:
    """MLflow's venv: log the same fitted forest with mlflow.sklearn.log_model."""
    import pickle

    import mlflow
    import mlflow.sklearn
    import pandas as pd

    work = Path(a["work"])
    with open(work / "model.pkl", "rb") as fh:
        model = pickle.load(fh)
    example = pd.read_parquet(work / "example.parquet")
    mlflow.set_experiment("bench-serving")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=example,
                                        skops_trusted_types=SKOPS_TRUSTED)
    return {"model_uri": info.model_uri, "mlflow": mlflow.__version__}


def worker_mlflow_batch(a: dict[str, Any]) -> dict[str, Any]:
    """MLflow's venv: the batch job as MLflow users write it, timed from inside the process. "load" includes
    importing scikit-learn (which loading the model does), as mlark's "resolve+load" does."""
    t0 = time.perf_counter()
    import mlflow.pyfunc
    import pandas as pd

    t1 = time.perf_counter()
    model = mlflow.pyfunc.load_model(a["model_uri"])
    t2 = time.perf_counter()
    frame = pd.read_parquet(a["input"])
    t3 = time.perf_counter()
    predictions = model.predict(frame[FEATURES])
    t4 = time.perf_counter()
    pd.DataFrame({"id": frame["id"], "prediction": predictions}).to_parquet(a["output"], index=False)
    t5 = time.perf_counter()
    return {"imports_s": t1 - t0, "load_s": t2 - t1, "read_s": t3 - t2, "predict_s": t4 - t3, "write_s": t5 - t4,
            "inside_s": t5 - t1, "rows": len(frame)}


WORKERS = {"prepare": worker_prepare, "mlflow-log": worker_mlflow_log, "mlflow-batch": worker_mlflow_batch}


# =========================================================================== the load generator (own process)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and "close" in value.lower():
            close = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        body = await reader.readexactly(length or 0)
    return status, body, close


async def _client(host: str, port: int, requests: list[bytes], start: int, warm_until: float, stop_at: float,
                  out: list[tuple[float, int]]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    i, errors = start, 0
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                status, body, close = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status, close = 0, True
            t1 = time.perf_counter()
            if status != 200 or b"predictions" not in body:
                errors += 1
            if t0 >= warm_until:
                out.append((t1 - t0, status))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()
    return errors


async def _load(url: str, path: str, bodies: list[str], clients: int, duration: float, warmup: float) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(b.encode())}\r\n\r\n").encode() + b.encode() for b in bodies]
    samples: list[tuple[float, int]] = []
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + duration
    errors = await asyncio.gather(*(_client(host, port, requests, k * 37, warm_until, stop_at, samples)
                                    for k in range(clients)))
    latencies = sorted(lat for lat, status in samples if status == 200)
    failed = sum(1 for _, status in samples if status != 200)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {"clients": clients, "requests": len(samples), "ok": len(latencies), "failed": failed,
            "errors_total": sum(errors), "seconds": duration, "throughput": len(latencies) / duration,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan")}


def loadgen_main(args: argparse.Namespace) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    bodies = json.loads(Path(args.bodies).read_text())
    result = asyncio.run(_load(args.url, args.path, bodies, args.clients, args.duration, args.warmup))
    print(json.dumps(result))
    return 0


# =========================================================================== orchestration (stdlib + mlark's venv)


def log(msg: str) -> None:
    print(f"[bench_serving {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class StepFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(tool: str, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLARK_REPO"):
        env.pop(key, None)
    env.update(MLFLOW_ENV)
    if tool == "mlflow":
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        # `mlflow models serve` starts `uvicorn` by name: its venv's bin folder must come first on PATH
        env["PATH"] = f"{_MLFLOW_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLARK_CAPTURE"] = "0"
    return env


def run_worker(python: Path, task: str, work: Path, tool: str, timeout: float = 3600, **a: Any) -> tuple[dict[str, Any], float]:
    args = {"work": str(work), **a}
    started = time.perf_counter()
    done = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", task, json.dumps(args)],
                          capture_output=True, text=True, cwd=work, env=env_for(tool, work), timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise StepFailed(f"{tool} {task} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def http_status(url: str) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except Exception as exc:  # noqa: BLE001
        return int(getattr(exc, "code", 0) or 0)


def post_json(url: str, doc: Any) -> Any:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(doc).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int, ready_path: str) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{name}-server.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while http_status(self.url + ready_path) != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StepFailed(f"{name} server did not become ready:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def loadgen(python: Path, url: str, bodies: Path, clients: int, duration: float, warmup: float) -> dict[str, Any]:
    done = subprocess.run([str(python), str(Path(__file__).resolve()), "--loadgen", "--url", url, "--path",
                           "/invocations", "--bodies", str(bodies), "--clients", str(clients),
                           "--duration", str(duration), "--warmup", str(warmup)],
                          capture_output=True, text=True, timeout=duration + warmup + 300)
    if done.returncode != 0:
        raise StepFailed(f"load generator failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_mlflow_sklearn(mlflow_py: Path) -> str:
    """The peer needs scikit-learn (the same version as mlark's venv, to load the same fitted forest)."""
    import sklearn

    want = sklearn.__version__
    probe = subprocess.run([str(mlflow_py), "-c", "import sklearn; print(sklearn.__version__)"],
                           capture_output=True, text=True)
    have = probe.stdout.strip() if probe.returncode == 0 else None
    if have != want:
        log(f"installing scikit-learn=={want} into {mlflow_py.parent.parent} (found {have or 'none'})")
        done = subprocess.run([str(mlflow_py), "-m", "pip", "install", "--quiet", f"scikit-learn=={want}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise StepFailed(f"could not install scikit-learn=={want} for MLflow:\n{done.stderr[-2000:]}")
    return want


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["mem_gib"] = round(int(next(line.split()[1] for line in open("/proc/meminfo")
                                          if line.startswith("MemTotal"))) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        info["load_before"] = os.getloadavg()
    except OSError:
        pass
    return info


def mlark_cmd(args: argparse.Namespace) -> list[str]:
    """The ``mlark`` console script of mlark's venv, as a user runs it (PyTorch installed there or not)."""
    return [str(Path(args.mlark_python).with_name("mlark"))]


def torch_installed(python: Path) -> bool:
    """Whether PyTorch is installed in that interpreter's environment (mlark's test venv has it)."""
    code = "import importlib.util; print(importlib.util.find_spec('torch') is not None)"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def scenario_serve(args: argparse.Namespace, work: Path, model_uri: str, doc: dict[str, Any]) -> bool:
    mlark_py, mlflow_py = Path(args.mlark_python), Path(args.mlflow_python)
    mlflow_bin = mlflow_py.with_name("mlflow")
    ports = {"mlflow": free_port(), "mlark": free_port()}
    log("starting both servers")
    servers = {
        "mlflow": Server("mlflow", [str(mlflow_bin), "models", "serve", "-m", model_uri, "--env-manager", "local",
                                    "-h", "127.0.0.1", "-p", str(ports["mlflow"])],
                         env_for("mlflow", work), work, ports["mlflow"], "/ping"),
    }
    try:
        servers["mlark"] = Server("mlark", [*mlark_cmd(args), "--repo", str(work / "mlark-repo"), "serve",
                                            "churn-rf@production", "--port", str(ports["mlark"]),
                                            "--log-level", "warning"],
                                  env_for("mlark", work), work, ports["mlark"], "/readyz")
        check = json.loads((work / "check.json").read_text())
        for name, server in servers.items():  # the same predictions from both, for the same 100 rows
            got = post_json(server.url + "/invocations", check["body"])["predictions"]
            if got != check["expected"]:
                raise StepFailed(f"{name} predicts differently from the fitted forest")
        rows = []
        ok = True
        for clients in args.clients:
            res = {}
            for name in ("mlflow", "mlark"):
                log(f"{clients} clients -> {name} ({args.warmup:g}s warm-up, {args.duration:g}s measured)")
                res[name] = loadgen(mlark_py, servers[name].url, work / "bodies.json", clients, args.duration,
                                    args.warmup)
            ratio = res["mlark"]["throughput"] / max(res["mlflow"]["throughput"], 1e-9)
            p99_ok = res["mlark"]["p99_ms"] <= res["mlflow"]["p99_ms"]
            errors_ok = res["mlark"]["failed"] == 0 and res["mlark"]["errors_total"] == 0
            passed = ratio >= SERVE_TARGET and p99_ok and errors_ok
            ok = ok and passed
            rows.append({"clients": clients, "mlflow": res["mlflow"], "mlark": res["mlark"],
                         "throughput_ratio": ratio, "p99_ok": p99_ok, "pass": passed})
        metrics = ""
        try:
            import urllib.request

            with urllib.request.urlopen(servers["mlark"].url + "/metrics", timeout=10) as resp:
                metrics = resp.read().decode()
        except Exception:  # noqa: BLE001
            pass
        doc["serve"] = {"rows": rows, "pass": ok, "mlark_batching": _batching(metrics)}
        return ok
    finally:
        for server in servers.values():
            server.stop()


def _batching(metrics: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        for key in ("mlark_serving_batch_requests_sum", "mlark_serving_batch_requests_count"):
            if line.startswith(key + "{"):
                out[key] = float(line.rsplit(" ", 1)[1])
    if out.get("mlark_serving_batch_requests_count"):
        out["mean_requests_per_predict"] = out["mlark_serving_batch_requests_sum"] / out["mlark_serving_batch_requests_count"]
    return out


def scenario_batch(args: argparse.Namespace, work: Path, model_uri: str, doc: dict[str, Any]) -> bool:
    import pyarrow.parquet as pq

    mlark_py, mlflow_py = Path(args.mlark_python), Path(args.mlflow_python)
    data = work / "batch.parquet"
    out_mlark, out_mlflow = work / "scores-mlark.parquet", work / "scores-mlflow.parquet"
    log(f"batch: MLflow pyfunc on {args.rows:,} rows")
    mlflow_doc, mlflow_wall = run_worker(mlflow_py, "mlflow-batch", work, "mlflow", model_uri=model_uri,
                                         input=str(data), output=str(out_mlflow))
    log(f"batch: mlark predict on {args.rows:,} rows")
    started = time.perf_counter()
    done = subprocess.run([*mlark_cmd(args), "--repo", str(work / "mlark-repo"), "predict",
                           "churn-rf@production", "--input", str(data), "--output", str(out_mlark),
                           "--passthrough", "id", "--json"],
                          capture_output=True, text=True, cwd=work, env=env_for("mlark", work), timeout=3600)
    mlark_wall = time.perf_counter() - started
    if done.returncode != 0:
        raise StepFailed(f"mlark predict failed:\n{done.stderr[-4000:]}")
    mlark_doc = json.loads(done.stdout)
    a, b = pq.read_table(out_mlark), pq.read_table(out_mlflow)
    if a.column("id").to_pylist() != b.column("id").to_pylist() or \
            a.column("prediction").to_pylist() != b.column("prediction").to_pylist():
        raise StepFailed("mlark and MLflow wrote different predictions")
    ratio = mlflow_wall / mlark_wall
    mlark_inside = mlark_doc["load_seconds"] + mlark_doc["seconds"]
    inside_ratio = mlflow_doc["inside_s"] / mlark_inside
    passed = ratio >= BATCH_TARGET
    doc["batch"] = {"rows": args.rows, "mlflow_wall_s": mlflow_wall, "mlark_wall_s": mlark_wall, "ratio": ratio,
                    "mlflow_inside": mlflow_doc, "mlark_predict_s": mlark_doc["seconds"],
                    "mlark_load_s": mlark_doc["load_seconds"], "mlark_inside_s": mlark_inside,
                    "mlark_accelerated": mlark_doc["accelerated"], "mlark_workers": mlark_doc["workers"],
                    "inside_ratio": inside_ratio, "outputs_equal": True, "pass": passed}
    return passed


def render(doc: dict[str, Any]) -> str:
    lines = []
    m = doc["machine"]
    lines.append(f"Machine: {m.get('cpus')} CPUs ({m.get('cpu', '?')}), {m.get('mem_gib', '?')} GiB, "
                 f"Python {m['python']}; load average before {tuple(round(x, 2) for x in m.get('load_before', ()))}, "
                 f"after {tuple(round(x, 2) for x in doc.get('load_after', ()))}")
    lines.append(f"MLflow {doc.get('mlflow_version')} (mlflow models serve, 1 worker) vs mlark "
                 f"(mlark serve, 1 worker); scikit-learn {doc.get('sklearn')}; RandomForest({TREES}); "
                 f"PyTorch installed for mlark: {'yes' if doc.get('mlark_torch_installed') else 'no'} (MLflow: no)")
    if "serve" in doc:
        lines.append("")
        lines.append("serve: single-row POST /invocations, closed loop, "
                     f"{doc['args']['duration']:g}s measured after {doc['args']['warmup']:g}s warm-up")
        header = ["clients", "MLflow req/s", "MLflow p99 ms", "mlark req/s", "mlark p99 ms", "throughput x",
                  "p99 no worse", "failed (mlark/MLflow)", "result"]
        table = [header]
        for r in doc["serve"]["rows"]:
            table.append([str(r["clients"]), f"{r['mlflow']['throughput']:.0f}", f"{r['mlflow']['p99_ms']:.1f}",
                          f"{r['mlark']['throughput']:.0f}", f"{r['mlark']['p99_ms']:.1f}",
                          f"{r['throughput_ratio']:.1f}x", "yes" if r["p99_ok"] else "no",
                          f"{r['mlark']['failed']}/{r['mlflow']['failed']}", "PASS" if r["pass"] else "FAIL"])
        lines.extend(_table(table))
        b = doc["serve"].get("mlark_batching", {})
        if "mean_requests_per_predict" in b:
            lines.append(f"mlark merged {b['mean_requests_per_predict']:.1f} requests per predict call on average")
        lines.append(f"target: throughput >= {SERVE_TARGET:g}x MLflow's and p99 no worse, at every concurrency")
    if "batch" in doc:
        bt = doc["batch"]
        lines.append("")
        lines.append(f"batch: {bt['rows']:,} rows from Parquet, predictions + id written to Parquet "
                     "(outputs compared: equal)")
        mi = bt["mlflow_inside"]
        table = [["tool", "process start to exit s", "inside the process s", "breakdown"],
                 ["MLflow pyfunc", f"{bt['mlflow_wall_s']:.2f}", f"{mi['inside_s']:.2f}",
                  f"imports {mi['imports_s']:.2f}, load {mi['load_s']:.2f}, read {mi['read_s']:.2f}, "
                  f"predict {mi['predict_s']:.2f}, write {mi['write_s']:.2f}; outside "
                  f"{bt['mlflow_wall_s'] - mi['inside_s'] - mi['imports_s']:.2f}"],
                 ["mlark predict", f"{bt['mlark_wall_s']:.2f}", f"{bt['mlark_inside_s']:.2f}",
                  f"resolve+load {bt['mlark_load_s']:.2f} (imports included), read+predict+write "
                  f"{bt['mlark_predict_s']:.2f} ({bt['mlark_workers']} threads, accelerated forest: "
                  f"{bt['mlark_accelerated']}); outside {bt['mlark_wall_s'] - bt['mlark_inside_s']:.2f}"]]
        lines.extend(_table(table))
        lines.append(f"ratio (process start to exit) {bt['ratio']:.2f}x  [inside the process: {bt['inside_ratio']:.2f}x]"
                     f"  target >= {BATCH_TARGET:g}x: {'PASS' if bt['pass'] else 'FAIL'}")
    lines.append("")
    lines.append(f"overall: {'PASS' if doc.get('pass') else 'FAIL'}")
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(c.rjust(w) if k and i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", nargs=2, metavar=("TASK", "ARGS_JSON"), help=argparse.SUPPRESS)
    p.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--path", default="/invocations", help=argparse.SUPPRESS)
    p.add_argument("--bodies", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per load level (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")] if "," in s else int(s),
                   default=[8, 16, 32], help="concurrent clients, comma-separated (default 8,16,32)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the batch file (default 1,000,000)")
    p.add_argument("--only", default="serve,batch", help="a subset of serve,batch")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--keep", action="store_true", help="keep bench/.work/serving afterwards")
    p.add_argument("--mlark-python", default=str(DEFAULT_MLARK_PY))
    p.add_argument("--mlflow-python", default=str(DEFAULT_MLFLOW_PY))
    p.add_argument("--work", default=str(WORK_ROOT))
    args = p.parse_args(argv)
    if args.worker:
        task, raw = args.worker
        print(json.dumps(WORKERS[task](json.loads(raw)), default=str))
        return 0
    if args.loadgen:
        args.clients = args.clients if isinstance(args.clients, int) else args.clients[0]
        return loadgen_main(args)
    if isinstance(args.clients, int):
        args.clients = [args.clients]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    mlark_py, mlflow_py = Path(args.mlark_python), Path(args.mlflow_python)
    global _MLFLOW_BIN
    _MLFLOW_BIN = str(mlflow_py.parent)
    missing = [str(x) for x in (mlark_py, mlflow_py) if not x.exists()]
    if missing:
        print(f"missing: {', '.join(missing)} (run ./dev test for mlark, ./bench/setup_mlflow.sh for MLflow)",
              file=sys.stderr)
        return 3
    work = Path(args.work) / "serving"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    doc: dict[str, Any] = {"when": datetime.now(timezone.utc).isoformat(), "machine": machine(),
                           "args": {"duration": args.duration, "warmup": args.warmup, "clients": args.clients,
                                    "rows": args.rows, "only": sorted(only)}}
    try:
        doc["sklearn"] = ensure_mlflow_sklearn(mlflow_py)
        doc["mlark_torch_installed"] = torch_installed(mlark_py)
        log(f"preparing: RandomForest({TREES}) on {TRAIN_ROWS:,} rows, {args.rows:,} rows to score")
        doc["mlark_model"], _ = run_worker(mlark_py, "prepare", work, "mlark", rows=args.rows)
        logged, _ = run_worker(mlflow_py, "mlflow-log", work, "mlflow")
        doc["mlflow_version"], model_uri = logged["mlflow"], logged["model_uri"]
        results = []
        if "serve" in only:
            results.append(scenario_serve(args, work, model_uri, doc))
        if "batch" in only:
            results.append(scenario_batch(args, work, model_uri, doc))
    except StepFailed as exc:
        print(f"bench_serving: {exc}", file=sys.stderr)
        return 3
    finally:
        try:
            doc["load_after"] = os.getloadavg()
        except OSError:
            pass
    doc["pass"] = all(results)
    (Path(args.work) / RESULT_NAME).write_text(json.dumps(doc, indent=2, default=str))
    print(json.dumps(doc, indent=2, default=str) if args.json else render(doc))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if doc["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
