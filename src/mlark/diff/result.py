"""What every diff result offers: ``to_dict()`` (JSON-safe), ``to_json()``, ``to_markdown()``,
``render(width)`` (plain text for a terminal), ``has_changes`` and a one-line ``summary()``."""

from __future__ import annotations

import json
from typing import Any, ClassVar


class DiffResult:
    kind: ClassVar[str] = "diff"

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    def to_markdown(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, width: int | None = None) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def has_changes(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()
