"""Is a run's process still there? Heartbeat age, and the pid on the run's own host."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

#: A running run writes its heartbeat at least this often (seconds).
HEARTBEAT_INTERVAL = 10.0
#: A ``running`` run whose heartbeat is older than this is ``crashed`` (three heartbeat intervals).
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_INTERVAL)


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this machine and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    # The state follows the parenthesised command name, which may itself contain ')'.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def is_stale(*, heartbeat_at: datetime, pid: int | None, host: str | None, now: datetime, this_host: str) -> bool:
    if heartbeat_at < now - STALE_AFTER:
        return True
    return bool(host == this_host and pid and pid != os.getpid() and not pid_alive(pid))
