"""registry: register model versions under a task-level name; move stages and aliases; history; rollback.

Every verb runs in one write transaction: it validates, changes the registry tables and records
each change in ``registry_events`` (who, when, from, to, why) together, so a refused request
changes nothing and the record never disagrees with the state. Value types and the rules
(stages, aliases, the replay behind rollback) live in :mod:`mlark.registry`.

This module is the one place to import the verbs from; each lives in a module of its own:

- :mod:`mlark.ops.registry_register`: ``register``
- :mod:`mlark.ops.registry_moves`: ``promote``, ``set_alias``, ``remove_alias``, ``rollback``
- :mod:`mlark.ops.registry_describe`: ``set_description``, ``set_tags``
- :mod:`mlark.ops.registry_read`: ``history``, ``show``, ``list_models``, ``search``, ``resolve``,
  ``resolve_version``, ``lineage``
- :mod:`mlark.ops.registry_checks`: the checks they share (names, messages, which version a request names)
"""

from __future__ import annotations

from mlark.ops.registry_describe import set_description, set_tags
from mlark.ops.registry_moves import promote, remove_alias, rollback, set_alias
from mlark.ops.registry_read import history, lineage, list_models, resolve, resolve_version, search, show
from mlark.ops.registry_register import MODEL_TYPE, register

__all__ = [
    "MODEL_TYPE", "history", "lineage", "list_models", "promote", "register", "remove_alias", "resolve",
    "resolve_version", "rollback", "search", "set_alias", "set_description", "set_tags", "show",
]
