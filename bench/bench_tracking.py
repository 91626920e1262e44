#!/usr/bin/env python3
"""Tracking benchmark: mlark against MLflow (default SQLite backend), on the same work, in the same run.

Usage (from the repository root, after ./bench/setup_mlflow.sh):

    .venv/bin/python bench/bench_tracking.py                  # full size
    .venv/bin/python bench/bench_tracking.py --points 20000 --runs 1000   # quick structural run

Scenarios (each measured in fresh processes of each tool's own venv; mlark
first, then MLflow):

  log        log scalar points one call at a time, data durable at the end:
             mlark `run.log({"loss": x}, step=i)` x --points (100,000), then
             `run.finish()`; MLflow `mlflow.log_metric("loss", x, step=i)` x
             --mlflow-points (2,000; it manages a few hundred points/s), then
             `mlflow.end_run()`. Compared as points per second.
                                                      target: mlark >= 100x MLflow's rate
  history    read back a --points metric history: `mlark.get_run(id).history("loss")`
             vs `MlflowClient().get_metric_history(run_id, "loss")` (MLflow's
             history inserted with log_batch in chunks of 1,000)
                                                      target: mlark >= 20x faster
  query      --runs runs (10,000; 2 params, 2 metrics each), filtered, ordered top 10:
             `mlark.runs(p, filter="params.max_depth >= 8 and metrics.val_auc > 0.9",
             order_by="metrics.val_auc desc", limit=10)` vs `mlflow.search_runs(...,
             filter_string="params.max_depth = '8' and metrics.val_auc > 0.9",
             order_by=["metrics.val_auc DESC"], max_results=10)`
                                                      target: mlark >= 10x faster
  frame      load all --runs runs into a pandas DataFrame: `mlark.runs(p, as_frame=True)`
             vs `mlflow.search_runs(max_results=10000)`
                                                      target: mlark >= 10x faster
  startup    a whole new process that starts a run and logs one point
             (`python -c ...`), median of --startup-repeats
                                                      target: mlark >= 3x faster

The populated 10,000-run stores are cached in bench/.work/tracking/cache/,
keyed by the data version, mlark's version and migrations, MLflow's version
and the run count (--rebuild-cache makes them again).

Results go to stdout (a table, or JSON with --json) and to
bench/.work/last_tracking.json. Exit status: 0 every target met, 1 a target
missed, 3 a tool was missing or a step failed (argparse usage errors are 2).

The orchestrating part uses only the standard library; the measuring parts run
as workers (`bench_tracking.py --worker TOOL TASK ARGS`) under each tool's
interpreter: .venv/bin/python for mlark, bench/.venv-mlflow/bin/python for MLflow.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import hashlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from _machine import machine_facts  # bench/_machine.py, beside this script

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_MLARK_PY = REPO_ROOT / ".venv" / "bin" / "python"
DEFAULT_MLFLOW_PY = BENCH_DIR / ".venv-mlflow" / "bin" / "python"
WORK_ROOT = BENCH_DIR / ".work"
RESULT_NAME = "last_tracking.json"  # in --work (default bench/.work/last_tracking.json)
MIGRATIONS = REPO_ROOT / "src" / "mlark" / "meta" / "migrations" / "versions"

SEED = 20240611
#: Bump when the generated runs change: the cached stores are rebuilt.
DATA_VERSION = "runs-v1"
PROJECT = "bench"
METRIC = "loss"

# The filter both tools run. MLflow compares params as strings, with =, !=,
# LIKE and ILIKE only (no >=, no IN, no OR): max_depth is drawn from 2..8, so
# "max_depth >= 8" is "max_depth = '8'" and both filters select the same runs.
MAX_DEPTHS = (2, 3, 4, 5, 6, 7, 8)
N_ESTIMATORS = (50, 100, 200, 400)
MLARK_FILTER = "params.max_depth >= 8 and metrics.val_auc > 0.9"
MLARK_ORDER = "metrics.val_auc desc"
MLFLOW_FILTER = "params.max_depth = '8' and metrics.val_auc > 0.9"
MLFLOW_ORDER = ["metrics.val_auc DESC"]
TOP = 10

# Targets, from the issue. Every ratio is "how many times better mlark is".
TARGETS = {"log": 100.0, "history": 20.0, "query": 10.0, "frame": 10.0, "startup": 3.0}

WORKER_TIMEOUT_S = 4 * 3600
RESULT_MARK = "@@RESULT@@ "

# MLflow must never phone home or wait on the network.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}
# Variables that would change either tool's defaults: removed from the workers' environment.
SCRUB_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
             "MLARK_REPO", "MLARK_CAPTURE_GIT", "MLARK_CAPTURE_ENV", "MLARK_CAPTURE_PACKAGES")

STARTUP_MLARK = """\
import mlark
with mlark.start_run("startup") as run:
    run.log({"loss": 0.5}, step=0)
"""
STARTUP_MLFLOW = """\
import mlflow
mlflow.set_experiment("startup")
with mlflow.start_run():
    mlflow.log_metric("loss", 0.5, step=0)
"""


class ExitStatus(enum.IntEnum):
    OK = 0
    TARGET_MISSED = 1
    # 2 is argparse's usage error
    TOOL_ERROR = 3


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # a step failed or a tool is missing: nothing to compare


def points(n: int) -> list[float]:
    """The metric values both tools log: the same n floats in [0, 1), from the fixed seed."""
    rng = random.Random(SEED)
    return [rng.random() for _ in range(n)]


def run_specs(n: int) -> list[dict[str, Any]]:
    """The n runs of the query scenarios, from the fixed seed: name, 2 params, 2 metrics."""
    rng = random.Random(SEED + 1)
    out = []
    for i in range(n):
        out.append(
            {
                "name": f"run-{i:05d}",
                "params": {"max_depth": rng.choice(MAX_DEPTHS), "n_estimators": rng.choice(N_ESTIMATORS)},
                "metrics": {"val_auc": 0.5 + 0.5 * rng.random(), "loss": rng.random()},
            }
        )
    return out


def timed_repeats(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """First call (cold: first in this process), then `repeats` more; returns (first_s, [s...], last result)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return first, times, result


# =========================================================================== workers: mlark


def _mlark_capture(kind: str | None) -> Any:
    """None: mlark's default (everything, or what MLARK_CAPTURE_* say); "no-git": all but git; "none"."""
    from mlark.tracking.capture import Capture

    if kind in (None, "default"):
        return None
    if kind == "no-git":
        return Capture().without("git")
    if kind == "none":
        return Capture.none()
    raise SystemExit(f"unknown capture {kind!r}")


def stack_versions() -> dict[str, str]:
    """Versions of what both tools stand on, in this worker's interpreter: Python, SQLite, SQLAlchemy, NumPy, pandas."""
    import sqlite3

    import numpy
    import pandas
    import sqlalchemy

    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


def mlark_worker(task: str, a: dict[str, Any]) -> dict[str, Any]:
    import mlark

    if task == "versions":
        return {"mlark": mlark.__version__, **stack_versions()}
    if task == "init":
        mlark.Repo.init(a["path"])
        return {}
    if task == "log":
        values = points(a["n"])
        run = mlark.start_run(a["project"], name="log-points", capture=_mlark_capture(a.get("capture")))
        log = run.log
        t0 = time.perf_counter()
        for i, x in enumerate(values):
            log({METRIC: x}, step=i)
        t1 = time.perf_counter()
        run.finish()
        t2 = time.perf_counter()
        return {"run_id": run.id, "n": len(values), "log_s": t1 - t0, "finish_s": t2 - t1, "total_s": t2 - t0}
    if task == "count":
        h = mlark.get_run(a["run_id"]).history(METRIC)
        return {"n": len(h.steps), "steps_ok": list(h.steps) == list(range(len(h.steps))), "fsum": math.fsum(h.values)}
    if task == "history":
        run_id = a["run_id"]

        def read() -> Any:
            return mlark.get_run(run_id).history(METRIC)

        # Open the repository and its database first, as MLflow's client is made first; and import
        # NumPy (history arrays), which `import mlflow` has already imported on the other side.
        import numpy  # noqa: F401

        mlark.get_run(run_id)
        first, times, h = timed_repeats(read, a["repeats"])
        return {"first_s": first, "times": times, "n": len(h.values), "fsum": math.fsum(h.values)}
    if task == "populate":
        specs = run_specs(a["n"])
        capture = _mlark_capture(a.get("capture"))
        t0 = time.perf_counter()
        for spec in specs:
            with mlark.start_run(a["project"], name=spec["name"], params=spec["params"], capture=capture) as run:
                run.log(spec["metrics"], step=0)
        return {"created": len(specs), "seconds": time.perf_counter() - t0}
    if task == "query":

        def query() -> list[Any]:
            found = mlark.runs(a["project"], filter=MLARK_FILTER, order_by=MLARK_ORDER, limit=TOP)
            for r in found:  # what MLflow's result holds: params and metrics of each run
                r.params, r.metrics  # noqa: B018
            return found

        _open = mlark.runs(a["project"], limit=1)  # open the repository first
        first, times, found = timed_repeats(query, a["repeats"])
        matching = mlark.runs(a["project"], filter=MLARK_FILTER, limit=None)
        return {
            "first_s": first,
            "times": times,
            "names": [r.name for r in found],
            "values": [r.metrics["val_auc"] for r in found],
            "matching": len(matching),
            "total": len(mlark.runs(a["project"], limit=None)),
        }
    if task == "frame":
        _open = mlark.runs(a["project"], limit=1)
        first, times, df = timed_repeats(lambda: mlark.runs(a["project"], as_frame=True, limit=None), a["repeats"])
        return {"first_s": first, "times": times, "rows": int(df.shape[0]), "columns": list(map(str, df.columns))}
    raise SystemExit(f"unknown mlark task {task}")


# =========================================================================== workers: MLflow


def mlflow_worker(task: str, a: dict[str, Any]) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    if task == "versions":
        return {"mlflow": mlflow.__version__, **stack_versions(), "tracking_uri": mlflow.get_tracking_uri()}
    if task == "init":
        mlflow.set_experiment(a["project"])
        return {"tracking_uri": mlflow.get_tracking_uri()}
    if task == "log":
        values = points(a["n"])
        mlflow.set_experiment(a["project"])
        run = mlflow.start_run(run_name="log-points")
        log_metric = mlflow.log_metric
        t0 = time.perf_counter()
        for i, x in enumerate(values):
            log_metric(METRIC, x, step=i)
        t1 = time.perf_counter()
        mlflow.end_run()
        t2 = time.perf_counter()
        return {"run_id": run.info.run_id, "n": len(values), "log_s": t1 - t0, "finish_s": t2 - t1,
                "total_s": t2 - t0, "tracking_uri": mlflow.get_tracking_uri()}
    if task == "populate_history":
        from mlflow.entities import Metric

        values = points(a["n"])
        exp = mlflow.set_experiment(a["project"])
        client = MlflowClient()
        run = client.create_run(exp.experiment_id, run_name="history")
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        for k in range(0, len(values), 1000):
            batch = [Metric(METRIC, values[i], now, i) for i in range(k, min(k + 1000, len(values)))]
            client.log_batch(run.info.run_id, metrics=batch)
        client.set_terminated(run.info.run_id)
        return {"run_id": run.info.run_id, "seconds": time.perf_counter() - t0}
    if task == "count":
        h = MlflowClient().get_metric_history(a["run_id"], METRIC)
        h = sorted(h, key=lambda m: m.step)
        return {"n": len(h), "steps_ok": [m.step for m in h] == list(range(len(h))), "fsum": math.fsum(m.value for m in h)}
    if task == "history":
        client = MlflowClient()
        client.get_run(a["run_id"])  # make the client and its store first
        first, times, h = timed_repeats(lambda: client.get_metric_history(a["run_id"], METRIC), a["repeats"])
        return {"first_s": first, "times": times, "n": len(h), "fsum": math.fsum(m.value for m in h)}
    if task == "populate":
        from mlflow.entities import Metric, Param
        from mlflow.tracking.context.registry import resolve_tags

        specs = run_specs(a["n"])
        exp = mlflow.set_experiment(a["project"])
        client = MlflowClient()
        # The tags mlflow.start_run() adds (user, source name and type), as mlark records command, host, user.
        default_tags = {k: v for k, v in resolve_tags().items() if not k.startswith("mlflow.source.git")}
        t0 = time.perf_counter()
        for spec in specs:
            now = int(time.time() * 1000)
            run = client.create_run(exp.experiment_id, run_name=spec["name"], start_time=now, tags=default_tags)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in spec["metrics"].items()],
                params=[Param(k, str(v)) for k, v in spec["params"].items()],
            )
            client.set_terminated(run.info.run_id)
        return {"created": len(specs), "seconds": time.perf_counter() - t0}
    if task in ("query", "query_client"):
        exp = mlflow.set_experiment(a["project"])
        eids = [exp.experiment_id]
        if task == "query":

            def query() -> Any:
                return mlflow.search_runs(eids, filter_string=MLFLOW_FILTER, order_by=MLFLOW_ORDER, max_results=TOP)

            first, times, df = timed_repeats(query, a["repeats"])
            names = [] if df.empty else list(df["tags.mlflow.runName"])
            values = [] if df.empty else list(df["metrics.val_auc"])
        else:
            client = MlflowClient()

            def query() -> Any:
                return client.search_runs(eids, filter_string=MLFLOW_FILTER, order_by=MLFLOW_ORDER, max_results=TOP)

            first, times, found = timed_repeats(query, a["repeats"])
            names = [r.info.run_name for r in found]
            values = [r.data.metrics["val_auc"] for r in found]
        matching = MlflowClient().search_runs(eids, filter_string=MLFLOW_FILTER, max_results=50000)
        return {"first_s": first, "times": times, "names": names, "values": values, "matching": len(matching)}
    if task == "frame":
        exp = mlflow.set_experiment(a["project"])
        eids = [exp.experiment_id]
        first, times, df = timed_repeats(lambda: mlflow.search_runs(eids, max_results=a["max_results"]), a["repeats"])
        return {"first_s": first, "times": times, "rows": int(df.shape[0]), "columns": list(map(str, df.columns))}
    raise SystemExit(f"unknown MLflow task {task}")


def worker_main(tool: str, task: str, args_json: str) -> int:
    a = json.loads(args_json)
    result = (mlark_worker if tool == "mlark" else mlflow_worker)(task, a)
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# =========================================================================== orchestration


class ToolError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Tool:
    name: str
    python: Path
    env: dict[str, str]
    unavailable: str | None = None
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)

    running: set[subprocess.Popen[str]] = dataclasses.field(default_factory=set)

    def work(self, task: str, cwd: Path, timeout: float = WORKER_TIMEOUT_S, **a: Any) -> dict[str, Any]:
        cmd = [str(self.python), str(Path(__file__).resolve()), "--worker", self.name, task, json.dumps(a)]
        try:
            p = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ToolError(f"{self.name} {task}: could not start {self.python}: {exc}") from None
        self.running.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise ToolError(f"{self.name} {task}: timed out after {timeout:.0f} s") from None
        finally:
            self.running.discard(p)
        for line in reversed(out.splitlines()):
            if line.startswith(RESULT_MARK) and p.returncode == 0:
                return json.loads(line[len(RESULT_MARK):])
        tail = (err.strip() or out.strip())[-3000:]
        raise ToolError(f"{self.name} {task} exited {p.returncode}:\n{tail}")

    def stop(self) -> None:
        """Terminate the workers running now (another step failed: their work is wasted)."""
        for p in list(self.running):
            p.terminate()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env.update(MLFLOW_ENV)
    return env


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs)


@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    unit: str  # "points/s" (higher is better) or "s" (lower is better)
    mlark: float | None = None
    mlflow: float | None = None
    ratio: float | None = None
    status: Status = Status.ERROR
    note: str = ""
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None

    @property
    def target(self) -> float:
        return TARGETS[self.key]

    def decide(self) -> None:
        if self.error is not None or self.mlark is None or self.mlflow is None or self.mlark <= 0 or self.mlflow <= 0:
            self.status = Status.ERROR
            return
        if self.unit == "points/s":
            self.ratio = self.mlark / self.mlflow
        else:
            self.ratio = self.mlflow / self.mlark
        self.status = Status.PASS if self.ratio >= self.target else Status.FAIL

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.key,
            "title": self.title,
            "unit": self.unit,
            "mlark": self.mlark,
            "mlflow": self.mlflow,
            "ratio": self.ratio,
            "target": self.target,
            "status": self.status.value,
            "note": self.note,
            "detail": self.detail,
            "error": self.error,
        }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work).resolve() / "tracking"
        self.result_file = Path(args.work).resolve() / RESULT_NAME
        env = base_env()
        self.mlark = Tool("mlark", Path(args.mlark_python), dict(env))
        self.mlflow = Tool("mlflow", Path(args.mlflow_python), dict(env))
        self.scenarios: list[Scenario] = []
        self.started = datetime.now(timezone.utc)

    # -- tools

    def check_tools(self) -> None:
        for tool, hint in ((self.mlark, "install mlark into .venv (./dev test)"),
                           (self.mlflow, "run ./bench/setup_mlflow.sh")):
            if not tool.python.exists():
                tool.unavailable = f"{tool.python} does not exist: {hint}"
                continue
            try:
                tool.versions = tool.work("versions", REPO_ROOT, timeout=300)
            except ToolError as exc:
                tool.unavailable = str(exc)

    # -- scenarios

    def scenario_log_and_history(self) -> None:
        a = self.args
        s_log = Scenario("log", f"log {a.points:,} points one call at a time (mlark) / {a.mlflow_points:,} (MLflow), durable", "points/s")
        s_hist = Scenario("history", f"read back a {a.history_points:,}-point metric history", "s")
        want = set(a.only)
        todo = [s for s in (s_log, s_hist) if s.key in want]
        if not todo:
            return
        self.scenarios.extend(todo)
        root = fresh_dir(self.work / "points")
        mlark_repo = fresh_dir(root / "mlark")
        mlflow_dir = fresh_dir(root / "mlflow")
        try:
            self.mlark.env["MLARK_REPO"] = str(mlark_repo)
            self.mlark.work("init", root, path=str(mlark_repo))
            self.mlflow.work("init", mlflow_dir, project=PROJECT)
            os.sync()

            # The mlark run logged here, one call at a time, is also the history read back below.
            n_mlark = max(a.points, a.history_points) if "history" in want else a.points
            log(f"log: mlark, {n_mlark:,} points one call at a time")
            r = self.mlark.work("log", root, project=PROJECT, n=n_mlark, capture=None)
            check = self.mlark.work("count", root, run_id=r["run_id"])
            if check["n"] != n_mlark or not check["steps_ok"]:
                raise ToolError(f"mlark: {check['n']} points read back after finish(), {n_mlark} logged")
            s_log.mlark = n_mlark / r["total_s"]
            s_log.detail["mlark"] = {**r, "read_back": check["n"]}
            mlark_run = r["run_id"]
            if "log" in want:
                log(f"log: MLflow, {a.mlflow_points:,} points one call at a time")
                m = self.mlflow.work("log", mlflow_dir, project=PROJECT, n=a.mlflow_points)
                mcheck = self.mlflow.work("count", mlflow_dir, run_id=m["run_id"])
                if mcheck["n"] != a.mlflow_points:
                    raise ToolError(f"MLflow: {mcheck['n']} points read back, {a.mlflow_points} logged")
                s_log.mlflow = a.mlflow_points / m["total_s"]
                s_log.detail["mlflow"] = {**m, "read_back": mcheck["n"]}
                s_log.note = (
                    f"rates compared: mlark logged {n_mlark:,} points, MLflow {a.mlflow_points:,} "
                    f"(at its rate {a.points:,} would take ~{a.points / s_log.mlflow / 60:.0f} min); "
                    "each timed from the first log call to the return of finish()/end_run(), "
                    "then every point read back in a new process"
                )
        except ToolError as exc:
            for s in todo:
                s.error = str(exc)
            return
        finally:
            for s in (s_log,):
                s.decide()

        if "history" not in want:
            return
        try:
            log(f"history: MLflow, inserting {a.history_points:,} points with log_batch (1,000 per call; not timed)")
            p = self.mlflow.work("populate_history", mlflow_dir, project=PROJECT, n=a.history_points)
            s_hist.detail["mlflow_insert_s"] = p["seconds"]
            log("history: mlark read")
            hm = self.mlark.work("history", root, run_id=mlark_run, repeats=a.repeats)
            log("history: MLflow read")
            hf = self.mlflow.work("history", mlflow_dir, run_id=p["run_id"], repeats=a.repeats)
            n_expected = a.history_points
            if hm["n"] < n_expected or hf["n"] != n_expected:
                raise ToolError(f"history lengths differ: mlark {hm['n']}, MLflow {hf['n']}, expected {n_expected}")
            if hm["n"] == hf["n"] and hm["fsum"] != hf["fsum"]:
                raise ToolError(f"history values differ: sum {hm['fsum']!r} (mlark) vs {hf['fsum']!r} (MLflow)")
            s_hist.mlark, s_hist.mlflow = median(hm["times"]), median(hf["times"])
            s_hist.detail.update(mlark=hm, mlflow=hf)
            s_hist.note = (
                f"median of {a.repeats} reads in one process, after a first (cold) read: "
                f"cold mlark {hm['first_s']:.3f} s, MLflow {hf['first_s']:.3f} s (both after opening the store and "
                "importing NumPy); mlark: get_run(id).history(key) each time; both return every point, same values"
            )
        except ToolError as exc:
            s_hist.error = str(exc)
        s_hist.decide()

    def cache_key(self) -> str:
        h = hashlib.sha256()
        h.update(DATA_VERSION.encode())
        h.update(str(self.mlark.versions.get("mlark")).encode())
        h.update(str(self.mlflow.versions.get("mlflow")).encode())
        if MIGRATIONS.is_dir():
            for f in sorted(MIGRATIONS.glob("*.py")):
                h.update(f.name.encode())
                h.update(f.read_bytes())
        return f"{DATA_VERSION}-n{self.args.runs}-{h.hexdigest()[:12]}"

    def ensure_runs(self) -> tuple[Path, Path]:
        """The cached stores of --runs runs (made now, both tools at once, if missing)."""
        a = self.args
        key = self.cache_key()
        cache = self.work / "cache" / key
        mlark_repo, mlflow_dir = cache / "mlark", cache / "mlflow"
        done = cache / "done.json"
        if done.exists() and not a.rebuild_cache:
            log(f"runs: using cached stores in {cache}")
            return mlark_repo, mlflow_dir
        parent = self.work / "cache"
        if parent.exists():  # stores of the same size made under another key are stale; other sizes stay
            for old in parent.glob(f"{DATA_VERSION.split('-')[0]}-*-n{a.runs}-*"):
                if old != cache:
                    shutil.rmtree(old)
        if cache.exists():  # an unfinished store (interrupted run): start again
            shutil.rmtree(cache)
        fresh_dir(mlark_repo)
        fresh_dir(mlflow_dir)
        self.mlark.env["MLARK_REPO"] = str(mlark_repo)
        self.mlark.work("init", cache, path=str(mlark_repo))
        log(f"runs: creating {a.runs:,} runs in each tool (not timed; cached in {cache}) ...")
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            # mlark records command, Python, packages, host and user with each run (not git: this
            # folder is inside mlark's own work tree); MLflow the tags its start_run() adds.
            fm = pool.submit(self.mlark.work, "populate", cache, project=PROJECT, n=a.runs, capture="no-git")
            ff = pool.submit(self.mlflow.work, "populate", mlflow_dir, project=PROJECT, n=a.runs)
            concurrent.futures.wait([fm, ff], return_when=concurrent.futures.FIRST_EXCEPTION)
            if any(f.done() and f.exception() is not None for f in (fm, ff)):
                self.mlark.stop()
                self.mlflow.stop()
            rm, rf = fm.result(), ff.result()
        log(f"runs: made in {rm['seconds']:.0f} s (mlark), {rf['seconds']:.0f} s (MLflow)")
        done.write_text(json.dumps({"key": key, "mlark": rm, "mlflow": rf, "made": datetime.now(timezone.utc).isoformat()}))
        return mlark_repo, mlflow_dir

    def scenario_runs(self) -> None:
        a = self.args
        s_query = Scenario("query", f"filtered, ordered top-{TOP} query over {a.runs:,} runs", "s")
        s_frame = Scenario("frame", f"load all {a.runs:,} runs into a DataFrame", "s")
        todo = [s for s in (s_query, s_frame) if s.key in a.only]
        if not todo:
            return
        self.scenarios.extend(todo)
        try:
            mlark_repo, mlflow_dir = self.ensure_runs()
            self.mlark.env["MLARK_REPO"] = str(mlark_repo)
            populate = json.loads((mlark_repo.parent / "done.json").read_text())
            for s in todo:
                s.detail["populate_s"] = {"mlark": populate["mlark"]["seconds"], "mlflow": populate["mlflow"]["seconds"]}
        except ToolError as exc:
            for s in todo:
                s.error = str(exc)
                s.decide()
            return

        if s_query in todo:
            try:
                log("query: mlark")
                qm = self.mlark.work("query", mlark_repo.parent, project=PROJECT, repeats=a.repeats)
                log("query: MLflow (mlflow.search_runs and MlflowClient.search_runs)")
                qf = self.mlflow.work("query", mlflow_dir, project=PROJECT, repeats=a.repeats)
                qc = self.mlflow.work("query_client", mlflow_dir, project=PROJECT, repeats=a.repeats)
                if qm["total"] != a.runs:
                    raise ToolError(f"mlark holds {qm['total']} runs in {PROJECT}, expected {a.runs}")
                if qm["names"] != qf["names"] or qf["names"] != qc["names"] or qm["matching"] != qf["matching"]:
                    raise ToolError(
                        f"the tools found different runs: mlark {qm['matching']} matching, top {qm['names']}; "
                        f"MLflow {qf['matching']} matching, top {qf['names']}"
                    )
                fastest = "mlflow.search_runs" if median(qf["times"]) <= median(qc["times"]) else "MlflowClient.search_runs"
                s_query.mlark = median(qm["times"])
                s_query.mlflow = min(median(qf["times"]), median(qc["times"]))
                s_query.detail.update(mlark=qm, mlflow_search_runs=qf, mlflow_client_search_runs=qc)
                s_query.note = (
                    f"mlark: mlark.runs(filter={MLARK_FILTER!r}, order_by={MLARK_ORDER!r}, limit={TOP}) and reading "
                    f".params/.metrics of each; MLflow: {fastest} (the faster of mlflow.search_runs "
                    f"{median(qf['times']):.4f} s and MlflowClient.search_runs {median(qc['times']):.4f} s) with "
                    f"filter {MLFLOW_FILTER!r} (MLflow compares params as strings with =/!=/LIKE only; max_depth is "
                    f"one of 2..8, so both select the same {qm['matching']} runs, and both return the same "
                    f"{len(qm['names'])}, in the same order); median of {a.repeats} after a first query (cold: mlark {qm['first_s']:.4f} s, "
                    f"MLflow {qf['first_s']:.4f} s)"
                )
            except ToolError as exc:
                s_query.error = str(exc)
            s_query.decide()

        if s_frame in todo:
            try:
                log("frame: mlark")
                fm = self.mlark.work("frame", mlark_repo.parent, project=PROJECT, repeats=a.frame_repeats)
                log("frame: MLflow")
                ff = self.mlflow.work("frame", mlflow_dir, project=PROJECT, repeats=a.frame_repeats, max_results=a.runs)
                if fm["rows"] != a.runs or ff["rows"] != a.runs:
                    raise ToolError(f"DataFrame rows: mlark {fm['rows']}, MLflow {ff['rows']}, expected {a.runs}")
                s_frame.mlark, s_frame.mlflow = median(fm["times"]), median(ff["times"])
                s_frame.detail.update(mlark=fm, mlflow=ff)
                s_frame.note = (
                    f"mlark.runs(project, as_frame=True) vs mlflow.search_runs(max_results={a.runs}); "
                    f"{fm['rows']:,} rows each ({len(fm['columns'])} columns vs {len(ff['columns'])}); median of "
                    f"{a.frame_repeats} after a first load (cold: mlark {fm['first_s']:.3f} s, MLflow {ff['first_s']:.3f} s)"
                )
            except ToolError as exc:
                s_frame.error = str(exc)
            s_frame.decide()

    def scenario_startup(self) -> None:
        a = self.args
        if "startup" not in a.only:
            return
        s = Scenario("startup", "new process: start a run, log one point, exit", "s")
        self.scenarios.append(s)
        try:
            project = fresh_dir(self.work / "startup")
            # A small git project, as a user's training folder would be; both stores live in it
            # (mlark: .mlark/, found by walking up; MLflow: its default sqlite:///mlflow.db in the cwd).
            (project / "train.py").write_text("print('training')\n")
            (project / ".gitignore").write_text(".mlark/\nmlflow.db\nmlruns/\nmlartifacts/\n")
            git_env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
            for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-q", "-m", "train script"]):
                subprocess.run(cmd, cwd=project, env=git_env, check=True, capture_output=True)
            self.mlark.env.pop("MLARK_REPO", None)
            self.mlark.work("init", project, path=str(project))
            runs = {"mlark": [], "mlflow": []}
            programs = {"mlark": (self.mlark, STARTUP_MLARK), "mlflow": (self.mlflow, STARTUP_MLFLOW)}
            # One untimed start each first (MLflow creates its database tables then; both warm the page cache).
            for rep in range(-1, a.startup_repeats):
                for name, (tool, code) in programs.items():
                    t0 = time.perf_counter()
                    p = subprocess.run([str(tool.python), "-c", code], cwd=project, env=tool.env,
                                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
                    dt = time.perf_counter() - t0
                    if p.returncode != 0:
                        raise ToolError(f"{name} startup exited {p.returncode}: {p.stderr.strip()[-2000:]}")
                    if rep >= 0:
                        runs[name].append(dt)
            s.mlark, s.mlflow = median(runs["mlark"]), median(runs["mlflow"])
            s.detail = {"mlark_s": runs["mlark"], "mlflow_s": runs["mlflow"],
                        "mlark_code": STARTUP_MLARK, "mlflow_code": STARTUP_MLFLOW}
            s.note = (
                f"wall time of `python -c ...` (import, start a run, log one point, finish, exit), median of "
                f"{a.startup_repeats}, alternating, in a small git project; best: mlark {min(runs['mlark']):.3f} s, "
                f"MLflow {min(runs['mlflow']):.3f} s"
            )
        except (ToolError, subprocess.SubprocessError, OSError) as exc:
            s.error = str(exc)
        s.decide()

    # -- report

    def machine(self) -> dict[str, Any]:
        return {
            **machine_facts(self.work),
            "work": str(self.work),
            "mlark": self.mlark.versions,
            "mlflow": self.mlflow.versions,
            "mlflow_env": MLFLOW_ENV,
            "loadavg_before": list(getattr(self, "load_before", ())),
            "loadavg_after": list(getattr(self, "load_after", ())),
        }

    def overall(self) -> Status:
        statuses = [s.status for s in self.scenarios]
        if not statuses or Status.ERROR in statuses:
            return Status.ERROR
        return Status.FAIL if Status.FAIL in statuses else Status.PASS

    def document(self) -> dict[str, Any]:
        return {
            "benchmark": "tracking",
            "started": self.started.isoformat(),
            "finished": datetime.now(timezone.utc).isoformat(),
            "options": {k: v for k, v in vars(self.args).items() if k not in ("worker",)},
            "machine": self.machine(),
            "scenarios": [s.as_json() for s in self.scenarios],
            "overall": self.overall().value,
        }

    def run(self) -> int:
        self.work.mkdir(parents=True, exist_ok=True)
        # Two runs at once would delete each other's stores, and skew each other's times.
        import fcntl

        lock = open(self.work / ".lock", "w")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"bench_tracking: another run is using {self.work}; wait for it to end", file=sys.stderr)
            return ExitStatus.TOOL_ERROR
        self.load_before = os.getloadavg()
        self.check_tools()
        missing = [t for t in (self.mlark, self.mlflow) if t.unavailable]
        if not missing:
            self.scenario_log_and_history()
            self.scenario_runs()
            self.scenario_startup()
        self.load_after = os.getloadavg()
        doc = self.document()
        if missing:
            doc["overall"] = Status.ERROR.value
            doc["errors"] = [t.unavailable for t in missing]
        self.result_file.parent.mkdir(parents=True, exist_ok=True)
        self.result_file.write_text(json.dumps(doc, indent=2) + "\n")
        if self.args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(report_text(self, doc, missing))
        if missing or doc["overall"] == Status.ERROR.value:
            return ExitStatus.TOOL_ERROR
        return ExitStatus.TARGET_MISSED if doc["overall"] == Status.FAIL.value else ExitStatus.OK


def fmt_value(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "points/s":
        return f"{x:,.0f} pts/s"
    return f"{x:.4f} s" if x < 10 else f"{x:.2f} s"


def render_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def report_text(bench: Bench, doc: dict[str, Any], missing: list[Tool]) -> str:
    m = doc["machine"]
    mem = f"{m['memory_bytes'] / 2**30:.1f} GiB" if m["memory_bytes"] else "?"
    mv, fv = m["mlark"], m["mlflow"]
    out = [
        "Tracking benchmark: mlark vs MLflow (default SQLite backend)",
        f"machine: {m['cores']} cores, {m['cpu']}, {mem} RAM, {m['os']}, work folder on {m['filesystem']}",
        f"mlark {mv.get('mlark', '?')} (Python {mv.get('python', '?')}, SQLite {mv.get('sqlite', '?')}, "
        f"SQLAlchemy {mv.get('sqlalchemy', '?')}, pandas {mv.get('pandas', '?')})",
        f"MLflow {fv.get('mlflow', '?')} (Python {fv.get('python', '?')}, SQLite {fv.get('sqlite', '?')}, "
        f"SQLAlchemy {fv.get('sqlalchemy', '?')}, pandas {fv.get('pandas', '?')}); telemetry off "
        "(MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK), synchronous logging",
        f"load average before {tuple(round(x, 2) for x in m['loadavg_before'])}, after "
        f"{tuple(round(x, 2) for x in m['loadavg_after'])}",
        "",
    ]
    for t in missing:
        out.append(f"ERROR: {t.unavailable}")
    rows = []
    for s in bench.scenarios:
        ratio = f"{s.ratio:,.1f}x" if s.ratio is not None else "-"
        rows.append([s.title, fmt_value(s.mlark, s.unit), fmt_value(s.mlflow, s.unit), ratio,
                     f">= {s.target:g}x", s.status.value])
    if rows:
        out.append(render_table(rows, ["scenario", "mlark", "MLflow", "mlark advantage", "target", "result"]))
        out.append("")
    for s in bench.scenarios:
        if s.note:
            out.append(f"- {s.key}: {s.note}")
        if s.error:
            out.append(f"- {s.key}: ERROR {s.error}")
    out.append("")
    result = bench.result_file
    shown = result.relative_to(REPO_ROOT) if result.is_relative_to(REPO_ROOT) else result
    out.append(f"overall: {doc['overall']}   (details: {shown})")
    return "\n".join(out)


SCENARIOS = ("log", "history", "query", "frame", "startup")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=100_000, help="points mlark logs one call at a time (default 100000)")
    p.add_argument("--mlflow-points", type=int, default=2_000, help="points MLflow logs one call at a time (default 2000)")
    p.add_argument("--history-points", type=int, default=None, help="length of the history read back (default: --points)")
    p.add_argument("--runs", type=int, default=10_000, help="runs in the project for query and frame (default 10000)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of the history read and the query (default 5)")
    p.add_argument("--frame-repeats", type=int, default=3, help="timed repeats of the DataFrame load (default 3)")
    p.add_argument("--startup-repeats", type=int, default=5, help="timed process starts per tool (default 5)")
    p.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--rebuild-cache", action="store_true", help="make the cached run stores again")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--mlark-python", default=str(DEFAULT_MLARK_PY), help="interpreter with mlark installed")
    p.add_argument("--mlflow-python", default=str(DEFAULT_MLFLOW_PY), help="interpreter with MLflow installed")
    p.add_argument("--work", default=str(WORK_ROOT), help="where the stores are made (default bench/.work)")
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in args.only if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIOS)}")
    if args.history_points is None:
        args.history_points = args.points
    for name in ("points", "mlflow_points", "history_points", "runs", "repeats", "frame_repeats", "startup_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1], argv[2], argv[3])
    return int(Bench(parse_args(argv)).run())


if __name__ == "__main__":
    sys.exit(main())
