"""Balances of the bank's own ledger accounts (cash, clearing) per currency."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection, Item, RowCache, topic_of
from domain.ledger import DEBIT, INTERNAL_ACCOUNTS
from domain.transaction import Transaction

LedgerKey = tuple[str, str]  # internal account code, currency


@dataclass(frozen=True)
class LedgerBalance:
    account: str
    currency: str
    debits: Decimal
    credits: Decimal
    position: int  # of the last transaction that moved it

    @property
    def balance(self) -> Decimal:
        """Credit-positive, as every balance in the back office is shown."""
        return self.credits - self.debits


class LedgerView(TrackingRecorder, ABC):
    @abstractmethod
    def load_balances(self, keys: Iterable[LedgerKey]) -> dict[LedgerKey, LedgerBalance]:
        """The stored balances for these (account, currency) pairs."""

    @abstractmethod
    def save_balances(self, rows: Sequence[LedgerBalance], tracking: Tracking) -> None:
        """Upsert the balances and record the tracking, in one transaction."""


class LedgerProjection(BatchProjection[LedgerView]):
    name = "ledger"
    topics = (topic_of(Transaction.Posted),)

    def __init__(self, view: LedgerView) -> None:
        super().__init__(view)
        self._cache: RowCache[LedgerKey, LedgerBalance] = RowCache()

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        moves = [
            (e.currency, row, position)  # type: ignore[attr-defined]
            for e, position in items
            if type(e) is Transaction.Posted
            for row in e.entries
            if row["account"] in INTERNAL_ACCOUNTS
        ]
        keys = {(row["account"], currency) for currency, row, _ in moves}
        rows, missing = self._cache.get_many(keys)
        if missing:
            rows.update(self.view.load_balances(missing))
        changed: dict[LedgerKey, LedgerBalance] = {}
        for currency, row, position in moves:
            key = (row["account"], currency)
            current = rows.get(key) or LedgerBalance(key[0], currency, Decimal(0), Decimal(0), 0)
            amount = Decimal(row["amount"])
            if row["direction"] == DEBIT:
                current = replace(current, debits=current.debits + amount, position=position)
            else:
                current = replace(current, credits=current.credits + amount, position=position)
            rows[key] = changed[key] = current
        with self.forgetting():
            self.view.save_balances(list(changed.values()), tracking)
        self._cache.update(changed)

    def forget(self) -> None:
        self._cache.clear()
