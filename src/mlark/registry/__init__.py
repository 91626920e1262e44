"""mlark.registry: registered models, their versions, lifecycle stages, aliases and a full audit trail.

>>> import mlark
>>> mlark.registry.register("churn", "churn-rf:v3", message="First candidate")        # -> 1
>>> mlark.registry.promote("churn", 1, "production", message="Passed offline eval")
>>> mlark.registry.history("churn")                                   # who, when, from, to, why
>>> mlark.registry.rollback("churn", "production")
>>> mlark.registry.lineage("models:/churn@production")                # version, run, params, metrics, data

The public functions are the adapters of :mod:`mlark.api_models` (they take ``repo=`` or open the
repository like ``mlark.start_run``); they are looked up when first used, so importing this
package imports nothing. The package's own modules are a layer beside ``tracking`` and
``lineage``: ``stages`` (stage and alias rules), ``types`` (value types), ``store`` (the tables),
``lifecycle`` (the stage history behind rollback), ``provenance`` (registered version -> run -> data).
See docs/design/registry.md.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mlark.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlark.api_models import (
        history,
        lineage,
        list_models,
        promote,
        register,
        remove_alias,
        resolve,
        rollback,
        search,
        set_alias,
        set_description,
        set_tags,
        show,
    )
    from mlark.registry.stages import STAGES
    from mlark.registry.types import ModelLineage, ModelVersion, RegisteredModel, RegistryEvent, RunSummary

_API = "mlark.api_models"

_LAZY = {
    "register": (_API, "register"),
    "promote": (_API, "promote"),
    "set_alias": (_API, "set_alias"),
    "remove_alias": (_API, "remove_alias"),
    "rollback": (_API, "rollback"),
    "set_description": (_API, "set_description"),
    "set_tags": (_API, "set_tags"),
    "history": (_API, "history"),
    "show": (_API, "show"),
    "list_models": (_API, "list_models"),
    "search": (_API, "search"),
    "resolve": (_API, "resolve"),
    "lineage": (_API, "lineage"),
    "STAGES": ("mlark.registry.stages", "STAGES"),
    "ModelVersion": ("mlark.registry.types", "ModelVersion"),
    "RegisteredModel": ("mlark.registry.types", "RegisteredModel"),
    "RegistryEvent": ("mlark.registry.types", "RegistryEvent"),
    "ModelLineage": ("mlark.registry.types", "ModelLineage"),
    "RunSummary": ("mlark.registry.types", "RunSummary"),
}

#: This package itself: ``mlark.registry`` is resolved lazily by ``import mlark`` (mlark/__init__.py ``_LAZY``).
_package = sys.modules[__name__]


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = sorted(_LAZY)
