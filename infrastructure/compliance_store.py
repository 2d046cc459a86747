"""Reads of the compliance, statements and accounts views as of a log position.

Balances come from the statement index: the running balance of each account's last
entry booked before the moment, less the entries recorded after the position (an
import recorded later but booked earlier is in the running balance already). Sums on
the bank's own accounts run over whole minor units, which both stores add exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from application.compliance.facts import AccountFacts, Alert, CustomerFacts, Movement
from application.compliance.ports import BalanceEntry, LedgerTotals
from domain.ledger import CREDIT, DEBIT
from domain.money import minor_units
from infrastructure.views.compliance import (
    MOVEMENT_COLUMNS,
    account_from_row,
    alert_from_json,
    customer_from_row,
    movement_from_row,
)
from infrastructure.views.store import Cursor, ViewStore, parse_time, time_text

_CHUNK = 500


class SqlComplianceStore:
    def __init__(self, store: ViewStore, recorder: ApplicationRecorder) -> None:
        self.store = store
        self.recorder = recorder

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    @contextmanager
    def snapshot(self, position: int) -> Iterator[SqlComplianceSnapshot]:
        with self.store.read() as cur:
            yield SqlComplianceSnapshot(cur, position)


class SqlComplianceSnapshot:
    def __init__(self, cur: Cursor, position: int) -> None:
        self.cur = cur
        self.position = position

    def _rows(
        self, sql: str, params: list[Any], column: str, values: Iterable[str] | None
    ) -> list[Any]:
        """``sql`` (a WHERE clause ends it), further limited to ``column IN values`` in
        chunks; ``values`` None: no further limit."""
        if values is None:
            return self.cur.run(sql, params).all()
        wanted = sorted(set(values))
        rows: list[Any] = []
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows.extend(
                self.cur.run(f"{sql} AND {column} IN ({_marks(len(chunk))})", (*params, *chunk)).all()
            )
        return rows

    def rules_version(self) -> str | None:
        row = self.cur.run("SELECT value FROM {cmp_meta} WHERE name = 'rules_version'").one()
        return None if row is None else row["value"]

    def accounts(self, opened_before: datetime | None = None) -> list[AccountFacts]:
        sql = (
            "SELECT account_id, customer_id, currency, opened_at, position FROM {cmp_accounts} "
            "WHERE position <= %s"
        )
        params: list[Any] = [self.position]
        if opened_before is not None:
            sql += " AND opened_at < %s"
            params.append(time_text(opened_before))
        rows = self.cur.run(sql + " ORDER BY account_id", params).all()
        return [account_from_row(row) for row in rows]

    def customers(self, at: datetime, ids: Iterable[str] | None = None) -> dict[str, CustomerFacts]:
        rows = self._rows(
            "SELECT customer_id, position, recorded_at, details FROM {cmp_customers} "
            "WHERE position <= %s", [self.position], "customer_id", ids,
        )
        known = time_text(at)
        chosen: dict[str, tuple[bool, int, Any]] = {}
        for row in rows:
            # The last version recorded by ``at``; failing that, the first there is.
            by_then = row["recorded_at"] <= known
            position = int(row["position"])
            best = chosen.get(row["customer_id"])
            if best is None or _better(by_then, position, best[0], best[1]):
                chosen[row["customer_id"]] = (by_then, position, row)
        return {cid: customer_from_row(row) for cid, (_, _, row) in chosen.items()}

    def movements(
        self,
        start: datetime,
        end: datetime,
        *,
        channel: str | None = None,
        kinds: Sequence[str] = (),
    ) -> list[Movement]:
        sql = (
            f"SELECT {MOVEMENT_COLUMNS} FROM {{cmp_movements}} WHERE booked_at >= %s "
            "AND booked_at < %s AND position <= %s"
        )
        params: list[Any] = [time_text(start), time_text(end), self.position]
        if channel is not None:
            sql += " AND channel = %s"
            params.append(channel)
        if kinds:
            sql += f" AND kind IN ({_marks(len(kinds))})"
            params.extend(kinds)
        rows = self.cur.run(sql + " ORDER BY booked_at, position, seq", params).all()
        return [movement_from_row(row) for row in rows]

    def reversals_of(self, transaction_ids: Sequence[str]) -> list[Movement]:
        # The position is checked here rather than in SQL: given both, PostgreSQL's
        # planner may take the position index and scan every movement.
        rows = self._rows(
            f"SELECT {MOVEMENT_COLUMNS} FROM {{cmp_movements}} WHERE TRUE", [], "reverses",
            transaction_ids,
        )
        return [m for m in map(movement_from_row, rows) if m.position <= self.position]

    def balances(self, before: datetime, currency: str | None = None) -> dict[str, Decimal]:
        at = time_text(before)
        sql = (
            "SELECT a.account_id, (SELECT e.balance_after FROM {statement_entries} e "
            "WHERE e.account_id = a.account_id AND e.booked_at < %s "
            "ORDER BY e.booked_at DESC, e.position DESC, e.seq DESC LIMIT 1) AS balance "
            "FROM {cmp_accounts} a WHERE a.position <= %s"
        )
        params: list[Any] = [at, self.position]
        if currency is not None:
            sql += " AND a.currency = %s"
            params.append(currency)
        balances = {
            row["account_id"]: Decimal(row["balance"]) if row["balance"] is not None else Decimal(0)
            for row in self.cur.run(sql, params).all()
        }
        # Entries recorded after the position are in the running balances: take them out.
        later = self.cur.run(
            "SELECT account_id, direction, amount FROM {statement_entries} "
            "WHERE position > %s AND booked_at < %s",
            (self.position, at),
        ).all()
        for row in later:
            if row["account_id"] in balances:
                amount = Decimal(row["amount"])
                balances[row["account_id"]] -= amount if row["direction"] == CREDIT else -amount
        return balances

    def entries(
        self, start: datetime, end: datetime, account_ids: Iterable[str] | None = None
    ) -> list[BalanceEntry]:
        sql = (
            "SELECT account_id, booked_at, position, seq, flow, amount FROM {cmp_movements} "
            "WHERE booked_at >= %s AND booked_at < %s AND position <= %s"
        )
        params: list[Any] = [time_text(start), time_text(end), self.position]
        rows = self._rows(sql, params, "account_id", account_ids)
        entries = [
            BalanceEntry(
                row["account_id"], parse_time(row["booked_at"]), int(row["position"]),
                int(row["seq"]),
                Decimal(row["amount"]) if row["flow"] == "in" else -Decimal(row["amount"]),
            )
            for row in rows
        ]
        entries.sort(key=lambda e: (e.booked_at, e.position, e.seq))
        return entries

    def ledger_totals(self, start: datetime | None, end: datetime) -> list[LedgerTotals]:
        sql = (
            "SELECT account, currency, direction, SUM(minor) AS total FROM {cmp_ledger} "
            "WHERE booked_at < %s AND position <= %s"
        )
        params: list[Any] = [time_text(end), self.position]
        if start is not None:
            sql += " AND booked_at >= %s"
            params.append(time_text(start))
        rows = self.cur.run(sql + " GROUP BY account, currency, direction", params).all()
        sums: dict[tuple[str, str], dict[str, Decimal]] = {}
        for row in rows:
            amount = Decimal(int(row["total"])).scaleb(-minor_units(row["currency"]))
            sums.setdefault((row["account"], row["currency"]), {})[row["direction"]] = amount
        return [
            LedgerTotals(
                account, currency, sides.get(DEBIT, Decimal(0)), sides.get(CREDIT, Decimal(0))
            )
            for (account, currency), sides in sorted(sums.items())
        ]

    def ledger_days(
        self, account: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, str, Decimal]]:
        rows = self.cur.run(
            "SELECT booked_at, currency, direction, amount FROM {cmp_ledger} "
            "WHERE account = %s AND booked_at >= %s AND booked_at < %s AND position <= %s",
            (account, time_text(start), time_text(end), self.position),
        ).all()
        return [
            (parse_time(row["booked_at"]), row["currency"], row["direction"], Decimal(row["amount"]))
            for row in rows
        ]

    def overdraft_limits(self, at: datetime) -> dict[str, Decimal]:
        rows = self.cur.run(
            "SELECT account_id, effective_at, position, overdraft_limit FROM {account_limits} "
            "WHERE effective_at <= %s AND position <= %s",
            (time_text(at), self.position),
        ).all()
        latest: dict[str, tuple[str, int, Decimal]] = {}
        for row in rows:
            key = (row["effective_at"], int(row["position"]))
            seen = latest.get(row["account_id"])
            if seen is None or key > seen[:2]:
                latest[row["account_id"]] = (*key, Decimal(row["overdraft_limit"]))
        return {account: limit for account, (_, _, limit) in latest.items()}

    def alerts(
        self,
        start: datetime | None,
        end: datetime | None,
        rule: str | None,
        customer_id: str | None,
    ) -> list[Alert]:
        sql = (
            "SELECT body FROM {cmp_alerts} WHERE position <= %s "
            "AND (retracted_position IS NULL OR retracted_position > %s)"
        )
        params: list[Any] = [self.position, self.position]
        for clause, value in (
            ("trigger_booked_at >= %s", time_text(start) if start else None),
            ("trigger_booked_at <= %s", time_text(end) if end else None),
            ("rule = %s", rule),
            ("customer_id = %s", customer_id),
        ):
            if value is not None:
                sql += " AND " + clause
                params.append(value)
        rows = self.cur.run(sql, params).all()
        found = [alert_from_json(row["body"]) for row in rows]
        found.sort(key=lambda a: (a.trigger_booked_at, a.rule, a.customer_id, a.alert_id))
        return found


def _better(by_then: bool, position: int, best_by_then: bool, best_position: int) -> bool:
    if by_then != best_by_then:
        return by_then
    # Known by then: the latest; only later: the earliest.
    return position > best_position if by_then else position < best_position


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)
