"""Keys of params, metrics, tags and summary entries; run statuses. Validated here, once."""

from __future__ import annotations

from mlark.errors import InvalidInput

KEY_MAX = 250
KEY_RULE = f"1 to {KEY_MAX} printable characters, no backtick, no leading or trailing space"

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
KILLED = "killed"
CRASHED = "crashed"
#: Every status a run can have; ``running`` is the only one that is not final.
STATUSES: tuple[str, ...] = (RUNNING, FINISHED, FAILED, KILLED, CRASHED)
#: Statuses a user may give to ``finish()``.
END_STATUSES: tuple[str, ...] = (FINISHED, FAILED, KILLED)


def check_key(key: object, kind: str = "metric") -> str:
    """Return ``key`` if it is a valid key of a ``kind`` (param, metric, tag, summary), else InvalidInput."""
    if not isinstance(key, str):
        raise InvalidInput(
            f"{kind} key must be a string, got {type(key).__name__} {key!r:.60}", field=f"{kind} key", allowed=KEY_RULE
        )
    if not key or len(key) > KEY_MAX or key != key.strip() or "`" in key or not key.isprintable():
        raise InvalidInput(
            f"invalid {kind} key {key[:80]!r}; allowed: {KEY_RULE}", field=f"{kind} key", value=key[:80], allowed=KEY_RULE
        )
    return key


def check_end_status(status: object) -> str:
    if status not in END_STATUSES:
        raise InvalidInput(
            f"a run finishes as one of {', '.join(END_STATUSES)}, not {status!r}",
            field="status",
            value=str(status),
            allowed=list(END_STATUSES),
        )
    return str(status)
