"""rm: remove a version from history (its bytes go at the next gc). Refused while aliases point at it,
or while a registered model version registers it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlark.core.refs import parse_ref
from mlark.core.types import Version
from mlark.errors import AliasInUse
from mlark.meta import catalog
from mlark.registry import store as registry_store

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


def rm(repo: "Repo", ref: str, *, force: bool, message: str) -> Version:
    parsed = parse_ref(ref)
    now = repo.now()

    def fn(conn: Any) -> str:
        version = catalog.resolve(conn, parsed)
        held = [a for a in version.aliases if a != "latest"]
        if held and not force:
            raise AliasInUse(
                f"{version.ref} is what {', '.join(version.name + '@' + a for a in held)} point to; "
                "move those aliases first or pass --force to remove them too",
                ref=version.ref,
                aliases=held,
            )
        registered = registry_store.registrations_of(conn, version.id)
        if registered and not force:
            where = ", ".join(f"{mv.ref} ({mv.stage})" for mv in registered)
            raise AliasInUse(
                f"{version.ref} is registered as {where}; a registered model version keeps its bytes: "
                "pass --force to remove it anyway (the registry then points at a removed version)",
                ref=version.ref,
                registered=[mv.ref for mv in registered],
            )
        text = message or f"removed {version.ref}"
        for alias in held:
            catalog.move_alias(conn, version.artifact_id, alias, None, author=repo.author, now=now, message=text)
        catalog.mark_removed(conn, version.id, author=repo.author, now=now)
        if "latest" in version.aliases:
            remaining = catalog.history(conn, version.name, limit=1)
            target = remaining[0].id if remaining else None
            catalog.move_alias(conn, version.artifact_id, "latest", target, author=repo.author, now=now,
                               message=text)
        return version.id

    version_id = repo.db.run_write(fn)
    with repo.db.read() as conn:
        return catalog.version_by_id(conn, version_id)
