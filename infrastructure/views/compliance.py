"""The compliance projection's tables: facts, alerts, and the reads that evaluate them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Tracking

from application.compliance.facts import AccountFacts, Alert, CustomerFacts, Movement
from application.compliance.rules import Rules
from application.errors import RulesChanged
from application.projections.compliance import (
    AlertChanges,
    ComplianceChanges,
    ComplianceView,
    StoredAlert,
)
from domain.money import minor_units
from infrastructure.views.store import Cursor, ViewStore, parse_time, time_text
from infrastructure.views.writers import SqlView, _marks

MOVEMENT_COLUMNS = (
    "transaction_id, seq, position, booked_at, kind, channel, currency, amount, account_id, "
    "customer_id, flow, conducted_by, counterparty_country, reverses"
)
LEDGER_COLUMNS = (
    "account, currency, booked_at, position, seq, transaction_id, kind, channel, direction, "
    "amount, minor"
)
ALERT_COLUMNS = "alert_id, position, retracted_position, rule, customer_id, trigger_booked_at, body"
_CHUNK = 500


class SqlComplianceView(SqlView, ComplianceView):
    projection_name = "compliance"

    def __init__(
        self,
        store: ViewStore,
        generation: int,
        *,
        live: bool,
        business_tz: tzinfo,
        rules: Rules,
    ) -> None:
        super().__init__(store, generation, live=live)
        self.business_tz = business_tz
        self.rules = rules

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountFacts]:
        ids = list(account_ids)
        found: dict[str, AccountFacts] = {}
        with self.store.read() as cur:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows = cur.run(
                    f"SELECT account_id, customer_id, currency, opened_at, position FROM "
                    f"{self.t('cmp_accounts')} WHERE account_id IN ({_marks(len(chunk))})",
                    chunk,
                ).all()
                found.update({row["account_id"]: account_from_row(row) for row in rows})
        return found

    def load_customers(self, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
        found: dict[str, CustomerFacts] = {}
        with self.store.read() as cur:
            for customer_id in customer_ids:
                row = cur.run(
                    f"SELECT customer_id, position, recorded_at, details FROM "
                    f"{self.t('cmp_customers')} WHERE customer_id = %s "
                    "ORDER BY position DESC LIMIT 1",
                    (customer_id,),
                ).one()
                if row is not None:
                    found[customer_id] = customer_from_row(row)
        return found

    def save(
        self,
        changes: ComplianceChanges,
        alerts: Callable[[Any], AlertChanges],
        tracking: Tracking,
    ) -> None:
        def write(cur: Cursor) -> None:
            self._check_rules(cur)
            self._write_facts(cur, changes)
            found = alerts(_Facts(self, cur))
            if changes.voided:
                marks = _marks(len(changes.voided))
                cur.run(
                    f"DELETE FROM {self.t('cmp_activity')} WHERE transaction_id IN ({marks})",
                    changes.voided,
                )
            for alert_id, raised_at, retracted_at in found.retracted:
                cur.run(
                    f"UPDATE {self.t('cmp_alerts')} SET retracted_position = %s "
                    "WHERE alert_id = %s AND position = %s",
                    (retracted_at, alert_id, raised_at),
                )
            self.insert(cur, "cmp_alerts", ALERT_COLUMNS, [alert_row(s) for s in found.raised])

        self.commit(tracking, write)

    def _check_rules(self, cur: Cursor) -> None:
        """Alerts of one generation are all evaluated under one version of the rules."""
        row = cur.run(
            f"SELECT value FROM {self.t('cmp_meta')} WHERE name = 'rules_version'"
        ).one()
        if row is None:
            cur.run(
                f"INSERT INTO {self.t('cmp_meta')} (name, value) VALUES ('rules_version', %s)",
                (self.rules.version,),
            )
        elif row["value"] != self.rules.version:
            raise RulesChanged(row["value"], self.rules.version)

    def _write_facts(self, cur: Cursor, changes: ComplianceChanges) -> None:
        self.insert(
            cur, "cmp_accounts", "account_id, customer_id, currency, opened_at, position",
            [
                (a.account_id, a.customer_id, a.currency, time_text(a.opened_at), a.position)
                for a in changes.accounts
            ],
        )
        self.insert(
            cur, "cmp_customers", "customer_id, position, recorded_at, details",
            [
                (c.customer_id, c.position, time_text(c.recorded_at), _details_json(c))
                for c in changes.customers
            ],
        )
        self.insert(cur, "cmp_movements", MOVEMENT_COLUMNS, [movement_row(m) for m in changes.movements])
        self.insert(
            cur, "cmp_ledger", LEDGER_COLUMNS,
            [
                (
                    line.account, line.currency, time_text(line.booked_at), line.position,
                    line.seq, line.transaction_id, line.kind, line.channel, line.direction,
                    str(line.amount), int(line.amount.scaleb(minor_units(line.currency))),
                )
                for line in changes.ledger
            ],
        )
        self.insert(
            cur, "cmp_activity", "account_id, at, position, what, transaction_id",
            [
                (a.account_id, time_text(a.at), a.position, a.what, transaction_id)
                for a, transaction_id in changes.activities
            ],
        )


class _Facts:
    """The alert rules' reads, inside the transaction that wrote the batch's facts."""

    def __init__(self, view: SqlComplianceView, cur: Cursor) -> None:
        self.view = view
        self.cur = cur

    def movements_of_many(self, since: dict[str, datetime]) -> dict[str, list[Movement]]:
        table = self.view.t("cmp_movements")
        found: dict[str, dict[tuple[str, int], Movement]] = {p: {} for p in since}
        persons = sorted(since)
        for start in range(0, len(persons), _CHUNK):
            chunk = persons[start : start + _CHUNK]
            earliest = time_text(min(since[p] for p in chunk))
            marks = _marks(len(chunk))
            rows = self.cur.run(
                f"SELECT {MOVEMENT_COLUMNS} FROM {table} WHERE customer_id IN ({marks}) "
                f"AND booked_at >= %s UNION SELECT {MOVEMENT_COLUMNS} FROM {table} "
                f"WHERE conducted_by IN ({marks}) AND booked_at >= %s "
                "AND kind = 'deposit' AND channel = 'cash'",
                (*chunk, earliest, *chunk, earliest),
            ).all()
            for row in rows:
                movement = movement_from_row(row)
                for person in {movement.customer_id, movement.conducted_by}:
                    if person in found and movement.booked_at >= since[person]:
                        found[person][(movement.transaction_id, movement.seq)] = movement
        return {
            person: sorted(ms.values(), key=lambda m: (m.booked_at, m.position, m.seq))
            for person, ms in found.items()
        }

    def _by(self, column: str, ids: Sequence[str]) -> list[Movement]:
        found: list[Movement] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            rows = self.cur.run(
                f"SELECT {MOVEMENT_COLUMNS} FROM {self.view.t('cmp_movements')} "
                f"WHERE {column} IN ({_marks(len(chunk))})",
                chunk,
            ).all()
            found.extend(movement_from_row(row) for row in rows)
        return found

    def reversals_of(self, transaction_ids: Sequence[str]) -> list[Movement]:
        return self._by("reverses", transaction_ids)

    def movements_of_transactions(self, transaction_ids: Sequence[str]) -> list[Movement]:
        return self._by("transaction_id", transaction_ids)

    def present_alerts_many(self, since: dict[str, datetime]) -> dict[str, list[StoredAlert]]:
        found: dict[str, list[StoredAlert]] = {p: [] for p in since}
        persons = sorted(since)
        for start in range(0, len(persons), _CHUNK):
            chunk = persons[start : start + _CHUNK]
            rows = self.cur.run(
                f"SELECT customer_id, position, trigger_booked_at, body FROM "
                f"{self.view.t('cmp_alerts')} WHERE customer_id IN ({_marks(len(chunk))}) "
                "AND trigger_booked_at >= %s AND retracted_position IS NULL",
                (*chunk, time_text(min(since[p] for p in chunk))),
            ).all()
            for row in rows:
                if parse_time(row["trigger_booked_at"]) >= since[row["customer_id"]]:
                    found[row["customer_id"]].append(
                        StoredAlert(alert_from_json(row["body"]), int(row["position"]))
                    )
        return found

    def last_activity(self, account_id: str, before: datetime) -> datetime | None:
        row = self.cur.run(
            f"SELECT MAX(at) AS at FROM {self.view.t('cmp_activity')} "
            "WHERE account_id = %s AND at < %s",
            (account_id, time_text(before)),
        ).one()
        return parse_time(row["at"]) if row and row["at"] else None

    def opened_at(self, account_ids: Iterable[str]) -> dict[str, datetime]:
        ids = sorted(account_ids)
        found: dict[str, datetime] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self.cur.run(
                f"SELECT account_id, opened_at FROM {self.view.t('cmp_accounts')} "
                f"WHERE account_id IN ({_marks(len(chunk))})",
                chunk,
            ).all()
            found.update({row["account_id"]: parse_time(row["opened_at"]) for row in rows})
        return found


def movement_row(m: Movement) -> tuple[Any, ...]:
    return (
        m.transaction_id, m.seq, m.position, time_text(m.booked_at), m.kind, m.channel,
        m.currency, str(m.amount), m.account_id, m.customer_id, m.flow, m.conducted_by,
        m.counterparty_country, m.reverses,
    )


def movement_from_row(row: Any) -> Movement:
    return Movement(
        transaction_id=row["transaction_id"],
        position=int(row["position"]),
        seq=int(row["seq"]),
        booked_at=parse_time(row["booked_at"]),
        kind=row["kind"],
        channel=row["channel"],
        currency=row["currency"],
        amount=Decimal(row["amount"]),
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        flow=row["flow"],
        conducted_by=row["conducted_by"],
        counterparty_country=row["counterparty_country"],
        reverses=row["reverses"],
    )


def account_from_row(row: Any) -> AccountFacts:
    return AccountFacts(
        row["account_id"], row["customer_id"], row["currency"], parse_time(row["opened_at"]),
        int(row["position"]),
    )


def _details_json(c: CustomerFacts) -> str:
    details = c.details()
    details["date_of_birth"] = c.date_of_birth.isoformat() if c.date_of_birth else None
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


def customer_from_row(row: Any) -> CustomerFacts:
    details = json.loads(row["details"])
    dob = details.get("date_of_birth")
    return CustomerFacts(
        customer_id=row["customer_id"],
        position=int(row["position"]),
        recorded_at=parse_time(row["recorded_at"]),
        name=details["name"],
        kind=details["kind"],
        country=details["country"],
        date_of_birth=date.fromisoformat(dob) if dob else None,
        identification=details.get("identification"),
        address=details.get("address"),
        occupation=details.get("occupation"),
        group_id=details.get("group_id"),
    )


def alert_row(stored: StoredAlert) -> tuple[Any, ...]:
    a = stored.alert
    return (
        a.alert_id, stored.position, None, a.rule, a.customer_id,
        time_text(a.trigger_booked_at), alert_json(a),
    )


def alert_json(a: Alert) -> str:
    return json.dumps(
        {
            "alert_id": a.alert_id, "rule": a.rule, "customer_id": a.customer_id,
            "trigger_transaction_id": a.trigger_transaction_id,
            "trigger_booked_at": time_text(a.trigger_booked_at),
            "window_start": time_text(a.window_start), "window_end": time_text(a.window_end),
            "account_ids": list(a.account_ids), "transaction_ids": list(a.transaction_ids),
            "figures": a.figures,
        },
        sort_keys=True, separators=(",", ":"),
    )


def alert_from_json(text: str) -> Alert:
    body = json.loads(text)
    return Alert(
        alert_id=body["alert_id"],
        rule=body["rule"],
        customer_id=body["customer_id"],
        trigger_transaction_id=body["trigger_transaction_id"],
        trigger_booked_at=parse_time(body["trigger_booked_at"]),
        window_start=parse_time(body["window_start"]),
        window_end=parse_time(body["window_end"]),
        account_ids=tuple(body["account_ids"]),
        transaction_ids=tuple(body["transaction_ids"]),
        figures=body["figures"],
    )
