"""Pausing Python's cyclic garbage collector while an operation builds many small objects and no cycles.

Lineage walks build about a million tuples, lists and strings for a 100,000-node graph; adding a folder
of 10,000 files builds some 100,000 planned files, chunk references and tree entries. Each 700
allocations start a collection, and the older generations are traversed in full together with
everything imported (SQLAlchemy alone is a few hundred thousand objects): 60% of a large walk, a tenth
of such an add. Reference counting frees all of it, so the collector is paused for the operation."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block. Overlapping pauses (threads) are counted: the
    last one to end restores the state the first one found."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
