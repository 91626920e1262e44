"""alias: set, move, remove and undo movable names for versions; every move is logged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlark.core.names import validate_alias, validate_name
from mlark.core.refs import parse_ref
from mlark.core.types import AliasMove
from mlark.errors import Conflict, InvalidRef, NotFound
from mlark.meta import catalog

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


def _last_move(repo: "Repo", conn: Any, name: str, alias: str) -> AliasMove | None:
    moves = catalog.alias_moves(conn, name, alias)
    return moves[0] if moves else None


def set_alias(repo: "Repo", ref: str, alias: str, message: str) -> AliasMove | None:
    alias = validate_alias(alias)
    parsed = parse_ref(ref)
    now = repo.now()

    def fn(conn: Any) -> AliasMove | None:
        version = catalog.resolve(conn, parsed)
        moved = catalog.move_alias(conn, version.artifact_id, alias, version.id, author=repo.author, now=now,
                                   message=message)
        return _last_move(repo, conn, version.name, alias) if moved else None

    return repo.db.run_write(fn)  # type: ignore[no-any-return]


def remove_alias(repo: "Repo", name: str, alias: str, message: str) -> AliasMove | None:
    name = validate_name(name)
    alias = validate_alias(alias)
    now = repo.now()

    def fn(conn: Any) -> AliasMove | None:
        art = catalog.get_artifact(conn, name)
        if catalog.current_alias(conn, art.id, alias) is None:
            raise NotFound(f"{name} has no alias {alias!r}", kind="alias", name=name, alias=alias)
        catalog.move_alias(conn, art.id, alias, None, author=repo.author, now=now, message=message)
        return _last_move(repo, conn, name, alias)

    return repo.db.run_write(fn)  # type: ignore[no-any-return]


def undo_alias(repo: "Repo", ref: str, message: str) -> AliasMove:
    """Point NAME@ALIAS back at the version it held before its last move (or remove it if it was new)."""
    parsed = parse_ref(ref)
    if parsed.alias is None:
        raise InvalidRef(f"undo takes NAME@ALIAS, got {ref!r}", ref=ref)
    alias = validate_alias(parsed.alias)
    now = repo.now()

    def fn(conn: Any) -> AliasMove:
        art = catalog.get_artifact(conn, parsed.name)
        last = _last_move(repo, conn, parsed.name, alias)
        if last is None:
            raise NotFound(f"{parsed.name}@{alias} has never been set; nothing to undo", ref=ref)
        previous_id = None
        if last.from_number is not None:
            rows = [v for v in catalog.history(conn, parsed.name, include_removed=True) if v.number == last.from_number]
            if rows and rows[0].removed_at is not None:
                raise Conflict(f"{parsed.name}@{alias} was on {rows[0].ref} before, but that version was removed",
                               ref=ref)
            previous_id = rows[0].id if rows else None
        text = message or f"undo: back to {'v' + str(last.from_number) if last.from_number else 'unset'}"
        catalog.move_alias(conn, art.id, alias, previous_id, author=repo.author, now=now, message=text)
        move = _last_move(repo, conn, parsed.name, alias)
        assert move is not None
        return move

    return repo.db.run_write(fn)  # type: ignore[no-any-return]
