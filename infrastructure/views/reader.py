"""Answers from the views, and waits for a projection to reach a position."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder

from application.followers import FOLLOWERS
from application.ports import BalanceAsOf, ProjectionStatus, StatementPage
from application.projections import (
    AccountRow,
    HoldRow,
    LedgerBalance,
    TransactionRow,
)
from application.projections.statements import EntryKey
from infrastructure.views.store import Cursor, ViewStore, time_text
from infrastructure.views.writers import (
    account_from_row,
    entry_from_row,
    hold_from_row,
    ledger_from_row,
    transaction_from_row,
)

LAG_COUNT_CAP = 1_000_000
# Runners in another process cannot wake a waiting reader: look this often.
_POLL_SECONDS = 0.02


class SqlViewReader:
    def __init__(self, store: ViewStore, recorder: ApplicationRecorder) -> None:
        self.store = store
        self.recorder = recorder
        self._progress = threading.Condition()

    def notify(self, *_: object) -> None:
        """A runner in this process committed: wake the readers waiting for it."""
        with self._progress:
            self._progress.notify_all()

    # ------------------------------------------------------------------ positions

    def reached(self, projections: Sequence[str], position: int) -> bool:
        tracked = {name: done for name, (_, done) in self.store.positions().items()}
        if any(tracked[name] < position for name in projections) and (
            self.recorder.max_notification_id() or 0
        ) < position:
            return False  # N is not in the log yet: an event of its own may still come
        for name in projections:
            done = tracked[name]
            if done >= position:
                continue
            # Behind N, but maybe none of the events in between are its own.
            pending = self.recorder.select_notifications(
                start=done + 1, limit=1, stop=position, topics=FOLLOWERS[name].topics
            )
            if pending:
                return False
        return True

    def wait(self, projections: Sequence[str], position: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.reached(projections, position):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._progress:
                self._progress.wait(min(remaining, _POLL_SECONDS))

    # -------------------------------------------------------------------- reads

    def account(self, account_id: UUID, now: datetime) -> AccountRow | None:
        with self.store.read() as cur:  # one snapshot: the row and its holds agree
            row = cur.run("SELECT * FROM {accounts} WHERE account_id = %s", (str(account_id),)).one()
            return None if row is None else self._held_now(cur, account_from_row(row), now)

    def customer_accounts(self, customer_id: UUID, now: datetime) -> list[AccountRow]:
        with self.store.read() as cur:
            rows = cur.run(
                "SELECT * FROM {accounts} WHERE customer_id = %s ORDER BY opened_position",
                (str(customer_id),),
            ).all()
            return [self._held_now(cur, account_from_row(row), now) for row in rows]

    @staticmethod
    def _held_now(cur: Cursor, account: AccountRow, now: datetime) -> AccountRow:
        """The row's held amount, less active holds already past their expiry (they
        stop counting at expires_at, before any expiry event is written)."""
        if account.held_amount == 0:
            return account
        lapsed = cur.run(
            "SELECT amount, captured_amount FROM {holds} WHERE account_id = %s "
            "AND status = 'active' AND expires_at <= %s",
            (str(account.account_id), time_text(now)),
        ).all()
        for row in lapsed:
            account.held_amount -= Decimal(row["amount"]) - Decimal(row["captured_amount"])
        return account

    def hold(self, hold_id: UUID) -> HoldRow | None:
        with self.store.read() as cur:
            row = cur.run("SELECT * FROM {holds} WHERE hold_id = %s", (str(hold_id),)).one()
        return None if row is None else hold_from_row(row)

    def account_holds(self, account_id: UUID) -> list[HoldRow]:
        with self.store.read() as cur:
            rows = cur.run(
                "SELECT * FROM {holds} WHERE account_id = %s ORDER BY placed_at, position",
                (str(account_id),),
            ).all()
        return [hold_from_row(row) for row in rows]

    def lapsed_holds(self, now: datetime, limit: int) -> list[HoldRow]:
        with self.store.read() as cur:
            rows = cur.run(
                "SELECT * FROM {holds} WHERE status = 'active' AND expires_at <= %s "
                "ORDER BY expires_at LIMIT %s",
                (time_text(now), limit),
            ).all()
        return [hold_from_row(row) for row in rows]

    def transaction(self, transaction_id: UUID) -> TransactionRow | None:
        with self.store.read() as cur:
            row = cur.run(
                "SELECT * FROM {transactions} WHERE transaction_id = %s", (str(transaction_id),)
            ).one()
        return None if row is None else transaction_from_row(row)

    def statement(
        self,
        account_id: UUID,
        start: datetime | None,
        end: datetime | None,
        after: EntryKey | None,
        limit: int,
    ) -> StatementPage:
        account = str(account_id)
        last_before = (
            "SELECT balance_after FROM {statement_entries} WHERE account_id = %s "
            "AND booked_at < %s ORDER BY booked_at DESC, position DESC, seq DESC LIMIT 1"
        )
        last = (
            "SELECT balance_after FROM {statement_entries} WHERE account_id = %s "
            "ORDER BY booked_at DESC, position DESC, seq DESC LIMIT 1"
        )
        where, params = ["account_id = %s"], [account]
        if start is not None:
            where.append("booked_at >= %s")
            params.append(time_text(start))
        if end is not None:
            where.append("booked_at < %s")
            params.append(time_text(end))
        if after is not None:
            where.append("(booked_at, position, seq) > (%s, %s, %s)")
            params.extend([time_text(after[0]), after[1], after[2]])
        with self.store.read() as cur:  # one snapshot: balances and entries agree
            opening = (
                _balance(cur.run(last_before, (account, time_text(start))).one())
                if start is not None
                else Decimal(0)
            )
            closing = _balance(
                cur.run(last_before, (account, time_text(end))).one()
                if end is not None
                else cur.run(last, (account,)).one()
            )
            rows = cur.run(
                "SELECT * FROM {statement_entries} WHERE " + " AND ".join(where)
                + " ORDER BY booked_at, position, seq LIMIT %s",
                (*params, limit + 1),
            ).all()
        entries = [entry_from_row(row) for row in rows[:limit]]
        return StatementPage(
            opening_balance=opening if opening is not None else Decimal(0),
            closing_balance=closing if closing is not None else Decimal(0),
            entries=entries,
            has_more=len(rows) > limit,
        )

    def balance_as_of(self, account_id: UUID, moment: datetime) -> BalanceAsOf:
        account, at = str(account_id), time_text(moment)
        with self.store.read() as cur:  # one snapshot
            entry = cur.run(
                "SELECT balance_after, position FROM {statement_entries} WHERE account_id = %s "
                "AND booked_at <= %s ORDER BY booked_at DESC, position DESC, seq DESC LIMIT 1",
                (account, at),
            ).one()
            limit = cur.run(
                "SELECT overdraft_limit, position FROM {account_limits} WHERE account_id = %s "
                "AND effective_at <= %s ORDER BY effective_at DESC, position DESC LIMIT 1",
                (account, at),
            ).one()
            # Held then: placements less captures and releases up to the moment, of
            # the holds not yet past their expiry at that moment.
            held_rows = cur.run(
                "SELECT c.delta, c.position FROM {hold_changes} c JOIN {holds} h "
                "ON h.hold_id = c.hold_id WHERE c.account_id = %s AND c.effective_at <= %s "
                "AND (h.expires_at IS NULL OR h.expires_at > %s)",
                (account, at, at),
            ).all()
        held = sum((Decimal(row["delta"]) for row in held_rows), Decimal(0))
        positions = [int(row["position"]) for row in (entry, limit, *held_rows) if row is not None]
        return BalanceAsOf(
            ledger_balance=Decimal(entry["balance_after"]) if entry else Decimal(0),
            overdraft_limit=Decimal(limit["overdraft_limit"]) if limit else Decimal(0),
            held_amount=held,
            position=max(positions) if positions else None,
        )

    def ledger_balances(self) -> list[LedgerBalance]:
        with self.store.read() as cur:
            rows = cur.run("SELECT * FROM {ledger_balances} ORDER BY currency, account").all()
        return [ledger_from_row(row) for row in rows]

    # ------------------------------------------------------------------- status

    def status(self) -> list[ProjectionStatus]:
        head = self.recorder.max_notification_id() or 0
        positions = self.store.positions()
        with self.store.read() as cur:
            return [
                ProjectionStatus(
                    name=name,
                    generation=positions[name][0],
                    position=positions[name][1],
                    head=head,
                    lag_events=self._lag(cur, name, positions[name][1], head),
                )
                for name in FOLLOWERS
                if name in positions
            ]

    def _lag(self, cur: Cursor, name: str, position: int, head: int) -> int:
        if position >= head:
            return 0
        topics = list(FOLLOWERS[name].topics)  # none: it follows every event
        if isinstance(self.recorder, PostgresApplicationRecorder):
            table = f'"{self.recorder.datastore.schema}"."{self.recorder.events_table_name}"'
            own = " AND topic = ANY(%s)" if topics else ""
            row = cur.raw.execute(
                f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {table} WHERE notification_id > %s"
                f"{own} LIMIT %s) AS own",
                (position, *([topics] if topics else []), LAG_COUNT_CAP),
            ).fetchone()
        else:
            table = getattr(self.recorder, "events_table_name", "stored_events")
            own = f" AND topic IN ({', '.join('?' * len(topics))})" if topics else ""
            row = cur.raw.execute(
                f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {table} WHERE rowid > ?{own} LIMIT ?)",
                (position, *topics, LAG_COUNT_CAP),
            ).fetchone()
        return int(row["n"])


def _balance(row: object) -> Decimal | None:
    return None if row is None else Decimal(row["balance_after"])  # type: ignore[index]
