"""Byte storage backends: named, immutable byte files. No domain types here."""

from mlark.storage.base import Backend
from mlark.storage.local import LocalBackend
from mlark.storage.memory import MemoryBackend

__all__ = ["Backend", "LocalBackend", "MemoryBackend"]
