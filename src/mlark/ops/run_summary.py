"""A run's summary as a dict whose assignments are recorded: ``run.summary["best_auc"] = 0.93``."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Iterator

from mlark.tracking import records

if TYPE_CHECKING:
    from mlark.ops.runs import Run

__all__ = ["Summary"]


class Summary(MutableMapping[str, Any]):
    """A run's summary: a dict whose assignments are recorded (``run.summary["best_auc"] = 0.93``)."""

    def __init__(self, run: "Run") -> None:
        self._run = run

    def __getitem__(self, key: str) -> Any:
        return self._run._details().summary[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._run._set_summary(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._run._details().summary:
            raise KeyError(key)
        self._run._set_summary(key, records.DELETE)

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._run._details().summary))

    def __len__(self) -> int:
        return len(self._run._details().summary)

    def __repr__(self) -> str:
        return f"Summary({self._run._details().summary!r})"
