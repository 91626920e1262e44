"""Shared helpers of the serving tests: real repositories, real scikit-learn models, real HTTP servers.

- :func:`churn_frame`, :func:`train`: a small churn-like table and RandomForest models trained on it.
- :func:`new_repo`, :func:`log_model`: a repository on disk and models logged through runs
  (``run.log_model``: saved with ``mlark.models``, committed as versions of type ``model``).
- :class:`ServerThread`: uvicorn serving an app on a free loopback port in a thread of the test.
- :class:`ServerProcess`: ``mlark serve ...`` in a subprocess (for ``--workers``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

COLUMNS = ["tenure", "monthly", "support_calls", "age"]
PROBE = {"tenure": 3, "monthly": 70.5, "support_calls": 6, "age": 41}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def churn_frame(seed: int = 0, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 72, rows),
        "monthly": rng.normal(60.0, 20.0, rows).round(2),
        "support_calls": rng.integers(0, 9, rows),
        "age": rng.integers(18, 90, rows),
    })
    frame["churned"] = ((frame["support_calls"] > 4) | (frame["tenure"] < 6)).astype("int64")
    return frame


def train(seed: int = 0, n_estimators: int = 10, *, flip: bool = False) -> Any:
    """A RandomForestClassifier on the churn frame; ``flip=True`` learns the opposite labels (so its
    predictions differ from the unflipped model's everywhere)."""
    from sklearn.ensemble import RandomForestClassifier

    frame = churn_frame(seed)
    y = frame.pop("churned")
    if flip:
        y = 1 - y
    return RandomForestClassifier(n_estimators=n_estimators, random_state=seed).fit(frame[COLUMNS], y)


def new_repo(root: Path, database: str | None = None) -> Any:
    from mlark.ops.repo import Repo

    return Repo.init(root, database=database, author="tester@serving")


def log_model(repo: Any, model: Any, name: str, *, aliases: Sequence[str] = (), example: Any = None,
              **options: Any) -> Any:
    """Log ``model`` through a run as a version of artifact ``name``; returns the Version."""
    from mlark.ops.run_start import start_run
    from mlark.tracking.capture import Capture

    if example is None:
        example = churn_frame(99, rows=5)[COLUMNS]
    with start_run(repo, "serving-tests", None, None, None, capture_options=Capture.none()) as run:
        return run.log_model(model, name=name, input_example=example, aliases=aliases,
                             message=f"{type(model).__name__} for the serving tests", **options)


class Broken:
    """A model whose predict always fails: it loads, then fails its smoke prediction."""

    def predict(self, data: Any) -> Any:
        raise RuntimeError("this model is broken on purpose")


class ServerThread:
    """``with ServerThread(app) as s: s.url`` — uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any, *, ready_timeout: float = 60.0, wait_ready: bool = True) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, timeout_keep_alive=30))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    @property
    def model_server(self) -> Any:
        return self.app.state.server

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for(self.url, ready=self.wait_ready, timeout=self.ready_timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_for(url: str, *, ready: bool = True, timeout: float = 60.0, proc: Any = None) -> None:
    import httpx

    path = "/readyz" if ready else "/healthz"
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            r = httpx.get(url + path, timeout=2.0)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url}{path} not OK after {timeout}s: {last}")


class ServerProcess:
    """``mlark serve`` in a subprocess; ``stop()`` sends SIGINT and returns the log."""

    def __init__(self, repo_root: Path, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        mlark = Path(sys.executable).with_name("mlark")
        self.log_path = repo_root / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(mlark), "--repo", str(repo_root), "serve", *args, "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        try:
            wait_for(self.url, timeout=timeout, proc=self.proc)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- server log ---\n{self.log()}") from exc

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.log_path.read_text(errors="replace")


class Load:
    """A load generator: ``clients`` concurrent keep-alive connections sending ``body`` to ``path`` until
    stopped, each answer recorded with its start and end times (``time.monotonic()``), status, version
    header and predictions. Runs its own event loop in a thread."""

    def __init__(self, url: str, path: str, body: Any, clients: int = 16) -> None:
        self.url, self.path, self.body, self.clients = url, path, body, clients
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait_for_responses(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.results)
        while len(self.results) - start < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.results) - start} answers in {timeout}s; errors: {self.errors[:3]}")
            time.sleep(0.01)

    def _main(self) -> None:
        import asyncio

        asyncio.run(self._run())

    async def _run(self) -> None:
        import asyncio

        import httpx

        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as client:
            async def one() -> None:
                while not self._stop.is_set():
                    t0 = time.monotonic()
                    try:
                        r = await client.post(self.path, json=self.body)
                    except Exception as exc:  # noqa: BLE001 - a transport failure is a failed request
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                        self.results.append({"start": t0, "end": time.monotonic(), "status": 0, "version": None,
                                             "predictions": None})
                        continue
                    doc = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                    self.results.append({"start": t0, "end": time.monotonic(), "status": r.status_code,
                                         "version": r.headers.get("mlark-model-version"),
                                         "registered": r.headers.get("mlark-registered-version"),
                                         "predictions": doc.get("predictions"), "body": doc})

            await asyncio.gather(*(one() for _ in range(self.clients)))


def check_clean_switch(results: list[dict[str, Any]], old: str, new: str, expected: dict[str, Any]) -> None:
    """Every answer is a 200 from ``old`` or ``new`` with that version's own predictions, and once an answer
    from ``new`` has arrived, every request started later is answered by ``new``."""
    failed = [r for r in results if r["status"] != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:3]}"
    versions = {r["version"] for r in results}
    assert versions <= {old, new}, versions
    for r in results:
        assert r["predictions"] == expected[r["version"]], f"{r['version']} answered {r['predictions']}"
    news = [r for r in results if r["version"] == new]
    assert news, f"no answer came from {new}"
    assert any(r["version"] == old for r in results), f"no answer came from {old}"
    first_new = min(r["end"] for r in news)
    late_old = [r for r in results if r["version"] == old and r["start"] > first_new]
    assert not late_old, f"{len(late_old)} requests started after the first {new} answer were answered by {old}"


class Slow:
    """A model that takes ``seconds`` per predict call and answers 0 per row (for timeouts and overload)."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    def predict(self, data: Any) -> Any:
        time.sleep(self.seconds)
        return np.zeros(len(data))


def save_slow(folder: Path, seconds: float) -> Path:
    from mlark.models import save_model

    save_model(Slow(seconds), folder, flavor="python", init_args={"seconds": seconds},
               input_example=churn_frame(99, rows=2)[COLUMNS])
    return folder


def raw_request(port: int, data: bytes, *, read_timeout: float = 30.0, pause_after: float | None = None) -> bytes:
    """Send raw bytes on a fresh connection (optionally stop sending and wait); return what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(data)
        if pause_after is not None:
            time.sleep(pause_after)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_of(raw: bytes) -> int:
    line = raw.split(b"\r\n", 1)[0]
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
