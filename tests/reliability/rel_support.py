"""Helpers shared by the reliability tests: real processes, real files, byte-exact checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import blake3

from mlark.ops.repo import Repo

HERE = Path(__file__).resolve().parent
WORKER = HERE / "rel_worker.py"
MIB = 1 << 20


def mlark_bin() -> str:
    candidate = Path(sys.executable).parent / "mlark"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mlark")
    assert found, "the mlark command is not installed next to the test interpreter"
    return found


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLARK_REPO", None)
    env["MLARK_AUTHOR"] = "tester@reliability"
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    return env


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([mlark_bin(), *args], capture_output=True, text=True, cwd=cwd, env=cli_env(),
                          timeout=timeout)


# ---------------------------------------------------------------------------- data


def write_parts(path: Path, parts: Iterable[bytes]) -> tuple[int, str]:
    """Write the parts to path; return (size, blake3 hex digest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = blake3.blake3()
    size = 0
    with open(path, "wb") as fh:
        for part in parts:
            fh.write(part)
            h.update(part)
            size += len(part)
    return size, h.hexdigest()


def file_digest(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def folder_manifest(folder: Path) -> dict[str, tuple[int, str]]:
    """{relative path: (size, digest)} of every regular file under folder (symlinks not followed)."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(folder).as_posix()
            out[rel] = (p.stat().st_size, file_digest(p))
    return out


def version_manifest(repo: Repo, ref: str) -> dict[str, tuple[int, str]]:
    """{path: (size, digest)} of a version, computed from the bytes the repository returns (not the tree)."""
    out: dict[str, tuple[int, str]] = {}
    for entry in repo.tree(ref).files():
        h = blake3.blake3()
        size = 0
        for data in repo.read_file(ref, entry.path):
            h.update(data)
            size += len(data)
        assert size == entry.size, f"{ref}:{entry.path} read back {size} bytes, its tree records {entry.size}"
        out[entry.path] = (size, h.hexdigest())
    return out


# ---------------------------------------------------------------------------- repository state


def pack_files(root: Path) -> set[str]:
    packs = root / ".mlark" / "packs"
    return {p.relative_to(packs).as_posix() for p in packs.rglob("*") if p.is_file()}


def indexed_packs(repo: Repo) -> set[str]:
    return repo.index.pack_digests()


def unindexed_pack_digests(root: Path) -> set[str]:
    on_disk = {Path(p).name[: -len(".pack")] for p in pack_files(root) if p.endswith(".pack")}
    with Repo.open(root) as repo:
        return on_disk - indexed_packs(repo)


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a refused command must leave unchanged."""
    with Repo.open(root) as repo:
        arts = {}
        for art in repo.artifacts():
            versions = repo.history(art.name, include_removed=True)
            arts[art.name] = {
                "type": art.type,
                "versions": [(v.id, v.number, v.digest, v.message, v.size, v.file_count, v.aliases)
                             for v in versions],
                "alias_log": [repr(m) for m in repo.alias_log(art.name)],
            }
        chunks = repo.index.count()
    meta = root / ".mlark"
    return {
        "artifacts": arts,
        "packs": sorted(pack_files(root)),
        "chunks": chunks,
        "tmp": sorted(p.name for p in (meta / "tmp").iterdir()) if (meta / "tmp").is_dir() else [],
        "repo_json": (meta / "repo.json").read_bytes(),
    }


def assert_fsck_clean(root: Path, *, allow_unindexed: bool = False) -> Any:
    with Repo.open(root) as repo:
        report = repo.fsck()
    assert report.errors == [], f"fsck found errors: {report.errors}"
    if allow_unindexed:
        others = [w for w in report.warnings if "not indexed" not in w]
        assert others == [], f"unexpected fsck warnings: {others}"
    else:
        assert report.warnings == [], f"unexpected fsck warnings: {report.warnings}"
    return report


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, f"the command printed a traceback:\n{stderr}"


__all__ = [
    "MIB",
    "WORKER",
    "assert_fsck_clean",
    "cli_env",
    "file_digest",
    "folder_manifest",
    "mlark_bin",
    "no_traceback",
    "pack_files",
    "run_cli",
    "snapshot",
    "unindexed_pack_digests",
    "version_manifest",
    "write_parts",
]
