"""The stage history of a registered model, replayed from its audit record (for ``rollback``).

Pure functions over event rows (oldest first); no database access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from mlark.registry.stages import DEVELOPMENT
from mlark.registry.types import REGISTERED, STAGE


@dataclass(frozen=True)
class StageChange:
    """The last change of who holds ``stage``: holders before and after, and every version's stage before it."""

    stage: str
    at: datetime
    before: frozenset[str]
    after: frozenset[str]
    stages_before: dict[str, str]


def last_change(rows: Sequence[Any], stage: str) -> StageChange | None:
    """The most recent group of events (one verb's changes share ``at``) that changed the holders of ``stage``.

    ``rows`` are ``registered`` and ``stage`` events oldest first, with ``rmv_id``, ``kind``,
    ``to_value`` and ``at``. A registered version starts in ``development``.
    """
    stage_of: dict[str, str] = {}
    found: StageChange | None = None
    i = 0
    while i < len(rows):
        at = rows[i].at
        group = []
        while i < len(rows) and rows[i].at == at:
            group.append(rows[i])
            i += 1
        before_map = dict(stage_of)
        for row in group:
            if row.kind == REGISTERED:
                stage_of[row.rmv_id] = DEVELOPMENT
            elif row.kind == STAGE and row.rmv_id is not None and row.to_value is not None:
                stage_of[row.rmv_id] = row.to_value
        before = frozenset(r for r, s in before_map.items() if s == stage)
        after = frozenset(r for r, s in stage_of.items() if s == stage)
        if before != after:
            found = StageChange(stage, at, before, after, before_map)
    return found
