"""A hold: money set aside on an account, then captured (in parts), released or expired.

The hold's own record is this aggregate; the account it is placed on keeps the amount
still held (``Account.FundsHeld`` / ``HeldFundsReleased``), so every decision about the
account's available balance sees it and races on the account conflict.

A hold stops counting the moment ``now >= expires_at``, whether or not its
``Expired`` event has been written yet: ``status_at(now)`` says ``expired`` already.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause
from domain.errors import CaptureExceedsHold, HoldNotActive, ValidationFailed
from domain.money import format_amount

ACTIVE = "active"
CAPTURED = "captured"
RELEASED = "released"
EXPIRED = "expired"
STATUSES = (ACTIVE, CAPTURED, RELEASED, EXPIRED)


def lapsed(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


class Hold(Aggregate):
    class Placed(Aggregate.Created):
        account_id: UUID
        amount: Decimal
        currency: str
        reference: str | None
        expires_at: datetime | None
        cause: Cause

    class Captured(Aggregate.Event):
        transaction_id: UUID
        amount: Decimal
        cause: Cause

    class Released(Aggregate.Event):
        reason: str | None
        cause: Cause

    class Expired(Aggregate.Event):
        # Booked at expires_at, whenever it is recorded (a sweeper or the next touch).
        expired_at: datetime
        cause: Cause

    @event(Placed)
    def __init__(
        self,
        account_id: UUID,
        amount: Decimal,
        currency: str,
        reference: str | None,
        expires_at: datetime | None,
        cause: Cause,
    ) -> None:
        self.account_id = account_id
        self.amount = amount
        self.currency = currency
        self.reference = reference
        self.expires_at = expires_at
        self.captured_amount = Decimal(0)
        self.status = ACTIVE
        self.ended_at: datetime | None = None
        self.capture_ids: list[UUID] = []

    @classmethod
    def place(
        cls,
        account_id: UUID,
        amount: Decimal,
        currency: str,
        cause: Cause,
        reference: str | None = None,
        expires_at: datetime | None = None,
    ) -> Hold:
        return cls(
            account_id=account_id,
            amount=amount,
            currency=currency,
            reference=reference,
            expires_at=expires_at,
            cause=cause,
        )

    # --- reads -----------------------------------------------------------------

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.captured_amount

    @property
    def is_active_record(self) -> bool:
        """Active as recorded (it may have lapsed since: see ``status_at``)."""
        return self.status == ACTIVE

    def status_at(self, now: datetime) -> str:
        if self.status == ACTIVE and lapsed(self.expires_at, now):
            return EXPIRED
        return self.status

    def is_lapsed(self, now: datetime) -> bool:
        """Active in the record, but past its expiry: its Expired event is due."""
        return self.status == ACTIVE and lapsed(self.expires_at, now)

    # --- invariants ------------------------------------------------------------

    @staticmethod
    def check_expiry(expires_at: datetime | None, now: datetime) -> None:
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed.at(("expires_at",), "expires_at must be in the future")

    def check_active(self, now: datetime) -> None:
        status = self.status_at(now)
        if status != ACTIVE:
            raise HoldNotActive(self.id, status)

    def check_capture(self, amount: Decimal) -> None:
        if amount > self.remaining:
            raise CaptureExceedsHold(
                self.id,
                format_amount(self.remaining, self.currency),
                format_amount(amount, self.currency),
            )

    # --- commands --------------------------------------------------------------

    def capture(self, transaction_id: UUID, amount: Decimal, now: datetime, cause: Cause) -> None:
        self.check_active(now)
        self.check_capture(amount)
        self._capture(transaction_id=transaction_id, amount=amount, cause=cause)

    def release(self, reason: str | None, now: datetime, cause: Cause) -> Decimal:
        """Returns the amount no longer held."""
        self.check_active(now)
        freed = self.remaining
        self._release(reason=reason, cause=cause)
        return freed

    def expire(self, now: datetime, cause: Cause) -> Decimal:
        """Record the expiry of a lapsed hold; returns the amount no longer held."""
        if not self.is_lapsed(now):
            raise HoldNotActive(self.id, self.status_at(now))
        freed = self.remaining
        assert self.expires_at is not None
        self._expire(expired_at=self.expires_at, cause=cause)
        return freed

    # --- event application -----------------------------------------------------

    @event(Captured)
    def _capture(self, transaction_id: UUID, amount: Decimal, cause: Cause) -> None:
        self.captured_amount += amount
        self.capture_ids.append(transaction_id)
        if self.captured_amount == self.amount:
            self.status = CAPTURED

    @event(Released)
    def _release(self, reason: str | None, cause: Cause) -> None:
        self.status = RELEASED

    @event(Expired)
    def _expire(self, expired_at: datetime, cause: Cause) -> None:
        self.status = EXPIRED
        self.ended_at = expired_at
