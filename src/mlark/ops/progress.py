"""How long operations report progress. Adapters implement Progress; ops call it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, total_bytes: int, total_files: int) -> None: ...

    def advance(self, bytes_done: int, bytes_new: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, task: str, total_bytes: int, total_files: int) -> None:
        pass

    def advance(self, bytes_done: int, bytes_new: int) -> None:
        pass

    def finish(self) -> None:
        pass
