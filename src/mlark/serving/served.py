"""A served model: the version loaded now, swapped atomically; predicting a merged batch; answers.

:class:`ServedModel` holds one :class:`Loaded` at a time. A batch takes the one in place when it
starts and keeps it to the end, so every row of a batch, and so every request, is predicted by one
version, which its answer names (``mlark-model-version``). A new version replaces it by one
assignment, after it loaded and predicted on its input example (:func:`load_version`).

:func:`run_batch` runs on the model's predict thread: merge the requests' inputs, one ``predict``,
cut the output by rows, encode each answer. If the merged batch fails, each request is predicted
alone, so one bad request fails alone.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mlark.errors import InvalidInput, MlarkError
from mlark.pipelines.predictor import Predictor, output_rows, slice_output
from mlark.serving.errors import HttpError, from_mlark_error
from mlark.serving.payloads import Payload
from mlark.serving.source import Resolution

log = logging.getLogger("mlark.serving")

JSON_MEDIA = "application/json"
ARROW_MEDIA = "application/vnd.apache.arrow.stream"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Loaded:
    """One loaded version of a served model."""

    resolution: Resolution
    model: Any
    predictor: Predictor
    loaded_at: datetime
    smoke_rows: int
    folder: Path
    meta_suffix: bytes = b""  # the end of a native JSON answer: ,"model":...,"version":...}
    headers: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict[str, Any]:
        sig = self.predictor.signature
        return {
            **self.resolution.to_dict(),
            "loaded_at": self.loaded_at.isoformat(),
            "flavor": self.model.flavor,
            "signature": None if sig is None else sig.to_json(),
            "smoke_test_rows": self.smoke_rows,
            "accelerated": self.predictor.fast,
        }


@dataclass
class Refusal:
    resolution: Resolution
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.resolution.version, "digest": self.resolution.digest,
                "at": self.at.isoformat(), "reason": self.reason}


@dataclass
class ServedModel:
    name: str
    ref: str
    follows: bool
    current: Loaded | None = None
    serving_since: datetime | None = None
    state: str = "loading"  # loading | ready | failed
    error: str | None = None
    refusals: list[Refusal] = field(default_factory=list)
    refused_digests: set[str] = field(default_factory=set)
    loading_digest: str | None = None
    unresolvable: str | None = None  # why the followed reference does not resolve now (it keeps serving)
    batcher: Any = None
    in_flight: int = 0

    def swap(self, loaded: Loaded) -> Loaded | None:
        previous = self.current
        self.current = loaded  # one assignment: a batch sees the old version or the new, never both
        self.serving_since = _now()
        self.state = "ready"
        self.error = None
        return previous

    def refuse(self, resolution: Resolution, reason: str) -> None:
        self.refused_digests.add(resolution.digest)
        self.refusals.append(Refusal(resolution, _now(), reason))
        del self.refusals[:-20]

    def describe(self) -> dict[str, Any]:
        cur = self.current
        return {
            "name": self.name,
            "ref": self.ref,
            "follows": self.follows,
            "state": self.state,
            "error": self.error,
            "version": None if cur is None else cur.resolution.version,
            "digest": None if cur is None else cur.resolution.digest,
            "registered": None if cur is None else cur.resolution.registered,
            "stage": None if cur is None else cur.resolution.stage,
            "resolves_since": None if cur is None or cur.resolution.moved_at is None
            else cur.resolution.moved_at.isoformat(),
            "serving_since": None if self.serving_since is None else self.serving_since.isoformat(),
            "loaded": None if cur is None else cur.describe(),
            "unresolvable": self.unresolvable,
            "refused": [r.to_dict() for r in self.refusals],
            "queue": 0 if self.batcher is None else self.batcher.depth,
        }


# --------------------------------------------------------------------------- loading


def load_version(name: str, fetch: Callable[[Resolution], Path], resolution: Resolution, *,
                 trust: tuple[str, ...] = (), threads: int = 1, cache: Path | None = None) -> Loaded:
    """Fetch, load and smoke-test one version (on a background thread). Raises on any failure.
    ``cache``: where ``load_model`` may keep derived data (the repository's model cache)."""
    from mlark.models import load_model

    started = time.perf_counter()
    folder = fetch(resolution)
    model = load_model(folder, trust=list(trust) or None, cache=cache)
    predictor = Predictor(model, threads=threads)
    rows = predictor.smoke_test()
    log.info("%s: loaded %s (%s) in %.2fs; %s", name, resolution.version, resolution.digest[:12],
             time.perf_counter() - started,
             f"smoke prediction on {rows} example row(s) passed" if rows else "no input example: no smoke prediction")
    return stamp(name, Loaded(resolution, model, predictor, _now(), rows, folder))


def stamp(name: str, loaded: Loaded, resolution: Resolution | None = None) -> Loaded:
    """``loaded`` (with ``resolution`` when given) carrying the answer headers and JSON fields naming it."""
    from dataclasses import replace

    res = resolution or loaded.resolution
    meta: dict[str, Any] = {"model": name, "version": res.version}
    if res.registered:
        meta["registered"] = res.registered
    suffix = json.dumps(meta, separators=(",", ":")).encode()
    headers = [("mlark-model", _header(name)), ("mlark-model-version", _header(res.version)),
               ("mlark-model-digest", res.digest)]
    if res.registered:
        headers.append(("mlark-registered-version", _header(res.registered)))
    return replace(loaded, resolution=res, meta_suffix=b"," + suffix[1:], headers=tuple(headers))


def _header(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


# --------------------------------------------------------------------------- one batch


@dataclass
class Answer:
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]
    version: str


@dataclass(eq=False)
class Item:
    """One request waiting in a batcher."""

    payload: Payload
    future: Any
    arrived: float
    deadline: float
    mlflow: bool = False
    arrow: bool = False
    cancelled: bool = False


def run_batch(name: str, loaded: Loaded, items: list[Item]) -> list[Answer | Exception]:
    """Predict ``items`` with ``loaded`` (one predict per group of mergeable requests)."""
    groups: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.payload.key(), []).append(i)
    answers: list[Answer | Exception] = [None] * len(items)  # type: ignore[list-item]
    for indices in groups.values():
        group = [items[i] for i in indices]
        for i, answer in zip(indices, _run_group(name, loaded, group), strict=True):
            answers[i] = answer
    return answers


def _run_group(name: str, loaded: Loaded, group: list[Item]) -> list[Answer | Exception]:
    if len(group) > 1:
        try:
            data = merge([it.payload for it in group])
            out = loaded.predictor.predict(data)
            if output_rows(out) == sum(it.payload.rows for it in group):
                answers: list[Answer | Exception] = []
                start = 0
                for it in group:
                    stop = start + it.payload.rows
                    answers.append(_answer(loaded, it, slice_output(out, start, stop)))
                    start = stop
                return answers
        except Exception:  # noqa: BLE001 - find the culprit: each request alone
            pass
    return [_run_one(loaded, it) for it in group]


def _run_one(loaded: Loaded, item: Item) -> Answer | Exception:
    try:
        out = loaded.predictor.predict(merge([item.payload]))
        return _answer(loaded, item, out)
    except MlarkError as exc:
        return from_mlark_error(exc)
    except HttpError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - an input the model chokes on is the input's problem
        return HttpError(422, f"the model could not predict on this input: {type(exc).__name__}: "
                         f"{str(exc)[:300]}", error="PredictionFailed")


def merge(payloads: list[Payload]) -> Any:
    """One model input from mergeable payloads (same key)."""
    first = payloads[0]
    if first.kind == "frame":
        import pandas as pd

        columns = first.names
        data: dict[str, Any] = {}
        for c in columns:
            parts = [p.data[c] for p in payloads]
            if all(isinstance(part, list) for part in parts):
                data[c] = parts[0] if len(parts) == 1 else list(chain.from_iterable(parts))
            else:
                data[c] = _concat([np.asarray(part) if not isinstance(part, np.ndarray) else part for part in parts])
        frame = pd.DataFrame(data, columns=list(columns))
        if frame.shape[1] != len(columns):
            raise InvalidInput("the input names a column twice", field="data")
        if len(frame) == 0 and not columns:
            raise InvalidInput("the input has no columns", field="data")
        return frame
    if first.kind == "tensor":
        return first.data if len(payloads) == 1 else np.concatenate([p.data for p in payloads], axis=0)
    return {k: (first.data[k] if len(payloads) == 1 else np.concatenate([p.data[k] for p in payloads], axis=0))
            for k in first.data}


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    kinds = {p.dtype.kind for p in parts}
    if len(kinds) > 1 and not kinds <= set("biuf"):
        parts = [p.astype(object) for p in parts]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- answers


def _answer(loaded: Loaded, item: Item, out: Any) -> Answer:
    version = loaded.resolution.version
    if item.arrow:
        return Answer(encode_arrow(out), ARROW_MEDIA, loaded.headers, version)
    predictions = json.dumps(jsonable(out), separators=(",", ":"), allow_nan=False).encode()
    if item.mlflow:
        body = b'{"predictions":' + predictions + b"}"
    else:
        body = b'{"predictions":' + predictions + loaded.meta_suffix
    return Answer(body, JSON_MEDIA, loaded.headers, version)


def jsonable(out: Any) -> Any:
    """Predictions as JSON values: NaN and infinities as null, datetimes as ISO 8601 text."""
    if isinstance(out, np.ndarray):
        return _array_json(out)
    if isinstance(out, dict):
        return {str(k): _array_json(np.asarray(v)) for k, v in out.items()}
    # a DataFrame: records, as MLflow answers
    columns = [str(c) for c in out.columns]
    values = [_array_json(np.asarray(out[c].to_numpy())) for c in out.columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)] if values else []


def _array_json(a: np.ndarray) -> Any:
    kind = a.dtype.kind
    if kind == "f":
        if not np.isfinite(a).all():
            obj = a.astype(object)
            obj[~np.isfinite(a)] = None
            return obj.tolist()
        return a.tolist()
    if kind in "biuU":
        return a.tolist()
    if kind == "M":
        return np.datetime_as_string(a, unit="auto").tolist()
    if kind == "m":
        return a.astype("int64").tolist()
    if kind == "S":
        return [b.decode("latin-1") for b in a.ravel().tolist()]
    return [_value_json(v) for v in a.tolist()] if a.ndim == 1 else [_array_json(np.asarray(r)) for r in a]


def _value_json(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, (list, tuple, np.ndarray)):
        return _array_json(np.asarray(v))
    if isinstance(v, np.generic):
        return _value_json(v.item())
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return str(v)


def encode_arrow(out: Any) -> bytes:
    import pyarrow as pa

    from mlark.pipelines.batch import output_columns

    columns = output_columns(out, "prediction")
    table = pa.Table.from_arrays([a for _, a in columns], names=[n for n, _ in columns])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
