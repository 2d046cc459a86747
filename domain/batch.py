"""The record of a batch of postings: what each item came to, in order."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause

POSTED = "posted"
REJECTED = "rejected"


class Batch(Aggregate):
    class Recorded(Aggregate.Created):
        atomic: bool
        # [{"index", "status": "posted", "transaction_id"} | {"index", "status":
        # "rejected", "error": {"code", "detail"}}]: the transactions keep their own
        # records, so the batch names them rather than copying them.
        results: list[dict[str, Any]]
        cause: Cause

    @event(Recorded)
    def __init__(self, atomic: bool, results: list[dict[str, Any]], cause: Cause) -> None:
        self.atomic = atomic
        self.results = results

    @classmethod
    def record(cls, atomic: bool, results: list[dict[str, Any]], cause: Cause) -> Batch:
        return cls(atomic=atomic, results=results, cause=cause)
