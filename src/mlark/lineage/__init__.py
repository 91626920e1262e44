"""Lineage: the graph of versions and runs (which versions a run used, which it produced). Acyclic by construction.

Layer: beside ``tracking``, below ``ops``; imports ``meta`` and ``core`` only.
"""
