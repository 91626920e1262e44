"""Batch prediction: a Parquet or CSV file in, predictions (and chosen input columns) out as Parquet.

The file is read in record batches (:mod:`mlark.pipelines.readers`), each batch predicted and
written as it comes, so memory holds a few batches whatever the file's size: a batch being read,
up to ``workers`` being predicted, and one being written. Batches are predicted on a small thread
pool (tree ensembles and most numeric libraries release the GIL) and written in input order.

The output is written to a temporary file beside the target and renamed into place when every row
is written: a failed or interrupted run leaves no half-written output.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from mlark.errors import InvalidInput, StorageError
from mlark.pipelines.predictor import Predictor, cpu_count, output_rows
from mlark.pipelines.readers import TableSource, open_table

DEFAULT_BATCH_SIZE = 65_536
MAX_BATCH_SIZE = 10_000_000
PREDICTION_COLUMN = "prediction"


class BatchProgress(Protocol):
    def start(self, total_rows: int | None, total_bytes: int | None) -> None: ...

    def advance(self, rows: int, nbytes: int = 0) -> None: ...

    def finish(self) -> None: ...


class NoBatchProgress:
    def start(self, total_rows: int | None, total_bytes: int | None) -> None:
        pass

    def advance(self, rows: int, nbytes: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class BatchReport:
    input: Path
    output: Path
    format: str
    rows: int
    batches: int
    seconds: float
    model_columns: list[str] | None
    passthrough: list[str]
    prediction_columns: list[str]
    accelerated: bool
    workers: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "output": str(self.output),
            "format": self.format,
            "rows": self.rows,
            "batches": self.batches,
            "seconds": round(self.seconds, 4),
            "rows_per_second": round(self.rows_per_second, 1),
            "model_columns": self.model_columns,
            "passthrough": self.passthrough,
            "prediction_columns": self.prediction_columns,
            "accelerated": self.accelerated,
            "workers": self.workers,
            **self.extra,
        }


def predict_file(predictor: Predictor | Any, input: str | os.PathLike[str], output: str | os.PathLike[str], *,
                 passthrough: Sequence[str] = (), batch_size: int = DEFAULT_BATCH_SIZE,
                 prediction_column: str = PREDICTION_COLUMN, input_format: str | None = None,
                 workers: int | None = None, progress: BatchProgress | None = None,
                 overwrite: bool = True) -> BatchReport:
    """Predict every row of ``input`` (Parquet or CSV) and write ``output`` (Parquet).

    ``predictor`` is a :class:`Predictor` or a loaded :class:`mlark.models.Model`. The output has
    the ``passthrough`` input columns first, then the predictions: one column
    ``prediction_column`` for one value (or one fixed-size list) per row; a model returning a
    table or named outputs gives one column per output, under its own name.
    """
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}",
                           field="batch_size")
    if not isinstance(prediction_column, str) or not prediction_column:
        raise InvalidInput("the prediction column needs a name", field="prediction_column")
    out_path = Path(output)
    in_path = Path(input)
    if out_path.exists() and out_path.is_dir():
        raise InvalidInput(f"{out_path} is a folder; give the path of the Parquet file to write", path=str(out_path))
    if out_path.exists() and not overwrite:
        raise InvalidInput(f"{out_path} exists", path=str(out_path))
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise InvalidInput("the output would overwrite the input; give another output path", path=str(out_path))
    sig_types = _signature_types(predictor)
    source = open_table(in_path, format=input_format, signature_types=sig_types)
    passthrough = _check_passthrough(list(passthrough), source)
    model_columns = _model_columns(predictor, source)
    read_columns = _union(model_columns if model_columns is not None else source.columns, passthrough)
    n_workers = max(1, workers if workers is not None else min(cpu_count(), 8))
    progress = progress or NoBatchProgress()
    writer = _Writer(out_path)
    started = time.perf_counter()
    rows = batches = 0
    prediction_names: list[str] = []
    progress.start(source.total_rows, source.total_bytes if source.format == "csv" else None)
    try:
        pending: deque[tuple[Any, Future[Any]]] = deque()
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="mlark-predict") as pool:
            bytes_read = [0]

            def on_bytes(n: int) -> None:
                bytes_read[0] += n

            def drain(limit: int) -> None:
                nonlocal rows, batches, prediction_names
                while len(pending) > limit:
                    batch, future = pending.popleft()
                    columns = future.result()
                    names = writer.write(batch, passthrough, columns)
                    prediction_names = names
                    rows += batch.num_rows
                    batches += 1
                    done_bytes, bytes_read[0] = bytes_read[0], 0
                    progress.advance(batch.num_rows, done_bytes)

            first_row = 0
            for batch in source.batches(read_columns, batch_size, on_bytes if source.format == "csv" else None):
                pending.append((batch, pool.submit(_predict_batch, predictor, batch, first_row, model_columns,
                                                   prediction_column, passthrough)))
                first_row += batch.num_rows
                drain(n_workers)
            drain(0)
        if rows == 0:
            writer.write_empty(source, passthrough, prediction_column)
            prediction_names = [prediction_column]
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        progress.finish()
    return BatchReport(in_path, out_path, source.format, rows, batches, time.perf_counter() - started,
                       model_columns, passthrough, prediction_names, predictor.fast, n_workers)


# --------------------------------------------------------------------------- columns


def _signature_types(predictor: Predictor) -> dict[str, str]:
    sig = predictor.signature
    if sig is None or sig.inputs.kind != "columns":
        return {}
    return {str(s.name): s.dtype for s in sig.inputs.specs}


def _model_columns(predictor: Predictor, source: TableSource) -> list[str] | None:
    wanted = predictor.input_columns
    if wanted is None:
        return None
    missing = [c for c in wanted if c not in source.columns]
    if missing:
        raise InvalidInput(
            f"{source.path.name} lacks column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"that the model's signature requires (the file has: {_listing(source.columns)})",
            field="input",
            column=missing[0],
            missing=missing,
        )
    return wanted


def _check_passthrough(names: list[str], source: TableSource) -> list[str]:
    seen: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidInput("passthrough column names must be non-empty strings", field="passthrough")
        if name not in source.columns:
            raise InvalidInput(
                f"passthrough column {name!r} is not in {source.path.name} (it has: {_listing(source.columns)})",
                field="passthrough",
                column=name,
            )
        if name not in seen:
            seen.append(name)
    return seen


def _union(a: list[str], b: list[str]) -> list[str]:
    return a + [x for x in b if x not in a]


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --------------------------------------------------------------------------- predicting one batch


def _predict_batch(predictor: Predictor, batch: Any, first_row: int, model_columns: list[str] | None,
                   prediction_column: str, passthrough: list[str]) -> list[tuple[str, Any]]:
    selected = batch.select(model_columns) if model_columns is not None else batch
    try:
        out = predictor.predict_arrow(selected)
    except InvalidInput as exc:
        row = exc.fields.get("row")
        if isinstance(row, int) and f", row {row}:" in exc.message:  # count rows from the start of the file
            message = exc.message.replace(f", row {row}:", f", row {first_row + row}:", 1)
            raise type(exc)(message, **{**exc.fields, "row": first_row + row}) from exc
        last = first_row + batch.num_rows - 1
        raise type(exc)(f"input rows {first_row} to {last}: {exc.message}", **exc.fields) from exc
    n = output_rows(out)
    if n != batch.num_rows:
        raise InvalidInput(
            f"the model returned {n} prediction(s) for a batch of {batch.num_rows} rows; "
            "batch prediction needs one prediction per row",
            field="model",
        )
    columns = output_columns(out, prediction_column)
    clash = [name for name, _ in columns if name in passthrough]
    if clash:
        raise InvalidInput(
            f"prediction column {clash[0]!r} has the name of a passthrough column; "
            "choose another prediction column name",
            field="prediction_column",
            column=clash[0],
        )
    return columns


def output_columns(out: Any, name: str) -> list[tuple[str, Any]]:
    """Arrow arrays for a normalised output: one per output column."""
    import pyarrow as pa

    if isinstance(out, np.ndarray):
        return [(name, _array(out))]
    if isinstance(out, dict):
        return [(str(k), _array(np.asarray(v))) for k, v in out.items()]
    # a DataFrame
    table = pa.Table.from_pandas(out, preserve_index=False)
    return [(str(n), table.column(i).combine_chunks()) for i, n in enumerate(table.column_names)]


def _array(values: np.ndarray) -> Any:
    import pyarrow as pa

    from mlark.pipelines.arrow_columns import from_numpy

    direct = from_numpy(values)  # numeric columns without pyarrow's look for pandas types
    if direct is not None:
        return direct
    if values.ndim <= 1:
        return pa.array(values if values.dtype.kind != "O" else values.tolist())
    width = int(np.prod(values.shape[1:]))
    flat = values.reshape(values.shape[0] * width) if values.flags.c_contiguous else values.ravel()
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), width)


# --------------------------------------------------------------------------- writing


class _Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.mlark-{os.getpid()}.partial")
        self._writer: Any = None
        self._schema: Any = None

    def write(self, batch: Any, passthrough: list[str], predictions: list[tuple[str, Any]]) -> list[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = [batch.column(batch.schema.get_field_index(c)) for c in passthrough]
        names = list(passthrough)
        for pname, array in predictions:
            names.append(pname)
            arrays.append(array)
        table = pa.Table.from_arrays(arrays, names=names)
        if self._writer is None:
            self._schema = table.schema
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._writer = pq.ParquetWriter(str(self.tmp), self._schema)
            except OSError as exc:
                raise StorageError(f"cannot write {self.path}: {exc}", path=str(self.path)) from exc
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except Exception as exc:
                raise InvalidInput(
                    f"the predictions of a later batch have another type ({table.schema}) than the first "
                    f"batch's ({self._schema}); cannot write one Parquet file",
                    field="model",
                ) from exc
        try:
            self._writer.write_table(table)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}", path=str(self.path)) from exc
        return [n for n, _ in predictions]

    def write_empty(self, source: TableSource, passthrough: list[str], prediction_column: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is not None:
            return
        fields = []
        if passthrough:
            if source.format == "parquet":
                schema = pq.ParquetFile(source.path).schema_arrow
                fields = [schema.field(c) for c in passthrough]
            else:
                fields = [pa.field(c, pa.string()) for c in passthrough]
        schema = pa.schema([*fields, pa.field(prediction_column, pa.float64())])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(schema.empty_table(), str(self.tmp))

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        try:
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}", path=str(self.path)) from exc

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception:  # noqa: BLE001
            pass
        self._writer = None
        try:
            self.tmp.unlink()
        except OSError:
            pass
