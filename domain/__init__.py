"""The back office's domain: aggregates, value objects and invariants.

Imports only the standard library and ``eventsourcing.domain``.
"""
