"""Following references: load every model at start, then swap in what each alias or stage moves to.

Every ``poll_interval`` seconds the follower asks the source which version each followed reference
names now (one cheap read per reference). When the digest differs from the version served and was
not refused before, it loads the new version on the load thread (fetch, verify, load, predict on the
input example) while the old one keeps serving, then swaps it in with one assignment. A version
that fails any step is refused: the old version keeps serving, the refusal is logged (with the
reason) and counted (``mlark_serving_reload_refusals_total``), and that digest is not tried again
unless the reference moves away and back. A reference that stops resolving (its alias removed)
keeps its last version and says why in ``GET /v1/models``.

Each server process (each ``--workers`` worker) follows by itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlark.errors import MlarkError
from mlark.serving.config import ServeOptions
from mlark.serving.served import ServedModel, load_version, stamp
from mlark.serving.source import ModelSource, Resolution

log = logging.getLogger("mlark.serving")


class Follower:
    def __init__(self, models: list[ServedModel], source: ModelSource, options: ServeOptions, metrics: Any) -> None:
        self.models = models
        self.source = source
        self.options = options
        self.metrics = metrics
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlark-resolve")
        self._load = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlark-load")
        self._task: asyncio.Task[None] | None = None
        self._loads: set[asyncio.Task[None]] = set()
        self.polls = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mlark-follower")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._loads) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._io.shutdown(wait=False, cancel_futures=True)
        self._load.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        for model in self.models:
            await self.check(model)
        await asyncio.gather(*self._loads, return_exceptions=True)
        followed = [m for m in self.models if m.follows]
        if not followed or self.options.poll_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.options.poll_interval)
            self.polls += 1
            for model in followed:
                await self.check(model)

    async def check(self, model: ServedModel) -> None:
        """Resolve ``model.ref``; start loading what it names if that is new."""
        loop = asyncio.get_running_loop()
        try:
            res: Resolution = await loop.run_in_executor(self._io, self.source.resolve, model.ref)
        except MlarkError as exc:
            if model.unresolvable != str(exc):
                log.warning("%s: %s does not resolve now (%s); %s", model.name, model.ref, exc,
                            "keeping the version served" if model.current else "nothing to serve yet")
            model.unresolvable = str(exc)
            if model.current is None and model.loading_digest is None:
                model.state, model.error = "failed", str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a database hiccup: try again next poll
            log.warning("%s: resolving %s failed: %s: %s", model.name, model.ref, type(exc).__name__, exc)
            return
        model.unresolvable = None
        current = model.current
        if current is not None and res.digest == current.resolution.digest:
            if (res.version, res.registered) != (current.resolution.version, current.resolution.registered):
                model.current = stamp(model.name, current, _keep_moved(res, current.resolution))
            return
        if res.digest in model.refused_digests or res.digest == model.loading_digest:
            return
        model.loading_digest = res.digest
        task = loop.create_task(self._load_and_swap(model, res), name=f"load-{model.name}")
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _load_and_swap(self, model: ServedModel, res: Resolution) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                res = await loop.run_in_executor(self._io, lambda: self.source.resolve(model.ref, details=True))
            except Exception:  # noqa: BLE001 - "since when" is a detail; load what was found
                pass
            if res.digest != model.loading_digest:
                return  # it moved again meanwhile: the next poll loads the newest
            cache = self.source.cache_for(res) if hasattr(self.source, "cache_for") else None
            loaded = await loop.run_in_executor(self._load, lambda: load_version(
                model.name, self.source.fetch, res, trust=self.options.trust, threads=self.options.threads,
                cache=cache))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure refuses this version
            reason = f"{type(exc).__name__}: {exc}"
            model.refuse(res, reason)
            self.metrics.refused(model.name)
            if model.current is None:
                model.state, model.error = "failed", reason
                log.error("%s: cannot serve %s (%s): %s", model.name, res.version, model.ref, reason)
            else:
                log.error("%s: refused %s (%s now names it): %s; still serving %s", model.name, res.version,
                          model.ref, reason, model.current.resolution.version)
            return
        finally:
            if model.loading_digest == res.digest:
                model.loading_digest = None
        previous = model.swap(loaded)
        prev_labels = None
        if previous is not None:
            p = previous.resolution
            prev_labels = (model.ref, p.version, p.digest, p.registered or "")
            self.metrics.reloaded(model.name)
            log.info("%s: now serving %s (%s moved from %s)", model.name, res.version, model.ref, p.version)
        else:
            log.info("%s: serving %s (%s)", model.name, res.version, model.ref)
        self.metrics.served(model.name, model.ref, res.version, res.digest, res.registered, prev_labels)


def _keep_moved(new: Resolution, old: Resolution) -> Resolution:
    from dataclasses import replace

    return new if new.moved_at is not None else replace(new, moved_at=old.moved_at)
