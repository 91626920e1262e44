"""Facts about the machine a benchmark ran on, for its report: cores, CPU, memory, OS, file system, Python.

Shared by bench_storage.py and bench_tracking.py, which import it from beside them (a script's
folder is first on ``sys.path``). Standard library only, like those scripts.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "filesystem_of", "machine_facts", "memory_bytes"]


def machine_facts(work: Path) -> dict[str, Any]:
    """cores, cpu, memory_bytes, os, filesystem (of the folder ``work``, where the benchmark writes), python_bench."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_bytes": memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "filesystem": filesystem_of(work),
        "python_bench": platform.python_version(),
    }


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo; "unknown" where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def memory_bytes() -> int | None:
    """Total memory in bytes, from /proc/meminfo; None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def filesystem_of(path: Path) -> str:
    """Type of the file system holding path, from /proc/mounts (longest matching mount point)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            mnt = parts[1].replace("\\040", " ")
            inside = str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind
