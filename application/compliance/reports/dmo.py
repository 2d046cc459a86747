"""Spain's monthly systematic report (DMO): operations with designated territories."""

from __future__ import annotations

from datetime import date, tzinfo
from typing import Any

from application.compliance.calendar import day_start, month_days
from application.compliance.facts import OUT, Movement
from application.compliance.ports import ComplianceSnapshot
from application.compliance.reports.common import (
    converted,
    unconverted_entry,
    without_same_day_reversals,
)
from application.compliance.rules import Rules
from application.views import timestamp
from domain.money import format_amount


def dmo_report(
    snapshot: ComplianceSnapshot, month: date, rules: Rules, tz: tzinfo
) -> dict[str, Any]:
    first, following = month_days(month)
    start, end = day_start(first, tz), day_start(following, tz)
    currency = rules.dmo_currency
    designated = set(rules.designated_territories)
    found = snapshot.movements(start, end, kinds=("deposit", "withdrawal", "transfer", "reversal"))
    movements = without_same_day_reversals(found, tz)
    customers = snapshot.customers(end, {m.customer_id for m in movements})
    in_scope: list[tuple[Movement, str]] = []
    for movement in movements:
        territory = _territory(movement, customers, designated)
        if territory is not None:
            in_scope.append((movement, territory))
    operations: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[tuple[Movement, Any]]] = {}
    unconverted: list[dict[str, Any]] = []
    for movement, territory in in_scope:
        amount = converted(movement.amount, movement.currency, currency, rules)
        if amount is None:
            unconverted.append(unconverted_entry(movement))
        elif amount > rules.dmo_threshold:
            operations.append(
                {
                    "transaction_id": movement.transaction_id,
                    "customer_id": movement.customer_id,
                    "territory": territory,
                    "kind": movement.kind,
                    "amount": format_amount(amount, currency),
                    "booked_at": timestamp(movement.booked_at),
                }
            )
        else:
            groups.setdefault((movement.customer_id, territory), []).append((movement, amount))
    splits = []
    for (customer_id, territory), parts in sorted(groups.items()):
        total = sum((amount for _, amount in parts), start=rules.dmo_threshold * 0)
        if len(parts) > 1 and total > rules.dmo_threshold:
            splits.append(
                {
                    "customer_id": customer_id,
                    "territory": territory,
                    "total": format_amount(total, currency),
                    "transaction_ids": [m.transaction_id for m, _ in parts],
                }
            )
    operations.sort(key=lambda o: (o["booked_at"], o["transaction_id"]))
    due = following.replace(day=15)
    return {
        "month": first.strftime("%Y-%m"),
        "currency": currency,
        "threshold": format_amount(rules.dmo_threshold, currency),
        "declaration": "positive" if operations or splits else "negative",
        "operations": operations,
        "splits": splits,
        "due_date": due.isoformat(),
        "unconverted": sorted(unconverted, key=lambda u: u["transaction_id"]),
    }


def _territory(movement: Movement, customers: dict[str, Any], designated: set[str]) -> str | None:
    """The designated territory that puts a movement in scope, if any: the
    counterparty's country (deposits and withdrawals), else the residence of the
    customer who made it (deposits, withdrawals, and transfers paid by them)."""
    if movement.kind in ("deposit", "withdrawal") and movement.counterparty_country in designated:
        return movement.counterparty_country
    if movement.kind == "transfer" and movement.flow != OUT:
        return None
    customer = customers.get(movement.customer_id)
    if customer is not None and customer.country in designated:
        return customer.country
    return None
