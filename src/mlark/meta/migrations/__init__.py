"""Alembic migrations of the metadata database, driven from code.

No ``alembic.ini`` is needed: :func:`config` builds the Alembic ``Config`` with
``script_location`` pointing at this package. Importing this module imports
Alembic, so ``mlark.meta.db`` imports it only when a migration must run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent


def config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for this package; env.py uses ``connection``."""
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolates '%': escape it in case the path contains one.
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``.

    Runs inside the caller's transaction when one is open, so the upgrade
    commits or rolls back with it.
    """
    from alembic import command

    command.upgrade(config(connection), revision)


def revisions() -> list[str]:
    """Every revision id this code knows, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def heads() -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(config()).get_heads())
