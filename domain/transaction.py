"""The record of one money movement: balanced entries, booked once, never edited."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause
from domain.errors import AlreadyReversed, ValidationFailed
from domain.ledger import Entry, check_balanced

KINDS = ("deposit", "withdrawal", "transfer", "capture", "reversal")
POSTED = "posted"
REVERSED = "reversed"


class Transaction(Aggregate):
    class Posted(Aggregate.Created):
        kind: str
        amount: Decimal
        currency: str
        channel: str
        reference: str | None
        conducted_by: UUID | None
        counterparty: dict[str, Any] | None
        entries: list[dict[str, Any]]
        booked_at: datetime | None
        reverses: UUID | None
        cause: Cause

    class Reversed(Aggregate.Event):
        """A later transaction mirrors this one; the record itself is never edited."""

        reversed_by: UUID
        reason: str
        cause: Cause

    @event(Posted)
    def __init__(
        self,
        kind: str,
        amount: Decimal,
        currency: str,
        channel: str,
        reference: str | None,
        conducted_by: UUID | None,
        counterparty: dict[str, Any] | None,
        entries: list[dict[str, Any]],
        booked_at: datetime | None,
        reverses: UUID | None,
        cause: Cause,
    ) -> None:
        self.kind = kind
        self.amount = amount
        self.currency = currency
        self.channel = channel
        self.reference = reference
        self.conducted_by = conducted_by
        self.counterparty = counterparty
        self.entry_rows = entries
        # None means "booked when recorded" (every posting but an import).
        self.booked_at_override = booked_at
        self.reverses = reverses
        self.reversed_by: UUID | None = None
        self.cause = cause

    @classmethod
    def post(
        cls,
        kind: str,
        amount: Decimal,
        currency: str,
        channel: str,
        entries: list[Entry],
        cause: Cause,
        reference: str | None = None,
        conducted_by: UUID | None = None,
        counterparty: dict[str, Any] | None = None,
        booked_at: datetime | None = None,
        reverses: UUID | None = None,
    ) -> Transaction:
        if kind not in KINDS:
            raise ValueError(f"unknown transaction kind {kind!r}")
        check_balanced(entries)
        return cls(
            kind=kind,
            amount=amount,
            currency=currency,
            channel=channel,
            reference=reference,
            conducted_by=conducted_by,
            counterparty=counterparty,
            entries=[e.as_dict() for e in entries],
            booked_at=booked_at,
            reverses=reverses,
            cause=cause,
        )

    @property
    def entries(self) -> list[Entry]:
        return [Entry.from_dict(row) for row in self.entry_rows]

    @property
    def recorded_at(self) -> datetime:
        return self.created_on

    @property
    def booked_at(self) -> datetime:
        return self.booked_at_override or self.created_on

    @property
    def status(self) -> str:
        return REVERSED if self.reversed_by is not None else POSTED

    def customer_account_ids(self) -> list[UUID]:
        return [UUID(e.account) for e in self.entries if not e.is_internal]

    def check_reversible(self) -> None:
        self.check_not_a_reversal()
        if self.reversed_by is not None:
            raise AlreadyReversed(self.id, self.reversed_by)

    def check_not_a_reversal(self) -> None:
        if self.kind == "reversal":
            raise ValidationFailed.at(
                ("transaction_id",),
                "a reversal is not reversed again: post a new transaction instead",
            )

    def mark_reversed(self, reversed_by: UUID, reason: str, cause: Cause) -> None:
        self.check_reversible()
        self._reversed(reversed_by=reversed_by, reason=reason, cause=cause)

    @event(Reversed)
    def _reversed(self, reversed_by: UUID, reason: str, cause: Cause) -> None:
        self.reversed_by = reversed_by
        self.reversal_reason = reason
