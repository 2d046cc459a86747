"""Transactions by id, as the contract shows them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection, Item, topic_of
from application.views import posted_transaction_view
from domain.transaction import Transaction


@dataclass(frozen=True)
class TransactionRow:
    transaction_id: UUID
    position: int  # of the transaction's last event
    booked_at: datetime
    kind: str
    currency: str
    body: dict[str, Any]  # the contract's Transaction, without its position


class TransactionsView(TrackingRecorder, ABC):
    @abstractmethod
    def save_transactions(
        self, rows: Sequence[TransactionRow], tracking: Tracking, *, only_new: bool = False
    ) -> None:
        """Upsert the rows and record the tracking, in one transaction (``only_new``:
        none is stored yet, so the view may insert in bulk)."""


class TransactionsProjection(BatchProjection[TransactionsView]):
    name = "transactions"
    topics = (topic_of(Transaction.Posted),)

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        rows = [
            _row(event, position) for event, position in items if type(event) is Transaction.Posted
        ]
        # A Posted event records a new transaction: its row cannot exist yet.
        self.view.save_transactions(rows, tracking, only_new=True)


def _row(event: Any, position: int) -> TransactionRow:
    return TransactionRow(
        transaction_id=event.originator_id,
        position=position,
        booked_at=event.booked_at or event.timestamp,
        kind=event.kind,
        currency=event.currency,
        body=posted_transaction_view(event),
    )
