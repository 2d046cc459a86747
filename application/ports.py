"""What the application needs from infrastructure, as protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from application.projections import (
    AccountRow,
    HoldRow,
    LedgerBalance,
    StatementEntry,
    TransactionRow,
)
from application.projections.statements import EntryKey


class PositionLookup(Protocol):
    def __call__(self, originator_id: UUID, version: int) -> int | None:
        """The global log position of one stored event, or None if absent."""


PositionLookupFactory = Callable[[ApplicationRecorder], PositionLookup]


@dataclass(frozen=True)
class StatementPage:
    opening_balance: Decimal
    closing_balance: Decimal
    entries: list[StatementEntry]
    has_more: bool


@dataclass(frozen=True)
class BalanceAsOf:
    ledger_balance: Decimal  # after every entry booked at or before the moment
    overdraft_limit: Decimal  # in force at the moment (0 before the account opened)
    held_amount: Decimal  # by holds placed and not yet captured, released or expired
    position: int | None  # of the last event counted


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    generation: int
    position: int  # the last position the projection has processed
    head: int  # the log's last position
    lag_events: int  # of its own events not yet processed (counted up to LAG_COUNT_CAP)


class ViewReader(Protocol):
    """The projections' views, for answers (infrastructure.views implements it)."""

    def reached(self, projections: Sequence[str], position: int) -> bool:
        """Whether each projection has processed every event of its own <= position."""

    def wait(self, projections: Sequence[str], position: int, timeout_s: float) -> bool:
        """Wait until ``reached``, at most ``timeout_s``; False when it timed out."""

    def account(self, account_id: UUID, now: datetime) -> AccountRow | None:
        """The account's row; its held amount leaves out holds lapsed at ``now``."""

    def customer_accounts(self, customer_id: UUID, now: datetime) -> list[AccountRow]: ...

    def hold(self, hold_id: UUID) -> HoldRow | None: ...

    def account_holds(self, account_id: UUID) -> list[HoldRow]: ...

    def lapsed_holds(self, now: datetime, limit: int) -> list[HoldRow]:
        """Active holds whose expires_at has passed: their expiry is due."""

    def transaction(self, transaction_id: UUID) -> TransactionRow | None: ...

    def statement(
        self,
        account_id: UUID,
        start: datetime | None,
        end: datetime | None,
        after: EntryKey | None,
        limit: int,
    ) -> StatementPage:
        """Entries booked in [start, end), after the ``after`` key, with the range's
        opening and closing balances (None bounds are open)."""

    def ledger_balances(self) -> list[LedgerBalance]: ...

    def balance_as_of(self, account_id: UUID, moment: datetime) -> BalanceAsOf: ...

    def status(self) -> list[ProjectionStatus]: ...
