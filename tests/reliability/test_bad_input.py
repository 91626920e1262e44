"""Bad names, paths, refs, special files and unknown formats: a clear error, and nothing changes.

Every case is tried through the Python API and (where a shell can express it) the CLI; after each,
the repository is compared with a snapshot taken before: same history, alias log, chunk index,
pack files and temp folder, and fsck stays clean.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlark.cli.exit import ExitStatus
from mlark.errors import InvalidInput, InvalidName, InvalidPath, InvalidRef, NotFound, UnsupportedFormat
from mlark.ops.repo import Repo
from rel_support import assert_fsck_clean, folder_manifest, no_traceback, run_cli, snapshot, write_parts

NAME_RULE_WORDS = ("allowed", "letters, digits")
PATH_RULE_WORDS = ("allowed", "relative path")
LONG = "x" * 10_000


class Scene:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "proj"
        Repo.init(self.root).close()
        self.data = base / "data"
        write_parts(self.data / "train.csv", [b"a,b\n" + b"1,2\n" * 1000])
        write_parts(self.data / "sub" / "test.csv", [b"a,b\n" + b"3,4\n" * 500])
        with Repo.open(self.root) as repo:
            repo.add(self.data, name="ds", message="first export of the training data")
        self.manifest = folder_manifest(self.data)
        self.before = snapshot(self.root)

    def assert_unchanged(self, case: str) -> None:
        after = snapshot(self.root)
        for key, value in self.before.items():
            assert after[key] == value, f"{case}: {key} changed"
        assert_fsck_clean(self.root)

    def folder(self, name: str) -> Path:
        """A fresh folder with one good file, to which a test adds one bad thing."""
        folder = self.base / "bad" / name
        write_parts(folder / "good.csv", [b"x\n1\n"])
        return folder

    def cli(self, *args: str) -> Any:
        done = run_cli("--repo", str(self.root), *args)
        no_traceback(done.stderr)
        return done


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield Scene(tmp_path_factory.mktemp("bad-input"))


def _message(exc: BaseException, *words: str) -> str:
    text = str(exc)
    assert "\n" not in text.strip(), f"not a one-line message: {text!r}"
    for word in words:
        assert word in text, f"{word!r} not in message: {text}"
    return text


def _cli_refused(done: Any, status: ExitStatus, *words: str) -> None:
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("mlark: "), done.stderr
    for word in words:
        assert word in done.stderr, f"{word!r} not in: {done.stderr}"


# ----------------------------------------------------------------------------- names


BAD_NAMES = [
    pytest.param("../escape", "'../escape'", id="dotdot-path"),
    pytest.param("a..b", "'a..b'", id="dotdot-inside"),
    pytest.param("/abs/name", "'/abs/name'", id="absolute"),
    pytest.param("a\\b", "backslash-or-rule", id="backslash"),
    pytest.param("a\x00b", "NUL-or-rule", id="nul"),
    pytest.param("trailing\n", "newline", id="trailing-newline"),
    pytest.param(".hidden", "'.hidden'", id="leading-dot"),
    pytest.param("", "empty", id="empty"),
    pytest.param(LONG, "10000 characters", id="10000-chars"),
]


@pytest.mark.parametrize(("name", "shown"), BAD_NAMES)
def test_bad_artifact_name_is_refused(scene: Scene, name: str, shown: str) -> None:
    with Repo.open(scene.root) as repo:
        with pytest.raises(InvalidName) as caught:
            repo.add(scene.data, name=name, message="should be refused")
    text = _message(caught.value, *NAME_RULE_WORDS)
    if shown.startswith("'"):
        assert shown in text
    if shown == "10000 characters":
        assert shown in text and len(text) < 600, "a 10,000-character name is echoed back whole"
    scene.assert_unchanged(f"API add --name {name[:20]!r}")

    if "\x00" in name:
        return  # a NUL cannot be passed through argv; the API case above covers it
    done = scene.cli("add", str(scene.data), "--name", name, "-m", "should be refused")
    _cli_refused(done, ExitStatus.USAGE, *NAME_RULE_WORDS)
    assert len(done.stderr) < 800
    scene.assert_unchanged(f"CLI add --name {name[:20]!r}")


@pytest.mark.parametrize(
    ("option", "kwargs", "kind"),
    [
        pytest.param("--alias", {"aliases": ["../prod"]}, "alias", id="alias-dotdot"),
        pytest.param("--alias", {"aliases": ["v7"]}, "alias", id="alias-like-version"),
        pytest.param("--tag", {"tags": ["a/b"]}, "tag", id="tag-slash"),
        pytest.param("--type", {"type": "data\\set"}, "artifact type", id="type-backslash"),
    ],
)
def test_bad_alias_tag_or_type_is_refused(scene: Scene, option: str, kwargs: dict[str, Any], kind: str) -> None:
    with Repo.open(scene.root) as repo:
        with pytest.raises(InvalidName) as caught:
            repo.add(scene.folder("opt"), name="ds", message="should be refused", **kwargs)
    _message(caught.value, kind)
    scene.assert_unchanged(f"API {option}")
    value = next(iter(kwargs.values()))
    value = value[0] if isinstance(value, list) else value
    done = scene.cli("add", str(scene.folder("opt")), "--name", "ds", option, value, "-m", "should be refused")
    _cli_refused(done, ExitStatus.USAGE, kind)
    scene.assert_unchanged(f"CLI {option}")


# ----------------------------------------------------------------------------- refs


UNKNOWN_REFS = [
    pytest.param("nosuch", NotFound, ExitStatus.NOT_FOUND, "no artifact named 'nosuch'", id="no-artifact"),
    pytest.param("ds:v99", NotFound, ExitStatus.NOT_FOUND, "v99", id="no-version"),
    pytest.param("ds@nosuch", NotFound, ExitStatus.NOT_FOUND, "'nosuch'", id="no-alias"),
    pytest.param("ds:ffffffff", NotFound, ExitStatus.NOT_FOUND, "ffffffff", id="no-digest"),
    pytest.param("ds:zz", InvalidRef, ExitStatus.USAGE, "expected", id="bad-selector"),
    pytest.param("../ds", InvalidRef, ExitStatus.USAGE, "expected", id="dotdot"),
    pytest.param("/ds", InvalidRef, ExitStatus.USAGE, "expected", id="absolute"),
    pytest.param("ds:v0", InvalidRef, ExitStatus.USAGE, "expected", id="v0"),
    pytest.param(LONG, InvalidRef, ExitStatus.USAGE, "expected", id="10000-chars"),
]


@pytest.mark.parametrize(("ref", "error", "status", "word"), UNKNOWN_REFS)
def test_unknown_or_bad_ref_is_refused(scene: Scene, tmp_path: Path, ref: str, error: type, status: ExitStatus,
                                       word: str) -> None:
    out = tmp_path / "out"
    with Repo.open(scene.root) as repo:
        with pytest.raises(error) as caught:
            repo.get(ref, to=out)
    _message(caught.value, word)
    assert not out.exists(), "a refused get created its destination"
    scene.assert_unchanged(f"API get {ref[:20]!r}")
    done = scene.cli("get", ref, "--to", str(out))
    _cli_refused(done, status, word)
    assert len(done.stderr) < 1000
    assert not out.exists()
    scene.assert_unchanged(f"CLI get {ref[:20]!r}")


BAD_FILE_PATHS = [
    pytest.param("../ds/train.csv", "'..'", id="dotdot"),
    pytest.param("/etc/passwd", "absolute", id="absolute"),
    pytest.param("sub\\test.csv", "backslash", id="backslash"),
    pytest.param("sub/\x00test.csv", "NUL", id="nul"),
    pytest.param("sub/" + LONG, "longer than", id="10000-chars"),
]


@pytest.mark.parametrize(("path", "word"), BAD_FILE_PATHS)
def test_bad_file_path_inside_a_version_is_refused(scene: Scene, path: str, word: str) -> None:
    with Repo.open(scene.root) as repo:
        with pytest.raises(InvalidPath) as caught:
            b"".join(repo.read_file("ds:v1", path))
    _message(caught.value, word)
    scene.assert_unchanged(f"API read_file {path[:20]!r}")
    if "\x00" in path:
        return
    done = scene.cli("get", "ds:v1", "--to", "-", "--file", path)
    _cli_refused(done, ExitStatus.USAGE, word)
    assert done.stdout == ""
    scene.assert_unchanged(f"CLI get --file {path[:20]!r}")


def test_good_requests_still_work(scene: Scene, tmp_path: Path) -> None:
    """The refusals above are not a repository that refuses everything."""
    with Repo.open(scene.root) as repo:
        repo.get("ds", to=tmp_path / "out")
        assert b"".join(repo.read_file("ds:v1", "sub/test.csv")) == (scene.data / "sub" / "test.csv").read_bytes()
    assert folder_manifest(tmp_path / "out") == scene.manifest
    done = scene.cli("get", "ds:v1", "--to", "-", "--file", "train.csv")
    assert done.returncode == 0 and done.stdout == (scene.data / "train.csv").read_text()


# ----------------------------------------------------------------------------- what is on disk


def _backslash_folder(scene: Scene) -> Path:
    folder = scene.folder("backslash")
    write_parts(folder / "nested" / "a\\b.csv", [b"1\n"])
    return folder


def _fifo_folder(scene: Scene) -> Path:
    folder = scene.folder("fifo")
    fifo = folder / "nested" / "pipe"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if not fifo.exists():
        os.mkfifo(fifo)
    return folder


def _link_out_folder(scene: Scene) -> Path:
    folder = scene.folder("link-out")
    link = folder / "nested" / "secrets"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        os.symlink("../../../../../../etc/passwd", link)
    return folder


def _link_absolute_folder(scene: Scene) -> Path:
    folder = scene.folder("link-absolute")
    link = folder / "passwd"
    if not link.is_symlink():
        os.symlink("/etc/passwd", link)
    return folder


ON_DISK = [
    pytest.param(_backslash_folder, InvalidPath, ("backslash", "a\\\\b.csv"), id="backslash-file-name"),
    pytest.param(_fifo_folder, InvalidInput, ("pipe", "special file", "only files, folders and links"), id="fifo"),
    pytest.param(_link_out_folder, InvalidPath, ("secrets", "outside the added folder", "only relative links"),
                 id="symlink-outside"),
    pytest.param(_link_absolute_folder, InvalidPath, ("passwd", "only relative links"), id="symlink-absolute"),
]


@pytest.mark.parametrize(("make", "error", "words"), ON_DISK)
def test_unstorable_folder_content_is_refused(scene: Scene, make: Any, error: type, words: tuple[str, ...]) -> None:
    folder = make(scene)
    with Repo.open(scene.root) as repo:
        with pytest.raises(error) as caught:
            repo.add(folder, name="ds", message="should be refused")
    _message(caught.value, *words)
    scene.assert_unchanged(f"API add {folder.name}")
    done = scene.cli("add", str(folder), "--name", "ds", "-m", "should be refused")
    _cli_refused(done, ExitStatus.USAGE, *words)
    scene.assert_unchanged(f"CLI add {folder.name}")


def test_adding_a_symlink_or_missing_path_is_refused(scene: Scene) -> None:
    link = scene.base / "bad" / "link-to-data"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        os.symlink(scene.data, link)
    with Repo.open(scene.root) as repo:
        with pytest.raises(InvalidInput) as caught:
            repo.add(link, name="ds", message="should be refused")
        _message(caught.value, "symbolic link", "add the file or folder it points to")
        with pytest.raises(NotFound) as missing:
            repo.add(scene.base / "no-such-folder", name="ds", message="should be refused")
        _message(missing.value, "does not exist")
    scene.assert_unchanged("API add link / missing")
    _cli_refused(scene.cli("add", str(link), "--name", "ds", "-m", "x y"), ExitStatus.USAGE, "symbolic link")
    _cli_refused(scene.cli("add", str(scene.base / "no-such-folder"), "--name", "ds", "-m", "x y"),
                 ExitStatus.NOT_FOUND, "does not exist")
    scene.assert_unchanged("CLI add link / missing")


# ----------------------------------------------------------------------------- format versions


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(2, ("format version 2", "understands format 1", "upgrade mlark"), id="future-2"),
        pytest.param("one", ("'one'", "understands format 1"), id="not-a-number"),
    ],
)
def test_repository_of_unknown_format_is_refused(tmp_path: Path, value: Any, words: tuple[str, ...]) -> None:
    scene = Scene(tmp_path)
    config = scene.root / ".mlark" / "repo.json"
    original = config.read_bytes()
    doc = json.loads(original)
    doc["format"] = value
    edited = json.dumps(doc, indent=2).encode()
    config.write_bytes(edited)
    packs = sorted(p for p in (scene.root / ".mlark" / "packs").rglob("*"))

    with pytest.raises(UnsupportedFormat) as caught:
        Repo.open(scene.root)
    _message(caught.value, *words)
    for args in (["log", "ds"], ["add", str(scene.data), "--name", "ds", "-m", "newer data"], ["fsck"],
                 ["gc"], ["get", "ds", "--to", str(tmp_path / "out")]):
        done = scene.cli(*args)
        _cli_refused(done, ExitStatus.UNSUPPORTED_FORMAT, *words)
    assert not (tmp_path / "out").exists()
    assert config.read_bytes() == edited, "a refused command rewrote repo.json"
    assert sorted(p for p in (scene.root / ".mlark" / "packs").rglob("*")) == packs

    config.write_bytes(original)  # back to the format it was written in: nothing was lost
    scene.assert_unchanged("after unknown format")
