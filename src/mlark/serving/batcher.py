"""Adaptive micro-batching: concurrent requests to one model become one ``predict`` call.

Requests join the model's queue (bounded: beyond ``max_queue`` waiting requests the answer is an
immediate 503). One dispatcher task per model forms batches:

1. it waits for a first request;
2. it waits for companions, but only as long as it is worth it: until as many requests are queued
   as were in flight at the recent peak (the clients that are active now, adapting to the load:
   a lone client is never kept waiting), until ``max_batch`` rows are queued, or until the first
   request has waited ``max_wait``, whichever comes first;
3. when the previous ``predict`` of this model has finished, it takes every queued request up to
   ``max_batch`` rows (requests that timed out are answered 504 without being predicted), takes the
   version loaded now, and predicts on the model's own thread, while the next batch gathers.

A request larger than ``max_batch`` rows is predicted alone. The results are cut by rows and each
request gets its own answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlark.serving.errors import HttpError, Overloaded
from mlark.serving.served import Item, ServedModel, run_batch

#: How long the peak of in-flight requests is remembered (seconds).
PEAK_WINDOW = 1.0


class MicroBatcher:
    def __init__(self, served: ServedModel, *, max_batch: int, max_wait: float, max_queue: int,
                 metrics: Any) -> None:
        self.served = served
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.metrics = metrics
        self._queue: deque[Item] = deque()
        self._rows = 0
        self._arrived: asyncio.Future[None] | None = None
        self._peak = 1
        self._peak_at = 0.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mlark-predict-{served.name[:20]}")
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Task[None] | None = None
        self._running_requests = 0
        self._closed = False

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name=f"batcher-{self.served.name}")

    async def close(self) -> None:
        self._closed = True
        for task in (self._task, self._running):
            if task is not None:
                task.cancel()
        for task in (self._task, self._running):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(HttpError(503, "the server is shutting down", error="ShuttingDown"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    def note_in_flight(self, n: int) -> None:
        now = time.monotonic()
        if n >= self._peak or now - self._peak_at > PEAK_WINDOW:
            self._peak, self._peak_at = n, now

    def submit(self, item: Item) -> None:
        """Queue a request; :class:`Overloaded` when the queue is full."""
        if self._closed:
            raise HttpError(503, "the server is shutting down", error="ShuttingDown")
        if len(self._queue) >= self.max_queue:
            raise Overloaded(
                f"model {self.served.name} has {len(self._queue)} requests waiting (the limit is "
                f"{self.max_queue}); retry shortly",
                model=self.served.name,
            )
        self._queue.append(item)
        self._rows += item.payload.rows
        self.metrics.set_queue(self.served.name, len(self._queue))
        waiter = self._arrived
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_arrival(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        waiter = self._arrived = loop.create_future()
        handle = None if timeout is None else loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._arrived = None
        return True

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                await self._wait_arrival(None)
            # Gather companions, adaptively.
            first = self._queue[0]
            target = max(1, min(self._peak - self._running_requests, self.max_queue))
            until = first.arrived + self.max_wait
            while len(self._queue) < target and self._rows < self.max_batch:
                delay = until - loop.time()
                if delay <= 0:
                    break
                await self._wait_arrival(delay)
            # One predict at a time per model: the next batch gathers while this one runs.
            if self._running is not None:
                try:
                    await asyncio.shield(self._running)
                except Exception:  # noqa: BLE001 - its own requests got their answers
                    pass
            items = self._take(loop.time())
            if items:
                self._running_requests = len(items)
                self._running = loop.create_task(self._execute(items))

    def _take(self, now: float) -> list[Item]:
        items: list[Item] = []
        rows = 0
        while self._queue:
            item = self._queue[0]
            if items and rows + item.payload.rows > self.max_batch:
                break
            self._queue.popleft()
            self._rows -= item.payload.rows
            if item.cancelled or item.future.done():
                continue
            if item.deadline <= now:
                item.future.set_exception(_timed_out(item))
                continue
            items.append(item)
            rows += item.payload.rows
        self.metrics.set_queue(self.served.name, len(self._queue))
        return items

    async def _execute(self, items: list[Item]) -> None:
        loop = asyncio.get_running_loop()
        loaded = self.served.current  # the version this whole batch is predicted with
        if loaded is None:
            for item in items:
                if not item.future.done():
                    item.future.set_exception(HttpError(503, f"model {self.served.name} is not loaded yet",
                                                        error="NotReady", headers={"retry-after": "1"}))
            return
        started = time.perf_counter()
        try:
            answers = await loop.run_in_executor(self._executor, run_batch, self.served.name, loaded, items)
        except BaseException as exc:
            self._running_requests = 0  # a bug: answer 500 rather than hang, and let the next batch run
            for item in items:
                if not item.future.done():
                    item.future.set_exception(HttpError(500, f"prediction failed: {type(exc).__name__}: {exc}",
                                                        error="InternalError"))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._running_requests = 0
        self.metrics.observe_batch(self.served.name, sum(it.payload.rows for it in items), len(items),
                                   time.perf_counter() - started)
        for item, answer in zip(items, answers, strict=True):
            if item.future.done():
                continue
            if isinstance(answer, Exception):
                item.future.set_exception(answer)
            else:
                item.future.set_result(answer)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _timed_out(item: Item) -> HttpError:
    return HttpError(504, "no prediction within the request timeout; the server is busy or the model slow",
                     error="Timeout", headers={"retry-after": "1"})
