"""What a run records about where it ran, without being asked: code version, command, environment, host, user.

:class:`Capture` switches each part off. :func:`capture` gathers the parts and
never fails a run: a part that cannot be read (no git, no repository) is left
out. The uncommitted diff is returned as bytes; the caller stores it as a blob
in the object store and keeps its digest in ``git["diff"]``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, fields, replace
from typing import Any

#: Diffs larger than this are cut (``git["diff_truncated"]`` is then true).
DIFF_MAX = 16 * 1024 * 1024
#: Untracked file names recorded (the rest are counted).
UNTRACKED_MAX = 100
GIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Capture:
    """Which parts of the environment a run records. ``Capture.none()`` records nothing.

    ``code_dir``: the folder whose git state is recorded (default: the running
    script's folder, else the current folder).
    """

    git: bool = True
    command: bool = True
    python: bool = True
    packages: bool = True
    host: bool = True
    user: bool = True
    code_dir: str | None = None

    @classmethod
    def none(cls) -> "Capture":
        return cls(**{name: False for name in cls.parts()})

    def without(self, *parts: str) -> "Capture":
        unknown = [p for p in parts if p not in self.parts()]
        if unknown:
            raise ValueError(f"unknown capture part(s) {unknown}; known: {', '.join(self.parts())}")
        return replace(self, **{p: False for p in parts})

    @classmethod
    def parts(cls) -> tuple[str, ...]:
        """The parts that can be switched on and off."""
        return tuple(f.name for f in fields(cls) if f.name != "code_dir")


@dataclass
class Captured:
    command: list[str] | None = None
    git: dict[str, Any] | None = None
    diff: bytes | None = None
    environment: dict[str, Any] | None = None
    host: str | None = None


def capture(options: Capture) -> Captured:
    out = Captured()
    if options.command:
        out.command = [str(a) for a in getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]]
    if options.git:
        out.git, out.diff = git_state(options.code_dir or script_dir())
    env: dict[str, Any] = {}
    if options.python:
        uname = os.uname()
        env["python"] = ".".join(str(n) for n in sys.version_info[:3])
        env["implementation"] = sys.implementation.name
        env["executable"] = sys.executable
        env["platform"] = f"{uname.sysname}-{uname.release}-{uname.machine}"
    if options.packages:
        env["packages"] = installed_packages()
    out.environment = env or None
    if options.host:
        out.host = socket.gethostname()
    return out


def script_dir() -> str:
    """The folder of the running script (``sys.argv[0]``), or the current folder."""
    main = sys.argv[0] if sys.argv else ""
    if main and main not in ("-c", "-m") and os.path.isfile(main):
        return os.path.dirname(os.path.abspath(main))
    return os.getcwd()


# --------------------------------------------------------------------------- git


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL, check=False
    )


def git_state(cwd: str) -> tuple[dict[str, Any] | None, bytes | None]:
    """(git info, uncommitted diff or None) for the work tree holding ``cwd``; (None, None) outside git."""
    try:
        status = _git(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=normal", "-z")
    except (OSError, subprocess.SubprocessError):
        return None, None
    if status.returncode != 0:
        return None, None
    commit = branch = None
    changed = False
    untracked: list[str] = []
    for record in status.stdout.split(b"\0"):
        line = record.decode("utf-8", "surrogateescape")
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid "):]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head "):]
            branch = None if head == "(detached)" else head
        elif line.startswith("? "):
            untracked.append(line[2:])
        elif line[:2] in ("1 ", "2 ", "u "):
            changed = True
    info: dict[str, Any] = {
        "commit": commit,
        "branch": branch,
        "remote": None,
        "dirty": changed,  # tracked files differ from the commit (untracked files are listed apart)
        "diff": None,
        "untracked": untracked[:UNTRACKED_MAX],
    }
    if len(untracked) > UNTRACKED_MAX:
        info["untracked_count"] = len(untracked)
    try:
        url = _git(cwd, "ls-remote", "--get-url")  # the branch's remote, else origin; no network
        if url.returncode == 0 and url.stdout.strip():
            info["remote"] = _strip_credentials(url.stdout.decode("utf-8", "replace").strip())
        diff = None
        if changed and commit is not None:
            result = _git(cwd, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
            if result.returncode == 0 and result.stdout:
                diff = result.stdout
                if len(diff) > DIFF_MAX:
                    diff = diff[:DIFF_MAX]
                    info["diff_truncated"] = True
                info["diff_size"] = len(result.stdout)
    except (OSError, subprocess.SubprocessError):
        return info, None
    return info, diff


def _strip_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: a remote URL must not leak a password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.find("@")
    slash = rest.find("/")
    if at != -1 and (slash == -1 or at < slash):
        rest = rest[at + 1 :]
    return f"{scheme}://{rest}"


# --------------------------------------------------------------------------- packages


def installed_packages() -> dict[str, str]:
    """Installed distributions -> versions, from the ``*.dist-info`` / ``*.egg-info`` names on ``sys.path``.

    Reads folder names only (metadata files only for the rare egg-info without a
    version in its name), so it costs about a millisecond. The first
    distribution found on ``sys.path`` wins, as for imports.
    """
    out: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".dist-info"):
                stem = name[: -len(".dist-info")]
            elif name.endswith(".egg-info"):
                stem = name[: -len(".egg-info")]
            else:
                continue
            dist, _, rest = stem.partition("-")
            version = rest.split("-py", 1)[0] if rest else _egg_version(entry.path)
            if not dist or not version:
                continue
            out.setdefault(dist.lower().replace("_", "-").replace(".", "-"), version)
    return dict(sorted(out.items()))


def _egg_version(path: str) -> str | None:
    info = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        with open(info, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    except OSError:
        return None
    return None
