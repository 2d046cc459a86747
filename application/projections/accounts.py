"""Accounts as tellers read them: status, ledger balance, holds and limit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection, Item, RowCache, topic_of
from domain.account import ACTIVE, CLOSED, FROZEN, Account


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


class AccountsView(TrackingRecorder, ABC):
    @abstractmethod
    def load_accounts(self, account_ids: Iterable[UUID]) -> dict[UUID, AccountRow]:
        """The stored rows of these accounts (absent ids are left out)."""

    @abstractmethod
    def save_accounts(
        self, rows: Sequence[AccountRow], limits: Sequence[LimitChange], tracking: Tracking
    ) -> None:
        """Upsert the rows, add the limit changes and record the tracking, atomically."""


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


# How each event changes an account's row (in place: rows are the batch's own copies).
_CHANGES: dict[type, Callable[[AccountRow, Any], None]] = {
    Account.FundsCredited: _credited,
    Account.FundsDebited: _debited,
    Account.Frozen: _status(FROZEN),
    Account.Unfrozen: _status(ACTIVE),
    Account.Closed: _status(CLOSED),
    Account.OverdraftLimitChanged: _limit_changed,
}


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
    topics = tuple(topic_of(cls) for cls in (Account.Opened, *_CHANGES))

    def __init__(self, view: AccountsView) -> None:
        super().__init__(view)
        self._cache: RowCache[UUID, AccountRow] = RowCache()

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        ids = {event.originator_id for event, _ in items}
        stored, missing = self._cache.get_many(ids)
        if missing:
            stored.update(self.view.load_accounts(missing))
        changed: dict[UUID, AccountRow] = {}
        limits: list[LimitChange] = []
        for event, position in items:
            kind = type(event)
            if kind is not Account.Opened and kind not in _CHANGES:
                continue
            account_id = event.originator_id
            row = changed.get(account_id)
            if row is None and account_id in stored:
                row = stored[account_id].clone()  # the cache keeps what is committed
            row = changed[account_id] = apply_account_event(row, event, position)
            if kind is Account.Opened or kind is Account.OverdraftLimitChanged:
                effective_at = row.opened_at if kind is Account.Opened else event.timestamp
                limits.append(LimitChange(account_id, effective_at, position, row.overdraft_limit))
        try:
            self.view.save_accounts(list(changed.values()), limits, tracking)
        except BaseException:
            self.forget()
            raise
        self._cache.update(changed)

    def forget(self) -> None:
        self._cache.clear()
