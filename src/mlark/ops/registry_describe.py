"""Descriptions and tags of a registered model or of one of its versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from mlark.ops.registry_checks import checked_message, model_name, recorded, version_in
from mlark.registry import store
from mlark.registry.stages import check_description, check_tags
from mlark.registry.types import DESCRIPTION, TAGS, ModelVersion, RegistryEvent

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["set_description", "set_tags"]


def set_description(repo: "Repo", model: str, description: str | None, message: str, *,
                    version: object = None) -> list[RegistryEvent]:
    """Set the description of the registered model (``version=None``) or of one of its versions."""
    name = model_name(model)
    desc = check_description(description)
    text = checked_message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = None if version is None else version_in(conn, row, version)
        before = row.description if mv is None else mv.description
        if before == desc:
            return []
        at = store.event_time(conn, row.id, repo.now())
        _update(conn, row, mv, description=desc)
        event = store.add_event(conn, model_id=row.id, rmv_id=None if mv is None else mv.id, kind=DESCRIPTION,
                                field=None, from_value=before, to_value=desc, author=repo.author, at=at, message=text)
        return recorded(conn, row, [event])

    return repo.db.run_write(fn)


def set_tags(repo: "Repo", model: str, tags: Mapping[str, str | None], message: str, *,
             version: object = None) -> list[RegistryEvent]:
    """Set (or, with a None value, remove) tags of the registered model or of one of its versions.

    The model tag ``mlark.archive_previous`` (``true``/``false``) sets whether promoting to
    production archives the previous holder.
    """
    name = model_name(model)
    changes = check_tags(tags, allow_delete=True)
    text = checked_message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = None if version is None else version_in(conn, row, version)
        current: dict[str, str] = dict((row.tags if mv is None else mv.tags) or {})
        updated = dict(current)
        for key, value in changes.items():
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
        if updated == current:
            return []
        at = store.event_time(conn, row.id, repo.now())
        _update(conn, row, mv, tags=updated)
        ids = [
            store.add_event(conn, model_id=row.id, rmv_id=None if mv is None else mv.id, kind=TAGS, field=key,
                            from_value=current.get(key), to_value=updated.get(key), author=repo.author, at=at,
                            message=text)
            for key in sorted(set(current) | set(updated))
            if current.get(key) != updated.get(key)
        ]
        return recorded(conn, row, ids)

    return repo.db.run_write(fn)


def _update(conn: Any, row: Any, mv: ModelVersion | None, **values: Any) -> None:
    """Write ``values`` on the registered model, or on its version ``mv`` when one is named."""
    if mv is None:
        store.update_model(conn, row.id, **values)
    else:
        store.update_version(conn, mv.id, **values)
