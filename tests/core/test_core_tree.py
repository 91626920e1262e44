"""Trees: canonical encoding, digest, and the invariants of docs/format.md section 5."""

from __future__ import annotations

import json
import random

import pytest

from mlark.core.digest import digest_bytes
from mlark.core.tree import ChunkRef, Entry, Tree, check_link_target
from mlark.errors import IntegrityError, InvalidPath


def _file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    chunks = (ChunkRef(digest_bytes(data), len(data)),) if data else ()
    return Entry(path, "file", mode, len(data), digest_bytes(data), chunks)


def _sample_entries() -> list[Entry]:
    return [
        _file("data/train.csv", b"a,b\n1,2\n"),
        _file("data/test.csv", b"a,b\n3,4\n", 0o600),
        _file("run.sh", b"#!/bin/sh\n", 0o755),
        _file("empty.txt", b""),
        Entry("logs", "dir", 0o700),
        Entry("data/latest.csv", "symlink", target="train.csv"),
        _file("données/été.csv", "é".encode()),
        _file("a-b", b"1"),
        _file("a.b", b"2"),
        _file("a/b", b"3"),
        _file("z.txt", b"4"),
        _file("é.txt", b"5"),
    ]


def test_encoding_is_canonical_and_independent_of_entry_order() -> None:
    entries = _sample_entries()
    reference = Tree(tuple(entries))
    rng = random.Random(7)
    for _ in range(10):
        shuffled = entries[:]
        rng.shuffle(shuffled)
        tree = Tree(tuple(shuffled))
        assert tree.encode() == reference.encode()
        assert tree.digest == reference.digest
        assert tree == reference


def test_encoding_format_matches_the_spec() -> None:
    tree = Tree(tuple(_sample_entries()))
    raw = tree.encode()
    assert raw.startswith(b'{"entries":[{')
    assert raw.endswith(b'],"format":1}')
    assert b" " not in raw.replace(b"#!/bin/sh", b"")  # no insignificant whitespace
    assert "données/été.csv".encode() in raw  # non-ASCII written as itself, not \u escapes
    assert b"\\u" not in raw
    doc = json.loads(raw)
    paths = [e["path"] for e in doc["entries"]]
    assert paths == sorted(paths, key=lambda p: p.encode("utf-8"))
    # byte order: '-' (0x2d) < '.' (0x2e) < '/' (0x2f), ASCII before multi-byte UTF-8
    assert paths.index("a-b") < paths.index("a.b") < paths.index("a/b")
    assert paths[-2:] == ["z.txt", "é.txt"]
    by_path = {e["path"]: e for e in doc["entries"]}
    assert by_path["run.sh"] == {
        "chunks": [[digest_bytes(b"#!/bin/sh\n"), 10]],
        "digest": digest_bytes(b"#!/bin/sh\n"),
        "mode": 0o755,
        "path": "run.sh",
        "size": 10,
        "type": "file",
    }
    assert by_path["logs"] == {"mode": 0o700, "path": "logs", "type": "dir"}
    assert by_path["data/latest.csv"] == {"path": "data/latest.csv", "target": "train.csv", "type": "symlink"}
    assert by_path["empty.txt"]["chunks"] == [] and by_path["empty.txt"]["size"] == 0
    for entry in doc["entries"]:
        assert list(entry) == sorted(entry)  # keys sorted
    assert tree.digest == digest_bytes(raw)


def _reference_encoding(tree: Tree) -> bytes:
    """The definition in docs/format.md section 5, spelled with json.dumps."""
    doc = {"entries": [e.to_json() for e in tree.entries], "format": 1}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_encoding_is_exactly_the_json_definition() -> None:
    # Tree.encode writes the JSON out directly (speed); it must equal json.dumps byte for byte,
    # escapes included.
    awkward = ['quote"d', "tab\there", "new\nline", "bell\x07", "del\x7f", "sep\u2028", "emoji-\U0001f600",
               "ünï/cödé", "sp ace", "x" * 300]
    entries = _sample_entries()
    for i, name in enumerate(awkward):
        entries.append(_file(f"w/{name}", bytes([i]) * (i + 1), 0o600 + i))
        entries.append(Entry(f"l/{name}", "symlink", target=f"../w/{name}"))
        entries.append(Entry(f"d/{name}", "dir", 0o700))
    big = b"".join(bytes([i]) * 70_000 for i in range(3))
    entries.append(Entry("multi", "file", 0o644, len(big), digest_bytes(big),
                         tuple(ChunkRef(digest_bytes(big[i : i + 70_000]), 70_000) for i in range(0, len(big), 70_000))))
    for tree in (Tree(tuple(entries)), Tree(()), Tree((Entry("only", "dir", 0o755),))):
        assert tree.encode() == _reference_encoding(tree)
        assert Tree.decode(tree.encode()) == tree


def test_digest_is_stable_across_runs() -> None:
    tree = Tree((_file("a.txt", b"hello"), Entry("d", "dir", 0o755)))
    expected_bytes = (
        '{"entries":[{"chunks":[["' + digest_bytes(b"hello") + '",5]],"digest":"' + digest_bytes(b"hello")
        + '","mode":420,"path":"a.txt","size":5,"type":"file"},{"mode":493,"path":"d","type":"dir"}],"format":1}'
    ).encode()
    assert tree.encode() == expected_bytes
    assert tree.digest == digest_bytes(expected_bytes)


def test_decode_encode_round_trip() -> None:
    tree = Tree(tuple(_sample_entries()))
    again = Tree.decode(tree.encode())
    assert again == tree
    assert again.encode() == tree.encode()
    assert again.digest == tree.digest
    assert again.size == tree.size == sum(e.size for e in _sample_entries() if e.type == "file")
    assert again.file_count == 10
    assert again.get("run.sh") is not None and again.get("run.sh").mode == 0o755  # type: ignore[union-attr]
    assert again.get("missing") is None


def test_empty_tree_round_trips() -> None:
    tree = Tree(())
    assert tree.encode() == b'{"entries":[],"format":1}'
    assert Tree.decode(tree.encode()) == tree


def test_content_change_changes_the_digest() -> None:
    a = Tree((_file("x", b"1"),))
    b = Tree((_file("x", b"2"),))
    c = Tree((_file("x", b"1", 0o755),))
    d = Tree((_file("y", b"1"),))
    assert len({a.digest, b.digest, c.digest, d.digest}) == 4


def test_multi_chunk_file() -> None:
    parts = [b"a" * 10, b"b" * 20, b"c" * 5]
    whole = b"".join(parts)
    entry = Entry("big", "file", 0o644, len(whole), digest_bytes(whole),
                  tuple(ChunkRef(digest_bytes(p), len(p)) for p in parts))
    tree = Tree((entry,))
    assert Tree.decode(tree.encode()).get("big").chunks == entry.chunks  # type: ignore[union-attr]
    assert tree.chunk_digests() == {digest_bytes(p) for p in parts}


@pytest.mark.parametrize("inner", ["a/b", "a/b/c"])
def test_nothing_lives_inside_a_file(inner: str) -> None:
    with pytest.raises(InvalidPath, match="inside 'a', which is a file"):
        Tree((_file("a", b"x"), _file(inner, b"y")))


def test_nothing_lives_inside_a_symlink() -> None:
    with pytest.raises(InvalidPath, match="inside 'link', which is a symlink"):
        Tree((Entry("link", "symlink", target="real"), _file("link/f", b"y"), Entry("real", "dir")))


def test_duplicate_paths_are_refused() -> None:
    with pytest.raises(InvalidPath, match="appears twice"):
        Tree((_file("a", b"x"), _file("a", b"y")))


@pytest.mark.parametrize("path", ["../x", "/abs", "a//b", "a\\b", "a\x00b", "./a", ""])
def test_bad_entry_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidPath):
        Tree((_file(path, b"x"),))


def test_sizes_must_add_up_and_digests_be_well_formed() -> None:
    with pytest.raises(IntegrityError, match="do not add up"):
        Tree((Entry("a", "file", 0o644, 6, digest_bytes(b"x"), (ChunkRef(digest_bytes(b"x"), 5),)),))
    with pytest.raises(IntegrityError, match="malformed digest"):
        Tree((Entry("a", "file", 0o644, 1, "nothex", (ChunkRef(digest_bytes(b"x"), 1),)),))
    with pytest.raises(IntegrityError, match="malformed digest"):
        Tree((Entry("a", "file", 0o644, 1, digest_bytes(b"x"), (ChunkRef("ABC", 1),)),))


@pytest.mark.parametrize(
    "path, target",
    [
        ("link", "../outside"),
        ("link", "/etc/passwd"),
        ("a/link", "../../outside"),
        ("a/link", "b/../../../x"),
        ("link", ""),
        ("link", "a\\b"),
        ("link", "a\x00b"),
    ],
)
def test_symlinks_escaping_the_folder_are_refused(path: str, target: str) -> None:
    with pytest.raises(InvalidPath, match="symlink"):
        Tree((Entry(path, "symlink", target=target),))
    with pytest.raises(InvalidPath):
        check_link_target(path, target)


@pytest.mark.parametrize(
    "path, target",
    [("link", "file"), ("link", "./file"), ("a/link", "../file"), ("a/b/link", "../../c/d"), ("a/link", "x/../y")],
)
def test_symlinks_inside_the_folder_are_kept(path: str, target: str) -> None:
    tree = Tree((Entry(path, "symlink", target=target),))
    assert Tree.decode(tree.encode()).get(path).target == target  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"not json", "does not decode"),
        (b'{"entries":[],"format":2}', "unknown format 2"),
        (b'{"entries":[]}', "unknown format None"),
        (b'{"entries":[{"path":"a","type":"fifo"}],"format":1}', "unknown type 'fifo'"),
        (b'{"entries":[{"path":"a","type":"file"}],"format":1}', "does not decode"),
        (b"\xff\xfe", "does not decode"),
    ],
)
def test_decoding_garbage_is_an_integrity_error(data: bytes, fragment: str) -> None:
    with pytest.raises(IntegrityError, match=fragment):
        Tree.decode(data)


def test_decoding_a_tree_that_breaks_an_invariant_is_refused() -> None:
    bad = b'{"entries":[{"path":"../x","target":"y","type":"symlink"}],"format":1}'
    with pytest.raises(InvalidPath):
        Tree.decode(bad)
