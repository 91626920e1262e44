"""Where serving and pipelines sit (docs/design/serving.md, "Layers"), checked with import-linter, and what
importing them costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONTRACTS = """
[importlinter]
root_package = mlark
exclude_type_checking_imports = true

[importlinter:contract:serving-below-ops]
name = serving and pipelines sit below ops: they never open repositories, print or read the environment
type = forbidden
source_modules =
    mlark.serving
    mlark.pipelines
forbidden_modules =
    mlark.ops
    mlark.cli
    mlark.api
    mlark.api_models
    mlark.api_diff
    mlark.api_lineage
    mlark.demo
    mlark.spark
    mlark.objectstore
    mlark.storage

[importlinter:contract:pipelines-below-serving]
name = pipelines never import serving (the server predicts through pipelines, not the reverse)
type = forbidden
source_modules =
    mlark.pipelines
forbidden_modules =
    mlark.serving

[importlinter:contract:nothing-lower-imports-them]
name = only ops (batch prediction recorded through a run) and the adapters import serving and pipelines
type = forbidden
source_modules =
    mlark.models
    mlark.registry
    mlark.tracking
    mlark.lineage
    mlark.meta
    mlark.core
forbidden_modules =
    mlark.serving
    mlark.pipelines
"""


def test_serving_and_pipelines_layers(tmp_path: Path) -> None:
    config = tmp_path / "serving.importlinter"
    config.write_text(CONTRACTS)
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(config)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_packages_imports_no_framework() -> None:
    code = (
        "import sys, mlark.serving, mlark.pipelines, mlark.spark; "
        "heavy = [m for m in ('starlette', 'uvicorn', 'prometheus_client', 'pyarrow', 'pandas', 'numpy', 'sklearn', "
        "'pyspark', 'httpx') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing mlark.serving / mlark.pipelines / mlark.spark imports {out}"
