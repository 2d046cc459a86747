"""Statement entries with a running balance, in booking order.

Entries are kept in (booked_at, position, seq) order, the order the contract shows
them in. Postings are booked when recorded, so they arrive in order and each balance
is the previous one plus the amount. An import books in the past: its entry goes
before later ones, whose balances then move by its amount; that event is written on
its own, against what the view holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection, Item, RowCache, topic_of
from domain.ledger import CREDIT, INTERNAL_ACCOUNTS
from domain.transaction import Transaction

EntryKey = tuple[datetime, int, int]  # booked_at, position, index within the transaction


@dataclass(frozen=True, slots=True)
class StatementEntry:
    # Ids as text, as the entries name them and the view stores them: a rebuild makes
    # millions of these, and parsing UUIDs would be a good part of its time.
    account_id: str
    booked_at: datetime
    position: int
    seq: int
    transaction_id: str
    kind: str
    direction: str
    amount: Decimal
    balance_after: Decimal
    reference: str | None

    @property
    def key(self) -> EntryKey:
        return (self.booked_at, self.position, self.seq)

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.direction == CREDIT else -self.amount


@dataclass(frozen=True, slots=True)
class StatementHead:
    """An account's latest entry in booking order, and the balance after it."""

    key: EntryKey
    balance: Decimal


class StatementsView(TrackingRecorder, ABC):
    @abstractmethod
    def load_heads(self, account_ids: Iterable[str]) -> dict[str, StatementHead]:
        """Each account's latest entry (accounts without entries are left out)."""

    @abstractmethod
    def balance_before(self, account_id: str, key: EntryKey) -> Decimal:
        """The balance after the last entry that comes before ``key``."""

    @abstractmethod
    def entries_after(self, account_id: str, key: EntryKey) -> list[StatementEntry]:
        """The entries that come after ``key``, in order."""

    @abstractmethod
    def save_entries(
        self, entries: Sequence[StatementEntry], tracking: Tracking, *, only_new: bool = False
    ) -> None:
        """Upsert the entries (by account and key) and record the tracking, atomically.

        ``only_new``: none of them is stored yet (appended entries), so the view may
        insert in bulk; a booking in the past also rewrites later entries.
        """


class StatementsProjection(BatchProjection[StatementsView]):
    name = "statements"
    topics = (topic_of(Transaction.Posted),)

    def __init__(self, view: StatementsView) -> None:
        super().__init__(view)
        self._heads: RowCache[str, StatementHead] = RowCache()

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        with self.forgetting():
            self._process(items, tracking)

    def _process(self, items: Sequence[Item], tracking: Tracking) -> None:
        posted = [(e, p) for e, p in items if type(e) is Transaction.Posted]
        heads, missing = self._heads.get_many(
            {row["account"] for e, _ in posted for row in e.entries}  # type: ignore[attr-defined]
            - INTERNAL
        )
        if missing:
            heads.update(self.view.load_heads(missing))
        pending: list[StatementEntry] = []
        touched: dict[str, StatementHead] = {}
        last_position: int | None = None
        for event, position in posted:
            booked_at = event.booked_at or event.timestamp  # type: ignore[attr-defined]
            rows = [
                (seq, row)
                for seq, row in enumerate(event.entries)  # type: ignore[attr-defined]
                if row["account"] not in INTERNAL
            ]
            if any(
                row["account"] in heads and (booked_at, position, seq) < heads[row["account"]].key
                for seq, row in rows
            ):
                # A booking in the past: write what came before it, then place it
                # against the stored entries.
                if last_position is not None:
                    self._save(pending, touched, Tracking(tracking.application_name, last_position))
                    pending, touched = [], {}
                entries = [_entry(event, position, seq, row, Decimal(0)) for seq, row in rows]
                self._insert_in_past(entries, heads, Tracking(tracking.application_name, position))
                last_position = None
                continue
            for seq, row in rows:
                account = row["account"]
                head = heads.get(account)
                amount = row["amount"]
                signed = amount if row["direction"] == CREDIT else -amount
                balance = signed if head is None else head.balance + signed
                pending.append(_entry(event, position, seq, row, balance))
                heads[account] = touched[account] = StatementHead(
                    (booked_at, position, seq), balance
                )
            last_position = position
        if last_position is not None or not posted:
            self._save(pending, touched, tracking)

    def _save(
        self,
        entries: list[StatementEntry],
        heads: dict[str, StatementHead],
        tracking: Tracking,
        *,
        only_new: bool = True,
    ) -> None:
        self.view.save_entries(entries, tracking, only_new=only_new)
        self._heads.update(heads)

    def _insert_in_past(
        self, entries: list[StatementEntry], heads: dict[str, StatementHead], tracking: Tracking
    ) -> None:
        rows: list[StatementEntry] = []
        touched: dict[str, StatementHead] = {}
        for entry in entries:
            account = entry.account_id
            before = self.view.balance_before(account, entry.key)
            placed = replace(entry, balance_after=before + entry.signed_amount)
            later = [
                replace(e, balance_after=e.balance_after + entry.signed_amount)
                for e in self.view.entries_after(account, entry.key)
            ]
            rows.append(placed)
            rows.extend(later)
            last = max([placed, *later], key=lambda e: e.key)
            heads[account] = touched[account] = StatementHead(last.key, last.balance_after)
        self._save(rows, touched, tracking, only_new=False)

    def forget(self) -> None:
        self._heads.clear()


INTERNAL = frozenset(INTERNAL_ACCOUNTS)


def _entry(event: Any, position: int, seq: int, row: dict[str, Any], balance: Decimal) -> StatementEntry:
    return StatementEntry(
        account_id=row["account"],
        booked_at=event.booked_at or event.timestamp,
        position=position,
        seq=seq,
        transaction_id=str(event.originator_id),
        kind=event.kind,
        direction=row["direction"],
        amount=row["amount"],
        balance_after=balance,
        reference=event.reference,
    )
