"""Reading a Parquet or CSV file as a stream of record batches, never whole.

- Parquet: :class:`pyarrow.parquet.ParquetFile` with buffered column-chunk reads
  (``buffer_size``, no pre-buffering), so memory holds one batch and a read buffer per column,
  even when the file is one huge row group. The row count comes from the footer.
- CSV: pyarrow's streaming reader (``open_csv``), block by block; columns the model's signature
  names are read with the signature's type, so a block cannot change a column's type half way
  (a value that does not parse is an error naming the column). Progress is counted in bytes.
  The reader parses a bounded number of blocks ahead of the consumer (about forty, whatever the
  file's size), so blocks are kept small (512 KiB): some 20 MiB of read-ahead at most.

Batches are re-cut to ``batch_size`` rows (small blocks joined, large ones sliced).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from mlark.errors import InvalidInput, NotFound, StorageError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst")
FORMATS = ("parquet", "csv")
#: CSV bytes read per block by the streaming reader (which keeps about forty blocks parsed ahead).
CSV_BLOCK_BYTES = 512 << 10
#: Read buffer per Parquet column chunk.
PARQUET_BUFFER_BYTES = 1 << 20


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    return "parquet" if head == b"PAR1" else "csv"


def arrow_type(dtype: str) -> Any:
    """The Arrow type a CSV column is read as for a signature dtype."""
    import pyarrow as pa

    if dtype == "bool":
        return pa.bool_()
    if dtype.startswith(("int", "uint")):
        return pa.type_for_alias(dtype)
    if dtype.startswith("float"):
        return pa.float64()  # the signature check narrows it
    if dtype == "string":
        return pa.string()
    if dtype == "binary":
        return pa.binary()
    if dtype == "datetime":
        return pa.timestamp("ns")
    raise InvalidInput(f"no Arrow type for signature dtype {dtype!r}", field="signature")


@dataclass
class TableSource:
    """A Parquet or CSV file, read in record batches."""

    path: Path
    format: str
    columns: list[str]
    total_rows: int | None
    total_bytes: int
    column_types: dict[str, Any] = field(default_factory=dict)

    def batches(self, columns: list[str] | None, batch_size: int,
                on_bytes: Callable[[int], None] | None = None) -> Iterator[Any]:
        """Record batches of ``columns`` (all when None), each at most ``batch_size`` rows."""
        raw = self._parquet(columns, batch_size) if self.format == "parquet" else self._csv(columns, on_bytes)
        return _recut(raw, batch_size)

    def _parquet(self, columns: list[str] | None, batch_size: int) -> Iterator[Any]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False)
            yield from pf.iter_batches(batch_size=batch_size, columns=columns, use_threads=True)
        except OSError as exc:
            raise _read_error(self.path, exc) from exc
        except Exception as exc:  # pyarrow.ArrowException and friends
            raise _read_error(self.path, exc) from exc

    def _csv(self, columns: list[str] | None, on_bytes: Callable[[int], None] | None) -> Iterator[Any]:
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(
            include_columns=columns,
            column_types={k: v for k, v in self.column_types.items() if columns is None or k in columns},
        )
        try:
            with open(self.path, "rb") as raw:
                stream = _Counting(raw, on_bytes)
                reader = pcsv.open_csv(stream, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                       parse_options=_parse_options(self.path), convert_options=convert)
                for batch in reader:
                    yield batch
        except OSError as exc:
            raise _read_error(self.path, exc) from exc
        except Exception as exc:
            raise _read_error(self.path, exc) from exc


class _Counting:
    """A binary file that reports how many bytes were read (CSV progress)."""

    def __init__(self, raw: Any, on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if self._on_bytes is not None and data:
            self._on_bytes(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _parse_options(path: Path) -> Any:
    import pyarrow.csv as pcsv

    name = path.name.lower()
    return pcsv.ParseOptions(delimiter="\t" if ".tsv" in name else ",")


def open_table(path: str | os.PathLike[str], *, format: str | None = None,
               signature_types: dict[str, str] | None = None) -> TableSource:
    """Open a Parquet or CSV file (format from the suffix, else from the first bytes)."""
    p = Path(path)
    if not p.exists():
        raise NotFound(f"no input file {p}", path=str(p))
    if p.is_dir():
        raise InvalidInput(f"{p} is a folder; give a Parquet or CSV file", path=str(p))
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown input format {fmt!r}; allowed: {', '.join(FORMATS)}", field="format")
    size = p.stat().st_size
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(p)
            schema = pf.schema_arrow
            return TableSource(p, fmt, list(schema.names), pf.metadata.num_rows, size)
        except Exception as exc:
            raise _read_error(p, exc) from exc
    columns = _csv_header(p)
    types = {name: arrow_type(dtype) for name, dtype in (signature_types or {}).items() if name in columns}
    return TableSource(p, fmt, columns, None, size, types)


def _csv_header(path: Path) -> list[str]:
    import pyarrow.csv as pcsv

    try:
        with open(path, "rb") as fh:
            reader = pcsv.open_csv(fh, read_options=pcsv.ReadOptions(block_size=1 << 16),
                                   parse_options=_parse_options(path))
            return list(reader.schema.names)
    except Exception as exc:
        raise _read_error(path, exc) from exc


def _read_error(path: Path, exc: BaseException) -> InvalidInput | StorageError:
    if isinstance(exc, (InvalidInput, StorageError)):
        return exc
    if isinstance(exc, OSError) and type(exc).__module__ == "builtins" and exc.errno is not None:
        return StorageError(f"cannot read {path}: {exc.strerror}", path=str(path))
    text = str(exc).strip().splitlines()
    return InvalidInput(f"cannot read {path}: {text[0] if text else type(exc).__name__}", path=str(path))


def _recut(batches: Iterator[Any], size: int) -> Iterator[Any]:
    """Batches of ``size`` rows (the last one smaller): small ones are joined, large ones sliced."""
    import pyarrow as pa

    pending: list[Any] = []
    rows = 0
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        pending.append(batch)
        rows += n
        if rows < size:
            continue
        joined = pending[0] if len(pending) == 1 else pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
        start = 0
        while rows - start >= size:
            yield joined.slice(start, size)
            start += size
        pending = [joined.slice(start)] if start < rows else []
        rows -= start
    if rows:
        yield pending[0] if len(pending) == 1 else pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
