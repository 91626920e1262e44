#!/usr/bin/env python3
"""Storage benchmark: mlark against DVC, on the same work, in the same run.

Usage (from the repository root, after ./bench/setup_dvc.sh):

    .venv/bin/python bench/bench_storage.py                 # full size: 1 GiB file, 10,000 small files
    .venv/bin/python bench/bench_storage.py --size-mib 64 --files 500   # quick structural run

Scenarios (each tool works on its own identical copy, in its own folder; mlark
runs first, then DVC, for every step; `sync` is called before each timed
command; each command is run once):

  add-new     add a new file of --size-mib MiB            target: mlark >= 1x as fast as `dvc add`
  add-edit    add it again after a ~1-2% edit             target: mlark >= 2x as fast as `dvc add`,
              (1/1024 of the file inserted in the middle,         and mlark's repository grows by
              ten 1/1024 regions overwritten: 1 MiB each           <= 5% of the file size
              for 1 GiB)
  add-folder  add a folder of --files files of 4 KiB      target: mlark >= 3x as fast as `dvc add`
  get-warm    restore the latest big version after its    target: mlark >= 1x as fast as `dvc checkout`
              workspace copy is deleted (mlark: delete it,
              `mlark get` into an empty folder; DVC: delete
              it, `dvc checkout`), every file of each tool's
              repository read through just before
  get-cold    the same, each repository dropped from the  target: mlark >= 1x as fast as `dvc checkout`
              page cache first (posix_fadvise), then 5 s
              of rest: data not read for a while

Both tools are driven through their command lines exactly as a user would.
Ratios are dvc seconds / mlark seconds: above 1 means mlark is faster.
Results go to stdout (a table, or JSON with --json) and to
bench/.work/last_storage.json. Exit status: 0 every target met, 1 a target
missed, 3 a tool was missing or a command failed (argparse usage errors are 2).

Only the standard library is used, so any Python 3.11 runs this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import machine_facts  # bench/_machine.py, beside this script

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_MLARK = REPO_ROOT / ".venv" / "bin" / "mlark"
DEFAULT_DVC = BENCH_DIR / ".venv-dvc" / "bin" / "dvc"
WORK_ROOT = BENCH_DIR / ".work"
RESULT_FILE = WORK_ROOT / "last_storage.json"

KIB = 1024
MIB = 1024 * KIB
SMALL_FILE_SIZE = 4 * KIB
SEED = 20240611

# Targets, from the issue. Ratios are dvc_seconds / mlark_seconds.
TARGET_ADD_NEW = 1.0
TARGET_ADD_EDIT = 2.0
TARGET_ADD_EDIT_GROWTH = 0.05  # of the file size
TARGET_ADD_FOLDER = 3.0
TARGET_GET = 1.0

# Page-cache states of a repository before a get (see set_page_cache).
WARM = "warm"
COLD = "cold"
#: Rest after dropping a repository from the page cache. A virtual machine that hands freed memory
#: back to its host does so after a couple of seconds; the next process then pays for fresh memory,
#: as it does for data that was not read for a while (such a machine may also evict idle page cache
#: after half a minute). Without the rest, whichever tool runs next reuses the memory just freed.
COLD_PAUSE_S = 5.0

COMMAND_TIMEOUT_S = 3600


class ExitStatus(enum.IntEnum):
    OK = 0
    TARGET_MISSED = 1
    # 2 is argparse's usage error
    TOOL_ERROR = 3


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # a command failed or a tool is missing: nothing to compare


# --------------------------------------------------------------------------- data

# Test data: a deterministic mix (fixed seed) of two kinds of 256 KiB segments,
# each kind chosen with probability 1/2:
#   - random bytes (incompressible), and
#   - "numeric text": random bytes mapped onto digits, commas, dots, spaces,
#     minus signs and newlines, like a CSV of numbers. About 3.6 bits of entropy
#     per byte: zstd -3 stores it in ~51% of its size.
# So the file as a whole compresses to about 75%: compression matters a bit,
# but cannot make the benchmark. Nothing repeats (no segment is a copy of
# another), so deduplication within a version gains nothing either.
# Each small file (4 KiB) is entirely one kind or the other.
SEGMENT = 256 * KIB
_TEXT_ALPHABET = b"0123456789012345678901234567890123456789,,,,,,,,..........\n\n\n\n-  "
TEXT_TABLE = bytes(_TEXT_ALPHABET[i % len(_TEXT_ALPHABET)] for i in range(256))
DATA_DESCRIPTION = (
    "fixed seed; 256 KiB segments, each either random bytes or random 'numeric text' "
    "(digits, commas, dots, newlines; zstd -3 keeps ~51%), 50/50; whole file compresses "
    "to ~75%; no repeated content"
)


class DataGen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def block(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            k = min(SEGMENT, n - len(out))
            raw = self.rng.randbytes(k)
            if self.rng.random() < 0.5:
                raw = raw.translate(TEXT_TABLE)
            out += raw
        return bytes(out)


def write_big_file(path: Path, size: int, seed: int) -> None:
    gen = DataGen(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(MIB, left)
            f.write(gen.block(n))
            left -= n


@dataclasses.dataclass
class Edit:
    unit: int
    insert_at: int
    overwrites: list[int]  # offsets in the edited file

    def as_json(self) -> dict[str, Any]:
        return {"unit_bytes": self.unit, "insert_at": self.insert_at, "overwrite_offsets": self.overwrites}


def write_edited_file(src: Path, dst: Path, size: int, seed: int) -> Edit:
    """dst = src with one unit inserted in the middle and ten units overwritten.

    The unit is 1/1024 of the file (1 MiB for 1 GiB), at least 4 KiB, so the
    edit keeps its proportions at any --size-mib.
    """
    gen = DataGen(seed)
    rng = random.Random(seed + 1)
    unit = max(size // 1024, 4 * KIB)
    insert_at = size // 2 + 4321  # not aligned on anything
    new_size = size + unit
    # Ten regions, one per tenth of the file, not overlapping the inserted unit.
    stripe = new_size // 10
    overwrites = []
    for i in range(10):
        for _ in range(1000):
            off = i * stripe + rng.randrange(0, stripe - unit)
            if off + unit <= insert_at or off >= insert_at + unit:
                break
        overwrites.append(off)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(_Limited(fin, insert_at), fout, MIB)
        fout.write(gen.block(unit))
        shutil.copyfileobj(fin, fout, MIB)
    with open(dst, "r+b") as f:
        for off in overwrites:
            f.seek(off)
            f.write(gen.block(unit))
    assert dst.stat().st_size == new_size
    return Edit(unit, insert_at, overwrites)


class _Limited:
    def __init__(self, f: Any, n: int) -> None:
        self.f, self.left = f, n

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        b = self.f.read(n)
        self.left -= len(b)
        return b


def write_small_files(folder: Path, count: int, seed: int) -> None:
    gen = DataGen(seed)
    folder.mkdir(parents=True)
    width = max(5, len(str(count - 1)))
    for i in range(count):
        (folder / f"part-{i:0{width}d}.txt").write_bytes(gen.block(SMALL_FILE_SIZE))


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(4 * MIB):
            h.update(b)
    return h.hexdigest()


def tree_bytes(path: Path) -> int:
    """Sum of the sizes of the regular files under path (like `du -b --apparent-size`)."""
    total = 0
    if not path.exists():
        return 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


# --------------------------------------------------------------------------- running commands


@dataclasses.dataclass
class Run:
    cmd: list[str]
    returncode: int
    seconds: float
    user_s: float
    sys_s: float
    sync_after_s: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "cmd": self.cmd,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 4),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "sync_after_s": round(self.sync_after_s, 4),
        }
        if not self.ok:
            d["stdout"] = self.stdout[-4000:]
            d["stderr"] = self.stderr[-4000:]
        else:
            try:
                d["output"] = json.loads(self.stdout)
            except ValueError:
                pass
        return d

    def failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip())[-1500:]
        return f"`{' '.join(self.cmd)}` exited {self.returncode}: {tail}"


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run one command once, wall-clock timed, after a sync.

    The time is what a user waits for the command. The time a `sync` right
    after takes (data the tool left dirty in the page cache) is recorded
    separately, not added.
    """
    os.sync()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except FileNotFoundError as exc:
        rc, out, err = 127, "", str(exc)
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, str(exc.stdout or ""), f"timed out after {COMMAND_TIMEOUT_S} s"
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t1 = time.perf_counter()
    os.sync()
    sync_after = time.perf_counter() - t1
    return Run(
        cmd, rc, seconds, ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime, sync_after, out, err
    )


def run_quiet(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


class ToolError(Exception):
    pass


def check(p: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip())[-1500:]
        raise ToolError(f"`{' '.join(map(str, p.args))}` exited {p.returncode}: {tail}")
    return p


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- tools


class Mlark:
    name = "mlark"

    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.env = dict(os.environ)
        self.unavailable: str | None = None
        self.version = "unknown"
        if not exe.exists():
            self.unavailable = f"the mlark CLI is not installed at {exe} (install the package into .venv first)"
            return
        try:
            p = run_quiet([str(exe), "--help"], REPO_ROOT, self.env, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.unavailable = f"`{exe} --help` could not run: {exc}"
            return
        if p.returncode != 0:
            tail = (p.stderr.strip() or p.stdout.strip())[-800:]
            self.unavailable = f"`{exe} --help` exited {p.returncode}: {tail}"
            return
        self.version = self._version()

    def _version(self) -> str:
        p = run_quiet([str(self.exe), "--version"], REPO_ROOT, self.env, timeout=120)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip().splitlines()[-1]
        py = self.exe.parent / "python"
        if not py.exists():
            return "unknown"
        p = run_quiet(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('mlark'))"], REPO_ROOT, self.env
        )
        return p.stdout.strip() if p.returncode == 0 else "unknown"

    def python_version(self) -> str:
        py = self.exe.parent / "python"
        if not py.exists():
            return "unknown"
        p = run_quiet([str(py), "-c", "import platform; print(platform.python_version())"], REPO_ROOT, self.env)
        return p.stdout.strip() or "unknown"

    def init(self, ws: Path) -> None:
        check(run_quiet([str(self.exe), "init"], ws, self.env))

    def repo_bytes(self, ws: Path) -> int:
        return tree_bytes(ws / ".mlark")

    def add(self, ws: Path, rel: str, artifact: str, message: str) -> Run:
        return run_timed([str(self.exe), "add", rel, "--name", artifact, "-m", message, "--json"], ws, self.env)

    def get(self, ws: Path, ref: str, dest: Path) -> Run:
        return run_timed([str(self.exe), "get", ref, "--to", str(dest), "--json"], ws, self.env)


class Dvc:
    name = "dvc"

    def __init__(self, exe: Path, site_cache: Path) -> None:
        self.exe = exe
        self.site_cache = site_cache
        self.env = dict(os.environ)
        self.env["DVC_NO_ANALYTICS"] = "1"
        self.unavailable: str | None = None
        self.version = "unknown"
        self.cache_types = "unknown"
        if not exe.exists():
            self.unavailable = f"DVC is not installed at {exe}: run ./bench/setup_dvc.sh first"
            return
        p = run_quiet([str(exe), "--version"], REPO_ROOT, self.env, timeout=120)
        if p.returncode != 0:
            self.unavailable = f"`{exe} --version` exited {p.returncode}: {p.stderr.strip()[-800:]}"
            return
        self.version = p.stdout.strip()

    def init(self, ws: Path) -> None:
        dvc = str(self.exe)
        check(run_quiet([dvc, "init", "--no-scm", "-q"], ws, self.env))
        check(run_quiet([dvc, "config", "core.analytics", "false"], ws, self.env))
        check(run_quiet([dvc, "config", "core.check_update", "false"], ws, self.env))
        # Copy: what DVC falls back to on ext4 (no reflinks) by default, and the
        # like-for-like peer of mlark, which writes independent files.
        check(run_quiet([dvc, "config", "cache.type", "copy"], ws, self.env))
        # Keep DVC's hash/link state of this run inside the work folder, not in /var/tmp.
        check(run_quiet([dvc, "config", "core.site_cache_dir", str(self.site_cache)], ws, self.env))

    def probe_cache_types(self, ws: Path) -> None:
        """Record the link types `dvc doctor` finds this file system supports (needs a cache)."""
        p = run_quiet([str(self.exe), "doctor"], ws, self.env, timeout=120)
        for line in p.stdout.splitlines():
            if line.startswith("Cache types:"):
                self.cache_types = line.split(":", 1)[1].strip()

    def repo_bytes(self, ws: Path) -> int:
        return tree_bytes(ws / ".dvc" / "cache")

    def add(self, ws: Path, rel: str) -> Run:
        return run_timed([str(self.exe), "add", rel], ws, self.env)

    def checkout(self, ws: Path) -> Run:
        return run_timed([str(self.exe), "checkout"], ws, self.env)


def set_page_cache(root: Path, state: str) -> None:
    """Put every file under root in the page cache (WARM: read it through) or out of it (COLD: written
    back, dropped with posix_fadvise, then COLD_PAUSE_S of rest). Needs no privileges."""
    os.sync()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if state == WARM:
            with open(path, "rb", buffering=0) as fh:
                while fh.read(8 * MIB):
                    pass
        else:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    if state == COLD:
        time.sleep(COLD_PAUSE_S)


def link_kind(path: Path) -> str:
    st = os.lstat(path)
    if os.path.islink(path):
        return "symlink"
    if st.st_nlink > 1:
        return "hardlink"
    return "copy"  # or reflink; ext4 has none (`dvc doctor` lists the kinds this file system supports)


# --------------------------------------------------------------------------- scenarios


@dataclasses.dataclass
class Side:
    run: Run | None = None
    growth_bytes: int | None = None
    error: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        return self.run.seconds if self.run is not None and self.run.ok and self.error is None else None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seconds": None if self.seconds is None else round(self.seconds, 4)}
        if self.growth_bytes is not None:
            d["growth_bytes"] = self.growth_bytes
        if self.error:
            d["error"] = self.error
        if self.run is not None:
            d["run"] = self.run.as_json()
        d.update(self.extra)
        return d


@dataclasses.dataclass
class Scenario:
    id: str
    title: str
    target_ratio: float
    data_bytes: int
    mlark: Side = dataclasses.field(default_factory=Side)
    dvc: Side = dataclasses.field(default_factory=Side)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        m, d = self.mlark.seconds, self.dvc.seconds
        if m is None or d is None or m <= 0:
            return None
        return d / m

    @property
    def status(self) -> Status:
        r = self.ratio
        if r is None:
            return Status.ERROR
        return Status.PASS if r >= self.target_ratio else Status.FAIL


@dataclasses.dataclass
class GrowthCheck:
    id: str
    title: str
    file_bytes: int
    limit_fraction: float
    mlark_growth: int | None
    dvc_growth: int | None

    @property
    def status(self) -> Status:
        if self.mlark_growth is None:
            return Status.ERROR
        return Status.PASS if self.mlark_growth <= self.limit_fraction * self.file_bytes else Status.FAIL


def side_error(side: Side, exc: BaseException | str) -> None:
    side.error = str(exc)
    log(f"  error: {side.error}")


def record_run(side: Side, run: Run, label: str) -> None:
    side.run = run
    if run.ok:
        log(f"  {label}: {run.seconds:.2f} s (user {run.user_s:.1f} s, sys {run.sys_s:.1f} s)")
    else:
        side_error(side, run.failure())


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.size = args.size_mib * MIB
        self.work = Path(args.work).resolve() / "storage"
        self.data = self.work / "data"
        self.mlark = Mlark(Path(args.mlark))
        self.dvc = Dvc(Path(args.dvc), self.work / "dvc-site-cache")
        self.scenarios: list[Scenario] = []
        self.checks: list[GrowthCheck] = []
        self.edit: Edit | None = None
        self.dvc_link: str | None = None
        # which big version each tool holds last, and whether its workspace is usable
        self.big_version = {"mlark": 0, "dvc": 0}
        self.ws = {
            ("mlark", "big"): self.work / "mlark" / "big",
            ("dvc", "big"): self.work / "dvc" / "big",
            ("mlark", "folder"): self.work / "mlark" / "folder",
            ("dvc", "folder"): self.work / "dvc" / "folder",
        }

    # -- preparation

    def prepare(self) -> None:
        if self.work.exists():
            log(f"removing leftovers of an earlier run: {self.work}")
            shutil.rmtree(self.work)
        self.data.mkdir(parents=True)
        need = 9 * self.size + 4 * self.args.files * SMALL_FILE_SIZE * 3
        free = shutil.disk_usage(self.work).free
        if free < need:
            raise ToolError(f"not enough free disk under {self.work}: {free >> 20} MiB free, ~{need >> 20} MiB needed")
        t = time.perf_counter()
        log(f"generating data: {self.args.size_mib} MiB file v1 ...")
        write_big_file(self.data / "big.v1.bin", self.size, SEED)
        log("generating data: edited v2 ...")
        self.edit = write_edited_file(self.data / "big.v1.bin", self.data / "big.v2.bin", self.size, SEED + 2)
        log(f"generating data: {self.args.files} files of 4 KiB ...")
        write_small_files(self.data / "small", self.args.files, SEED + 3)
        self.digests = {
            1: file_digest(self.data / "big.v1.bin"),
            2: file_digest(self.data / "big.v2.bin"),
        }
        log(f"data ready in {time.perf_counter() - t:.1f} s")
        for path in self.ws.values():
            path.mkdir(parents=True)

    def _init(self, tool: Mlark | Dvc, side: Side, ws: Path) -> bool:
        if tool.unavailable:
            side.error = tool.unavailable
            return False
        try:
            tool.init(ws)
        except (ToolError, OSError, subprocess.TimeoutExpired) as exc:
            side_error(side, f"{tool.name} init failed: {exc}")
            return False
        return True

    @staticmethod
    def _place_file(src: Path, dst: Path) -> None:
        # Remove first, never write through: with a link-type cache that would change the cache.
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        shutil.copyfile(src, dst)

    # -- scenarios

    def scenario_add_new(self) -> Scenario:
        sc = Scenario("add-new", f"add a new {self.args.size_mib} MiB file", TARGET_ADD_NEW, self.size)
        log(f"scenario {sc.id}: {sc.title}")
        ok = {}
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            ws = self.ws[(tool.name, "big")]
            ok[tool.name] = self._init(tool, side, ws)
            self._place_file(self.data / "big.v1.bin", ws / "big.bin")
        os.sync()
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            if not ok[tool.name]:
                continue
            ws = self.ws[(tool.name, "big")]
            before = tool.repo_bytes(ws)
            if isinstance(tool, Mlark):
                run = tool.add(ws, "big.bin", "big", "Add the benchmark file: v1, generated with a fixed seed")
            else:
                run = tool.add(ws, "big.bin")
            record_run(side, run, f"{tool.name} add")
            side.growth_bytes = tool.repo_bytes(ws) - before if run.ok else None
            if run.ok:
                self.big_version[tool.name] = 1
        return sc

    def scenario_add_edit(self) -> tuple[Scenario, GrowthCheck]:
        assert self.edit is not None
        v2_size = self.size + self.edit.unit
        sc = Scenario(
            "add-edit",
            "add it again after the edit",
            TARGET_ADD_EDIT,
            v2_size,
            notes={"edit": self.edit.as_json(), "edited_bytes": 11 * self.edit.unit},
        )
        log(f"scenario {sc.id}: {sc.title} (insert {self.edit.unit >> 10} KiB, overwrite 10 x {self.edit.unit >> 10} KiB)")
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            if self.big_version[tool.name] != 1:
                side.error = tool.unavailable or f"{tool.name} has no v1 to edit (add-new failed)"
                continue
            self._place_file(self.data / "big.v2.bin", self.ws[(tool.name, "big")] / "big.bin")
        os.sync()
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            if side.error:
                continue
            ws = self.ws[(tool.name, "big")]
            before = tool.repo_bytes(ws)
            if isinstance(tool, Mlark):
                run = tool.add(
                    ws, "big.bin", "big",
                    "Insert one unit in the middle and overwrite ten regions (benchmark edit, ~1% of bytes)",
                )
            else:
                run = tool.add(ws, "big.bin")
            record_run(side, run, f"{tool.name} add")
            side.growth_bytes = tool.repo_bytes(ws) - before if run.ok else None
            if run.ok:
                self.big_version[tool.name] = 2
        growth = GrowthCheck(
            "add-edit-growth",
            "repository growth for the edit",
            v2_size,
            TARGET_ADD_EDIT_GROWTH,
            sc.mlark.growth_bytes if sc.mlark.seconds is not None else None,
            sc.dvc.growth_bytes if sc.dvc.seconds is not None else None,
        )
        return sc, growth

    def scenario_add_folder(self) -> Scenario:
        n = self.args.files
        sc = Scenario(
            "add-folder", f"add a folder of {n:,} files of 4 KiB", TARGET_ADD_FOLDER, n * SMALL_FILE_SIZE
        )
        log(f"scenario {sc.id}: {sc.title}")
        ok = {}
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            ws = self.ws[(tool.name, "folder")]
            ok[tool.name] = self._init(tool, side, ws)
            shutil.copytree(self.data / "small", ws / "shards")
        os.sync()
        for tool, side in ((self.mlark, sc.mlark), (self.dvc, sc.dvc)):
            if not ok[tool.name]:
                continue
            ws = self.ws[(tool.name, "folder")]
            before = tool.repo_bytes(ws)
            if isinstance(tool, Mlark):
                run = tool.add(ws, "shards", "shards", f"Add {n} generated 4 KiB shards (benchmark folder)")
            else:
                run = tool.add(ws, "shards")
            record_run(side, run, f"{tool.name} add")
            side.growth_bytes = tool.repo_bytes(ws) - before if run.ok else None
        return sc

    def scenario_get(self, state: str) -> Scenario:
        """Both tools write the latest big version back, starting from the same state: their own
        workspace copy has just been deleted (which frees its page cache), and their repository's files
        are either all in memory ("warm": read through just before) or all on disk ("cold": dropped
        from the page cache, then COLD_PAUSE_S of rest)."""
        where = "repository in memory" if state == WARM else "repository read from disk"
        sc = Scenario(f"get-{state}", f"get a {self.args.size_mib} MiB version back, {where}", TARGET_GET, self.size)
        log(f"scenario {sc.id}: {sc.title}")
        sc.notes["repository_page_cache"] = state
        for tool, side, repo_dir in ((self.mlark, sc.mlark, ".mlark"), (self.dvc, sc.dvc, ".dvc/cache")):
            v = self.big_version[tool.name]
            if not v:
                side.error = tool.unavailable or f"{tool.name} has no version of the big file (its adds failed)"
                continue
            ws = self.ws[(tool.name, "big")]
            if not (ws / "big.bin").exists():  # as after its add: the workspace holds the file
                self._place_file(self.data / f"big.v{v}.bin", ws / "big.bin")
            set_page_cache(ws / repo_dir, state)
            (ws / "big.bin").unlink()
            if isinstance(tool, Mlark):
                dest = self.work / "mlark" / "restore"
                dest.mkdir()
                side.extra["version"] = f"big:v{v}"
                record_run(side, tool.get(ws, f"big:v{v}", dest), "mlark get")
                if side.run is not None and side.run.ok:
                    self._verify(side, dest / "big.bin", v)
                shutil.rmtree(dest, ignore_errors=True)
            else:
                side.extra["version"] = f"big.bin.dvc (v{v})"
                record_run(side, tool.checkout(ws), "dvc checkout")
                if side.run is not None and side.run.ok:
                    self._verify(side, ws / "big.bin", v)
                    if (ws / "big.bin").exists():
                        self.dvc_link = link_kind(ws / "big.bin")
                        side.extra["link_type"] = self.dvc_link
                    if self.dvc.cache_types == "unknown":
                        self.dvc.probe_cache_types(ws)
        return sc

    def _verify(self, side: Side, path: Path, version: int) -> None:
        if not path.is_file():
            side_error(side, f"restored file missing: {path}")
            return
        if file_digest(path) != self.digests[version]:
            side_error(side, f"restored file differs from v{version}: {path}")
            return
        side.extra["verified"] = True

    def run(self) -> None:
        self.load_before = os.getloadavg()
        self.prepare()
        self.scenarios.append(self.scenario_add_new())
        sc, growth = self.scenario_add_edit()
        self.scenarios.append(sc)
        self.checks.append(growth)
        self.scenarios.append(self.scenario_add_folder())
        self.scenarios.append(self.scenario_get(WARM))
        self.scenarios.append(self.scenario_get(COLD))
        self.load_after = os.getloadavg()
        self.final_bytes = {
            "mlark_big_repo": self.mlark.repo_bytes(self.ws[("mlark", "big")]),
            "dvc_big_cache": self.dvc.repo_bytes(self.ws[("dvc", "big")]),
            "mlark_folder_repo": self.mlark.repo_bytes(self.ws[("mlark", "folder")]),
            "dvc_folder_cache": self.dvc.repo_bytes(self.ws[("dvc", "folder")]),
        }

    def cleanup(self) -> None:
        if self.args.keep:
            log(f"kept data and repositories in {self.work}")
        elif self.work.exists():
            shutil.rmtree(self.work)

    # -- report

    def machine(self) -> dict[str, Any]:
        return {
            **machine_facts(Path(self.args.work).resolve()),
            "python_mlark": self.mlark.python_version() if not self.mlark.unavailable else None,
            "python_dvc": self._dvc_python(),
            "mlark_version": None if self.mlark.unavailable else self.mlark.version,
            "mlark_cli": str(self.mlark.exe),
            "dvc_version": None if self.dvc.unavailable else self.dvc.version,
            "dvc_cache_type_config": "copy",
            "dvc_cache_types_supported": self.dvc.cache_types,
            "dvc_link_type_used": self.dvc_link,
            # Other work on the machine skews every figure: keep the load next to them.
            "loadavg_1_5_15_before": _round3(getattr(self, "load_before", None)),
            "loadavg_1_5_15_after": _round3(getattr(self, "load_after", None)),
        }

    def _dvc_python(self) -> str | None:
        py = self.dvc.exe.parent / "python"
        if not py.exists():
            return None
        p = subprocess.run([str(py), "-c", "import platform; print(platform.python_version())"],
                           capture_output=True, text=True)
        return p.stdout.strip() or None

    def overall(self) -> Status:
        statuses = [s.status for s in self.scenarios] + [c.status for c in self.checks]
        if Status.ERROR in statuses:
            return Status.ERROR
        if Status.FAIL in statuses:
            return Status.FAIL
        return Status.PASS

    def document(self, machine: dict[str, Any]) -> dict[str, Any]:
        return {
            "benchmark": "storage",
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine,
            "params": {
                "size_mib": self.args.size_mib,
                "files": self.args.files,
                "small_file_bytes": SMALL_FILE_SIZE,
                "seed": SEED,
            },
            "data": DATA_DESCRIPTION,
            "mlark_unavailable": self.mlark.unavailable,
            "scenarios": [
                {
                    "id": s.id,
                    "title": s.title,
                    "data_bytes": s.data_bytes,
                    "mlark": s.mlark.as_json(),
                    "dvc": s.dvc.as_json(),
                    "ratio_dvc_over_mlark": None if s.ratio is None else round(s.ratio, 3),
                    "target_ratio": s.target_ratio,
                    "status": s.status.value,
                    **s.notes,
                }
                for s in self.scenarios
            ],
            "checks": [
                {
                    "id": c.id,
                    "title": c.title,
                    "file_bytes": c.file_bytes,
                    "mlark_growth_bytes": c.mlark_growth,
                    "dvc_growth_bytes": c.dvc_growth,
                    "mlark_growth_fraction": None if c.mlark_growth is None else round(c.mlark_growth / c.file_bytes, 4),
                    "dvc_growth_fraction": None if c.dvc_growth is None else round(c.dvc_growth / c.file_bytes, 4),
                    "limit_fraction": c.limit_fraction,
                    "status": c.status.value,
                }
                for c in self.checks
            ],
            "final_bytes": getattr(self, "final_bytes", None),
            "overall": self.overall().value,
        }


def _round3(t: tuple[float, ...] | None) -> list[float] | None:
    return None if t is None else [round(x, 2) for x in t]


def busy_warning(m: dict[str, Any]) -> str | None:
    cores = m.get("cores") or 1
    loads = [x for key in ("loadavg_1_5_15_before", "loadavg_1_5_15_after") if m.get(key) for x in m[key][:1]]
    if loads and max(loads) > 0.5 * cores:
        return (
            f"WARNING: the machine was busy (1-minute load {', '.join(f'{x:.1f}' for x in loads)} on {cores} cores, "
            "before and after): other work skews these times; rerun on a quiet machine for figures to publish"
        )
    return None


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def fmt_mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MIB:,.1f} MiB"


def fmt_pct(n: int | None, of: int) -> str:
    return "" if n is None or not of else f" ({100 * n / of:.1f}%)"


def render_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def report_text(bench: Bench, doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "mlark storage benchmark against DVC",
        f"machine: {m['cores']} cores ({m['cpu']}), {(m['memory_bytes'] or 0) / 2**30:.0f} GiB RAM, "
        f"{m['os']}, {m['filesystem']} file system",
        f"python: bench {m['python_bench']}, mlark {m['python_mlark'] or '-'}, dvc {m['python_dvc'] or '-'}",
        f"mlark: {m['mlark_version'] or 'NOT AVAILABLE'} ({m['mlark_cli']})",
        f"dvc: {m['dvc_version'] or 'NOT AVAILABLE'}, cache.type=copy, link used on checkout: "
        f"{m['dvc_link_type_used'] or '-'} (file system supports: {m['dvc_cache_types_supported']})",
        f"data: {DATA_DESCRIPTION}",
        "load average (1, 5, 15 min): before {}, after {}".format(
            m["loadavg_1_5_15_before"], m["loadavg_1_5_15_after"]),
        "",
    ]
    warning = busy_warning(m)
    if warning:
        lines[-1:-1] = [warning]
    rows = []
    for s in bench.scenarios:
        r = s.ratio
        rows.append([
            s.title, fmt_s(s.mlark.seconds), fmt_s(s.dvc.seconds),
            "-" if r is None else f"{r:.2f}x", f">= {s.target_ratio:g}x", s.status.value,
        ])
    for c in bench.checks:
        rows.append([
            c.title,
            fmt_mib(c.mlark_growth) + fmt_pct(c.mlark_growth, c.file_bytes),
            fmt_mib(c.dvc_growth) + fmt_pct(c.dvc_growth, c.file_bytes),
            "", f"mlark <= {100 * c.limit_fraction:g}%", c.status.value,
        ])
    lines.append(render_table(rows, ["scenario", "mlark s", "dvc s", "dvc/mlark", "target", "result"]))
    lines.append("")
    srows = []
    for s in bench.scenarios:
        if s.mlark.growth_bytes is None and s.dvc.growth_bytes is None:
            continue
        srows.append([
            s.title, fmt_mib(s.data_bytes),
            fmt_mib(s.mlark.growth_bytes) + fmt_pct(s.mlark.growth_bytes, s.data_bytes),
            fmt_mib(s.dvc.growth_bytes) + fmt_pct(s.dvc.growth_bytes, s.data_bytes),
        ])
    lines.append("storage growth (bytes of files under .mlark/ vs .dvc/cache/):")
    lines.append(render_table(srows, ["scenario", "data", "mlark growth", "dvc cache growth"]))
    errors = [
        (s.id, tool, side.error)
        for s in bench.scenarios
        for tool, side in (("mlark", s.mlark), ("dvc", s.dvc))
        if side.error
    ]
    if bench.mlark.unavailable:
        lines += ["", f"mlark NOT AVAILABLE: {bench.mlark.unavailable}", "the mlark half was skipped; targets cannot be checked"]
    seen = {bench.mlark.unavailable, bench.dvc.unavailable}
    for sid, tool, err in errors:
        if err in seen:
            continue
        lines.append(f"error in {sid} ({tool}): {err}")
    lines += ["", f"overall: {doc['overall']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Storage benchmark: mlark against DVC on the same data, in one run; prints dvc/mlark ratios.",
    )
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the big file in MiB (default 1024)")
    ap.add_argument("--files", type=int, default=10000, help="number of 4 KiB files in the folder (default 10000)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and repositories")
    ap.add_argument("--mlark", default=str(DEFAULT_MLARK), help=f"mlark CLI (default {DEFAULT_MLARK})")
    ap.add_argument("--dvc", default=str(DEFAULT_DVC), help=f"dvc CLI (default {DEFAULT_DVC})")
    ap.add_argument("--work", default=str(WORK_ROOT), help=f"work folder (default {WORK_ROOT})")
    args = ap.parse_args(argv)
    if args.size_mib < 1:
        ap.error("--size-mib must be at least 1")
    if args.files < 1:
        ap.error("--files must be at least 1")

    bench = Bench(args)
    if bench.mlark.unavailable:
        log(f"mlark NOT AVAILABLE: {bench.mlark.unavailable}")
        log("running the DVC half only; every target will be reported as ERROR")
    if bench.dvc.unavailable:
        log(f"DVC NOT AVAILABLE: {bench.dvc.unavailable}")
    try:
        bench.run()
    except ToolError as exc:
        log(f"cannot run the benchmark: {exc}")
        return ExitStatus.TOOL_ERROR
    finally:
        bench.cleanup()

    doc = bench.document(bench.machine())
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(doc, indent=2) + "\n")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(report_text(bench, doc))
        print(f"results written to {RESULT_FILE}")
    overall = bench.overall()
    if overall is Status.PASS:
        return ExitStatus.OK
    if overall is Status.FAIL:
        return ExitStatus.TARGET_MISSED
    return ExitStatus.TOOL_ERROR


if __name__ == "__main__":
    sys.exit(main())
