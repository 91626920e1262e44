"""A file of several GiB is streamed: add and get never hold it in memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import blake3

GIB = 1 << 30


def _make_sparse_with_data(path: Path, size: int) -> str:
    """A sparse file of `size` bytes with random islands, so chunking sees both zeros and real data."""
    rng = __import__("random").Random(7)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for _ in range(24):
            fh.seek(rng.randrange(0, size - (1 << 20)))
            fh.write(os.urandom(1 << 20))
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(path))
    return h.hexdigest()


def test_three_gib_file_round_trips_in_bounded_memory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    big = work / "big.bin"
    digest = _make_sparse_with_data(big, 3 * GIB)
    script = textwrap.dedent(
        f"""
        import re
        import mlark
        repo = mlark.Repo.init({str(tmp_path / 'repo')!r})
        v = repo.add({str(big)!r}, name="big", message="A 3 GiB file, to show it is streamed")
        repo.get("big:v1", to={str(tmp_path / 'out')!r})
        # VmHWM is this process's own peak; ru_maxrss would include the parent's peak across fork/exec.
        peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
        print(v.size, v.digest, peak)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600)
    size, _, max_rss_kib = out.stdout.split()
    assert int(size) == 3 * GIB
    # Peak memory stays far below the file size (the file is never loaded whole).
    assert int(max_rss_kib) * 1024 < 400 * (1 << 20), f"peak RSS {int(max_rss_kib) // 1024} MiB"
    restored = tmp_path / "out" / "big.bin"
    assert restored.stat().st_size == 3 * GIB
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(restored))
    assert h.hexdigest() == digest
    # Zeros dedupe to a handful of chunks: the repository is a tiny fraction of the file.
    packs = sum(p.stat().st_size for p in (tmp_path / "repo" / ".mlark" / "packs").rglob("*.pack"))
    assert packs < 64 * (1 << 20)
