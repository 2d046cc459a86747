"""Accounts as tellers read them: status, ledger balance, holds and limit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection, Item, RowCache, topic_of
from domain import hold
from domain.account import ACTIVE, CLOSED, FROZEN, Account
from domain.hold import Hold


@dataclass(slots=True)
class AccountRow:
    account_id: UUID
    customer_id: UUID
    currency: str
    product: str
    status: str
    ledger_balance: Decimal
    held_amount: Decimal
    overdraft_limit: Decimal
    opened_at: datetime
    opened_position: int  # orders a customer's accounts as they were opened
    version: int
    position: int  # of the account's last event

    @property
    def available_balance(self) -> Decimal:
        return self.ledger_balance - self.held_amount + self.overdraft_limit

    def clone(self) -> AccountRow:
        # Explicit: copy.copy of a slotted dataclass is ~3x slower (bench/replay.py).
        return AccountRow(
            self.account_id, self.customer_id, self.currency, self.product, self.status,
            self.ledger_balance, self.held_amount, self.overdraft_limit, self.opened_at,
            self.opened_position, self.version, self.position,
        )


@dataclass(frozen=True, slots=True)
class LimitChange:
    """An overdraft limit from a moment on (the account's opening or a change)."""

    account_id: UUID
    effective_at: datetime
    position: int
    overdraft_limit: Decimal


@dataclass(slots=True)
class HoldRow:
    hold_id: UUID
    account_id: UUID
    amount: Decimal
    captured_amount: Decimal
    currency: str
    status: str  # as recorded: an active hold past expires_at reads as expired
    expires_at: datetime | None
    reference: str | None
    placed_at: datetime
    ended_at: datetime | None  # when it was captured in full, released or expired
    position: int  # of the hold's last event

    def clone(self) -> HoldRow:
        return HoldRow(
            self.hold_id, self.account_id, self.amount, self.captured_amount, self.currency,
            self.status, self.expires_at, self.reference, self.placed_at, self.ended_at,
            self.position,
        )

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.captured_amount

    def status_at(self, now: datetime) -> str:
        if self.status == hold.ACTIVE and hold.lapsed(self.expires_at, now):
            return hold.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class HoldChange:
    """A change of what an account holds, from a moment on (for balances as of a past
    moment). Expiries are not changes here: a hold stops counting at its expires_at."""

    account_id: UUID
    effective_at: datetime
    position: int
    hold_id: UUID
    delta: Decimal


@dataclass
class AccountChanges:
    """What one batch changes in the accounts view."""

    accounts: dict[UUID, AccountRow] = field(default_factory=dict)
    limits: list[LimitChange] = field(default_factory=list)
    holds: dict[UUID, HoldRow] = field(default_factory=dict)
    hold_changes: list[HoldChange] = field(default_factory=list)


class AccountsView(TrackingRecorder, ABC):
    @abstractmethod
    def load_accounts(self, account_ids: Iterable[UUID]) -> dict[UUID, AccountRow]:
        """The stored rows of these accounts (absent ids are left out)."""

    @abstractmethod
    def load_holds(self, hold_ids: Iterable[UUID]) -> dict[UUID, HoldRow]:
        """The stored rows of these holds (absent ids are left out)."""

    @abstractmethod
    def save_accounts(self, changes: AccountChanges, tracking: Tracking) -> None:
        """Upsert the account and hold rows, add the limit and hold changes and record
        the tracking, atomically."""


def _opened(row: AccountRow | None, e: Any, position: int) -> AccountRow:
    return AccountRow(
        account_id=e.originator_id,
        customer_id=e.customer_id,
        currency=e.currency,
        product=e.product,
        status=ACTIVE,
        ledger_balance=Decimal(0),
        held_amount=Decimal(0),
        overdraft_limit=e.overdraft_limit,
        opened_at=e.opened_at or e.timestamp,
        opened_position=position,
        version=e.originator_version,
        position=position,
    )


def _credited(row: AccountRow, e: Any) -> None:
    row.ledger_balance += e.amount


def _debited(row: AccountRow, e: Any) -> None:
    row.ledger_balance -= e.amount


def _status(status: str) -> Callable[[AccountRow, Any], None]:
    def change(row: AccountRow, e: Any) -> None:
        row.status = status

    return change


def _limit_changed(row: AccountRow, e: Any) -> None:
    row.overdraft_limit = e.overdraft_limit


def _held(row: AccountRow, e: Any) -> None:
    row.held_amount += e.amount


def _held_released(row: AccountRow, e: Any) -> None:
    row.held_amount -= e.amount


# How each event changes an account's row (in place: rows are the batch's own copies).
_CHANGES: dict[type, Callable[[AccountRow, Any], None]] = {
    Account.FundsCredited: _credited,
    Account.FundsDebited: _debited,
    Account.Frozen: _status(FROZEN),
    Account.Unfrozen: _status(ACTIVE),
    Account.Closed: _status(CLOSED),
    Account.OverdraftLimitChanged: _limit_changed,
    Account.FundsHeld: _held,
    Account.HeldFundsReleased: _held_released,
}


def _hold_placed(e: Any, position: int) -> HoldRow:
    return HoldRow(
        hold_id=e.originator_id, account_id=e.account_id, amount=e.amount,
        captured_amount=Decimal(0), currency=e.currency, status=hold.ACTIVE,
        expires_at=e.expires_at, reference=e.reference, placed_at=e.timestamp,
        ended_at=None, position=position,
    )


def apply_hold_event(row: HoldRow | None, e: Any, position: int) -> HoldRow:
    """The hold's row after ``e`` (``row`` itself, changed, unless ``e`` places it)."""
    kind = type(e)
    if kind is Hold.Placed:
        return _hold_placed(e, position)
    if row is None:
        raise LookupError(f"event for hold {e.originator_id} before it was placed")
    if kind is Hold.Captured:
        row.captured_amount += e.amount
        if row.captured_amount == row.amount:
            row.status, row.ended_at = hold.CAPTURED, e.timestamp
    elif kind is Hold.Released:
        row.status, row.ended_at = hold.RELEASED, e.timestamp
    elif kind is Hold.Expired:
        row.status, row.ended_at = hold.EXPIRED, e.expired_at
    row.position = position
    return row


_HOLD_EVENTS = (Hold.Placed, Hold.Captured, Hold.Released, Hold.Expired)


def hold_change(e: Any, position: int) -> HoldChange | None:
    """The change of what the account holds, except an expiry (see HoldChange)."""
    if type(e) is Account.FundsHeld:
        return HoldChange(e.originator_id, e.effective_at, position, e.hold_id, e.amount)
    if type(e) is Account.HeldFundsReleased and e.reason != hold.EXPIRED:
        effective_at = e.effective_at or e.timestamp
        return HoldChange(e.originator_id, effective_at, position, e.hold_id, -e.amount)
    return None


def apply_account_event(row: AccountRow | None, event: Any, position: int) -> AccountRow:
    """The row after ``event`` (``row`` itself, changed, unless the event opens it)."""
    if type(event) is Account.Opened:
        return _opened(row, event, position)
    if row is None:
        raise LookupError(f"event for account {event.originator_id} before it was opened")
    _CHANGES[type(event)](row, event)
    row.version = event.originator_version
    row.position = position
    return row


class AccountsProjection(BatchProjection[AccountsView]):
    name = "accounts"
    topics = tuple(topic_of(cls) for cls in (Account.Opened, *_CHANGES, *_HOLD_EVENTS))

    def __init__(self, view: AccountsView) -> None:
        super().__init__(view)
        self._cache: RowCache[UUID, AccountRow] = RowCache()
        self._holds: RowCache[UUID, HoldRow] = RowCache()

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        hold_ids = {e.originator_id for e, _ in items if type(e) in _HOLD_EVENTS}
        ids = {e.originator_id for e, _ in items} - hold_ids
        stored, missing = self._cache.get_many(ids)
        if missing:
            stored.update(self.view.load_accounts(missing))
        stored_holds, missing = self._holds.get_many(hold_ids)
        if missing:
            stored_holds.update(self.view.load_holds(missing))
        changes = AccountChanges()
        for event, position in items:
            kind = type(event)
            if kind in _HOLD_EVENTS:
                self._apply_hold(changes, stored_holds, event, position)
                continue
            if kind is not Account.Opened and kind not in _CHANGES:
                continue
            account_id = event.originator_id
            row = changes.accounts.get(account_id)
            if row is None and account_id in stored:
                row = stored[account_id].clone()  # the cache keeps what is committed
            row = changes.accounts[account_id] = apply_account_event(row, event, position)
            if kind is Account.Opened or kind is Account.OverdraftLimitChanged:
                effective_at = row.opened_at if kind is Account.Opened else event.timestamp
                changes.limits.append(
                    LimitChange(account_id, effective_at, position, row.overdraft_limit)
                )
            change = hold_change(event, position)
            if change is not None:
                changes.hold_changes.append(change)
        with self.forgetting():
            self.view.save_accounts(changes, tracking)
        self._cache.update(changes.accounts)
        self._holds.update(changes.holds)

    @staticmethod
    def _apply_hold(
        changes: AccountChanges, stored: dict[UUID, HoldRow], event: Any, position: int
    ) -> None:
        hold_id = event.originator_id
        row = changes.holds.get(hold_id)
        if row is None and hold_id in stored:
            row = stored[hold_id].clone()
        changes.holds[hold_id] = apply_hold_event(row, event, position)

    def forget(self) -> None:
        self._cache.clear()
        self._holds.clear()
