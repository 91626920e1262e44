"""``mlark demo``: an end-to-end tour on real data, narrated step by step.

The demo is a list of steps (``Step``: a title and a function of a shared ``DemoContext``), grouped
in one module per capability, each exporting ``STEPS``:

- ``workspace``: create (or, with ``force``, recreate) the demo folder and its repository;
- ``data``: export a real data set, commit, edit, commit, history and storage saved, alias, rollback;
- ``tracking``: train on each data version in tracked runs; query, compare and trace them;
- ``models``: diff the data versions, register and promote a model, load it from the registry, trace
  its lineage and the impact of its data;
- ``serving``: serve the production model over HTTP through a promotion and a rollback under load, then
  score a file in batch and record the scores in the lineage;
- ``verify``: fsck, always last.

To add a capability, write ``mlark/demo/<capability>.py`` with functions decorated by
``@step("Title")`` that read what earlier steps left in ``ctx.state``, narrate through ``ctx.out``,
check through ``ctx.require`` and record results in ``ctx.summary``; export them as ``STEPS`` and
list the module in ``pipeline()`` below, before ``verify``.

This package sits beside the CLI (it may use ``mlark.ops``, never ``mlark.cli``) and never prints:
narration goes to the ``Reporter`` the caller passes. Heavy libraries (scikit-learn, pandas) are
imported inside the steps that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.demo.context import DemoContext, Step, step
from mlark.demo.report import NullReporter, RecordingReporter, Reporter

DEFAULT_WORKDIR = "demo-workspace"

__all__ = ["DEFAULT_WORKDIR", "DemoContext", "NullReporter", "RecordingReporter", "Reporter", "Step", "pipeline",
           "run", "step"]


def pipeline() -> list[Step]:
    """Every step of the demo, in order."""
    from mlark.demo import data, models, serving, tracking, verify, workspace

    return [*workspace.STEPS, *data.STEPS, *tracking.STEPS, *models.STEPS, *serving.STEPS, *verify.STEPS]


def run(workdir: Path, *, force: bool, out: Reporter, author: str | None = None,
        steps: list[Step] | None = None) -> dict[str, Any]:
    """Run the demo in ``workdir``; return the summary document (also what ``mlark demo --json`` prints).

    Refuses (``InvalidInput``) a non-empty folder that is not a previous demo workspace, and a previous
    demo workspace unless ``force``. A failed check raises ``IntegrityError``.
    """
    from mlark.demo import workspace

    workdir = Path(workdir).expanduser().resolve()
    workspace.check(workdir, force=force)  # refuse before any narration or heavy import
    chosen = pipeline() if steps is None else list(steps)
    ctx = DemoContext(workdir=workdir, out=out, force=force, author=author)
    try:
        for number, current in enumerate(chosen, 1):
            out.step(number, len(chosen), current.title)
            current(ctx)
    finally:
        if ctx.repo_or_none is not None:
            ctx.repo_or_none.close()
    return {"ok": True, **ctx.summary, "steps": [s.title for s in chosen]}
