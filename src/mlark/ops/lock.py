"""Advisory repository locks: writers share, gc excludes. Released by the kernel on any exit, even kill -9."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def repo_lock(meta_dir: Path, *, exclusive: bool) -> Iterator[None]:
    fd = os.open(meta_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
