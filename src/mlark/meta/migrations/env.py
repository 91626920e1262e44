"""Alembic environment of the mlark metadata database.

Only programmatic use is supported: ``mlark.meta.migrations.upgrade(conn)``
builds the Alembic ``Config`` in code and hands over an open SQLAlchemy
``Connection`` (normally already inside a write transaction) through
``config.attributes["connection"]``. Offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context

from mlark.meta.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode() or connection is None:
    raise RuntimeError(
        "mlark migrations run only through mlark.meta.migrations.upgrade(connection); "
        "offline mode and alembic.ini are not supported"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)

# When the caller already holds a transaction (the usual case) this is a no-op
# and the whole upgrade commits or rolls back with the caller's transaction.
with context.begin_transaction():
    context.run_migrations()
