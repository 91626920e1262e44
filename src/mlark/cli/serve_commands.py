"""mlark serve, mlark predict: models online over HTTP, and in batch over files.

The adapters of :mod:`mlark.serving` and :mod:`mlark.pipelines`: they open the repository, give the
serving package its model source (resolving references and materialising versions through ``ops``),
read the environment, print and pick exit statuses. ``--workers N`` runs N uvicorn worker processes on
one port; each builds its app with :func:`worker_app` from the settings in ``MLARK_SERVE_SPEC``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import click

from mlark.cli.main import Ctx, cli, json_option, pass_ctx
from mlark.cli.output import emit_json, human_bytes

SPEC_ENV = "MLARK_SERVE_SPEC"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
          "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4}


def parse_size(text: str) -> int:
    from mlark.errors import InvalidInput

    match = _SIZE.match(text or "")
    unit = (match.group(2) or "").lower() if match else ""
    if not match or unit not in _UNITS:
        raise InvalidInput(f"{text!r} is not a size; give bytes (1048576) or a size such as 64MiB, 10MB",
                           field="max-body")
    return int(float(match.group(1)) * _UNITS[unit])


# --------------------------------------------------------------------------- model sources


def _split_named(items: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``NAME=REF`` items into refs and {ref: name}."""
    from mlark.core.names import validate_name

    refs: list[str] = []
    names: dict[str, str] = {}
    for item in items:
        name, eq, ref = item.partition("=")
        if eq and name and ref and "/" not in name and ":" not in name:
            names[ref] = validate_name(name, kind="served model name")
            refs.append(ref)
        else:
            refs.append(item)
    return refs, names


def _needs_repo(refs: Sequence[str]) -> bool:
    from mlark.serving.source import Sources

    return any(not Sources.is_folder(r) for r in refs)


def _sources(ctx_repo: Any | None) -> Any:
    from mlark.ops.predict import repo_source
    from mlark.serving.source import Sources

    return Sources(None if ctx_repo is None else repo_source(ctx_repo))


# --------------------------------------------------------------------------- logging


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
               "level": record.levelname.lower(), "logger": record.name, "pid": os.getpid(),
               "message": record.getMessage()}
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def configure_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s mlark[%(process)d] %(levelname)s %(message)s"))
    logger = logging.getLogger("mlark")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


# --------------------------------------------------------------------------- serve


def worker_app() -> Any:
    """The app of one uvicorn worker process (``--workers N``), from ``MLARK_SERVE_SPEC``."""
    from mlark.serving import ServeOptions, create_app

    spec = json.loads(os.environ[SPEC_ENV])
    configure_logging(spec["log_level"], spec["json_logs"])
    repo = None
    if _needs_repo(spec["refs"]):
        from mlark.ops.repo import Repo

        repo = Repo.open(spec["repo"], author=spec.get("author"))
    return create_app(spec["refs"], _sources(repo), ServeOptions.from_dict(spec["options"]))


@cli.command("serve")
@click.argument("refs", nargs=-1, required=True, metavar="REF [REF...]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Server processes sharing the port; each loads the models and follows their aliases.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Most rows merged into one predict call.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 10_000),
              help="Longest a request waits for others to share its predict call.")
@click.option("--max-queue", default=512, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Requests waiting per model before the server answers 503.")
@click.option("--max-body", default="64MiB", show_default=True, help="Largest request body (bytes, or 10MB, 64MiB).")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.001, 86_400),
              help="Seconds from a request's arrival to its answer (408 while the body arrives, 504 after).")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0, 86_400),
              help="Seconds between checks of what each alias or stage names (0: do not follow).")
@click.option("--trust", multiple=True, metavar="WHAT",
              help="Allow loading what a model needs beyond safe formats (pickle, joblib, a type name).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Threads one predict call may use.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@json_option
@pass_ctx
def serve(ctx: Ctx, refs: tuple[str, ...], host: str, port: int, workers: int, max_batch: int, max_wait_ms: float,
          max_queue: int, max_body: str, timeout: float, poll_interval: float, trust: tuple[str, ...], threads: int,
          log_level: str, as_json: bool) -> None:
    """Serve models over HTTP, following their aliases and stages.

    \b
    REF: models:/NAME@STAGE_OR_ALIAS, models:/NAME/N, NAME@ALIAS, NAME:vN, a model folder,
    or NAME=REF to choose the name it is served under.
    \b
    POST /v1/models/{name or URL-encoded REF}/predict, GET /v1/models, /healthz, /readyz, /metrics,
    /openapi.json, and MLflow's POST /invocations when one model is served.
    """
    from mlark.serving import ServeOptions

    configure_logging(log_level, as_json)
    ref_list, names = _split_named(refs)
    options = ServeOptions(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
                           max_body=parse_size(max_body), timeout=timeout, poll_interval=poll_interval,
                           trust=tuple(trust), threads=threads, names=names)
    repo = ctx.repo() if _needs_repo(ref_list) else None
    sources = _sources(repo)
    for ref in ref_list:  # fail fast on a reference that names nothing, or not a model
        res = sources.resolve(ref)
        logging.getLogger("mlark.serving").info("%s names %s (%s)%s", ref, res.version, res.digest[:12],
                                                "; following it" if sources.follows(ref) else "")
    import uvicorn

    common = dict(host=host, port=port, log_level=log_level.lower(), timeout_keep_alive=30,
                  limit_concurrency=max(1024, 4 * max_queue * len(ref_list)), access_log=False,
                  server_header=False)
    if workers == 1:
        from mlark.serving import create_app

        app = create_app(ref_list, sources, options)
        _announce(host, port, workers, ref_list)
        _Server(uvicorn.Config(app, **common)).run()
        return
    import tempfile

    metrics_dir = tempfile.mkdtemp(prefix="mlark-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # read by prometheus-client in each worker
    spec = {
        "refs": ref_list,
        "options": ServeOptions.from_dict({**options.to_dict(), "multiprocess_dir": metrics_dir}).to_dict(),
        "repo": None if repo is None else str(repo.root),
        "author": None if repo is None else repo.author,
        "log_level": log_level,
        "json_logs": as_json,
    }
    os.environ[SPEC_ENV] = json.dumps(spec)
    if repo is not None:
        ctx.close()  # each worker opens its own
        ctx._repo = None
    _announce(host, port, workers, ref_list)
    try:
        uvicorn.run("mlark.cli.serve_commands:worker_app", factory=True, workers=workers, **common)
    finally:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, ending normally after a graceful shutdown on SIGINT or SIGTERM (uvicorn
        raises the signal again once it has shut down, which would end the process by that signal)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)
            if self._captured_signals:
                logging.getLogger("mlark.serving").info("stopped by %s", signal.Signals(self._captured_signals[-1]).name)

    return Server


def _Server(config: Any) -> Any:  # noqa: N802 - reads like the class it builds
    return _server_class()(config)


def _announce(host: str, port: int, workers: int, refs: Sequence[str]) -> None:
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("mlark.serving").info(
        "serving %d model(s) on http://%s:%d with %d worker(s): %s", len(refs), shown, port, workers, ", ".join(refs))


# --------------------------------------------------------------------------- predict


class _RowProgress:
    """Rows done, rate and time left, on stderr when it is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._by_bytes = False

    def start(self, total_rows: int | None, total_bytes: int | None) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from mlark.cli.output import console

        self._by_bytes = total_rows is None and total_bytes is not None
        self._progress = Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                  console=console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task("predict", total=total_bytes if self._by_bytes else total_rows, rate="")
        self._rows = 0
        self._started = time.monotonic()

    def advance(self, rows: int, nbytes: int = 0) -> None:
        if self._progress is None:
            return
        self._rows += rows
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._progress.update(self._task, advance=nbytes if self._by_bytes else rows,
                              rate=f"{self._rows:,} rows, {self._rows / elapsed:,.0f} rows/s")

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _capture() -> Any:
    from mlark.tracking.capture import Capture

    off = {"0", "false", "no", "off"}
    if os.environ.get("MLARK_CAPTURE", "").strip().lower() in off:
        return Capture.none()
    parts = [p for p in Capture.parts() if os.environ.get(f"MLARK_CAPTURE_{p.upper()}", "").strip().lower() in off]
    return Capture().without(*parts)


@cli.command("predict")
@click.argument("ref")
@click.option("--input", "-i", "input_", required=True,
              help="Parquet or CSV file, or a reference to a dataset version holding one (NAME:PATH@ALIAS for one of several).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@click.option("--passthrough", "-p", multiple=True, metavar="COLS",
              help="Input columns to copy into the output (comma-separated; repeatable).")
@click.option("--batch-size", default=65_536, show_default=True, type=click.IntRange(1, 10_000_000),
              help="Rows read and predicted at a time.")
@click.option("--prediction-column", default="prediction", show_default=True, help="Name of the prediction column.")
@click.option("--format", "input_format", type=click.Choice(["parquet", "csv"]), help="Input format (default: from the name).")
@click.option("--workers", type=click.IntRange(1, 256), help="Batches predicted at once (default: CPU count, at most 8).")
@click.option("--trust", multiple=True, metavar="WHAT", help="Allow loading pickle, joblib or a named type.")
@click.option("--record", metavar="NAME",
              help="Commit the output as a version of dataset NAME, made by a run that used the model version and the input.")
@click.option("--message", "-m", help="Commit message for --record (what these predictions are for).")
@click.option("--project", default="batch-predict", show_default=True, help="Project of the run --record starts.")
@click.option("--input-name", metavar="NAME",
              help="With --record and a file --input: the dataset the input is committed as (default: the file's stem).")
@json_option
@pass_ctx
def predict(ctx: Ctx, ref: str, input_: str, output: str, passthrough: tuple[str, ...], batch_size: int,
            prediction_column: str, input_format: str | None, workers: int | None, trust: tuple[str, ...],
            record: str | None, message: str | None, project: str, input_name: str | None, as_json: bool) -> None:
    """Predict every row of a Parquet or CSV file with model REF; write the predictions to Parquet.

    \b
    Reads the file in batches (memory stays bounded whatever its size), shows progress, and with
    --record NAME -m MSG commits the output as a dataset version linked, through a run, to the model
    version and the input version.
    """
    from mlark.core.names import validate_name
    from mlark.errors import InvalidInput
    from mlark.models import load_model
    from mlark.ops.predict import PredictOptions, input_path, predict_recorded, repo_source
    from mlark.serving.source import Sources

    columns = [c.strip() for item in passthrough for c in item.split(",") if c.strip()]
    if record is not None:
        validate_name(record)
        if not message:
            raise InvalidInput("--record needs a message (-m) saying what these predictions are for", field="message")
    elif message:
        raise InvalidInput("-m goes with --record NAME", field="message")
    model_is_folder = Sources.is_folder(ref)
    needs_repo = record is not None or not model_is_folder or not Path(input_).exists()
    repo = ctx.repo() if needs_repo else None
    options = PredictOptions(passthrough=columns, batch_size=batch_size, prediction_column=prediction_column,
                             input_format=input_format, workers=workers, trust=trust,
                             progress=_RowProgress(enabled=not as_json))
    outcome: dict[str, Any] = {}
    started = time.perf_counter()
    if record is None:
        if model_is_folder:
            model, model_version = load_model(ref, trust=list(trust) or None), None
        else:
            source = repo_source(repo)
            res = source.resolve(ref)
            folder = source.fetch(res)
            model, model_version = load_model(folder, trust=list(trust) or None, cache=source.cache), res
        outcome["load_seconds"] = round(time.perf_counter() - started, 4)
        path, _ = input_path(repo, input_, None)
        report = options.run(model, path, output)
        if model_version is not None:
            outcome["model_version"] = model_version.version
            outcome["registered"] = model_version.registered
    else:
        if model_is_folder:
            raise InvalidInput("--record links the output to the model version: give a model reference "
                               "(models:/NAME@STAGE, NAME@ALIAS, NAME:vN), not a folder", field="ref")
        report, outcome = predict_recorded(repo, ref, input_, output, record=record, message=message or "",
                                           options=options, project=project, input_name=input_name,
                                           capture_options=_capture())
    doc = {**report.to_dict(), "model": ref, **outcome, "total_seconds": round(time.perf_counter() - started, 4)}
    if as_json:
        emit_json(doc)
        return
    size = Path(report.output).stat().st_size
    click.echo(f"predicted {report.rows:,} rows in {report.seconds:.2f}s ({report.rows_per_second:,.0f} rows/s) "
               f"with {outcome.get('model_version') or ref}")
    click.echo(f"wrote {report.output} ({human_bytes(size)}): "
               f"{', '.join([*report.passthrough, *report.prediction_columns])}")
    if "recorded" in outcome:
        click.echo(f"recorded {outcome['recorded']} (run {outcome['run']}; used {outcome['model_version']} "
                   f"and {outcome['input_version']})")
