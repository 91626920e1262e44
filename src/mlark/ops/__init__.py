"""User-level verbs, one per module, joined by Repo."""
