"""Trial balance: the bank's own accounts and its customers' balances on one day."""

from __future__ import annotations

from datetime import date, tzinfo
from decimal import Decimal
from typing import Any

from application.compliance.calendar import day_bounds
from application.compliance.ports import ComplianceSnapshot
from domain.ledger import CASH, CLEARING
from domain.money import format_amount

COLUMNS = (
    "opening_debit", "opening_credit", "debits", "credits", "closing_debit", "closing_credit",
)
ZERO = Decimal(0)


def trial_balance(
    snapshot: ComplianceSnapshot, day: date, currency: str, tz: tzinfo, *, detail: bool = False
) -> dict[str, Any]:
    start, end = day_bounds(day, tz)
    opening = snapshot.balances(start, currency)
    closing = snapshot.balances(end, currency)
    moved: dict[str, list[Decimal]] = {}
    for entry in snapshot.entries(start, end, None):
        if entry.account_id in closing:
            sides = moved.setdefault(entry.account_id, [ZERO, ZERO])
            if entry.signed_amount < 0:
                sides[0] -= entry.signed_amount
            else:
                sides[1] += entry.signed_amount
    lines: list[dict[str, Decimal | str]] = []
    # The bank's own accounts (assets: a positive balance is a debit balance).
    before = {t.account: t for t in snapshot.ledger_totals(None, start) if t.currency == currency}
    during = {t.account: t for t in snapshot.ledger_totals(start, end) if t.currency == currency}
    for account in (CASH, CLEARING):
        b, d = before.get(account), during.get(account)
        open_net = (b.debits - b.credits) if b else ZERO
        debits, credits = (d.debits, d.credits) if d else (ZERO, ZERO)
        close_net = open_net + debits - credits
        lines.append(_line(account, -open_net, debits, credits, -close_net))
    # Customer accounts: liabilities in credit, assets when overdrawn, each account
    # on the line its closing balance puts it.
    accounts: list[dict[str, Decimal | str]] = []
    for account_id in sorted(closing):
        debits, credits = moved.get(account_id, [ZERO, ZERO])
        if opening.get(account_id, ZERO) == 0 and closing[account_id] == 0 and debits == credits == 0:
            continue
        line = _line(account_id, opening.get(account_id, ZERO), debits, credits, closing[account_id])
        line["line"] = "customer_overdrafts" if closing[account_id] < 0 else "customer_deposits"
        accounts.append(line)
    for name in ("customer_deposits", "customer_overdrafts"):
        mine = [a for a in accounts if a["line"] == name]
        total = {c: sum((a[c] for a in mine), ZERO) for c in COLUMNS}  # type: ignore[misc]
        lines.append({"account": name, **total})
    totals = {c: sum((line[c] for line in lines), ZERO) for c in COLUMNS}  # type: ignore[misc]
    exceptions = []
    for left, right, what in (
        ("opening_debit", "opening_credit", "opening balances"),
        ("debits", "credits", "movements"),
        ("closing_debit", "closing_credit", "closing balances"),
    ):
        if totals[left] != totals[right]:
            exceptions.append(
                {
                    "code": "unbalanced",
                    "detail": f"{what} do not balance: debits {format_amount(totals[left], currency)}"
                    f" against credits {format_amount(totals[right], currency)}",
                }
            )
    report: dict[str, Any] = {
        "date": day.isoformat(),
        "currency": currency,
        # Per customer account (``detail``): after the four lines, not in the totals.
        "lines": [_printed(line, currency) for line in lines + (accounts if detail else [])],
        "totals": {c: format_amount(totals[c], currency) for c in COLUMNS},
        "exceptions": exceptions,
    }
    return report


def _line(
    account: str, opening: Decimal, debits: Decimal, credits: Decimal, closing: Decimal
) -> dict[str, Decimal | str]:
    """``opening`` and ``closing`` credit-positive (a customer's view of its account)."""
    return {
        "account": account,
        "opening_debit": max(-opening, ZERO),
        "opening_credit": max(opening, ZERO),
        "debits": debits,
        "credits": credits,
        "closing_debit": max(-closing, ZERO),
        "closing_credit": max(closing, ZERO),
    }


def _printed(line: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        k: format_amount(v, currency) if isinstance(v, Decimal) else v for k, v in line.items()
    }
