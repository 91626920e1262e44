"""Pausing Python's cyclic garbage collector while an operation builds many small objects.

Adding a folder of 10,000 files makes some 100,000 small objects (planned files, chunk references,
tree entries), none of them in a reference cycle: reference counting frees every one. Yet each 700
allocations start a collection, and the older generations are traversed in full, together with
everything imported before (SQLAlchemy alone is a few hundred thousand objects): about a tenth of the
CPU time of such an add. The collector is paused for the operation and restored as it was after.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
