"""Check the decision trees inside a skops file before skops builds them.

``sklearn.tree._tree.Tree`` keeps its nodes in a raw array of child and feature indices that
scikit-learn follows without bounds checks: a crafted file could make a process read outside its
memory, or loop forever, the first time it predicts. The sklearn flavor trusts that type (every
tree-based estimator holds one), so before :func:`skops.io.loads` runs, :func:`check_trees` reads
every tree's state from the file (the JSON schema and the ``.npy`` arrays, with numpy only, no
pickle) and refuses the file unless, for each tree:

- its node array has the fields scikit-learn expects and exactly ``node_count`` nodes;
- every split's children are later nodes of the same tree (in range, and no cycle: a traversal
  always ends at a leaf), and a leaf has no children;
- every split's feature is below the tree's ``n_features``, which equals the ``n_features_in_`` of
  the estimator that holds it (scikit-learn checks the input's width against that), and of a
  gradient-boosting ensemble around it (whose prediction reads the trees' nodes directly);
- ``n_classes`` has one entry per output, and the values array is ``[nodes, outputs, classes]``.

A node is a tree when skops would build a Tree from it (its loader is ``TreeNode``, or its type is
``sklearn.tree._tree.Tree``). skops reuses the first node it read for an ``__id__`` it sees again,
so every node sharing an ``__id__`` with a part of a tree must be identical to it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from typing import Any

import numpy as np

from mlark.models.errors import ModelIntegrityError

TREE_TYPE = "sklearn.tree._tree.Tree"
_NODE_FIELDS = ("left_child", "right_child", "feature", "threshold", "impurity", "n_node_samples",
                "weighted_n_node_samples", "missing_go_to_left")  # fmt: skip
_GB_MODULE = "sklearn.ensemble._gb"


class _Refused(Exception):
    pass


def check_trees(data: bytes, *, file: str) -> int:
    """Check every decision tree in the skops file ``data``; the number of trees checked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as src:
            schema = json.loads(src.read("schema.json"))
            checker = _Checker(src)
            checker.index(schema)
            checker.walk(schema, [])
            return checker.trees
    except _Refused as exc:
        raise ModelIntegrityError(
            f"model file {file!r} holds a decision tree that could make scikit-learn read outside its "
            f"memory or never finish: {exc}", file=file, problem="tree",
        ) from None
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, RecursionError, OSError, EOFError) as exc:
        raise ModelIntegrityError(f"model file {file!r} is not a valid skops file: {exc}", file=file) from exc


class _Checker:
    def __init__(self, src: zipfile.ZipFile) -> None:
        self.src = src
        self.by_id: dict[Any, list[Any]] = defaultdict(list)
        self.trees = 0

    def index(self, node: Any) -> None:
        if isinstance(node, dict):
            if "__id__" in node:
                self.by_id[node["__id__"]].append(node)
            for value in node.values():
                self.index(value)
        elif isinstance(node, list):
            for value in node:
                self.index(value)

    def walk(self, node: Any, around: list[tuple[str, int | None]]) -> None:
        """``around``: (module, n_features_in_) of the objects enclosing ``node``, outermost first."""
        if isinstance(node, list):
            for value in node:
                self.walk(value, around)
            return
        if not isinstance(node, dict):
            return
        if node.get("__loader__") == "TreeNode" or f"{node.get('__module__')}.{node.get('__class__')}" == TREE_TYPE:
            self.tree(node, around)
            return
        inner = around
        if node.get("__loader__") in ("ObjectNode", "ReduceNode"):
            inner = [*around, (str(node.get("__module__")), self._n_features_in(node))]
        for value in node.values():
            self.walk(value, inner)

    def _n_features_in(self, node: dict[str, Any]) -> int | None:
        state = node.get("content")
        if isinstance(state, dict) and isinstance(state.get("content"), dict):
            found = state["content"].get("n_features_in_")
            if isinstance(found, dict) and found.get("__loader__") == "JsonNode":
                return self._int(found, "n_features_in_")
        return None

    # ---------------------------------------------------------------- one tree

    def tree(self, node: dict[str, Any], around: list[tuple[str, int | None]]) -> None:
        self.trees += 1
        args = self._part(self._get(self._get(node, "__reduce__"), "args"), "TupleNode")
        items = self._get(args, "content")
        if not isinstance(items, list) or len(items) != 3:
            raise _Refused("its constructor takes (n_features, n_classes, n_outputs)")
        n_features = self._int(self._part(items[0], "JsonNode"), "n_features")
        n_classes = self._array(items[1], "n_classes")
        n_outputs = self._int(self._part(items[2], "JsonNode"), "n_outputs")
        state = self._get(self._part(self._get(node, "content"), "DictNode"), "content")
        if not isinstance(state, dict):
            raise _Refused("its state is not a dict")
        node_count = self._int(self._part(self._get(state, "node_count"), "JsonNode"), "node_count")
        max_depth = self._int(self._part(self._get(state, "max_depth"), "JsonNode"), "max_depth")
        nodes = self._array(self._get(state, "nodes"), "nodes")
        values = self._array(self._get(state, "values"), "values")
        if n_outputs < 1 or n_classes.dtype.kind != "i" or n_classes.shape != (n_outputs,) or (n_classes < 1).any():
            raise _Refused("n_classes must hold one positive count per output")
        if nodes.dtype.names is None or tuple(nodes.dtype.names) != _NODE_FIELDS or nodes.ndim != 1:
            raise _Refused(f"its node array must have the fields {', '.join(_NODE_FIELDS)}")
        if node_count < 1 or nodes.shape[0] != node_count or max_depth < 0:
            raise _Refused(f"node_count {node_count} does not match its {nodes.shape[0]} nodes")
        if values.dtype != np.float64 or values.shape != (node_count, n_outputs, int(n_classes.max())):
            raise _Refused("its values array is not [nodes, outputs, classes] of float64")
        self._structure(nodes, n_features)
        if not around or around[-1][1] is None:
            raise _Refused("the estimator holding it does not say how many features it takes (n_features_in_)")
        for _module, n_in in (around[-1:] + [a for a in around if a[0] == _GB_MODULE]):
            if n_in is not None and n_in != n_features:
                raise _Refused(f"it reads {n_features} features, the estimator around it takes {n_in}")

    def _structure(self, nodes: np.ndarray, n_features: int) -> None:
        n = nodes.shape[0]
        left = nodes["left_child"].astype(np.int64)
        right = nodes["right_child"].astype(np.int64)
        feature = nodes["feature"].astype(np.int64)
        index = np.arange(n)
        leaf = left == -1
        if (right[leaf] != -1).any():
            raise _Refused("a leaf has a right child")
        inner = ~leaf
        for name, child in (("left", left), ("right", right)):
            if ((child[inner] <= index[inner]) | (child[inner] >= n)).any():
                raise _Refused(f"a {name} child is not a later node of the tree (out of range, or a cycle)")
        if ((feature[inner] < 0) | (feature[inner] >= n_features)).any():
            raise _Refused(f"a split uses a feature outside 0..{n_features - 1}")

    # ---------------------------------------------------------------- reading parts

    def _get(self, node: Any, key: str) -> Any:
        if not isinstance(node, dict) or key not in node:
            raise _Refused(f"its state has no {key!r}")
        return node[key]

    def _part(self, node: Any, loader: str) -> dict[str, Any]:
        """A part of a tree: of the expected loader, and the same wherever its ``__id__`` appears."""
        if not isinstance(node, dict) or node.get("__loader__") != loader:
            raise _Refused(f"a part of it is not a {loader}")
        for other in self.by_id.get(node.get("__id__"), [node]):
            if other != node:
                raise _Refused("a part of it shares its __id__ with a different object")
        return node

    def _int(self, node: dict[str, Any], name: str) -> int:
        value = json.loads(self._get(node, "content"))
        if type(value) is not int:
            raise _Refused(f"{name} is not a whole number")
        return value

    def _array(self, node: Any, name: str) -> np.ndarray:
        part = self._part(node, "NdArrayNode")
        if part.get("type") != "numpy" or (part.get("__module__"), part.get("__class__")) != ("numpy", "ndarray"):
            raise _Refused(f"{name} is not a numpy array stored in the file")
        return np.load(io.BytesIO(self.src.read(self._get(part, "file"))), allow_pickle=False)
