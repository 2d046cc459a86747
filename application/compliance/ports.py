"""What the reports read: one consistent snapshot of the views, as of a log position."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from application.compliance.facts import AccountFacts, Alert, CustomerFacts, Movement


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """Debits and credits on one of the bank's own accounts in one currency."""

    account: str
    currency: str
    debits: Decimal
    credits: Decimal


@dataclass(frozen=True, slots=True)
class BalanceEntry:
    """A customer account's statement entry, for walking balances through time."""

    account_id: str
    booked_at: datetime
    position: int
    seq: int
    signed_amount: Decimal  # credit positive


class ComplianceSnapshot(Protocol):
    """Reads inside one read transaction; ``position`` bounds every fact read."""

    position: int

    def rules_version(self) -> str | None:
        """The rule settings the stored alerts were evaluated with (None: none yet)."""

    def accounts(self, opened_before: datetime | None = None) -> list[AccountFacts]:
        """Accounts opened by the position (and before the moment, when given)."""

    def customers(self, at: datetime, ids: Iterable[str] | None = None) -> dict[str, CustomerFacts]:
        """Each customer as known at ``at``: the last version recorded by then, or the
        first one for a customer recorded later (imported history); None: all."""

    def movements(
        self,
        start: datetime,
        end: datetime,
        *,
        channel: str | None = None,
        kinds: Sequence[str] = (),
    ) -> list[Movement]:
        """Movements booked in [start, end), in (booked_at, position, seq) order."""

    def reversals_of(self, transaction_ids: Sequence[str]) -> list[Movement]:
        """The reversals (recorded by the position) of these transactions."""

    def balances(self, before: datetime, currency: str | None = None) -> dict[str, Decimal]:
        """Every account's ledger balance from the entries booked before ``before``."""

    def entries(
        self, start: datetime, end: datetime, account_ids: Iterable[str] | None = None
    ) -> list[BalanceEntry]:
        """Customer accounts' entries booked in [start, end), in booking order."""

    def ledger_totals(self, start: datetime | None, end: datetime) -> list[LedgerTotals]:
        """Debits and credits on the bank's own accounts booked in [start, end)."""

    def ledger_days(
        self, account: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, str, Decimal]]:
        """(booked_at, currency, direction, amount) of one own account's entries."""

    def overdraft_limits(self, at: datetime) -> dict[str, Decimal]:
        """Each account's overdraft limit in effect at ``at``."""

    def alerts(
        self,
        start: datetime | None,
        end: datetime | None,
        rule: str | None,
        customer_id: str | None,
    ) -> list[Alert]:
        """Alerts present at the position, triggered in [start, end]."""


class ComplianceStore(Protocol):
    def head(self) -> int:
        """The latest log position the views will reflect (the log's head)."""

    def snapshot(self, position: int) -> AbstractContextManager[ComplianceSnapshot]: ...
