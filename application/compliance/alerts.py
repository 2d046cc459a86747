"""The AML alert rules (docs/reports.md, "AML alerts") as pure functions.

Two forms that must agree: ``all_alerts`` is the reference, a brute-force reading of the
whole history; ``evaluate_person`` is what the compliance projection calls, one person at
a time, for the triggers booked at or after ``since`` (sliding windows, linear in the
movements it is given). The equivalence is a property test
(tests/unit/test_alert_rules.py).

Interpretations, where docs/reports.md is silent:

- Reversals: ``effective`` drops every movement of kind ``reversal`` and every movement
  of a transaction reversed by a reversal booked on the same business day (in the
  business time zone) as the original. A transaction reversed on a later day stays.
- Order: movements are ordered by (booked_at, position, seq). A trigger's window holds
  the movements with ``t - N <= booked_at`` up to and including the trigger in that
  order (a movement at the same instant but later in the log is its own trigger, not
  part of an earlier trigger's window). Boundaries are inclusive: ``window_start = t -
  N``, ``window_end = t``.
- Dedup, for all five rules: one alert per rule, customer and trigger; a pattern that
  keeps growing raises a new alert at a new trigger only when the previous alert of that
  rule and customer (the latest earlier trigger that raised one, on any of the
  customer's accounts) has ``trigger_booked_at < t - N``. Several movements of one
  transaction can therefore never raise two alerts of one rule for one customer.
- Outgoing: flow ``out`` of kind withdrawal, transfer or capture. Incoming: flow ``in``
  of kind deposit, transfer or capture.
- ``structuring`` (``structuring_days``): cash deposits (kind deposit, channel cash)
  count for the account's customer and for ``conducted_by`` when given and different,
  each once. A deposit qualifies when its value in ``ctr_currency`` (``Rules.convert``;
  without a rate it is ignored) is at least ``structuring_low * ctr_threshold`` and at
  most ``ctr_threshold``. A qualifying deposit t triggers when the qualifying deposits
  counting for the person in its window number at least ``structuring_count``.
  figures ``{"count", "total" (ctr_currency), "currency"}``; ``customer_id`` is the
  person they count for.
- ``round_amounts`` (``round_amount_days``): deposits and withdrawals (any channel) on
  the customer's own accounts whose amount is a positive whole multiple of
  ``round_amount_unit`` in their own currency; a qualifying one triggers when at least
  ``round_amount_count`` are in its window. figures ``{"count", "total", "currency"}``,
  total and currency null unless all are in one currency.
- ``dormant_reactivation`` (``dormant_days``): an outgoing movement t on account A that
  existed throughout (``opened_at <= t - N``) with no customer-initiated activity in
  ``[t - N, t)``: the latest such activity strictly before t (in time) is absent or
  ``< t - N``. Customer-initiated activity on A: its opening (Activity ``opened``),
  holds (Activity ``hold``), and effective deposits into it, withdrawals from it and
  transfers out of it (incoming transfers, captures and reversals are not). An account
  without an opening date never qualifies. figures ``{"last_activity_at", "amount",
  "currency"}``.
- ``large_outgoing`` (``large_outgoing_days``): an outgoing movement t on A whose amount
  is more than ``large_outgoing_factor`` times the largest outgoing amount of A among
  the movements in ``[t - N, t]`` before t in (booked_at, position, seq) order; none
  there, no alert. figures ``{"amount", "largest_before", "currency"}``.
- ``pass_through`` (``pass_through_hours``): at any incoming or outgoing movement t on
  A, over A's movements in its window: incoming total at least
  ``pass_through_incoming`` and outgoing total at least ``pass_through_ratio`` times
  incoming, in A's own currency. figures ``{"incoming", "outgoing", "currency"}``.
- Rules 2-5 alert the account's customer. ``account_ids``: the sorted distinct accounts
  of the movements making up the pattern (the qualifying movements in the window; for
  dormant_reactivation and large_outgoing the trigger's own); ``transaction_ids``: their
  distinct transaction ids in (booked_at, position, seq) order (for
  dormant_reactivation and large_outgoing the trigger's only).
- Money in figures is text in the currency's minor units (``format_amount``), times
  RFC 3339 in UTC.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from application.compliance.facts import (
    IN,
    OUT,
    AccountFacts,
    Activity,
    Alert,
    Movement,
)
from application.compliance.rules import Rules
from application.views import timestamp
from domain.money import format_amount

ALERT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://backoffice.example/aml-alerts")

STRUCTURING = "structuring"
ROUND_AMOUNTS = "round_amounts"
DORMANT_REACTIVATION = "dormant_reactivation"
LARGE_OUTGOING = "large_outgoing"
PASS_THROUGH = "pass_through"
RULES = (STRUCTURING, ROUND_AMOUNTS, DORMANT_REACTIVATION, LARGE_OUTGOING, PASS_THROUGH)

REVERSAL = "reversal"
_OUTGOING_KINDS = frozenset({"withdrawal", "transfer", "capture"})
_INCOMING_KINDS = frozenset({"deposit", "transfer", "capture"})
_ACTIVITY_WHATS = frozenset({"opened", "hold"})

LastActivity = Callable[[str, datetime], datetime | None]


def alert_id(rule: str, customer_id: str, trigger_transaction_id: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, rule + customer_id + trigger_transaction_id))


def rule_window(rule: str, rules: Rules) -> timedelta:
    """N of the rule's window [t - N, t]."""
    if rule == STRUCTURING:
        return timedelta(days=rules.structuring_days)
    if rule == ROUND_AMOUNTS:
        return timedelta(days=rules.round_amount_days)
    if rule == DORMANT_REACTIVATION:
        return timedelta(days=rules.dormant_days)
    if rule == LARGE_OUTGOING:
        return timedelta(days=rules.large_outgoing_days)
    if rule == PASS_THROUGH:
        return timedelta(hours=rules.pass_through_hours)
    raise ValueError(f"unknown alert rule {rule!r}")


def lookback(rules: Rules) -> timedelta:
    """How far before ``since`` ``evaluate_person`` needs movements: the longest window
    but dormancy's (which reads ``last_activity`` instead); 90 days by default."""
    return max(rule_window(rule, rules) for rule in RULES if rule != DORMANT_REACTIVATION)


# -- shared definitions ---------------------------------------------------------------


def order_key(movement: Movement) -> tuple[datetime, int, int]:
    return (movement.booked_at, movement.position, movement.seq)


def is_outgoing(movement: Movement) -> bool:
    return movement.flow == OUT and movement.kind in _OUTGOING_KINDS


def is_incoming(movement: Movement) -> bool:
    return movement.flow == IN and movement.kind in _INCOMING_KINDS


def is_customer_activity(movement: Movement) -> bool:
    """Deposits into the account, withdrawals and transfers out of it."""
    if movement.flow == IN:
        return movement.kind == "deposit"
    return movement.flow == OUT and movement.kind in ("withdrawal", "transfer")


def structuring_persons(movement: Movement) -> tuple[str, ...]:
    """Whom a cash deposit counts for: the account's customer and its conductor."""
    by = movement.conducted_by
    if by is None or by == movement.customer_id:
        return (movement.customer_id,)
    return (movement.customer_id, by)


def structuring_value(movement: Movement, rules: Rules) -> Decimal | None:
    """The deposit's value in ``ctr_currency`` when it is a qualifying cash deposit."""
    if movement.kind != "deposit" or movement.channel != "cash" or movement.flow != IN:
        return None
    value = rules.convert(movement.amount, movement.currency, rules.ctr_currency)
    if value is None:
        return None
    if rules.structuring_low * rules.ctr_threshold <= value <= rules.ctr_threshold:
        return value
    return None


def is_round(movement: Movement, rules: Rules) -> bool:
    if movement.kind not in ("deposit", "withdrawal"):
        return False
    return movement.amount > 0 and movement.amount % rules.round_amount_unit == 0


def effective(movements: Iterable[Movement], business_tz: tzinfo) -> list[Movement]:
    """The movements every rule reads: no reversals, and nothing reversed the same
    business day it was booked; sorted by (booked_at, position, seq)."""
    items = list(movements)
    booked: dict[str, datetime] = {}
    reversed_on: dict[str, list[datetime]] = {}
    for m in items:
        if m.kind == REVERSAL:
            if m.reverses is not None:
                reversed_on.setdefault(m.reverses, []).append(m.booked_at)
        else:
            booked.setdefault(m.transaction_id, m.booked_at)

    def day(moment: datetime) -> date:
        return moment.astimezone(business_tz).date()

    cancelled = {
        tx for tx, times in reversed_on.items()
        if tx in booked and any(day(t) == day(booked[tx]) for t in times)
    }
    kept = [m for m in items if m.kind != REVERSAL and m.transaction_id not in cancelled]
    kept.sort(key=order_key)
    return kept


def _alert(rule: str, customer_id: str, trigger: Movement, rules: Rules,
           members: Sequence[Movement], figures: dict[str, Any]) -> Alert:
    t = trigger.booked_at
    transaction_ids: list[str] = []
    seen: set[str] = set()
    for m in sorted(members, key=order_key):
        if m.transaction_id not in seen:
            seen.add(m.transaction_id)
            transaction_ids.append(m.transaction_id)
    return Alert(
        alert_id=alert_id(rule, customer_id, trigger.transaction_id),
        rule=rule,
        customer_id=customer_id,
        trigger_transaction_id=trigger.transaction_id,
        trigger_booked_at=t,
        window_start=t - rule_window(rule, rules),
        window_end=t,
        account_ids=tuple(sorted({m.account_id for m in members})),
        transaction_ids=tuple(transaction_ids),
        figures=figures,
    )


def _structuring_figures(values: Sequence[Decimal], rules: Rules) -> dict[str, Any]:
    return {"count": len(values), "total": format_amount(sum(values, Decimal(0)),
                                                         rules.ctr_currency),
            "currency": rules.ctr_currency}


def _round_figures(members: Sequence[Movement]) -> dict[str, Any]:
    currencies = {m.currency for m in members}
    if len(currencies) == 1:
        (currency,) = currencies
        total = format_amount(sum((m.amount for m in members), Decimal(0)), currency)
        return {"count": len(members), "total": total, "currency": currency}
    return {"count": len(members), "total": None, "currency": None}


def _dormant_figures(trigger: Movement, last: datetime | None) -> dict[str, Any]:
    return {"last_activity_at": timestamp(last),
            "amount": format_amount(trigger.amount, trigger.currency),
            "currency": trigger.currency}


def _large_figures(trigger: Movement, largest: Decimal) -> dict[str, Any]:
    return {"amount": format_amount(trigger.amount, trigger.currency),
            "largest_before": format_amount(largest, trigger.currency),
            "currency": trigger.currency}


def _pass_through_figures(incoming: Decimal, outgoing: Decimal,
                          currency: str) -> dict[str, Any]:
    return {"incoming": format_amount(incoming, currency),
            "outgoing": format_amount(outgoing, currency), "currency": currency}


def _is_pass_through(incoming: Decimal, outgoing: Decimal, rules: Rules) -> bool:
    return incoming >= rules.pass_through_incoming and (
        outgoing >= rules.pass_through_ratio * incoming)


def _sort(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.trigger_booked_at, a.rule, a.customer_id))


# -- the reference: the whole history, brute force --------------------------------------


def all_alerts(movements: Iterable[Movement], activities: Iterable[Activity],
               accounts: Mapping[str, AccountFacts], rules: Rules,
               business_tz: tzinfo) -> list[Alert]:
    """Every alert of the whole history, sorted by (trigger_booked_at, rule,
    customer_id). Quadratic on purpose: each trigger's window is read afresh."""
    moves = effective(movements, business_tz)
    activity = list(activities)

    def last_activity(account_id: str, t: datetime) -> datetime | None:
        times = [a.at for a in activity
                 if a.account_id == account_id and a.what in _ACTIVITY_WHATS and a.at < t]
        times += [m.booked_at for m in moves
                  if m.account_id == account_id and is_customer_activity(m) and m.booked_at < t]
        return max(times, default=None)

    def in_window(m: Movement, trigger: Movement, n: timedelta) -> bool:
        return trigger.booked_at - n <= m.booked_at and order_key(m) <= order_key(trigger)

    people = {m.customer_id for m in moves}
    people |= {p for m in moves if structuring_value(m, rules) is not None
               for p in structuring_persons(m)}
    found: list[Alert] = []
    for person in sorted(people):
        # Candidates of each rule, in trigger order: (trigger, alert).
        candidates: dict[str, list[tuple[Movement, Alert]]] = {rule: [] for rule in RULES}
        own = [m for m in moves if m.customer_id == person]

        n = rule_window(STRUCTURING, rules)
        counted = [(m, v) for m in moves if (v := structuring_value(m, rules)) is not None
                   and person in structuring_persons(m)]
        for t, _ in counted:
            pairs = [(m, v) for m, v in counted if in_window(m, t, n)]
            if len(pairs) >= rules.structuring_count:
                candidates[STRUCTURING].append((t, _alert(
                    STRUCTURING, person, t, rules, [m for m, _ in pairs],
                    _structuring_figures([v for _, v in pairs], rules))))

        n = rule_window(ROUND_AMOUNTS, rules)
        rounds = [m for m in own if is_round(m, rules)]
        for t in rounds:
            window = [m for m in rounds if in_window(m, t, n)]
            if len(window) >= rules.round_amount_count:
                candidates[ROUND_AMOUNTS].append((t, _alert(
                    ROUND_AMOUNTS, person, t, rules, window, _round_figures(window))))

        n = rule_window(DORMANT_REACTIVATION, rules)
        for t in own:
            facts = accounts.get(t.account_id)
            if not is_outgoing(t) or facts is None or facts.opened_at > t.booked_at - n:
                continue
            last = last_activity(t.account_id, t.booked_at)
            if last is None or last < t.booked_at - n:
                candidates[DORMANT_REACTIVATION].append((t, _alert(
                    DORMANT_REACTIVATION, person, t, rules, [t], _dormant_figures(t, last))))

        n = rule_window(LARGE_OUTGOING, rules)
        for t in own:
            if not is_outgoing(t):
                continue
            before = [m.amount for m in own if m.account_id == t.account_id and is_outgoing(m)
                      and in_window(m, t, n) and order_key(m) < order_key(t)]
            if before and t.amount > rules.large_outgoing_factor * max(before):
                candidates[LARGE_OUTGOING].append((t, _alert(
                    LARGE_OUTGOING, person, t, rules, [t], _large_figures(t, max(before)))))

        n = rule_window(PASS_THROUGH, rules)
        for t in own:
            if not (is_incoming(t) or is_outgoing(t)):
                continue
            window = [m for m in own if m.account_id == t.account_id and in_window(m, t, n)
                      and (is_incoming(m) or is_outgoing(m))]
            incoming = sum((m.amount for m in window if is_incoming(m)), Decimal(0))
            outgoing = sum((m.amount for m in window if is_outgoing(m)), Decimal(0))
            if _is_pass_through(incoming, outgoing, rules):
                candidates[PASS_THROUGH].append((t, _alert(
                    PASS_THROUGH, person, t, rules, window,
                    _pass_through_figures(incoming, outgoing, t.currency))))

        for rule in RULES:
            n = rule_window(rule, rules)
            previous: datetime | None = None
            for t, alert in sorted(candidates[rule], key=lambda c: order_key(c[0])):
                if previous is None or previous < t.booked_at - n:
                    found.append(alert)
                    previous = t.booked_at
    return _sort(found)


# -- the incremental form: one person, triggers from `since` on -------------------------


@dataclass
class _Flows:
    """One account's movements in a pass-through window, with their running sums."""

    window: deque[Movement] = field(default_factory=deque)
    incoming: Decimal = Decimal(0)
    outgoing: Decimal = Decimal(0)

    def add(self, m: Movement) -> None:
        self.window.append(m)
        if is_incoming(m):
            self.incoming += m.amount
        else:
            self.outgoing += m.amount

    def evict_before(self, start: datetime) -> None:
        while self.window and self.window[0].booked_at < start:
            m = self.window.popleft()
            if is_incoming(m):
                self.incoming -= m.amount
            else:
                self.outgoing -= m.amount


def evaluate_person(person_id: str, movements: Iterable[Movement], since: datetime,
                    previous: Iterable[Alert], last_activity: LastActivity,
                    opened_at: Mapping[str, datetime], rules: Rules) -> list[Alert]:
    """The person's alerts whose trigger is booked at or after ``since``.

    ``movements``: the person's ``effective`` movements (on the person's own accounts,
    plus cash deposits the person conducted on other accounts) booked at or after
    ``since - lookback(rules)``. ``previous``: the person's alerts triggered before
    ``since`` (only the latest of each rule matters). ``last_activity(account_id, t)``:
    the latest customer-initiated activity on the account strictly before t, or None.
    ``opened_at``: the accounts' opening times. Sorted as ``all_alerts``.
    """
    n_struct = rule_window(STRUCTURING, rules)
    n_round = rule_window(ROUND_AMOUNTS, rules)
    n_dormant = rule_window(DORMANT_REACTIVATION, rules)
    n_large = rule_window(LARGE_OUTGOING, rules)
    n_pass = rule_window(PASS_THROUGH, rules)
    windows = {rule: rule_window(rule, rules) for rule in RULES}

    last_alert: dict[str, datetime] = {}
    for a in previous:
        if a.customer_id == person_id and a.trigger_booked_at < since:
            current = last_alert.get(a.rule)
            if current is None or a.trigger_booked_at > current:
                last_alert[a.rule] = a.trigger_booked_at

    def may_raise(rule: str, t: datetime) -> bool:
        prev = last_alert.get(rule)
        return prev is None or prev < t - windows[rule]

    found: list[Alert] = []

    def raise_(alert: Alert) -> None:
        found.append(alert)
        last_alert[alert.rule] = alert.trigger_booked_at

    structuring: deque[tuple[Movement, Decimal]] = deque()
    rounds: deque[Movement] = deque()
    # Per account: outgoing (booked_at, amount) with decreasing amounts (sliding max).
    largest: dict[str, deque[tuple[datetime, Decimal]]] = {}
    flows: dict[str, _Flows] = {}

    for m in sorted(movements, key=order_key):
        t = m.booked_at
        evaluate = t >= since

        value = structuring_value(m, rules)
        if value is not None and person_id in structuring_persons(m):
            structuring.append((m, value))
            while structuring[0][0].booked_at < t - n_struct:
                structuring.popleft()
            if (evaluate and len(structuring) >= rules.structuring_count
                    and may_raise(STRUCTURING, t)):
                raise_(_alert(STRUCTURING, person_id, m, rules, [s for s, _ in structuring],
                              _structuring_figures([v for _, v in structuring], rules)))

        if m.customer_id != person_id:
            continue  # a deposit conducted on someone else's account: structuring only

        if is_round(m, rules):
            rounds.append(m)
            while rounds[0].booked_at < t - n_round:
                rounds.popleft()
            if (evaluate and len(rounds) >= rules.round_amount_count
                    and may_raise(ROUND_AMOUNTS, t)):
                raise_(_alert(ROUND_AMOUNTS, person_id, m, rules, list(rounds),
                              _round_figures(rounds)))

        if is_outgoing(m):
            if evaluate and may_raise(DORMANT_REACTIVATION, t):
                opened = opened_at.get(m.account_id)
                if opened is not None and opened <= t - n_dormant:
                    last = last_activity(m.account_id, t)
                    if last is None or last < t - n_dormant:
                        raise_(_alert(DORMANT_REACTIVATION, person_id, m, rules, [m],
                                      _dormant_figures(m, last)))

            before = largest.setdefault(m.account_id, deque())
            while before and before[0][0] < t - n_large:
                before.popleft()
            if (evaluate and before and m.amount > rules.large_outgoing_factor * before[0][1]
                    and may_raise(LARGE_OUTGOING, t)):
                raise_(_alert(LARGE_OUTGOING, person_id, m, rules, [m],
                              _large_figures(m, before[0][1])))
            while before and before[-1][1] <= m.amount:
                before.pop()
            before.append((t, m.amount))

        if is_incoming(m) or is_outgoing(m):
            account = flows.setdefault(m.account_id, _Flows())
            account.add(m)
            account.evict_before(t - n_pass)
            if (evaluate and _is_pass_through(account.incoming, account.outgoing, rules)
                    and may_raise(PASS_THROUGH, t)):
                raise_(_alert(PASS_THROUGH, person_id, m, rules, list(account.window),
                              _pass_through_figures(account.incoming, account.outgoing,
                                                    m.currency)))
    return _sort(found)
