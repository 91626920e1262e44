"""The demo's workspace: refuse folders that are not ours, wipe a previous demo on --force, init a repository."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlark.demo.context import MARKER, DemoContext, read_marker, step, write_marker
from mlark.errors import InvalidInput, StorageError


@dataclass(frozen=True)
class WorkspacePlan:
    workdir: Path
    wipe: tuple[str, ...]  # top-level entries of a previous demo to delete


def check(workdir: Path, *, force: bool) -> WorkspacePlan:
    """Decide what to do with ``workdir`` without touching it; raise InvalidInput when it is not ours to use."""
    if workdir.exists() and not workdir.is_dir():
        raise InvalidInput(f"{workdir} exists and is not a folder; give the demo a new or empty folder with --workdir",
                           path=str(workdir))
    if not workdir.exists():
        return WorkspacePlan(workdir, ())
    try:
        present = sorted(os.listdir(workdir))
    except OSError as exc:
        raise InvalidInput(f"cannot read {workdir}: {exc.strerror}", path=str(workdir)) from exc
    if not present:
        return WorkspacePlan(workdir, ())
    marker = read_marker(workdir)
    if marker is None:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise InvalidInput(
            f"{workdir} is not empty ({shown}) and is not a demo workspace; the demo only writes into a new "
            "or empty folder or a previous demo workspace; pick another folder with --workdir",
            path=str(workdir),
        )
    if not force:
        raise InvalidInput(
            f"{workdir} holds a previous demo; run 'mlark demo --force' to wipe it and start over, "
            "or pick another folder with --workdir",
            path=str(workdir),
        )
    ours = set(marker["entries"]) | {MARKER}
    foreign = [name for name in present if name not in ours]
    if foreign:
        raise InvalidInput(
            f"{workdir} holds a previous demo but also {', '.join(foreign)}, which the demo did not create; "
            "refusing to wipe it: move those away or pick another folder with --workdir",
            path=str(workdir), unexpected=foreign,
        )
    return WorkspacePlan(workdir, tuple(present))


def _wipe(plan: WorkspacePlan) -> None:
    for name in plan.wipe:
        target = plan.workdir / name
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {target} from the previous demo: {exc.strerror}",
                               path=str(target)) from exc


@step("Create a fresh workspace")
def create_workspace(ctx: DemoContext) -> None:
    from mlark.ops.repo import Repo

    plan = check(ctx.workdir, force=ctx.force)  # again: the folder may have changed since
    if plan.wipe:
        _wipe(plan)
        ctx.out.say(f"Wiped the previous demo in {ctx.workdir} (--force).")
    try:
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        write_marker(ctx.workdir, [])
    except OSError as exc:
        raise StorageError(f"cannot create the demo workspace {ctx.workdir}: {exc.strerror}",
                           path=str(ctx.workdir)) from exc
    ctx.path(".mlark")
    ctx.repo_or_none = Repo.init(ctx.workdir, author=ctx.author)
    ctx.out.say(f"The demo works in {ctx.workdir}. A repository is one folder, .mlark/, "
                "holding content-addressed pack files and a SQLite metadata database.")
    ctx.out.command(f"mkdir {ctx.workdir.name} && cd {ctx.workdir.name} && mlark init")
    ctx.summary["workdir"] = str(ctx.workdir)
    ctx.summary["repository"] = str(ctx.repo.meta_dir)
    ctx.summary["wiped_previous_demo"] = bool(plan.wipe)


STEPS = (create_workspace,)
