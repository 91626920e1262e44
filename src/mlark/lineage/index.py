"""The lineage graph in memory: compact integer node ids, adjacency arrays both ways, kept on disk.

Walking 100,000 nodes with recursive SQL over UUID strings takes seconds on
SQLite (every step is a text B-tree look-up, and the recursion's duplicate
check is another). Here the edge list is read once, nodes are numbered
0..n-1, and both directions are stored as CSR arrays (offsets + edge
indices), so a walk is a loop over Python lists: tens of milliseconds.

The index is saved in one file (``.mlark/cache/lineage.idx``, written to a
temporary file and renamed) and checked against the database on every use
with one cheap query: the number of edges and the greatest edge id. Edges are
only ever inserted, and ids are time-ordered UUIDv7, so new edges are the ones
above the saved greatest id: they are read and appended. If the count does
not add up (edges arriving out of id order, e.g. from another machine, or
edges deleted by hand) the index is rebuilt from the table. A file that does
not parse (truncated, another version, wrong checksum) is rebuilt too. The
file is a cache: deleting it is always safe.

Each node also keeps the parts of its label that never change: a version's
artifact name, number and type; a registered model version's model name and
number. What changes (run names and status, aliases, stages, removal) is
read live by :mod:`mlark.lineage.nodes`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import Connection

from mlark.lineage import rawsql

MAGIC = b"MLARK-LINEAGE-INDEX\n"
FORMAT = 1
FILE_NAME = "lineage.idx"

#: Node kinds as the edge table spells them.
VERSION = "version"
RUN = "run"
REGISTERED_MODEL_VERSION = "registered_model_version"

_memo: dict[str, "LineageIndex"] = {}
_memo_lock = threading.Lock()


@dataclass
class LineageIndex:
    """Nodes ``0..n-1`` (``ids[i]``, ``kinds[i]`` an index into ``kind_names``) and edges ``0..m-1``.

    ``fwd_off[i]:fwd_off[i+1]`` are the positions in ``fwd`` of the edges leaving node ``i``
    (``fwd[p]`` is an edge index), ``back_off``/``back`` the edges arriving.
    """

    database: str
    ids: list[str] = field(default_factory=list)
    kinds: bytearray = field(default_factory=bytearray)
    parts: list[str] = field(default_factory=list)  # immutable label parts, "" when not known (yet)
    kind_names: list[str] = field(default_factory=lambda: [VERSION, RUN, REGISTERED_MODEL_VERSION])
    edge_kind_names: list[str] = field(default_factory=list)
    src: list[int] = field(default_factory=list)
    dst: list[int] = field(default_factory=list)
    ekind: bytearray = field(default_factory=bytearray)
    edge_count: int = 0
    max_edge_id: str = ""
    fwd_off: list[int] = field(default_factory=lambda: [0])
    fwd: list[int] = field(default_factory=list)
    back_off: list[int] = field(default_factory=lambda: [0])
    back: list[int] = field(default_factory=list)
    _pos: dict[str, int] | None = None
    _fields: list[tuple[str, ...] | None] | None = None

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, node_id: str) -> int | None:
        """The integer id of ``node_id``, or None if no edge touches it."""
        return self.positions().get(node_id)

    def positions(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {node_id: i for i, node_id in enumerate(self.ids)}
        return self._pos

    def fields(self) -> list[tuple[str, ...] | None]:
        """``parts`` split: ``(artifact, number, type, "name:vN")`` for versions, ``(model, number,
        version id, "models:/model/N")`` for registered model versions, None otherwise (built once)."""
        if self._fields is None or len(self._fields) != len(self.parts):
            version = _code(self.kind_names, VERSION)
            registered = _code(self.kind_names, REGISTERED_MODEL_VERSION)
            out: list[tuple[str, ...] | None] = []
            for part, kind in zip(self.parts, self.kinds):
                split = part.split("\t") if part else ()
                if len(split) != 3:
                    out.append(None)
                elif kind == version:
                    out.append((split[0], split[1], split[2], f"{split[0]}:v{split[1]}"))
                elif kind == registered:
                    out.append((split[0], split[1], split[2], f"models:/{split[0]}/{split[1]}"))
                else:
                    out.append(None)
            self._fields = out
        return self._fields

    def kind_of(self, i: int) -> str:
        return self.kind_names[self.kinds[i]]

    def edge_kind(self, e: int) -> str:
        return self.edge_kind_names[self.ekind[e]]

    # ------------------------------------------------------------------ building

    def _node(self, node_id: str, kind: str) -> int:
        pos = self.positions()
        i = pos.get(node_id)
        if i is None:
            i = pos[node_id] = len(self.ids)
            self.ids.append(node_id)
            self.kinds.append(_code(self.kind_names, kind))
            self.parts.append("")
        return i

    def _add_edges(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append edges ``(id, kind, src_type, src_id, dst_type, dst_id)`` given in id order."""
        for edge_id, kind, src_type, src_id, dst_type, dst_id in rows:
            self.src.append(self._node(src_id, src_type))
            self.dst.append(self._node(dst_id, dst_type))
            self.ekind.append(_code(self.edge_kind_names, kind))
        self.edge_count += len(rows)
        self._adjacency()

    def _adjacency(self) -> None:
        n = len(self.ids)
        self.fwd_off, self.fwd = _csr(n, self.src)
        self.back_off, self.back = _csr(n, self.dst)

    def copy(self) -> "LineageIndex":
        return LineageIndex(
            database=self.database, ids=list(self.ids), kinds=bytearray(self.kinds), parts=list(self.parts),
            kind_names=list(self.kind_names), edge_kind_names=list(self.edge_kind_names), src=list(self.src),
            dst=list(self.dst), ekind=bytearray(self.ekind), edge_count=self.edge_count,
            max_edge_id=self.max_edge_id, fwd_off=self.fwd_off, fwd=self.fwd, back_off=self.back_off,
            back=self.back, _pos=None if self._pos is None else dict(self._pos),
        )

    # ------------------------------------------------------------------ file

    def to_bytes(self) -> bytes:
        sections: list[tuple[str, bytes]] = [
            ("ids", "".join(self.ids).encode("ascii")),
            ("kinds", bytes(self.kinds)),
            ("parts", "\n".join(self.parts).encode("utf-8")),
            ("src", array("i", self.src).tobytes()),
            ("dst", array("i", self.dst).tobytes()),
            ("ekind", bytes(self.ekind)),
            ("fwd_off", array("i", self.fwd_off).tobytes()),
            ("fwd", array("i", self.fwd).tobytes()),
            ("back_off", array("i", self.back_off).tobytes()),
            ("back", array("i", self.back).tobytes()),
        ]
        payload = b"".join(data for _, data in sections)
        header = json.dumps({
            "format": FORMAT,
            "database": self.database,
            "byteorder": sys.byteorder,
            "nodes": len(self.ids),
            "edges": self.edge_count,
            "max_edge_id": self.max_edge_id,
            "kind_names": self.kind_names,
            "edge_kind_names": self.edge_kind_names,
            "sections": [[name, len(data)] for name, data in sections],
            "crc32": zlib.crc32(payload),
        }, separators=(",", ":")).encode("utf-8")
        return MAGIC + len(header).to_bytes(4, "little") + header + payload

    @classmethod
    def from_bytes(cls, data: bytes, database: str) -> "LineageIndex | None":
        """The index in ``data``, or None if it is not a complete index of ``database`` in this format."""
        try:
            if not data.startswith(MAGIC):
                return None
            at = len(MAGIC)
            size = int.from_bytes(data[at : at + 4], "little")
            header = json.loads(data[at + 4 : at + 4 + size])
            if header.get("format") != FORMAT or header.get("database") != database:
                return None
            payload = memoryview(data)[at + 4 + size :]
            if zlib.crc32(payload) != header["crc32"]:
                return None
            parts: dict[str, memoryview] = {}
            offset = 0
            for name, length in header["sections"]:
                parts[name] = payload[offset : offset + length]
                offset += length
            if offset != len(payload):
                return None
            swap = header["byteorder"] != sys.byteorder

            def ints(name: str) -> list[int]:
                values = array("i")
                values.frombytes(parts[name])
                if swap:
                    values.byteswap()
                return values.tolist()

            n = int(header["nodes"])
            id_text = bytes(parts["ids"]).decode("ascii")
            index = cls(
                database=database,
                ids=[id_text[i * 36 : i * 36 + 36] for i in range(n)],
                kinds=bytearray(parts["kinds"]),
                parts=bytes(parts["parts"]).decode("utf-8").split("\n") if n else [],
                kind_names=list(header["kind_names"]),
                edge_kind_names=list(header["edge_kind_names"]),
                src=ints("src"),
                dst=ints("dst"),
                ekind=bytearray(parts["ekind"]),
                edge_count=int(header["edges"]),
                max_edge_id=str(header["max_edge_id"]),
                fwd_off=ints("fwd_off"),
                fwd=ints("fwd"),
                back_off=ints("back_off"),
                back=ints("back"),
            )
            m = index.edge_count
            if not (len(index.kinds) == len(index.parts) == n and len(index.src) == len(index.dst) == m
                    == len(index.ekind) == len(index.fwd) == len(index.back)
                    and len(index.fwd_off) == len(index.back_off) == n + 1 and len(id_text) == 36 * n):
                return None
            return index
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
            return None


def _code(names: list[str], name: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        if len(names) >= 255:
            raise ValueError("more than 255 node or edge kinds in lineage_edges") from None
        names.append(name)
        return len(names) - 1


def _csr(n: int, ends: list[int]) -> tuple[list[int], list[int]]:
    """Offsets and edge indices grouping edges ``0..m-1`` by ``ends[e]`` (a counting sort; stable)."""
    counts = [0] * (n + 1)
    for v in ends:
        counts[v + 1] += 1
    for i in range(n):
        counts[i + 1] += counts[i]
    offsets = counts
    cursor = offsets[:-1].copy() if n else []
    order = [0] * len(ends)
    for e, v in enumerate(ends):
        order[cursor[v]] = e
        cursor[v] += 1
    return offsets, order


# ---------------------------------------------------------------------- reading from the database

_EDGES = "SELECT id, kind, src_type, src_id, dst_type, dst_id FROM lineage_edges"


def stamp(conn: Connection) -> tuple[int, str]:
    """(number of edges, greatest edge id): what the saved index is checked against."""
    count, max_id = rawsql.rows(conn, "SELECT count(*), max(id) FROM lineage_edges")[0]
    return int(count), max_id or ""


def build(conn: Connection, database: str, max_id: str) -> LineageIndex:
    """The whole index, read from the edge table (``max_id``: its greatest edge id, from :func:`stamp`)."""
    index = LineageIndex(database=database, max_edge_id=max_id)
    index._add_edges(rawsql.rows(conn, _EDGES + " ORDER BY id"))
    fill_parts(conn, index, range(len(index.ids)))
    return index


def fill_parts(conn: Connection, index: LineageIndex, positions: Any) -> bool:
    """Read the immutable label parts of the nodes at ``positions`` that lack them; True if any was found."""
    by_kind: dict[str, list[str]] = {}
    for i in positions:
        if not index.parts[i]:
            by_kind.setdefault(index.kind_of(i), []).append(index.ids[i])
    found: dict[str, str] = {}
    if by_kind.get(VERSION):
        for vid, name, number, type_ in rawsql.rows_for(
            conn,
            "SELECT v.id, a.name, v.number, a.type FROM versions v JOIN artifacts a ON a.id = v.artifact_id",
            "v.id", by_kind[VERSION],
        ):
            found[vid] = f"{name}\t{number}\t{type_}"
    if by_kind.get(REGISTERED_MODEL_VERSION):
        for rid, model, number, version_id in rawsql.rows_for(
            conn,
            "SELECT r.id, m.name, r.number, r.version_id FROM registered_model_versions r "
            "JOIN registered_models m ON m.id = r.model_id",
            "r.id", by_kind[REGISTERED_MODEL_VERSION],
        ):
            found[rid] = f"{model}\t{number}\t{version_id}"
    if by_kind.get(RUN):
        for (rid,) in rawsql.rows_for(conn, "SELECT id FROM runs", "id", by_kind[RUN]):
            found[rid] = "run"  # a run's name can change (resume): read live; this only marks it known
    if not found:
        return False
    pos = index.positions()
    for node_id, text in found.items():
        index.parts[pos[node_id]] = text
    index._fields = None
    return True


# ---------------------------------------------------------------------- the current index


def current(conn: Connection, path: Path | None, database: str) -> LineageIndex:
    """The index as of ``conn``'s transaction: from memory, the saved file, the new edges, or rebuilt.

    ``path`` is where the index is kept (None: memory only). ``database`` identifies the
    database (its URL without password): an index of another database is never used.
    """
    count, max_id = stamp(conn)
    key = f"{path}|{database}"
    with _memo_lock:
        index = _memo.get(key)
    changed = False
    if index is None and path is not None:
        index = load(path, database)
    if index is not None and (index.edge_count, index.max_edge_id) != (count, max_id):
        index = _extended(conn, index, count, max_id)
        changed = True
    if index is None:
        index = build(conn, database, max_id)
        changed = True
    missing = [i for i, part in enumerate(index.parts) if not part] if "" in index.parts else []
    if missing:
        updated = index.copy() if not changed else index
        if fill_parts(conn, updated, missing):
            index, changed = updated, True
    if changed and path is not None:
        save(index, path)
    with _memo_lock:
        _memo[key] = index
    return index


def _extended(conn: Connection, index: LineageIndex, count: int, max_id: str) -> LineageIndex | None:
    """``index`` with the edges above its greatest id, or None when they do not account for ``count``."""
    if count < index.edge_count:
        return None
    new = rawsql.rows(conn, _EDGES + " WHERE id > ? ORDER BY id", (index.max_edge_id,))
    if index.edge_count + len(new) != count:
        return None
    updated = index.copy()
    first_new = len(updated.ids)
    updated._add_edges(new)
    updated.max_edge_id = max_id
    fill_parts(conn, updated, range(first_new, len(updated.ids)))
    return updated


def load(path: Path, database: str) -> LineageIndex | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return LineageIndex.from_bytes(data, database)


def save(index: LineageIndex, path: Path) -> None:
    """Write the index next to ``path`` and rename it into place; a cache, so failures are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lineage-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(index.to_bytes())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass


def forget() -> None:
    """Drop the indexes kept in memory (tests, benchmarks)."""
    with _memo_lock:
        _memo.clear()
