"""The live runs of this process: the active-run stack, SIGTERM/SIGINT handling and the exit hook.

- ``register``/``unregister`` keep the stack of live runs; ``active()`` is the innermost one.
- Signal handlers are installed once, from the main thread only, and chain to
  the handler that was there before:

  * SIGTERM: every live run is marked ``killed`` and its points are flushed;
    then the previous handler runs (the default one ends the process by the
    same signal). If a previous handler keeps the process alive, the runs stay
    open and end as ``killed``.
  * SIGINT: with Python's default handler, ``KeyboardInterrupt`` is raised and
    the ``with`` block (or the exit hook) ends the run as ``killed``; a program
    that catches it and goes on keeps its runs. With ``SIG_DFL`` the runs are
    marked ``killed`` first, as for SIGTERM. A custom handler is just called.
  * A signal ignored (``SIG_IGN``) when the first run starts is left ignored.

- Database writes made from the main thread run inside :func:`critical`; a
  signal that arrives meanwhile is handled when the write is over, so the
  handler never waits for a transaction its own thread holds.
- At interpreter exit, runs still live are ended: ``killed`` after an
  unhandled ``KeyboardInterrupt``, ``failed`` (with the error) after another
  unhandled exception, else ``finished``.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from mlark.ops.runs import Run

_lock = threading.Lock()
_live: list["Run"] = []
_installed = False
_previous: dict[int, Any] = {}
_depth = 0
_pending: list[int] = []
_unhandled: BaseException | None = None
_HANDLED = (signal.SIGTERM, signal.SIGINT)

#: How much of an error a failed run keeps (the end of the traceback).
ERROR_MAX = 20_000


def error_text(exc: BaseException) -> str:
    """The error a failed run keeps: the traceback, cut to its last ``ERROR_MAX`` characters."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()
    return text if len(text) <= ERROR_MAX else "...\n" + text[-ERROR_MAX:]


def register(run: "Run") -> None:
    with _lock:
        _live.append(run)
        _install()


def unregister(run: "Run") -> None:
    with _lock:
        if run in _live:
            _live.remove(run)


def active() -> "Run | None":
    """The innermost live run of this process (the last started that has not finished)."""
    live = _live
    return live[-1] if live else None


def live_runs() -> list["Run"]:
    return list(_live)


# --------------------------------------------------------------------------- deferring signals


@contextmanager
def critical() -> Iterator[None]:
    """A stretch of main-thread database work: a signal arriving meanwhile is handled after it."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            signum = _pending[0]
            _pending.clear()
            _handle(signum, None)


# --------------------------------------------------------------------------- handlers


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        global _unhandled
        _unhandled = exc
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be installed from the main thread
    for signum in _HANDLED:
        try:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            _previous[signum] = previous
            signal.signal(signum, _handle)
        except (ValueError, OSError):  # not the main interpreter, or an unsupported platform
            continue


def _handle(signum: int, frame: Any) -> None:
    if _depth > 0 and threading.current_thread() is threading.main_thread():
        _pending.append(signum)
        return
    previous = _previous.get(signum, signal.SIG_DFL)
    if signum == signal.SIGINT and previous is not signal.SIG_DFL:
        if callable(previous):
            previous(signum, frame)  # Python's default raises KeyboardInterrupt
        return
    kill_all(f"killed by {signal.Signals(signum).name}")
    if callable(previous):
        previous(signum, frame)
        return
    # SIG_DFL (or a handler installed from C that Python reports as None): die by the same signal.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def kill_all(reason: str) -> None:
    """Mark every live run ``killed`` and flush its points, innermost first; never raises."""
    global _depth
    _depth += 1
    try:
        for run in reversed(list(_live)):
            try:
                run._signal_kill(reason)
            except BaseException:  # a run that cannot be written is found crashed later
                pass
    finally:
        _depth -= 1


def _at_exit() -> None:
    exc = _unhandled
    for run in reversed(list(_live)):
        try:
            if isinstance(exc, KeyboardInterrupt):
                run.finish("killed", error="KeyboardInterrupt")
            elif exc is not None:
                run.finish("failed", error=error_text(exc))
            else:
                run.finish()
        except BaseException:
            pass
