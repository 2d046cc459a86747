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
from domain.transaction import REVERSED, Transaction


@dataclass(frozen=True)
class TransactionRow:
    transaction_id: UUID
    position: int  # of the transaction's last event
    booked_at: datetime
    kind: str
    currency: str
    body: dict[str, Any]  # the contract's Transaction, without its position


@dataclass(frozen=True)
class ReversalMark:
    """A stored transaction reversed later: its status, ``reversed_by`` and position."""

    transaction_id: UUID
    reversed_by: UUID
    position: int


class TransactionsView(TrackingRecorder, ABC):
    @abstractmethod
    def save_transactions(
        self,
        rows: Sequence[TransactionRow],
        tracking: Tracking,
        *,
        only_new: bool = False,
        reversals: Sequence[ReversalMark] = (),
    ) -> None:
        """Upsert the rows, mark the stored ones reversed, and record the tracking, in
        one transaction (``only_new``: none of ``rows`` is stored yet, so the view may
        insert in bulk)."""


class TransactionsProjection(BatchProjection[TransactionsView]):
    name = "transactions"
    topics = (topic_of(Transaction.Posted), topic_of(Transaction.Reversed))

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        rows: dict[UUID, TransactionRow] = {}
        reversals: list[ReversalMark] = []
        for event, position in items:
            kind = type(event)
            if kind is Transaction.Posted:
                rows[event.originator_id] = _row(event, position)
            elif kind is Transaction.Reversed:
                posted = rows.get(event.originator_id)
                if posted is None:
                    reversals.append(ReversalMark(event.originator_id, event.reversed_by, position))
                else:  # posted in this same batch: mark the new row itself
                    rows[posted.transaction_id] = reversed_row(posted, event.reversed_by, position)
        # A Posted event records a new transaction: its row cannot exist yet.
        self.view.save_transactions(list(rows.values()), tracking, only_new=True, reversals=reversals)


def reversed_row(row: TransactionRow, reversed_by: UUID, position: int) -> TransactionRow:
    body = {**row.body, "status": REVERSED, "reversed_by": str(reversed_by)}
    return TransactionRow(row.transaction_id, position, row.booked_at, row.kind, row.currency, body)


def _row(event: Any, position: int) -> TransactionRow:
    return TransactionRow(
        transaction_id=event.originator_id,
        position=position,
        booked_at=event.booked_at or event.timestamp,
        kind=event.kind,
        currency=event.currency,
        body=posted_transaction_view(event),
    )
