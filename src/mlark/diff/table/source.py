"""Opening a table for streaming: format detection, one reader per format, folders of files,
CSV type widening, and translating parser errors into :class:`UnreadableFile`.

Formats: Parquet (``.parquet .pq .parq``), CSV (``.csv .tsv``, optionally ``.gz .bz2 .zst .lz4``
compressed) and Arrow IPC (``.arrow .feather .ipc .arrows``, file or stream format). An unknown
suffix is sniffed by magic bytes (``PAR1``, ``ARROW1``, an IPC stream's continuation marker). A
folder is read as the sorted concatenation of the table files in it (hidden and ``_``-prefixed
files such as ``_SUCCESS`` are skipped); they must share one schema.

CSV types are inferred by pyarrow from the first block. So that a value further down (``1.5``
after a million integers) cannot break a streaming pass half-way, opening a CSV parses it once
to the end and widens a column that fails (integer -> float64 -> string) until it parses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlark.diff.deps import require
from mlark.diff.errors import InputNotFound, UnreadableFile
from mlark.errors import InvalidInput

FORMATS = ("parquet", "csv", "arrow")
_SUFFIXES = {
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".csv": "csv", ".tsv": "csv",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow", ".arrows": "arrow",
}
_COMPRESSION = (".gz", ".bz2", ".zst", ".zstd", ".lz4", ".br")
_ALIASES = {"parquet": "parquet", "pq": "parquet", "csv": "csv", "tsv": "csv", "arrow": "arrow",
            "ipc": "arrow", "feather": "arrow"}
_CSV_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to ([\w\[\], ]+?):")
DEFAULT_BATCH = 64 * 1024


def _pa() -> Any:
    return require("pyarrow", purpose="diffing tables")


def format_of_name(name: str) -> str | None:
    lower = name.lower()
    for comp in _COMPRESSION:
        if lower.endswith(comp):
            lower = lower[: -len(comp)]
            break
    return _SUFFIXES.get(os.path.splitext(lower)[1])


def normalise_format(fmt: str) -> str:
    key = str(fmt).lower().lstrip(".")
    if key not in _ALIASES:
        raise InvalidInput(f"unknown table format {fmt!r}; allowed: parquet, csv, arrow (ipc, feather)",
                           field="format", value=fmt, allowed=list(FORMATS))
    return _ALIASES[key]


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    return None


def _table_files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if name.startswith((".", "_")) or format_of_name(name) is None:
                continue
            out.append(Path(root) / name)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


@dataclass
class TableSource:
    """A table to stream: one file, a folder of files, or an in-memory ``pyarrow.Table``."""

    label: str
    format: str
    files: list[Path] = field(default_factory=list)
    schema: Any = None
    num_rows: int | None = None
    csv_types: dict[str, Any] = field(default_factory=dict)
    delimiter: str = ","
    table: Any = None  # in-memory pyarrow.Table

    # -- reading ---------------------------------------------------------------------------------
    def batches(self, batch_size: int = DEFAULT_BATCH, columns: Sequence[str] | None = None) -> Iterator[Any]:
        """Record batches in file order; the same rows in the same order on every call. (Decoding one
        batch ahead in a background thread was measured: no gain on two busy cores.)"""
        if self.table is not None:
            table = self.table if columns is None else self.table.select(list(columns))
            yield from table.to_batches(max_chunksize=batch_size)
            return
        yield from self._read(batch_size, columns)

    def _read(self, batch_size: int, columns: Sequence[str] | None) -> Iterator[Any]:
        pa = _pa()
        pool = pa.default_memory_pool()
        for path in self.files:
            try:
                for batch in self._file_batches(path, batch_size, columns):
                    if batch.num_rows:
                        yield batch
                    # hand the reader's freed buffers back to the OS: without this, the allocator
                    # keeps tens of MiB that the next batches do not reuse (measured, bench_diff.py)
                    pool.release_unused()
            except (pa.ArrowException, OSError, ValueError) as exc:
                if isinstance(exc, FileNotFoundError):
                    raise InputNotFound(f"{path} disappeared while reading it", path=str(path)) from exc
                raise UnreadableFile(str(path), self.format, str(exc)) from exc

    def _file_batches(self, path: Path, batch_size: int, columns: Sequence[str] | None) -> Iterator[Any]:
        if self.format == "parquet":
            pq = require("pyarrow.parquet", purpose="reading Parquet")
            # buffered column reads instead of pre-buffering a whole row group: a 1M-row row group
            # would otherwise be held in memory at once (docs/design/diff.md, "Memory")
            with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as pf:
                yield from pf.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None,
                                           use_threads=True)
        elif self.format == "csv":
            reader = self._open_csv(path)
            for batch in reader:
                yield from _rebatch(batch.select(list(columns)) if columns else batch, batch_size)
        else:
            for batch in _ipc_batches(path):
                yield from _rebatch(batch.select(list(columns)) if columns else batch, batch_size)

    def _open_csv(self, path: Path) -> Any:
        pa = _pa()
        csv = require("pyarrow.csv", purpose="reading CSV")
        stream = pa.input_stream(str(path), compression="detect")
        return csv.open_csv(
            stream,
            read_options=csv.ReadOptions(block_size=4 << 20, use_threads=True),
            parse_options=csv.ParseOptions(delimiter=self.delimiter),
            convert_options=csv.ConvertOptions(column_types=self.csv_types or None),
        )


def _rebatch(batch: Any, size: int) -> Iterator[Any]:
    if batch.num_rows <= size:
        yield batch
        return
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


def _ipc_batches(path: Path) -> Iterator[Any]:
    pa = _pa()
    ipc = require("pyarrow.ipc", purpose="reading Arrow IPC")
    with pa.memory_map(str(path), "r") as source:
        try:
            reader = ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            yield from ipc.open_stream(source)
            return
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def _ipc_schema_rows(path: Path) -> tuple[Any, int | None]:
    pa = _pa()
    ipc = require("pyarrow.ipc", purpose="reading Arrow IPC")
    with pa.memory_map(str(path), "r") as source:
        try:
            reader = ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            stream = ipc.open_stream(source)
            rows = sum(b.num_rows for b in stream)
            return stream.schema, rows
        rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        return reader.schema, rows


def _csv_settle(source: TableSource, path: Path) -> tuple[Any, int]:
    """Parse the whole CSV once; widen columns whose later values do not fit the inferred type."""
    pa = _pa()
    tried: dict[str, str] = {}
    for _ in range(1000):
        reader = source._open_csv(path)
        names = reader.schema.names
        try:
            rows = sum(batch.num_rows for batch in reader)
            return reader.schema, rows
        except pa.ArrowInvalid as exc:
            match = _CSV_ERROR.search(str(exc))
            if not match or int(match[1]) >= len(names):
                raise
            column, target = names[int(match[1])], match[2]
            if column in tried and tried[column] == "string":
                raise
            widened = "double" if target.startswith(("int", "uint")) and column not in tried else "string"
            tried[column] = widened
            source.csv_types[column] = pa.float64() if widened == "double" else pa.string()
    raise RuntimeError("CSV type widening did not settle")  # pragma: no cover


def open_table(obj: Any, format: str | None = None) -> TableSource:
    """A :class:`TableSource` for a path (file or folder) or an in-memory ``pyarrow.Table``."""
    pa = _pa()
    if isinstance(obj, pa.Table):
        return TableSource(label="<table>", format="arrow", schema=obj.schema, num_rows=obj.num_rows, table=obj)
    if isinstance(obj, pa.RecordBatch):
        table = pa.Table.from_batches([obj])
        return TableSource(label="<table>", format="arrow", schema=table.schema, num_rows=table.num_rows,
                           table=table)
    if not isinstance(obj, (str, os.PathLike)):
        raise InvalidInput(f"a table to compare must be a path or a pyarrow.Table, got {type(obj).__name__}",
                           field="table")
    path = Path(obj)
    label = str(obj)
    if not path.exists():
        raise InputNotFound(f"no such file or folder: {label}", path=label)
    fmt = normalise_format(format) if format else None
    if path.is_dir():
        files = _table_files(path)
        if fmt:
            files = [f for f in files if format_of_name(f.name) == fmt]
        if not files:
            raise UnreadableFile(label, fmt or "table", "the folder holds no Parquet, CSV or Arrow files")
        kinds = {format_of_name(f.name) or "" for f in files}
        if len(kinds) > 1:
            raise UnreadableFile(label, "table", f"the folder mixes formats ({', '.join(sorted(kinds))}); "
                                 "pass format= to pick one")
        fmt = fmt or kinds.pop()
    else:
        files = [path]
        fmt = fmt or format_of_name(path.name) or _sniff(path)
        if fmt is None:
            raise UnreadableFile(label, "table", "unknown table format (not Parquet or Arrow by its first "
                                 "bytes, and no .parquet/.csv/.arrow suffix); pass format='csv', 'parquet' or "
                                 "'arrow'")
    source = TableSource(label=label, format=str(fmt), files=files)
    if any(f.name.lower().split(".")[-1] == "tsv" or ".tsv." in f.name.lower() for f in files):
        source.delimiter = "\t"
    source.schema, source.num_rows = _describe(source)
    return source


def _describe(source: TableSource) -> tuple[Any, int | None]:
    pa = _pa()
    schema = None
    total: int | None = 0
    for path in source.files:
        try:
            if source.format == "parquet":
                pq = require("pyarrow.parquet", purpose="reading Parquet")
                with pq.ParquetFile(path) as pf:
                    file_schema, rows = pf.schema_arrow, pf.metadata.num_rows
            elif source.format == "csv":
                file_schema, rows = _csv_settle(source, path)
            else:
                file_schema, rows = _ipc_schema_rows(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise UnreadableFile(str(path), source.format, str(exc)) from exc
        file_schema = file_schema.remove_metadata()
        if schema is None:
            schema = file_schema
        elif not schema.equals(file_schema):
            raise UnreadableFile(str(path), source.format,
                                 f"its schema differs from the other files in {source.label}: "
                                 f"{_schema_text(file_schema)} vs {_schema_text(schema)}")
        total = None if (total is None or rows is None) else total + rows
    return schema, total


def _schema_text(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)
