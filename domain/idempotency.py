"""The remembered outcome of a request made with an Idempotency-Key.

Its id derives from the calling key and the Idempotency-Key, and it is saved in the
same ``save()`` as the effect: of two racing requests with one key, exactly one
commits, and the other's save conflicts on this record and replays its outcome.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause

_NAMESPACE = UUID("6f1c0c5e-3b7a-4c1e-9a53-2d4f0e6b8a11")


class IdempotencyRecord(Aggregate):
    class Recorded(Aggregate.Created):
        scope: str
        key: str
        fingerprint: str
        outcome: dict[str, Any]
        cause: Cause

    @staticmethod
    def create_id(scope: str, key: str) -> UUID:
        return uuid5(_NAMESPACE, f"{scope}\n{key}")

    @event(Recorded)
    def __init__(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        outcome: dict[str, Any],
        cause: Cause,
    ) -> None:
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.outcome = outcome
