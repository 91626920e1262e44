"""Reading a request body within limits: its size (413, also for chunked bodies without a length) and time (408)."""

from __future__ import annotations

import asyncio
from typing import Any

from mlark.serving.errors import HttpError

CLOSE = {"connection": "close"}


def _too_large(limit: int) -> HttpError:
    return HttpError(413, f"the request body is larger than {limit} bytes (the server's --max-body); "
                     "send fewer rows per request", error="BodyTooLarge", headers=CLOSE, limit=limit)


async def read_body(request: Any, limit: int, deadline: float) -> bytes:
    """The body of a Starlette ``request``: at most ``limit`` bytes, complete before ``deadline`` (loop time)."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
            if declared < 0:
                raise ValueError
        except ValueError:
            raise HttpError(400, f"content-length {length[:40]!r} is not a byte count", error="MalformedHeader",
                            headers=CLOSE) from None
        if declared > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in request.stream():
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
    except TimeoutError:
        raise HttpError(408, "the request body did not arrive within the request timeout", error="BodyTimeout",
                        headers=CLOSE) from None
    except HttpError:
        raise
    except Exception as exc:  # starlette's ClientDisconnect and the like: nobody is left to answer
        raise HttpError(400, f"the request body could not be read: {type(exc).__name__}", error="BodyNotRead",
                        headers=CLOSE) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
