"""US Currency Transaction Reports: cash over the threshold per person and day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from application.compliance.calendar import day_bounds
from application.compliance.facts import IN, CustomerFacts, Movement
from application.compliance.ports import ComplianceSnapshot
from application.compliance.reports.common import (
    converted,
    unconverted_entry,
    without_same_day_reversals,
)
from application.compliance.rules import Rules
from domain.money import format_amount

CONDUCTOR = "conductor"
ON_BEHALF = "on_behalf"


@dataclass
class _Side:
    total: Decimal = Decimal(0)
    movements: list[Movement] = field(default_factory=list)


@dataclass
class _Person:
    cash_in: _Side = field(default_factory=_Side)
    cash_out: _Side = field(default_factory=_Side)
    roles: dict[str, set[str]] = field(default_factory=dict)  # transaction -> roles


def cash_movements(snapshot: ComplianceSnapshot, day: date, tz: tzinfo) -> list[Movement]:
    """The day's cash deposits and withdrawals that count (no same-day reversals)."""
    start, end = day_bounds(day, tz)
    found = snapshot.movements(start, end, channel="cash", kinds=("deposit", "withdrawal", "reversal"))
    return without_same_day_reversals(found, tz)


def persons_of(movement: Movement) -> list[tuple[str, set[str]]]:
    """Whom a cash transaction counts for, each once, with their roles: the account's
    customer (on whose behalf; also the conductor when nobody else is named) and
    ``conducted_by`` when another person conducted it."""
    if movement.conducted_by is None or movement.conducted_by == movement.customer_id:
        return [(movement.customer_id, {CONDUCTOR, ON_BEHALF})]
    return [(movement.customer_id, {ON_BEHALF}), (movement.conducted_by, {CONDUCTOR})]


def ctr_report(
    snapshot: ComplianceSnapshot, day: date, rules: Rules, tz: tzinfo
) -> dict[str, Any]:
    currency = rules.ctr_currency
    persons: dict[str, _Person] = {}
    unconverted: list[dict[str, Any]] = []
    for movement in cash_movements(snapshot, day, tz):
        amount = converted(movement.amount, movement.currency, currency, rules)
        if amount is None:
            unconverted.append(unconverted_entry(movement))
            continue
        for person_id, roles in persons_of(movement):
            person = persons.setdefault(person_id, _Person())
            side = person.cash_in if movement.flow == IN else person.cash_out
            side.total += amount
            side.movements.append(movement)
            person.roles.setdefault(movement.transaction_id, set()).update(roles)
    _, end = day_bounds(day, tz)
    reportable = {
        pid: p for pid, p in persons.items()
        if p.cash_in.total > rules.ctr_threshold or p.cash_out.total > rules.ctr_threshold
    }
    customers = snapshot.customers(end, reportable)
    ctrs = [
        _ctr(pid, reportable[pid], customers.get(pid), day, rules)
        for pid in sorted(reportable)
    ]
    return {
        "date": day.isoformat(),
        "currency": currency,
        "threshold": format_amount(rules.ctr_threshold, currency),
        "ctrs": ctrs,
        "unconverted": sorted(unconverted, key=lambda u: u["transaction_id"]),
    }


def _ctr(
    person_id: str, person: _Person, customer: CustomerFacts | None, day: date, rules: Rules
) -> dict[str, Any]:
    currency = rules.ctr_currency
    sides = [
        side for side in (person.cash_in, person.cash_out) if side.total > rules.ctr_threshold
    ]
    reported: Sequence[Movement] = [m for side in sides for m in side.movements]
    transactions = sorted({m.transaction_id for m in reported})
    roles = sorted({r for t in transactions for r in person.roles[t]})

    def amount(side: _Side) -> str | None:
        return format_amount(side.total, currency) if side.total > rules.ctr_threshold else None

    return {
        "customer_id": person_id,
        "name": customer.name if customer else None,
        "kind": customer.kind if customer else None,
        "identification": customer.identification if customer else None,
        "date_of_birth": (
            customer.date_of_birth.isoformat() if customer and customer.date_of_birth else None
        ),
        "country": customer.country if customer else None,
        "address": customer.address if customer else None,
        "occupation": customer.occupation if customer else None,
        "cash_in": amount(person.cash_in),
        "cash_out": amount(person.cash_out),
        "multiple_transactions": any(
            len({m.transaction_id for m in side.movements}) > 1 for side in sides
        ),
        "roles": roles,
        "account_ids": sorted({m.account_id for m in reported}),
        "transaction_ids": transactions,
        "due_date": (day + timedelta(days=rules.ctr_due_days)).isoformat(),
    }
