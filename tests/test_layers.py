"""The layers of DESIGN.md section 2 point one way; import-linter enforces the contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout or "0 broken" in result.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from mlark.cli.main import cli; "
        "heavy = [m for m in ('sqlalchemy', 'rich', 'pyarrow', 'pandas', 'sklearn', 'zstandard') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"`mlark --help` imports heavy modules: {out}"
