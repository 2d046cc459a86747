"""Risk views: exposures against capital, overdrafts with ageing, liquidity per day."""

from __future__ import annotations

from datetime import date, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from application.compliance.calendar import business_day, day_bounds, day_start, days
from application.compliance.ports import ComplianceSnapshot
from application.compliance.reports.common import converted, ratio
from application.compliance.rules import Rules
from domain.ledger import CASH, DEBIT
from domain.money import format_amount

ZERO = Decimal(0)


def exposures(
    snapshot: ComplianceSnapshot, day: date, top: int, rules: Rules, tz: tzinfo
) -> dict[str, Any]:
    """Per customer, or per group where customers share one: drawn + undrawn limits
    × the conversion factor, in the risk currency, against Tier 1 capital."""
    _, end = day_bounds(day, tz)
    currency = rules.risk_currency
    accounts = snapshot.accounts(opened_before=end)
    balances = snapshot.balances(end)
    limits = snapshot.overdraft_limits(end)
    customers = snapshot.customers(end, {a.customer_id for a in accounts})
    totals: dict[tuple[str, str], list[Decimal]] = {}
    members: dict[tuple[str, str], set[str]] = {}
    unconverted = []
    for account in accounts:
        drawn = max(-balances.get(account.account_id, ZERO), ZERO)
        undrawn = max(limits.get(account.account_id, ZERO) - drawn, ZERO)
        if drawn == 0 and undrawn == 0:
            continue
        drawn_c = converted(drawn, account.currency, currency, rules)
        undrawn_c = converted(undrawn, account.currency, currency, rules)
        if drawn_c is None or undrawn_c is None:
            unconverted.append(
                {
                    "account_id": account.account_id, "customer_id": account.customer_id,
                    "currency": account.currency,
                    "drawn": format_amount(drawn, account.currency),
                    "undrawn": format_amount(undrawn, account.currency),
                }
            )
            continue
        customer = customers.get(account.customer_id)
        group = customer.group_id if customer is not None else None
        key = ("group_id", group) if group else ("customer_id", account.customer_id)
        sums = totals.setdefault(key, [ZERO, ZERO])
        sums[0] += drawn_c
        sums[1] += undrawn_c
        members.setdefault(key, set()).add(account.customer_id)
    rows = []
    for (kind, ident), (drawn, undrawn) in totals.items():
        exposure = drawn + undrawn * rules.undrawn_ccf
        share = exposure / rules.tier1_capital
        rows.append(
            (
                exposure,
                ident,
                {
                    kind: ident,
                    **({"customer_ids": sorted(members[(kind, ident)])} if kind == "group_id" else {}),
                    "drawn": format_amount(drawn, currency),
                    "undrawn": format_amount(undrawn, currency),
                    "exposure": format_amount(exposure, currency),
                    "ratio": ratio(exposure, rules.tier1_capital),
                    "large": share >= rules.large_exposure_ratio,
                    "breach": share > rules.breach_ratio,
                },
            )
        )
    rows.sort(key=lambda r: (-r[0], r[1]))
    chosen = [body for n, (exposure, _, body) in enumerate(rows) if exposure > 0 and (n < top or body["large"])]
    return {
        "date": day.isoformat(),
        "currency": currency,
        "tier1_capital": format_amount(rules.tier1_capital, currency),
        "undrawn_ccf": ratio(rules.undrawn_ccf, Decimal(1)),
        "top": top,
        "exposures": chosen,
        "unconverted": sorted(unconverted, key=lambda u: u["account_id"]),
    }


def overdrafts(snapshot: ComplianceSnapshot, day: date, tz: tzinfo) -> dict[str, Any]:
    """Every account overdrawn at the end of the day, with how long it has been."""
    _, end = day_bounds(day, tz)
    accounts = {a.account_id: a for a in snapshot.accounts(opened_before=end)}
    balances = snapshot.balances(end)
    limits = snapshot.overdraft_limits(end)
    overdrawn = sorted(a for a, b in balances.items() if b < 0 and a in accounts)
    history = snapshot.entries(min(a.opened_at for a in accounts.values()), end, overdrawn) if overdrawn else []
    by_account: dict[str, list[Any]] = {}
    for entry in history:
        by_account.setdefault(entry.account_id, []).append(entry)
    rows = []
    for account_id in overdrawn:
        account = accounts[account_id]
        drawn = -balances[account_id]
        limit = limits.get(account_id, ZERO)
        since = _days_overdrawn(by_account.get(account_id, []), day, tz)
        rows.append(
            {
                "account_id": account_id,
                "customer_id": account.customer_id,
                "currency": account.currency,
                "drawn": format_amount(drawn, account.currency),
                "limit": format_amount(limit, account.currency),
                "usage": ratio(drawn, limit) if limit > 0 else None,
                "days_overdrawn": since,
                "bucket": _bucket(since),
                "excess": format_amount(max(drawn - limit, ZERO), account.currency),
            }
        )
    return {"date": day.isoformat(), "accounts": rows}


def _days_overdrawn(entries: list[Any], day: date, tz: tzinfo) -> int:
    """Consecutive days, ending with ``day``, whose closing balance was below zero.

    A day without entries closes as the last day with entries did, so a day that
    closed at zero or above stays so until the next day with entries."""
    closing: dict[date, Decimal] = {}
    balance = ZERO
    for entry in entries:
        balance += entry.signed_amount
        closing[business_day(entry.booked_at, tz)] = balance
    active = sorted(d for d in closing if d <= day)
    if not active:
        return 0
    # Before its first entry an account stands at zero.
    last_fine = active[0] - timedelta(days=1)
    for index, when in enumerate(active):
        if closing[when] >= 0:
            following = active[index + 1] if index + 1 < len(active) else day + timedelta(days=1)
            last_fine = following - timedelta(days=1)
    return (day - last_fine).days


def _bucket(days_overdrawn: int) -> str:
    if days_overdrawn <= 30:
        return "1-30"
    if days_overdrawn <= 60:
        return "31-60"
    if days_overdrawn <= 90:
        return "61-90"
    return ">90"


def liquidity(
    snapshot: ComplianceSnapshot, first: date, last: date, tz: tzinfo
) -> dict[str, Any]:
    """Per business day and currency: cash in and out, and the deposit base (the sum
    of customer accounts in credit at the end of the day) with its change."""
    # From the day before the range: its closing deposit base is the first change's base.
    before = day_start(first - timedelta(days=1), tz)
    _, end = day_bounds(last, tz)
    accounts = {a.account_id: a for a in snapshot.accounts()}
    balances = snapshot.balances(before)
    cash: dict[tuple[date, str], list[Decimal]] = {}
    for booked_at, currency, direction, amount in snapshot.ledger_days(CASH, before, end):
        sides = cash.setdefault((business_day(booked_at, tz), currency), [ZERO, ZERO])
        sides[0 if direction == DEBIT else 1] += amount
    entries = snapshot.entries(before, end)
    base: dict[str, Decimal] = {}
    for account_id, balance in balances.items():
        if balance > 0:
            currency = accounts[account_id].currency
            base[currency] = base.get(currency, ZERO) + balance
    # Walk the entries day by day from the day before, for its closing deposit base.
    closing_base: dict[date, dict[str, Decimal]] = {}
    position = 0
    for when in days(first - timedelta(days=1), last):
        _, day_end = day_bounds(when, tz)
        while position < len(entries) and entries[position].booked_at < day_end:
            entry = entries[position]
            position += 1
            account = accounts.get(entry.account_id)
            if account is None:
                continue
            before = balances.get(entry.account_id, ZERO)
            after = before + entry.signed_amount
            balances[entry.account_id] = after
            change = max(after, ZERO) - max(before, ZERO)
            base[account.currency] = base.get(account.currency, ZERO) + change
        closing_base[when] = dict(base)
    rows = []
    currencies = sorted({c for day_base in closing_base.values() for c in day_base} | {c for _, c in cash})
    for when in days(first, last):
        for currency in currencies:
            cash_in, cash_out = cash.get((when, currency), [ZERO, ZERO])
            today = closing_base[when].get(currency, ZERO)
            yesterday = closing_base[when - timedelta(days=1)].get(currency, ZERO)
            if not (cash_in or cash_out or today or yesterday):
                continue
            rows.append(
                {
                    "date": when.isoformat(),
                    "currency": currency,
                    "cash_in": format_amount(cash_in, currency),
                    "cash_out": format_amount(cash_out, currency),
                    "net": format_amount(cash_in - cash_out, currency),
                    "deposit_base": format_amount(today, currency),
                    "deposit_base_change": format_amount(today - yesterday, currency),
                }
            )
    return {"from": first.isoformat(), "to": last.isoformat(), "days": rows}
