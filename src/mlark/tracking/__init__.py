"""Experiment tracking: run records, params, tags, metrics, capture, seeds, and the run filter language.

Layer: below ``ops``, beside ``lineage``; imports ``meta``, ``objectstore`` and ``core`` only
(docs/design/tracking.md). The user's handle, :class:`mlark.ops.runs.Run`, lives in ``ops``.
"""
