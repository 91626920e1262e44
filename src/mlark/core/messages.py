"""Commit messages: required, and vague ones draw a warning."""

from __future__ import annotations

import re

from mlark.errors import InvalidInput

_VAGUE = re.compile(
    r"^\s*(update[sd]?|changes?|changed|added files?|add files?|wip|fix|fixes|misc|stuff|tmp|test|new version|\.+)\s*[.!]*\s*$",
    re.IGNORECASE,
)
MESSAGE_MAX = 10_000


def check_message(message: object) -> str:
    if not isinstance(message, str) or not message.strip():
        raise InvalidInput(
            "a message is required: say what changed and why (for example -m \"Drop rows with missing tenure\")",
            field="message",
        )
    if len(message) > MESSAGE_MAX:
        raise InvalidInput(f"message is longer than {MESSAGE_MAX} characters", field="message")
    return message.strip()


def vague_message_warning(message: str) -> str | None:
    if _VAGUE.match(message):
        return f"the message {message!r} does not say what changed or why; a later reader will need both"
    return None
