"""The process-wide part of runs: the active-run stack, and signals arriving during database work."""

from __future__ import annotations

import signal
import threading

import pytest

from mlark.ops import run_lifecycle
from mlark.ops.run_lifecycle import critical


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(run_lifecycle, "kill_all", lambda reason: calls.append(reason))
    monkeypatch.setattr(run_lifecycle, "_previous", {
        signal.SIGTERM: lambda signum, frame: calls.append("previous SIGTERM handler"),
        signal.SIGINT: lambda signum, frame: calls.append("previous SIGINT handler"),
    })
    return calls


def test_sigterm_kills_the_runs_then_chains(recorded: list[str]) -> None:
    run_lifecycle._handle(signal.SIGTERM, None)
    assert recorded == ["killed by SIGTERM", "previous SIGTERM handler"]


def test_sigint_is_left_to_the_previous_handler(recorded: list[str]) -> None:
    run_lifecycle._handle(signal.SIGINT, None)
    assert recorded == ["previous SIGINT handler"]  # KeyboardInterrupt then ends the runs as killed


def test_a_signal_during_database_work_is_handled_after_it(recorded: list[str]) -> None:
    with critical():
        with critical():
            run_lifecycle._handle(signal.SIGTERM, None)
        assert recorded == []  # still inside the outer section
    assert recorded == ["killed by SIGTERM", "previous SIGTERM handler"]


def test_only_the_main_thread_defers(recorded: list[str]) -> None:
    seen: list[int] = []

    def work() -> None:
        with critical():
            seen.append(run_lifecycle._depth)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [0]
