"""The server's settings, checked once (the CLI maps its options onto :class:`ServeOptions`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlark.errors import InvalidInput

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_MAX_QUEUE = 512


@dataclass(frozen=True)
class ServeOptions:
    """``max_batch``: rows per ``predict`` call; ``max_wait_ms``: how long the first request of a batch
    waits for others; ``max_queue``: requests waiting per model before the server answers 503;
    ``max_body``: bytes per request body (413 beyond); ``timeout``: seconds from a request's arrival
    to its answer (408 while its body arrives, 504 after); ``poll_interval``: seconds between checks of
    what each followed reference names (0 = do not follow); ``trust``: passed to ``load_model``;
    ``threads``: threads one ``predict`` call may use."""

    max_batch: int = DEFAULT_MAX_BATCH
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    max_queue: int = DEFAULT_MAX_QUEUE
    max_body: int = DEFAULT_MAX_BODY
    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    trust: tuple[str, ...] = ()
    threads: int = 1
    multiprocess_dir: str | None = None
    names: dict[str, str] = field(default_factory=dict)  # ref -> served name given by the user

    def __post_init__(self) -> None:
        _int("max_batch", self.max_batch, 1, 1_000_000)
        _num("max_wait_ms", self.max_wait_ms, 0, 10_000)
        _int("max_queue", self.max_queue, 1, 1_000_000)
        _int("max_body", self.max_body, 1, 2**40)
        _num("timeout", self.timeout, 0.001, 86_400)
        _num("poll_interval", self.poll_interval, 0, 86_400)
        _int("threads", self.threads, 1, 1024)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trust"] = list(self.trust)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ServeOptions:
        doc = dict(doc)
        doc["trust"] = tuple(doc.get("trust") or ())
        return cls(**doc)


def _int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name)


def _num(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or value != value:
        raise InvalidInput(f"{name} must be a number from {low} to {high}, got {value!r}", field=name)
