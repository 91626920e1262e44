"""Alembic revisions of the metadata database (loaded by Alembic, not imported)."""
