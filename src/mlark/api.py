"""The Python API of experiment tracking: ``mlark.start_run``, ``mlark.runs``, ``mlark.get_run``, ...

This module is the Python twin of the CLI and, like it, an adapter: it is the
only part of the Python API that reads the environment.

- ``MLARK_REPO``: the repository (a folder at or below which ``.mlark/`` lives);
  otherwise the repository is found by walking up from the current folder.
- ``MLARK_AUTHOR``: who runs and commits (default ``user@host``).
- ``MLARK_CAPTURE=0`` turns every capture off; ``MLARK_CAPTURE_GIT``,
  ``MLARK_CAPTURE_COMMAND``, ``MLARK_CAPTURE_PYTHON``, ``MLARK_CAPTURE_PACKAGES``,
  ``MLARK_CAPTURE_HOST``, ``MLARK_CAPTURE_USER`` set to ``0`` turn one part off.
  A ``capture=`` argument wins over the environment.

A repository opened here is kept for the life of the process and shared by
every call that names the same one.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from mlark.ops.repo import Repo
    from mlark.ops.runs import Run
    from mlark.tracking.capture import Capture

__all__ = ["active_run", "get_run", "runs", "seed_everything", "start_run"]

_FALSE = {"0", "false", "no", "off"}
_repos: dict[tuple[str, str, str | None], "Repo"] = {}
_repos_lock = threading.Lock()

def _open_repo(repo: "Repo | str | os.PathLike[str] | None") -> "Repo":
    from mlark.ops import config as cfg
    from mlark.ops.repo import Repo

    if isinstance(repo, Repo):
        return repo
    start = repo if repo is not None else os.environ.get("MLARK_REPO") or None
    root = cfg.find_root(start)
    repo_id = cfg.read_config(root / cfg.DIRNAME).id
    author = os.environ.get("MLARK_AUTHOR") or None
    key = (str(root), repo_id, author)
    with _repos_lock:
        found = _repos.get(key)
        if found is None:
            found = _repos[key] = Repo.open(root, author=author)
        return found


def _capture_from_env() -> "Capture":
    from mlark.tracking.capture import Capture

    if os.environ.get("MLARK_CAPTURE", "").strip().lower() in _FALSE:
        return Capture.none()
    off = [p for p in Capture.parts() if os.environ.get(f"MLARK_CAPTURE_{p.upper()}", "").strip().lower() in _FALSE]
    return Capture().without(*off)


def start_run(project: str | None = None, name: str | None = None, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None, *, parent: "Run | str | None" = None,
              resume: str | None = None, repo: "Repo | str | os.PathLike[str] | None" = None,
              capture: "Capture | None" = None) -> "Run":
    """Start a run (or, with ``resume=run_id``, reopen one) and return its live handle.

    Use it as a context manager: leaving the ``with`` block finishes the run
    (``failed`` with the error text on an exception, ``killed`` on Ctrl-C).
    """
    from mlark.errors import InvalidInput
    from mlark.ops import run_start

    target = _open_repo(repo)
    if resume is not None:
        if parent is not None:
            raise InvalidInput("resume= and parent= cannot be combined: a resumed run keeps its parent", field="parent")
        return run_start.resume_run(target, resume, project=project, name=name, params=params, tags=tags)
    if project is None:
        raise InvalidInput("start_run needs a project (for example start_run(project=\"churn\"))", field="project")
    return run_start.start_run(target, project, name, params, tags, parent=parent,
                              capture_options=capture if capture is not None else _capture_from_env())


def runs(project: str | None = None, filter: str | None = None, order_by: str | Sequence[str] | None = None,
         limit: int | None = None, as_frame: bool = False,
         repo: "Repo | str | os.PathLike[str] | None" = None) -> "list[Run] | Any":
    """Runs of ``project`` (every project when None) matching ``filter``, ordered by ``order_by``, at most ``limit``.

    ``filter``: ``"params.max_depth >= 8 and metrics.val_auc > 0.9"``; ``order_by``:
    ``"metrics.val_auc desc"``. Newest first by default. ``as_frame=True`` returns a
    pandas DataFrame (id, name, project, status, start_time, end_time, params.*, metrics.*, tags.*).
    """
    from mlark.ops import run_search

    target = _open_repo(repo)
    if as_frame:
        return run_search.runs_frame(target, project=project, filter=filter, order_by=order_by, limit=limit)
    return run_search.search(target, project=project, filter=filter, order_by=order_by, limit=limit)


def get_run(id: str, repo: "Repo | str | os.PathLike[str] | None" = None) -> "Run":
    """The run with this id (a unique prefix of at least 4 characters will do)."""
    from mlark.ops import run_search

    return run_search.get_run(_open_repo(repo), id)


def active_run() -> "Run | None":
    """The innermost run this process is running, or None."""
    from mlark.ops.run_lifecycle import active

    return active()


def seed_everything(seed: int) -> dict[str, int]:
    """Seed ``random``, NumPy and PyTorch (those installed); record the seeds on the active run; return them."""
    from mlark.ops.run_lifecycle import active
    from mlark.tracking.seeds import seed_everything as seed_all

    seeds = seed_all(seed)
    run = active()
    if run is not None:
        run.record_seeds(seeds)
    return seeds


def _forget_repos() -> None:
    """Drop the repositories kept open (tests)."""
    with _repos_lock:
        for repo in _repos.values():
            try:
                repo.close()
            except Exception:
                pass
        _repos.clear()
