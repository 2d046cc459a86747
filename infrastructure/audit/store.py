"""The audit's store: snapshots of the log and chain, balances as booked, seals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from application.audit.chain import Seal
from application.audit.ports import BookedBalance, Reconciliation
from application.followers import FOLLOWERS
from infrastructure.audit.chain_view import save_seal
from infrastructure.audit.log import EventTable, LogSnapshot
from infrastructure.views.store import Cursor, ViewStore, time_text, tracking_key
from infrastructure.views.tables import generation_table


class SqlAuditStore:
    def __init__(
        self,
        store: ViewStore,
        recorder: ApplicationRecorder,
        reconcile: Callable[[Callable[[int, int], None]], Reconciliation] | None = None,
    ) -> None:
        self.store = store
        self.table = EventTable(recorder)
        self._reconcile = reconcile

    @contextmanager
    def snapshot(self) -> Iterator[LogSnapshot]:
        with self.store.read() as cur:
            yield LogSnapshot(self.table, self.store, cur)

    def balances_as_of(self, moment: datetime) -> tuple[int, list[BookedBalance]]:
        at = time_text(moment)
        with self.store.read() as cur:
            position = self._reflected_position(cur, ("accounts", "statements"))
            # One seek per account on the statement index (account_id, booked_at, ...):
            # the last entry booked by the moment carries the running balance then.
            rows = cur.run(
                "SELECT a.account_id, a.customer_id, a.currency, ("
                "SELECT e.balance_after FROM {statement_entries} e WHERE e.account_id = a.account_id "
                "AND e.booked_at <= %s ORDER BY e.booked_at DESC, e.position DESC, e.seq DESC "
                "LIMIT 1) AS balance FROM {accounts} a WHERE a.opened_at <= %s "
                "ORDER BY a.opened_position",
                (at, at),
            ).all()
        return position, [
            BookedBalance(
                row["account_id"], row["customer_id"], row["currency"],
                Decimal(row["balance"]) if row["balance"] is not None else Decimal(0),
            )
            for row in rows
        ]

    def _reflected_position(self, cur: Cursor, names: tuple[str, ...]) -> int:
        """The log position these views reflect in this snapshot: the head, unless one
        of them has events of its own up to the head still to process."""
        head_row = cur.raw.execute(
            f"SELECT MAX({self.table.position}) AS head FROM {self.table.name}"
        ).fetchone()
        position = int(head_row["head"] or 0)
        generations = self.store.generations_in(cur)
        for name in names:
            done = self.store.tracked(cur, tracking_key(name, generations[name])) or 0
            if done >= position:
                continue
            topics = FOLLOWERS[name].topics
            marks = ", ".join(["%s"] * len(topics))
            pending = cur.run(
                f"SELECT 1 AS pending FROM {self.table.name} WHERE {self.table.position} > %s "
                f"AND {self.table.position} <= %s AND topic IN ({marks}) LIMIT 1",
                (done, position, *topics),
            ).one()
            if pending is not None:
                position = done
        return position

    def record_seal(self, seal: Seal) -> None:
        with self.store.write() as cur:
            generation = self.store.generations_in(cur)["chain"]
            save_seal(cur, "{" + generation_table("audit_seals", generation) + "}", seal)

    def reconcile(self, on_progress: Callable[[int, int], None] = lambda done, total: None) -> Any:
        if self._reconcile is None:
            raise RuntimeError("this store was built without reconciliation")
        return self._reconcile(on_progress)
