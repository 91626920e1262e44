"""mlark.serving: models online over HTTP, following their aliases and stages.

>>> from mlark.serving import ServeOptions, Sources, create_app
>>> app = create_app(["./out/churn-rf"], Sources(), ServeOptions(max_batch=64))   # a Starlette app
>>> # uvicorn.run(app, port=8080)

``mlark serve REF [REF...]`` is the usual way in: it opens the repository, resolves the references
(``models:/churn@production``, ``churn-rf@best``, ``churn-rf:v3``, a model folder) and runs the
app under uvicorn with ``--workers N`` processes. The design (micro-batching, following aliases,
limits, metrics) is in docs/design/serving.md. Importing this package imports no web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlark.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlark.serving.app import ModelServer, create_app
    from mlark.serving.config import ServeOptions
    from mlark.serving.source import FolderSource, Resolution, RepoSource, Sources, resolve_version

_LAZY = {
    "create_app": ("mlark.serving.app", "create_app"),
    "ModelServer": ("mlark.serving.app", "ModelServer"),
    "ServeOptions": ("mlark.serving.config", "ServeOptions"),
    "FolderSource": ("mlark.serving.source", "FolderSource"),
    "RepoSource": ("mlark.serving.source", "RepoSource"),
    "Resolution": ("mlark.serving.source", "Resolution"),
    "Sources": ("mlark.serving.source", "Sources"),
    "resolve_version": ("mlark.serving.source", "resolve_version"),
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = sorted(_LAZY)
