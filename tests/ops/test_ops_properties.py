"""Property tests: any bytes, any edit, two versions, both read back exactly; small edits store little.

SQLite only (the embedded default): these exercise chunking and the object store, not the database.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlark.ops.repo import Repo

MiB = 1 << 20
SMALL = 128 * 1024  # the small-file threshold of format 1

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(
    st.sampled_from([0, 1, 2, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 256 * 1024 + 1, 2 * MiB]),
    st.integers(0, 300_000),
    st.integers(0, 2 * MiB),
)
kinds = st.sampled_from(["random", "zeros", "text", "mixed"])
edits = st.tuples(
    st.sampled_from(["insert", "delete", "overwrite", "append"]),
    st.floats(0, 1),  # where, as a fraction of the file
    st.one_of(st.integers(0, 64), st.integers(0, 200_000)),  # how many bytes
    st.integers(0, 2**32 - 1),  # seed of inserted bytes
)


def _content(kind: str, size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if kind == "random":
        return rng.randbytes(size)
    if kind == "zeros":
        return bytes(size)
    if kind == "text":
        words = [b"alpha", b"beta", b"gamma", b"delta", b"\n", b",", b"42", b"3.14"]
        out = bytearray()
        while len(out) < size:
            out += rng.choice(words)
        return bytes(out[:size])
    half = size // 2
    return rng.randbytes(half) + bytes(size - half)


def _edit(data: bytes, edit: tuple[str, float, int, int]) -> bytes:
    """Insert, delete, overwrite (every byte changes) or append n bytes; deletes and overwrites stay inside."""
    kind, where, n, seed = edit
    extra = random.Random(seed).randbytes(n)
    if kind == "insert":
        at = int(where * len(data))
        return data[:at] + extra + data[at:]
    if kind == "append":
        return data + extra
    at = int(where * max(len(data) - n, 0))
    if kind == "delete":
        return data[:at] + data[at + n :]
    flipped = bytes(b ^ (x | 1) for b, x in zip(data[at : at + n], extra))
    return data[:at] + flipped + data[at + len(flipped) :]


def _get_bytes(repo: Repo, ref: str, dest: Path) -> bytes:
    repo.get(ref, dest)
    return (dest / "file.bin").read_bytes()


def test_any_bytes_and_any_edit_read_back_exactly(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    seen: list[tuple[int, str]] = []
    with Repo.init(tmp_path / "repo", author="prop") as repo:

        @settings(max_examples=35, **SETTINGS)
        @given(size=sizes, kind=kinds, seed=st.integers(0, 2**32 - 1), edit=edits)
        def check(size: int, kind: str, seed: int, edit: tuple[str, float, int, int]) -> None:
            seen.append((size, edit[0]))
            name = f"a{uuid.uuid4().hex[:12]}"
            path = work / "file.bin"
            v1_bytes = _content(kind, size, seed)
            path.write_bytes(v1_bytes)
            v1 = repo.add(path, name=name, message="the original bytes")
            v2_bytes = _edit(v1_bytes, edit)
            path.write_bytes(v2_bytes)
            out2 = repo.add_outcome(path, name=name, message="the edited bytes")
            assert out2.created == (v2_bytes != v1_bytes)
            assert out2.version.size == len(v2_bytes)
            assert v1.size == len(v1_bytes)
            base = work / name
            assert _get_bytes(repo, f"{name}:v1", base / "1") == v1_bytes
            assert _get_bytes(repo, f"{name}", base / "2") == v2_bytes
            assert b"".join(repo.read_file(f"{name}:v1")) == v1_bytes

        check()
        assert repo.fsck().ok
    # The property really ran, over small and chunked files alike.
    assert len(seen) >= 20
    assert any(size <= SMALL for size, _ in seen) and any(size > SMALL for size, _ in seen)


def test_a_small_edit_to_a_large_file_stores_little(tmp_path: Path) -> None:
    ratios: list[float] = []
    with Repo.init(tmp_path / "repo", author="prop") as repo:

        @settings(max_examples=25, **SETTINGS)
        @given(
            size=st.integers(MiB, 2 * MiB),
            seed=st.integers(0, 2**32 - 1),
            edit=st.tuples(
                st.sampled_from(["insert", "delete", "overwrite", "append"]),
                st.floats(0, 1),
                st.integers(1, 64),
                st.integers(0, 2**32 - 1),
            ),
        )
        def check(size: int, seed: int, edit: tuple[str, float, int, int]) -> None:
            name = f"a{uuid.uuid4().hex[:12]}"
            path = tmp_path / "file.bin"
            # Unique per example (hypothesis may repeat a seed), so v1 really stores everything.
            data = random.Random(f"{name}-{seed}").randbytes(size)
            path.write_bytes(data)
            v1 = repo.add(path, name=name, message="one large random file")
            assert v1.new_bytes >= size
            edited = _edit(data, edit)
            path.write_bytes(edited)
            v2 = repo.add(path, name=name, message="a small local edit")
            assert v2.number == 2
            assert v2.new_bytes < 0.25 * size, (edit, v2.new_bytes, size)
            ratios.append(v2.new_bytes / size)

        check()
    assert len(ratios) >= 15
