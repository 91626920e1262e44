"""Request bodies to model input: JSON in several shapes, CSV, Arrow IPC and Parquet.

JSON (``application/json``), at ``/v1/models/{ref}/predict``:

=================================================  ============================================
body                                               means
=================================================  ============================================
``{"records": [{"tenure": 3, "plan": "basic"}]}``  rows as objects
``{"columns": {"tenure": [3, 5], "plan": [...]}}`` columns as lists
``{"split": {"columns": [...], "data": [[...]]}}`` pandas' split orientation
``{"instance": {"tenure": 3, "plan": "basic"}}``   one row (also a bare object ``{"tenure": 3, ...}``)
``{"inputs": ...}`` / ``{"instances": ...}``       rows, columns or arrays (tensors), as MLflow takes them
``[{...}, {...}]`` / ``[[...], [...]]``            rows as objects / as arrays
=================================================  ============================================

MLflow's ``/invocations`` shapes are accepted at both endpoints: ``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs`` (and ``params``, which must be empty: these
models take none).

Parsing is strict and cheap, and runs before a request joins a batch: a body that is not JSON,
``NaN``/``Infinity`` literals, a shape that is none of the above, a row that is not an object, a
cell that is a list or an object where a value belongs, an integer beyond 64 bits: each is a
:class:`MalformedBody` (400) or an ``InvalidInput`` (422) naming the field, never a server error.
Checking values against the model's signature happens on the merged batch, by the model.

Arrow IPC (``application/vnd.apache.arrow.stream`` or ``...arrow.file``), Parquet
(``application/vnd.apache.parquet``) and CSV (``text/csv``) bodies are tables; junk is a 400.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlark.errors import InvalidInput
from mlark.serving.errors import MalformedBody, UnsupportedMediaType

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
ARROW_STREAM_TYPES = ("application/vnd.apache.arrow.stream", "application/x-apache-arrow-stream")
ARROW_FILE_TYPES = ("application/vnd.apache.arrow.file", "application/x-apache-arrow-file")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
ACCEPTED_TYPES = (*JSON_TYPES, *CSV_TYPES, *ARROW_STREAM_TYPES, *ARROW_FILE_TYPES, *PARQUET_TYPES)
#: Bodies larger than this are parsed off the event loop.
INLINE_PARSE_BYTES = 64 * 1024
#: JSON nesting deeper than this is refused (a table or a tensor needs a few levels).
MAX_DEPTH = 64

INT_MIN, UINT_MAX = -(2**63), 2**64 - 1
_SCALARS = (str, bool, int, float, type(None))

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MLARK_KEYS = ("records", "columns", "split", "instance", *MLFLOW_KEYS)


@dataclass
class Payload:
    """One request's input: a table (``frame``: columns by name), a ``tensor`` or named ``tensors``."""

    kind: str
    rows: int
    data: Any
    names: tuple[str, ...] = ()

    def key(self) -> tuple[Any, ...]:
        """Requests with equal keys can be merged into one ``predict``."""
        if self.kind == "frame":
            return ("frame", self.names)
        if self.kind == "tensor":
            return ("tensor", self.data.shape[1:], self.data.dtype.kind)
        return ("tensors", tuple((k, v.shape[1:], v.dtype.kind) for k, v in self.data.items()))

    def select(self, columns: list[str]) -> Payload:
        """The frame narrowed to (and ordered as) ``columns``; every one must be present."""
        return Payload("frame", self.rows, {c: self.data[c] for c in columns}, tuple(columns))


def media_type(header: str | None) -> str:
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def parse(body: bytes, content_type: str | None, *, mlflow: bool = False) -> Payload:
    """The payload of a request body, by content type (``mlflow`` = the body came to ``/invocations``)."""
    kind = media_type(content_type)
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return parse_json(body, mlflow=mlflow)
    if kind in CSV_TYPES:
        return parse_csv(body)
    if kind in ARROW_STREAM_TYPES or kind in ARROW_FILE_TYPES:
        return parse_arrow(body, file=kind in ARROW_FILE_TYPES)
    if kind in PARQUET_TYPES:
        return parse_parquet(body)
    shown = kind or "none"
    raise UnsupportedMediaType(
        f"content type {shown!r} is not accepted; send application/json, text/csv, "
        "application/vnd.apache.arrow.stream, application/vnd.apache.arrow.file or application/vnd.apache.parquet",
        field="content-type",
        accepted=list(ACCEPTED_TYPES),
    )


# --------------------------------------------------------------------------- JSON


def _refuse_constant(name: str) -> Any:
    raise MalformedBody(f"the body is not valid JSON: {name} is not a JSON value (use null for a missing value)",
                        field="body")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise MalformedBody(f"the body names {k[:80]!r} twice in one object", field=k[:80])
            seen.add(k)
    return out


def loads(body: bytes) -> Any:
    if not body or not body.strip():
        raise MalformedBody("the request body is empty; send a JSON object such as "
                            '{"records": [{"column": value, ...}]}', field="body")
    _check_depth(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not UTF-8 text (byte {exc.start}); JSON must be UTF-8", field="body") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except MalformedBody:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                            field="body", position=exc.pos) from None
    except RecursionError:
        raise MalformedBody(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)", field="body") from None
    except ValueError as exc:  # e.g. integers with too many digits (Python's int-string limit)
        raise MalformedBody(f"the body is not valid JSON: {exc}", field="body") from None


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _check_depth(body: bytes) -> None:
    """Refuse deep nesting before the parser recurses into it (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    for b in _BRACKETS.findall(_STRING.sub(b'""', body)):
        if b in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedBody(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)", field="body")
        else:
            depth -= 1


def parse_json(body: bytes, *, mlflow: bool = False) -> Payload:
    doc = loads(body)
    if isinstance(doc, list):
        if mlflow:
            raise MalformedBody(
                "MLflow's /invocations takes a JSON object with one of " + ", ".join(MLFLOW_KEYS), field="body"
            )
        return _rows_or_tensor(doc, "body")
    if not isinstance(doc, dict):
        raise MalformedBody(
            f"the body is a JSON {_json_kind(doc)}; send an object such as "
            '{"records": [{"column": value, ...}]}',
            field="body",
        )
    params = doc.get("params")
    if "params" in doc and params not in (None, {}):
        raise InvalidInput("this server's models take no params; leave 'params' out", field="params")
    keys = [k for k in doc if k != "params"]
    known = [k for k in keys if k in (MLFLOW_KEYS if mlflow else MLARK_KEYS)]
    if not known:
        if mlflow or not keys:
            allowed = MLFLOW_KEYS if mlflow else MLARK_KEYS
            raise MalformedBody(
                f"the body has none of the keys {', '.join(allowed)}"
                + (f" (it has: {', '.join(repr(k[:40]) for k in keys[:10])})" if keys else ""),
                field="body",
                allowed=list(allowed),
            )
        return _records([doc], "body")  # a bare object is one row
    if len(keys) > 1:
        raise MalformedBody(
            f"give the input under exactly one key; the body has {', '.join(repr(k[:40]) for k in keys[:10])}",
            field="body",
        )
    key = known[0]
    value = doc[key]
    if key in ("records", "dataframe_records"):
        if not isinstance(value, list):
            raise MalformedBody(f"{key!r} must be a list of objects, got a JSON {_json_kind(value)}", field=key)
        return _records(value, key)
    if key == "columns":
        if not isinstance(value, dict):
            raise MalformedBody(f"'columns' must be an object of column name to list, got a JSON {_json_kind(value)}",
                                field=key)
        return _columns(value, key)
    if key in ("split", "dataframe_split"):
        return _split(value, key)
    if key == "instance":
        if isinstance(value, dict):
            return _records([value], key)
        if isinstance(value, list):
            return _tensor([value], key)
        raise MalformedBody(f"'instance' must be an object (one row) or a list (one array row), "
                            f"got a JSON {_json_kind(value)}", field=key)
    # instances / inputs
    if isinstance(value, list):
        return _rows_or_tensor(value, key)
    if isinstance(value, dict):
        if value and all(isinstance(v, list) for v in value.values()):
            lists = list(value.values())
            if all(_flat(v) for v in lists) and len({len(v) for v in lists}) == 1:
                return _columns(value, key)
            return _named_tensors(value, key)
        return _records([value], key)
    raise MalformedBody(f"{key!r} must be a list or an object, got a JSON {_json_kind(value)}", field=key)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _flat(values: list[Any]) -> bool:
    return all(isinstance(v, _SCALARS) for v in values)


def _rows_or_tensor(items: list[Any], where: str) -> Payload:
    if items and isinstance(items[0], dict):
        return _records(items, where)
    return _tensor(items, where)


def _cell(value: Any, column: str, row: int) -> Any:
    if type(value) is int and not INT_MIN <= value <= UINT_MAX:
        raise InvalidInput(
            f"column {column[:80]!r}, row {row}: {str(value)[:30]}... does not fit in 64 bits",
            field=column[:80], row=row,
        )
    if not isinstance(value, _SCALARS):
        raise InvalidInput(
            f"column {column[:80]!r}, row {row}: a JSON {_json_kind(value)} where a single value belongs",
            field=column[:80], row=row,
        )
    return value


def _records(records: list[Any], where: str) -> Payload:
    columns: dict[str, list[Any]] = {}
    n = len(records)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise MalformedBody(f"{where}: row {i} is a JSON {_json_kind(record)}, not an object", field=where, row=i)
        for name, value in record.items():
            if type(value) not in (float, str) and (type(value) is not int or not INT_MIN <= value <= UINT_MAX):
                value = _cell(value, name, i)
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * n
            column[i] = value
    return Payload("frame", n, columns, tuple(columns))


def _columns(doc: dict[str, Any], where: str) -> Payload:
    lengths = set()
    for name, values in doc.items():
        if not isinstance(values, list):
            raise MalformedBody(f"{where}: column {name[:80]!r} must be a list, got a JSON {_json_kind(values)}",
                                field=name[:80])
        for i, v in enumerate(values):
            if type(v) not in (float, str, int) or (type(v) is int and not INT_MIN <= v <= UINT_MAX):
                _cell(v, name, i)
        lengths.add(len(values))
    if len(lengths) > 1:
        raise MalformedBody(f"{where}: the columns have different lengths ({', '.join(map(str, sorted(lengths)))})",
                            field=where)
    n = lengths.pop() if lengths else 0
    return Payload("frame", n, dict(doc), tuple(doc))


def _split(doc: Any, where: str) -> Payload:
    if not isinstance(doc, dict) or "data" not in doc:
        raise MalformedBody(f"{where!r} must be an object with 'columns' and 'data' (and optionally 'index')",
                            field=where)
    extra = set(doc) - {"columns", "data", "index"}
    if extra:
        raise MalformedBody(f"{where!r} has unknown keys {sorted(k[:40] for k in extra)}; "
                            "allowed: columns, data, index", field=where)
    data = doc["data"]
    names = doc.get("columns")
    if not isinstance(data, list):
        raise MalformedBody(f"{where}.data must be a list of rows", field=where)
    if names is None:
        return _tensor(data, where)
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise MalformedBody(f"{where}.columns must be a list of column names (strings)", field=where)
    if len(set(names)) != len(names):
        raise MalformedBody(f"{where}.columns names a column twice", field=where)
    width = len(names)
    columns: dict[str, list[Any]] = {c: [None] * len(data) for c in names}
    lists = list(columns.values())
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else f"a JSON {_json_kind(row)}"
            raise MalformedBody(f"{where}.data row {i} has {got}; expected {width} (one per column)",
                                field=where, row=i)
        for j, v in enumerate(row):
            if type(v) not in (float, str) and (type(v) is not int or not INT_MIN <= v <= UINT_MAX):
                v = _cell(v, names[j], i)
            lists[j][i] = v
    return Payload("frame", len(data), columns, tuple(names))


def _tensor(items: list[Any], where: str) -> Payload:
    try:
        array = np.asarray(items)
    except (ValueError, OverflowError, TypeError) as exc:
        raise InvalidInput(f"{where}: the values do not form an array: {str(exc).splitlines()[0][:200]}",
                           field=where) from None
    return Payload("tensor", int(array.shape[0]) if array.ndim else 1, _check_array(array, where))


def _named_tensors(doc: dict[str, Any], where: str) -> Payload:
    arrays = {}
    rows = set()
    for name, value in doc.items():
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError, TypeError) as exc:
            raise InvalidInput(f"{where}.{name[:80]}: the values do not form an array: "
                               f"{str(exc).splitlines()[0][:200]}", field=name[:80]) from None
        arrays[name] = _check_array(array, f"{where}.{name[:80]}")
        rows.add(int(array.shape[0]) if array.ndim else 1)
    if len(rows) != 1:
        raise InvalidInput(f"{where}: the named inputs have different numbers of rows", field=where)
    return Payload("tensors", rows.pop(), arrays, tuple(arrays))


def _check_array(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind not in "biufU":
        raise InvalidInput(
            f"{where}: the values do not form an array of numbers, booleans or strings "
            "(mixed types, objects, nulls or numbers beyond 64 bits)",
            field=where,
        )
    if array.ndim == 0:
        array = array.reshape(1)
    return array


# --------------------------------------------------------------------------- tables


def _from_table(table: Any, where: str) -> Payload:
    names = [str(n) for n in table.column_names]
    if len(set(names)) != len(names):
        raise MalformedBody(f"the {where} table names a column twice", field="body")
    columns = {}
    for name, column in zip(names, table.columns, strict=True):
        try:
            columns[name] = column.to_numpy(zero_copy_only=False)
        except Exception as exc:  # noqa: BLE001 - nested or exotic Arrow types
            raise InvalidInput(f"column {name[:80]!r} of the {where} table has a type a model cannot take "
                               f"({column.type}): {str(exc)[:200]}", field=name[:80]) from None
    return Payload("frame", int(table.num_rows), columns, tuple(names))


def parse_arrow(body: bytes, *, file: bool = False) -> Payload:
    import pyarrow as pa

    if not body:
        raise MalformedBody("the request body is empty; send an Arrow IPC stream", field="body")
    try:
        if file:
            table = pa.ipc.open_file(pa.BufferReader(body)).read_all()
        else:
            table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
        table.validate(full=True)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds on junk
        kind = "Arrow IPC file" if file else "Arrow IPC stream"
        raise MalformedBody(f"the body is not a valid {kind}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
                            field="body") from None
    return _from_table(table, "Arrow")


def parse_parquet(body: bytes) -> Payload:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not body:
        raise MalformedBody("the request body is empty; send a Parquet file", field="body")
    try:
        table = pq.read_table(pa.BufferReader(body))
        table.validate(full=True)
    except Exception as exc:  # noqa: BLE001
        raise MalformedBody(f"the body is not a valid Parquet file: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
                            field="body") from None
    return _from_table(table, "Parquet")


def parse_csv(body: bytes) -> Payload:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not body or not body.strip():
        raise MalformedBody("the request body is empty; send CSV with a header row", field="body")
    try:
        table = pcsv.read_csv(pa.BufferReader(body))
    except Exception as exc:  # noqa: BLE001
        raise MalformedBody(f"the body is not valid CSV: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
                            field="body") from None
    return _from_table(table, "CSV")
