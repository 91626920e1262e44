"""The HTTP application (Starlette, run by uvicorn).

========================================  =================================================================
``POST /v1/models/{ref}/predict``         predict; ``ref``: the served name or the reference, URL-encoded or not
                                          (``churn``, ``churn@production``, ``models%3A%2Fchurn%40production``)
``GET /v1/models``                        what is served: reference, version it resolves to, since when
``GET /v1/models/{ref}``                  one served model
``POST /invocations``                     MLflow's scoring protocol (when one model is served)
``GET /healthz``                          liveness: 200 while the server answers
``GET /readyz``                           readiness: 200 once every model is loaded, else 503
``GET /ping``, ``GET /health``            MLflow's readiness checks
``GET /metrics``                          Prometheus metrics
``GET /openapi.json``                     the OpenAPI description
========================================  =================================================================

Every answer to a prediction names the version that made it (``mlark-model-version``,
``mlark-model-digest``, ``mlark-registered-version`` headers; ``version`` in native JSON answers).
Errors are JSON (:mod:`mlark.serving.errors`); nothing a client sends makes a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Sequence

from mlark.core.refs import RegistryRef, VersionRef
from mlark.errors import InvalidInput, MlarkError
from mlark.serving.batcher import MicroBatcher
from mlark.serving.config import ServeOptions
from mlark.serving.errors import HttpError, from_mlark_error
from mlark.serving.follow import Follower
from mlark.serving.limits import read_body
from mlark.serving.metrics import Metrics
from mlark.serving.payloads import INLINE_PARSE_BYTES, Payload, parse
from mlark.serving.served import ARROW_MEDIA, Answer, Item, ServedModel
from mlark.serving.source import ModelSource, parse_model_ref

log = logging.getLogger("mlark.serving")


class ModelServer:
    """The served models, their batchers, the follower and the metrics: what the routes use."""

    def __init__(self, refs: Sequence[str], source: ModelSource, options: ServeOptions | None = None) -> None:
        self.options = options or ServeOptions()
        self.source = source
        self.metrics = Metrics(self.options.multiprocess_dir)
        if not refs:
            raise InvalidInput("give at least one model to serve", field="refs")
        self.models: list[ServedModel] = []
        self._by_key: dict[str, ServedModel] = {}
        normalised = [source.normalise(r) for r in refs]
        if len(set(normalised)) != len(normalised):
            dup = next(n for n in normalised if normalised.count(n) > 1)
            raise InvalidInput(f"{dup} is given twice; serve each model once", field="refs", ref=dup)
        names = _names(refs, normalised, self.options.names)
        for given, ref, name in zip(refs, normalised, names, strict=True):
            model = ServedModel(name=name, ref=ref, follows=source.follows(ref))
            self.models.append(model)
            for key in (name, ref, given):
                self._by_key.setdefault(key, model)
        self.follower = Follower(self.models, source, self.options, self.metrics)
        self.started = time.time()

    def lookup(self, key: str) -> ServedModel | None:
        """The served model a URL names: its name, or its reference in any spelling. A client's text is
        only parsed, never looked up on disk."""
        found = self._by_key.get(key)
        if found is not None or not key or len(key) > 1024:
            return found
        for parse in (parse_model_ref, _registry_without_scheme):  # churn-rf@best; churn@production for models:/...
            try:
                found = self._by_key.get(str(parse(key)))
            except Exception:  # noqa: BLE001 - not a reference: simply not served
                found = None
            if found is not None:
                return found
        return None

    @property
    def ready(self) -> bool:
        return all(m.current is not None for m in self.models)

    async def start(self) -> None:
        opts = self.options
        for model in self.models:
            model.batcher = MicroBatcher(model, max_batch=opts.max_batch, max_wait=opts.max_wait_ms / 1000.0,
                                         max_queue=opts.max_queue, metrics=self.metrics)
            model.batcher.start()
            self.metrics.not_ready(model.name)
        self.follower.start()

    async def stop(self) -> None:
        await self.follower.close()
        for model in self.models:
            if model.batcher is not None:
                await model.batcher.close()

    async def predict(self, model: ServedModel, request: Any, *, mlflow: bool) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.timeout
        body = await read_body(request, self.options.max_body, deadline)
        loaded = model.current
        if loaded is None:
            raise HttpError(503, f"model {model.name} is not loaded yet ({model.state}"
                            + (f": {model.error}" if model.error else "") + "); /readyz says when it is",
                            error="NotReady", headers={"retry-after": "1"}, model=model.name)
        content_type = request.headers.get("content-type")
        if len(body) > INLINE_PARSE_BYTES:
            payload = await loop.run_in_executor(None, lambda: parse(body, content_type, mlflow=mlflow))
        else:
            payload = parse(body, content_type, mlflow=mlflow)
        accept = request.headers.get("accept", "")
        item = Item(payload, loop.create_future(), loop.time(), deadline, mlflow=mlflow, arrow=ARROW_MEDIA in accept)
        if payload.rows == 0:
            if payload.kind == "frame" and payload.names:
                fit_columns(payload, loaded.predictor)  # a table with no rows still names its columns
            return _empty_answer(model, item)
        item.payload = fit_columns(payload, loaded.predictor)
        model.batcher.submit(item)
        try:
            async with asyncio.timeout_at(deadline):
                return await item.future
        except TimeoutError:
            item.cancelled = True
            raise HttpError(504, "no prediction within the request timeout; the server is busy or the model slow",
                            error="Timeout", headers={"retry-after": "1"}) from None


def _registry_without_scheme(key: str) -> Any:
    from mlark.core.refs import parse_registry_ref

    return parse_registry_ref(key, scheme_optional=True)


def fit_columns(payload: Payload, predictor: Any) -> Payload:
    """Check a table's columns against the signature now (422 naming the first missing one); keep only those."""
    columns = predictor.input_columns
    if columns is None:
        return payload
    if payload.kind == "tensor":
        array = payload.data
        if array.ndim == 2 and array.shape[1] == len(columns):
            return Payload("frame", payload.rows, {c: array[:, i] for i, c in enumerate(columns)}, tuple(columns))
        if array.ndim == 1 and len(columns) == 1:
            return Payload("frame", payload.rows, {columns[0]: array}, tuple(columns))
        raise HttpError(422, f"the model takes a table with columns {', '.join(map(repr, columns[:20]))}; "
                        f"got an array of shape {list(array.shape)} (send records, or rows of {len(columns)} values "
                        "in this order)", error="SignatureMismatch", field=columns[0], expected=columns)
    if payload.kind != "frame":
        raise HttpError(422, f"the model takes a table with columns {', '.join(map(repr, columns[:20]))}; "
                        f"got named arrays {', '.join(map(repr, list(payload.data)[:20]))}",
                        error="SignatureMismatch", field=columns[0], expected=columns)
    if payload.names == tuple(columns):
        return payload
    missing = [c for c in columns if c not in payload.data]
    if missing:
        raise HttpError(
            422,
            f"the input is missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:20]))} "
            f"required by the model's signature (given: {', '.join(repr(c[:40]) for c in list(payload.data)[:20])})",
            error="SignatureMismatch", field=missing[0], column=missing[0], missing=missing[:100],
        )
    return payload.select(columns)


def _empty_answer(model: ServedModel, item: Item) -> Answer:
    loaded = model.current
    assert loaded is not None
    body = b'{"predictions":[]}' if item.mlflow else b'{"predictions":[]' + loaded.meta_suffix
    return Answer(body, "application/json", loaded.headers, loaded.resolution.version)


def _names(given: Sequence[str], refs: Sequence[str], chosen: dict[str, str]) -> list[str]:
    """A short name per model: the one given (NAME=REF), else the registered model or artifact name when
    unique, else the reference itself."""
    short: list[str] = []
    for g, ref in zip(given, refs, strict=True):
        explicit = chosen.get(g) or chosen.get(ref)
        if explicit:
            short.append(explicit)
            continue
        try:
            parsed = parse_model_ref(ref)
            short.append(parsed.model if isinstance(parsed, RegistryRef) else
                         parsed.name if isinstance(parsed, VersionRef) else ref)
        except Exception:  # noqa: BLE001 - a folder
            short.append(os.path.basename(ref.rstrip("/")) or ref)
    out = []
    for s, ref in zip(short, refs, strict=True):
        out.append(s if short.count(s) == 1 and s not in refs or s == ref else ref)
    if len(set(out)) != len(out):
        dup = next(n for n in out if out.count(n) > 1)
        raise InvalidInput(f"two models would be served as {dup!r}; name them (NAME=REF)", field="refs")
    return out


# --------------------------------------------------------------------------- the application


def create_app(refs: Sequence[str], source: ModelSource, options: ServeOptions | None = None) -> Any:
    """A Starlette application serving ``refs`` (references or folders) from ``source``."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    server = ModelServer(refs, source, options)
    metrics = server.metrics

    def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(doc, separators=(",", ":"), default=str).encode(), status_code=status,
                        headers=headers, media_type="application/json")

    def error_response(err: HttpError) -> Response:
        return json_response(err.body(), err.status, err.headers or None)

    async def answer(model: ServedModel | None, request: Request, endpoint: str, mlflow: bool) -> Response:
        started = time.perf_counter()
        name = "" if model is None else model.name
        try:
            if model is None:
                raise HttpError(404, _unknown(server, request.path_params.get("ref", "")), error="ModelNotServed",
                                served=[m.name for m in server.models])
            model.in_flight += 1
            try:
                model.batcher.note_in_flight(model.in_flight)
                result = await server.predict(model, request, mlflow=mlflow)
            finally:
                model.in_flight -= 1
            response = Response(result.body, media_type=result.media_type, headers=dict(result.headers))
            metrics.observe_request(name, endpoint, 200, time.perf_counter() - started)
            return response
        except HttpError as exc:
            err = exc
        except MlarkError as exc:
            err = from_mlark_error(exc)
        except Exception as exc:  # noqa: BLE001 - a bug; logged with its traceback
            log.exception("unexpected error answering %s %s", request.method, request.url.path)
            err = HttpError(500, f"internal error: {type(exc).__name__}", error="InternalError")
        metrics.observe_request(name, endpoint, err.status, time.perf_counter() - started, err.error)
        return error_response(err)

    async def predict(request: Request) -> Response:
        return await answer(server.lookup(request.path_params["ref"]), request, "predict", False)

    async def invocations(request: Request) -> Response:
        if len(server.models) != 1:
            err = HttpError(404, f"/invocations answers when one model is served; this server serves "
                            f"{len(server.models)}: use /v1/models/{{name}}/predict "
                            f"({', '.join(m.name for m in server.models)})", error="AmbiguousModel")
            metrics.observe_request("", "invocations", 404, 0.0, err.error)
            return error_response(err)
        return await answer(server.models[0], request, "invocations", True)

    async def list_models(request: Request) -> Response:
        return json_response({"ready": server.ready, "models": [m.describe() for m in server.models]})

    async def show_model(request: Request) -> Response:
        ref = request.path_params["ref"]
        model = server.lookup(ref)
        if model is None and ref.endswith("/predict") and server.lookup(ref[: -len("/predict")]) is not None:
            return error_response(HttpError(405, "predict takes POST", error="MethodNotAllowed",
                                            headers={"allow": "POST"}))
        if model is None:
            return error_response(HttpError(404, _unknown(server, ref), error="ModelNotServed",
                                             served=[m.name for m in server.models]))
        return json_response(model.describe())

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        states = {m.name: m.state for m in server.models}
        return json_response({"ready": server.ready, "models": states}, 200 if server.ready else 503)

    async def ping(request: Request) -> Response:
        return Response(b"\n", status_code=200 if server.ready else 503, media_type="application/json")

    async def version(request: Request) -> Response:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            text = dist_version("mlark")
        except PackageNotFoundError:
            text = "unknown"
        return Response(text, media_type="text/plain")

    async def metrics_route(request: Request) -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    async def openapi(request: Request) -> Response:
        from mlark.serving.openapi import build

        return json_response(build(server))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or ""
        if status == 404:
            message = f"no such endpoint: {request.method} {request.url.path[:200]} (see /openapi.json)"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path[:200]}"
        else:
            message = str(detail)
        headers = dict(getattr(exc, "headers", None) or {})
        return error_response(HttpError(status, message, error="NotFound" if status == 404 else "HttpError",
                                        headers=headers))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(HttpError(500, f"internal error: {type(exc).__name__}", error="InternalError"))

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    routes = [
        Route("/v1/models/{ref:path}/predict", predict, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{ref:path}", show_model, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.server = server
    return app


def _unknown(server: ModelServer, ref: str) -> str:
    shown = ref if len(ref) <= 120 else ref[:117] + "..."
    names = ", ".join(m.name for m in server.models[:20])
    return f"no model {shown!r} is served here; served: {names} (GET /v1/models lists them)"
