"""What the audit needs from infrastructure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from application.audit.chain import Seal
from application.audit.verify import LinkRow, StoredRow


class LogSnapshot(Protocol):
    """The log and the hash chain as they stand in one read snapshot."""

    def events(self, after: int = ..., until: int | None = None) -> Iterator[StoredRow]:
        """Stored events after ``after`` (default: all, even below position 1)."""

    def page(
        self, after: int, limit: int, originator_id: str | None = None, topics: Sequence[str] = ()
    ) -> list[StoredRow]: ...

    def originator_events(self, originator_id: str) -> list[StoredRow]: ...

    def first_events(self, originator_ids: Sequence[str]) -> list[StoredRow]: ...

    def event_position(self, originator_id: str, version: int) -> int | None: ...

    def head(self) -> int: ...

    def first_position(self) -> int: ...

    def count_events(self, until: int) -> int: ...

    def links(self, after: int = 0, until: int | None = None) -> Iterable[LinkRow]: ...

    def link_at_or_before(self, position: int) -> tuple[int, bytes] | None: ...

    def link_position(self, originator_id: str, version: int) -> int | None: ...

    def hashes(self, positions: Sequence[int]) -> dict[int, str]: ...

    def chain_head(self) -> int: ...

    def seals(self) -> dict[int, str]: ...


@dataclass(frozen=True)
class BookedBalance:
    account_id: str
    customer_id: str
    currency: str
    ledger_balance: Decimal


@dataclass(frozen=True)
class Difference:
    projection: str
    key: dict[str, Any]
    live: dict[str, Any] | None
    replayed: dict[str, Any] | None


@dataclass(frozen=True)
class Reconciliation:
    checked_at_position: int
    positions: dict[str, int]  # each projection's position, live and replayed alike
    differences: list[Difference]
    differences_total: int
    rows_compared: int
    seconds: float = 0.0
    events: int = field(default=0)


class AuditStore(Protocol):
    def snapshot(self) -> AbstractContextManager[LogSnapshot]: ...

    def balances_as_of(self, moment: datetime) -> tuple[int, list[BookedBalance]]:
        """Every account opened by ``moment`` with its ledger balance then, and the log
        position the views had reached (read in the same snapshot)."""

    def record_seal(self, seal: Seal) -> None: ...

    def reconcile(
        self, on_progress: Callable[[int, int], None] = lambda done, total: None
    ) -> Reconciliation:
        """Replay the log into fresh views and compare every row with the live ones."""
