"""The run a framework integration logs into (``mlark.lightning``, ``mlark.transformers``, ``mlark.sklearn``).

Which run: the one given (``run=``), else the active run (``with mlark.start_run(...)``), else
one the integration starts itself, or resumes when it knows the run's id. Only a run it started or
resumed is *owned*: :meth:`IntegrationRun.finish` finishes an owned run and only flushes any other,
which stays open for whoever started it. After an owned run is finished, the next
:meth:`IntegrationRun.open` resumes the same run by id.

Layer: below the integrations, above :mod:`mlark.api`, which it drives like any user.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

__all__ = ["IntegrationRun", "is_running"]


def is_running(run: Any) -> bool:
    """False once ``run`` has ended (a run without a status counts as running)."""
    return getattr(run, "status", "running") in (None, "running")


class IntegrationRun:
    """Which run an integration logs into, and whether it is the integration's to finish.

    Args:
        run: a run to log into instead of starting one; never finished here.
        run_id: the id of a run to resume on the first :meth:`open`.
        tags: set on every run :meth:`open` attaches, started here or not.
        repo: passed to ``mlark.start_run`` for the runs started or resumed here.
        capture: likewise.
    """

    def __init__(self, *, run: Any = None, run_id: str | None = None, tags: Mapping[str, Any] | None = None,
                 repo: Any = None, capture: Any = None) -> None:
        self.run: Any = run
        self.run_id: str | None = getattr(run, "id", None) or run_id
        self.owned = False  # True while self.run is a run started or resumed here
        self._tags = dict(tags or {})
        self._options = {key: value for key, value in (("repo", repo), ("capture", capture)) if value is not None}

    def open(self, project: str, name: str | None = None) -> Any:
        """The run to log into: the current one while it runs; else the active run (when no run was
        named); else the named run resumed; else a new run ``name`` in ``project``."""
        if self.run is not None and is_running(self.run):
            return self.run
        import mlark.api as api

        if self.run is None and self.run_id is None:
            active = api.active_run()
            if active is not None:
                return self._attach(active, owned=False)
        if self.run_id is not None:  # after finish(), or run_id= given: the same run again
            run = api.start_run(resume=self.run_id, **self._options)
        else:
            run = api.start_run(project, name=name, **self._options)
        return self._attach(run, owned=True)

    def _attach(self, run: Any, *, owned: bool) -> Any:
        self.run, self.run_id, self.owned = run, run.id, owned
        if self._tags:
            run.set_tags(self._tags)
        return run

    def finish(self, status: str = "finished") -> None:
        """End an owned run with ``status`` (the next :meth:`open` resumes it); flush any other run."""
        run = self.run
        if run is None:
            return
        if not self.owned:  # someone else's run: make the points durable, leave it open
            run.flush()
            return
        if status == "finished":
            run.finish()
        else:
            run.finish(status=status)
        self.run, self.owned = None, False

    def detached(self) -> "IntegrationRun":
        """A copy that knows the run's id but holds no live run: what to carry into another process."""
        twin = copy.copy(self)
        twin.run, twin.owned = None, False
        return twin
