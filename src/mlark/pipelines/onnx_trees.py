"""ONNX graphs that find, for every row, the leaf it reaches in each tree, written without the onnx package.

Each tree becomes one ``TreeEnsembleRegressor`` node (``ai.onnx.ml``, opset 3) with one output
``leaf<t>`` of shape ``[rows, 1]``: the id of the leaf the row reaches, as a float32 (exact: a tree
has fewer than 2**24 nodes). A graph holds a group of trees; ONNX Runtime runs its nodes one after
the other, each over every row, so one tree's nodes stay in the CPU cache while it runs.

The input is float32. scikit-learn compares a float32 value with a float64 threshold; the float32
threshold written here is the largest float32 not above it, which sends every float32 value the same
way (``x <= t64`` exactly when ``x <= floor32(t64)``). Missing values (NaN) follow the node's learned
direction (``nodes_missing_value_tracks_true``).

The bytes are protobuf written by hand (the few messages and fields a graph needs), so predicting
imports neither onnx nor protobuf; tests/pipelines/test_pipelines_trees.py parses them with onnx and
checks them with its checker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ML_DOMAIN = "ai.onnx.ml"
IR_VERSION = 8
OPSETS = (("", 17), (ML_DOMAIN, 3))
FLOAT = 1  # TensorProto.FLOAT
_A_FLOATS, _A_INTS, _A_STRING, _A_STRINGS = 6, 7, 3, 8  # AttributeProto.AttributeType
_BRANCH = b"BRANCH_LEQ"
_LEAF = b"LEAF"


def floor32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 threshold (+-inf stay, values beyond float32 clamp)."""
    with np.errstate(over="ignore"):  # beyond float32: inf, brought back to the largest float32 below
        near = threshold.astype(np.float32)
    above = near.astype(np.float64) > threshold
    near[above] = np.nextafter(near[above], np.float32(-np.inf))
    return near


def forest_graph(arrays: Any, trees: list[int]) -> bytes:
    """A serialised ONNX model: input ``X`` float32 [rows, n_features], one output ``leaf<t>`` per tree."""
    nodes = [_tree_node(arrays, t) for t in trees]
    x = _value_info("X", ["rows", arrays.n_features])
    outputs = [_value_info(f"leaf{t}", ["rows", 1]) for t in trees]
    graph = b"".join([*(_field(1, n) for n in nodes), _string(2, "mlark-trees"), _field(11, x),
                      *(_field(12, o) for o in outputs)])  # fmt: skip
    opsets = b"".join(_field(8, _string(1, d) + _int(2, v)) for d, v in OPSETS)
    return _int(1, IR_VERSION) + _string(2, "mlark") + _field(7, graph) + opsets


def _tree_node(arrays: Any, t: int) -> bytes:
    lo, hi = int(arrays.offsets[t]), int(arrays.offsets[t + 1])
    n = hi - lo
    left = arrays.left[lo:hi].astype(np.int64)
    leaf = left == -1
    inner = ~leaf
    ids = np.arange(n, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    leaf_ids = ids[leaf]
    values = np.where(inner, floor32(arrays.threshold[lo:hi]), np.float32(0)).astype(np.float32)
    modes = _repeated_strings(9, inner, _BRANCH, _LEAF)
    attributes = [
        _ints("nodes_treeids", zeros),
        _ints("nodes_nodeids", ids),
        _ints("nodes_featureids", np.where(inner, arrays.feature[lo:hi], 0)),
        _attribute("nodes_modes", _A_STRINGS, modes),
        _floats("nodes_values", values),
        _ints("nodes_truenodeids", np.where(inner, left, 0)),
        _ints("nodes_falsenodeids", np.where(inner, arrays.right[lo:hi], 0)),
        _ints("nodes_missing_value_tracks_true", np.where(inner, arrays.missing_left[lo:hi], 0)),
        _ints("target_treeids", np.zeros(leaf_ids.size, dtype=np.int64)),
        _ints("target_nodeids", leaf_ids),
        _ints("target_ids", np.zeros(leaf_ids.size, dtype=np.int64)),
        _floats("target_weights", leaf_ids.astype(np.float32)),
        _ints("n_targets", None, single=1),
        _attribute("aggregate_function", _A_STRING, _bytes(4, b"SUM")),
    ]
    return b"".join([_string(1, "X"), _string(2, f"leaf{t}"), _string(3, f"tree{t}"),
                     _string(4, "TreeEnsembleRegressor"), _string(7, ML_DOMAIN),
                     *(_field(5, a) for a in attributes)])  # fmt: skip


def _value_info(name: str, dims: list[Any]) -> bytes:
    shape = b"".join(_field(1, _string(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor = _int(1, FLOAT) + _field(2, shape)
    return _string(1, name) + _field(2, _field(1, tensor))


# --------------------------------------------------------------------------- protobuf wire format


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _field(number: int, message: bytes) -> bytes:
    return _bytes(number, message)


def _string(number: int, text: str) -> bytes:
    return _bytes(number, text.encode("utf-8"))


def _attribute(name: str, kind: int, payload: bytes) -> bytes:
    return _string(1, name) + payload + _int(20, kind)


def _ints(name: str, values: np.ndarray | None, *, single: int | None = None) -> bytes:
    if single is not None:  # one int: AttributeProto.i
        return _string(1, name) + _int(3, single) + _int(20, 2)
    assert values is not None
    return _attribute(name, _A_INTS, _bytes(8, _packed_varints(values)))


def _floats(name: str, values: np.ndarray) -> bytes:
    return _attribute(name, _A_FLOATS, _bytes(7, np.ascontiguousarray(values, dtype="<f4").tobytes()))


def _repeated_strings(number: int, which: np.ndarray, yes: bytes, no: bytes) -> bytes:
    """Field ``number`` repeated once per entry of ``which``: ``yes`` where it is true, else ``no`` (vectorised)."""
    first, second = _bytes(number, yes), _bytes(number, no)
    template = np.frombuffer(first + second, dtype=np.uint8)
    lengths = np.where(which, len(first), len(second))
    starts = np.where(which, 0, len(first))
    ends = np.cumsum(lengths)
    index = np.arange(int(ends[-1]) if lengths.size else 0) + np.repeat(starts - (ends - lengths), lengths)
    return template[index].tobytes()


def _packed_varints(values: np.ndarray) -> bytes:
    """Non-negative integers below 2**35 as consecutive varints (vectorised)."""
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return b""
    if v.min() < 0 or v.max() >= 1 << 35:
        raise ValueError("packed varints take integers from 0 to 2**35")
    groups = np.stack([(v >> (7 * k)) & 0x7F for k in range(5)], axis=1).astype(np.uint8)
    length = 1 + sum((v >= 1 << (7 * k)).astype(np.int64) for k in range(1, 5))
    position = np.arange(5)[None, :]
    groups |= np.where(position < (length - 1)[:, None], 0x80, 0).astype(np.uint8)
    return groups[position < length[:, None]].tobytes()
