"""mlark.diff imports mlark.core and mlark.errors only, and heavy libraries only inside functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DIFF = Path(__file__).resolve().parents[2] / "src" / "mlark" / "diff"
HEAVY = ("pyarrow", "numpy", "onnx", "torch", "safetensors", "ml_dtypes", "pandas", "onnxruntime")


def _imports(tree: ast.AST, top_level_only: bool) -> list[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_only_core_and_errors_from_mlark_and_heavy_libraries_lazily() -> None:
    for path in sorted(DIFF.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for name in _imports(tree, top_level_only=False):
            if name.startswith("mlark"):
                assert name.startswith(("mlark.diff", "mlark.core", "mlark.errors")) or name == "mlark", (path, name)
        for name in _imports(tree, top_level_only=True):
            assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name} at module level"


def test_import_loads_no_heavy_library() -> None:
    code = ("import sys, mlark.diff; from mlark.diff import diff_tables, diff_state_dicts, diff_onnx, diff_paths; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
