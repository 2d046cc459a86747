"""What several reports share: same-day reversals, conversions and money as text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from application.compliance.calendar import business_day
from application.compliance.facts import Movement
from application.compliance.rules import Rules
from domain.money import format_amount, minor_units


def without_same_day_reversals(movements: Sequence[Movement], tz: tzinfo) -> list[Movement]:
    """Leave out reversals, and transactions reversed on the business day they were
    booked (both sides are left out; a later reversal leaves the original in).

    ``movements`` cover whole business days, reversals included: a reversal that
    matters is booked on its original's day, so it is among them."""
    booked = {m.transaction_id: business_day(m.booked_at, tz) for m in movements if m.kind != "reversal"}
    voided = {
        r.reverses
        for r in movements
        if r.kind == "reversal" and r.reverses in booked
        and business_day(r.booked_at, tz) == booked[r.reverses]
    }
    return [m for m in movements if m.kind != "reversal" and m.transaction_id not in voided]


def converted(amount: Decimal, currency: str, target: str, rules: Rules) -> Decimal | None:
    """``amount`` in ``target``, rounded half-even to its minor units; None without a rate."""
    value = rules.convert(amount, currency, target)
    if value is None:
        return None
    return value.quantize(Decimal(1).scaleb(-minor_units(target)), rounding=ROUND_HALF_EVEN)


def unconverted_entry(movement: Movement) -> dict[str, Any]:
    return {
        "transaction_id": movement.transaction_id,
        "account_id": movement.account_id,
        "customer_id": movement.customer_id,
        "kind": movement.kind,
        "amount": format_amount(movement.amount, movement.currency),
        "currency": movement.currency,
    }


def ratio(numerator: Decimal, denominator: Decimal) -> str:
    return str((numerator / denominator).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))
