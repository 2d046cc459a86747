"""The AML alert rules (application/compliance/alerts.py), on movements built in memory:
each rule firing and at its boundaries, dedup, reversals, conductors, ids, and the
incremental form against the brute-force reference on random histories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.compliance.alerts import (
    ALERT_NAMESPACE,
    RULES,
    alert_id,
    all_alerts,
    effective,
    evaluate_person,
    lookback,
    rule_window,
)
from application.compliance.facts import (
    IN,
    OUT,
    AccountFacts,
    Activity,
    Alert,
    Movement,
)
from application.compliance.rules import Rules

D = Decimal
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
RATES = Rules(fx_rates={"EUR": {"USD": D("1.10")}})


class Log:
    """A little history: accounts, movements and activities, positions in order."""

    def __init__(self) -> None:
        self.position = 0
        self.movements: list[Movement] = []
        self.activities: list[Activity] = []
        self.accounts: dict[str, AccountFacts] = {}

    def _next(self) -> tuple[str, int]:
        self.position += 1
        return f"t{self.position:04d}", self.position

    def open(self, account: str, customer: str, currency: str = "USD",
             at: datetime = T0 - 1000 * DAY, recorded: bool = True) -> str:
        _, position = self._next()
        self.accounts[account] = AccountFacts(account, customer, currency, at, position)
        if recorded:  # the opening as an activity
            self.activities.append(Activity(account, customer, at, position, "opened"))
        return account

    def hold(self, account: str, at: datetime) -> None:
        _, position = self._next()
        facts = self.accounts[account]
        self.activities.append(Activity(account, facts.customer_id, at, position, "hold"))

    def _movement(self, tx: str, position: int, seq: int, at: datetime, kind: str,
                  channel: str, account: str, amount: str | Decimal, flow: str,
                  conducted_by: str | None = None, reverses: str | None = None) -> Movement:
        facts = self.accounts[account]
        m = Movement(tx, position, seq, at, kind, channel, facts.currency, D(amount), account,
                     facts.customer_id, flow, conducted_by=conducted_by, reverses=reverses)
        self.movements.append(m)
        return m

    def deposit(self, account: str, amount: str, at: datetime, channel: str = "cash",
                conducted_by: str | None = None) -> str:
        tx, position = self._next()
        self._movement(tx, position, 0, at, "deposit", channel, account, amount, IN,
                       conducted_by)
        return tx

    def withdraw(self, account: str, amount: str, at: datetime, channel: str = "cash") -> str:
        tx, position = self._next()
        self._movement(tx, position, 0, at, "withdrawal", channel, account, amount, OUT)
        return tx

    def transfer(self, payer: str, payee: str, amount: str, at: datetime) -> str:
        tx, position = self._next()
        self._movement(tx, position, 0, at, "transfer", "internal", payer, amount, OUT)
        self._movement(tx, position, 1, at, "transfer", "internal", payee, amount, IN)
        return tx

    def capture(self, account: str, amount: str, at: datetime, payee: str | None = None) -> str:
        tx, position = self._next()
        self._movement(tx, position, 0, at, "capture", "internal", account, amount, OUT)
        if payee is not None:
            self._movement(tx, position, 1, at, "capture", "internal", payee, amount, IN)
        return tx

    def reverse(self, original: str, at: datetime) -> str:
        tx, position = self._next()
        parts = [m for m in self.movements if m.transaction_id == original]
        for seq, m in enumerate(parts):
            self._movement(tx, position, seq, at, "reversal", m.channel, m.account_id,
                           m.amount, OUT if m.flow == IN else IN, m.conducted_by, original)
        return tx

    def alerts(self, rules: Rules = RATES, tz: tzinfo = UTC,
               rule: str | None = None) -> list[Alert]:
        """all_alerts, checked against evaluate_person over the whole history."""
        found = all_alerts(self.movements, self.activities, self.accounts, rules, tz)
        assert incremental(self, rules, tz, [T0 - 5000 * DAY]) == found
        return [a for a in found if rule is None or a.rule == rule]


# Customer-initiated movements (with the opening and holds): deposits into the account,
# withdrawals and transfers out of it.
CUSTOMER_DOINGS = {("deposit", IN), ("withdrawal", OUT), ("transfer", OUT)}


def brute_last_activity(movements: Sequence[Movement], activities: Sequence[Activity]):
    def last(account_id: str, t: datetime) -> datetime | None:
        times = [a.at for a in activities if a.account_id == account_id and a.at < t]
        times += [m.booked_at for m in movements if m.account_id == account_id
                  and (m.kind, m.flow) in CUSTOMER_DOINGS and m.booked_at < t]
        return max(times, default=None)
    return last


def person_movements(movements: Sequence[Movement], person: str) -> list[Movement]:
    return [m for m in movements if m.customer_id == person or (
        m.conducted_by == person and m.kind == "deposit" and m.channel == "cash")]


def incremental(log: Log, rules: Rules, tz: tzinfo, starts: Sequence[datetime]) -> list[Alert]:
    """Every person's alerts by evaluate_person, in batches starting at ``starts``: each
    batch sees the movements booked from its ``since - lookback`` up to the next start,
    and the alerts of the batches before it."""
    eff = effective(log.movements, tz)
    last = brute_last_activity(eff, log.activities)
    opened = {k: v.opened_at for k, v in log.accounts.items()}
    people = {m.customer_id for m in eff} | {m.conducted_by for m in eff if m.conducted_by}
    ends = [*starts[1:], None]
    found: list[Alert] = []
    for person in sorted(people):
        mine = person_movements(eff, person)
        previous: list[Alert] = []
        for since, end in zip(starts, ends, strict=True):
            batch = [m for m in mine if m.booked_at >= since - lookback(rules)
                     and (end is None or m.booked_at < end)]
            step = evaluate_person(person, batch, since, previous, last, opened, rules)
            assert all(a.customer_id == person and since <= a.trigger_booked_at
                       and (end is None or a.trigger_booked_at < end) for a in step)
            previous += step
        found += previous
    return sorted(found, key=lambda a: (a.trigger_booked_at, a.rule, a.customer_id))


# -- ids and windows ------------------------------------------------------------------


def test_alert_ids_are_uuid5_of_rule_customer_and_trigger() -> None:
    assert ALERT_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL,
                                         "https://backoffice.example/aml-alerts")
    assert alert_id("structuring", "c1", "t9") == str(
        uuid.uuid5(ALERT_NAMESPACE, "structuringc1t9"))
    assert alert_id("structuring", "c1", "t9") != alert_id("round_amounts", "c1", "t9")
    assert alert_id("structuring", "c1", "t9") != alert_id("structuring", "c2", "t9")


def test_alerts_are_deterministic() -> None:
    log = Log()
    log.open("a1", "c1")
    for i in range(3):
        log.deposit("a1", "9000.00", T0 + i * DAY)
    first, again = log.alerts(), log.alerts()
    assert first == again and first
    structuring = [a for a in first if a.rule == "structuring"]
    assert [a.alert_id for a in structuring] == [
        str(uuid.uuid5(ALERT_NAMESPACE, "structuring" + "c1" + "t0004"))]


def test_rule_windows_and_lookback() -> None:
    rules = Rules()
    assert RULES == ("structuring", "round_amounts", "dormant_reactivation",
                     "large_outgoing", "pass_through")
    assert [rule_window(r, rules) for r in RULES] == [
        timedelta(days=7), timedelta(days=30), timedelta(days=365), timedelta(days=90),
        timedelta(hours=48)]
    assert lookback(rules) == timedelta(days=90)
    assert lookback(Rules(round_amount_days=120)) == timedelta(days=120)
    with pytest.raises(ValueError):
        rule_window("nonsense", rules)


# -- structuring ----------------------------------------------------------------------


def test_structuring_fires_at_the_third_deposit() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("a2", "c1")
    t1 = log.deposit("a2", "9000.00", T0)
    t2 = log.deposit("a1", "9000.00", T0 + DAY)
    t3 = log.deposit("a1", "9000.00", T0 + 2 * DAY)
    (alert,) = log.alerts(rule="structuring")
    assert alert == Alert(
        alert_id=alert_id("structuring", "c1", t3), rule="structuring", customer_id="c1",
        trigger_transaction_id=t3, trigger_booked_at=T0 + 2 * DAY,
        window_start=T0 - 5 * DAY, window_end=T0 + 2 * DAY, account_ids=("a1", "a2"),
        transaction_ids=(t1, t2, t3),
        figures={"count": 3, "total": "27000.00", "currency": "USD"})


def test_two_deposits_are_not_structuring() -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    assert log.alerts(rule="structuring") == []


@pytest.mark.parametrize(("amount", "fires"), [
    ("7999.99", False), ("8000.00", True), ("10000.00", True), ("10000.01", False)])
def test_structuring_amount_bounds(amount: str, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    log.deposit("a1", amount, T0 + 2 * DAY)
    assert len(log.alerts(rule="structuring")) == (1 if fires else 0)


@pytest.mark.parametrize(("gap", "fires"), [(7 * DAY, True), (7 * DAY + SECOND, False)])
def test_structuring_window_is_seven_days_inclusive(gap: timedelta, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    log.deposit("a1", "9000.00", T0 + gap)
    assert len(log.alerts(rule="structuring")) == (1 if fires else 0)


def test_structuring_counts_cash_deposits_only() -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    log.deposit("a1", "9000.00", T0 + 2 * DAY, channel="wire")
    log.withdraw("a1", "9000.00", T0 + 2 * DAY)
    assert log.alerts(rule="structuring") == []


@pytest.mark.parametrize(("amount", "fires"), [
    ("7272.72", False),  # 7,999.992 USD
    ("7272.73", True),  # 8,000.003 USD
    ("9090.90", True),  # 9,999.99 USD
    ("9090.91", False)])  # 10,000.001 USD
def test_structuring_converts_into_the_ctr_currency(amount: str, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("e1", "c1", "EUR")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    log.deposit("e1", amount, T0 + 2 * DAY)
    found = log.alerts(rule="structuring")
    assert len(found) == (1 if fires else 0)
    if fires:
        total = D("18000") + D(amount) * D("1.10")
        assert found[0].figures == {"count": 3, "total": f"{total.quantize(D('0.01'))}",
                                    "currency": "USD"}


def test_structuring_ignores_a_currency_without_a_rate() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("g1", "c1", "GBP")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    log.deposit("g1", "9000.00", T0 + 2 * DAY)
    assert log.alerts(rule="structuring") == []
    log.deposit("a1", "9000.00", T0 + 3 * DAY)
    (alert,) = log.alerts(rule="structuring")
    assert alert.account_ids == ("a1",) and alert.figures["count"] == 3


def test_structuring_counts_for_the_conductor_and_the_account_customer() -> None:
    log = Log()
    log.open("y1", "cy")
    log.open("x1", "cx")
    log.deposit("y1", "9000.00", T0, conducted_by="cx")
    log.deposit("y1", "9000.00", T0 + DAY, conducted_by="cx")
    t3 = log.deposit("x1", "9000.00", T0 + 2 * DAY)
    (alert,) = log.alerts(rule="structuring")
    assert (alert.customer_id, alert.trigger_transaction_id) == ("cx", t3)
    assert alert.account_ids == ("x1", "y1")
    # A third deposit into Y's account, conducted by X: both reach three.
    t4 = log.deposit("y1", "9000.00", T0 + 3 * DAY, conducted_by="cx")
    found = log.alerts(rule="structuring")
    assert [(a.customer_id, a.trigger_transaction_id) for a in found] == [
        ("cx", t3), ("cy", t4)]


def test_a_person_conducting_on_their_own_account_counts_once() -> None:
    log = Log()
    log.open("y1", "cy")
    log.deposit("y1", "9000.00", T0, conducted_by="cy")
    log.deposit("y1", "9000.00", T0 + DAY, conducted_by="cy")
    assert log.alerts(rule="structuring") == []


def test_structuring_dedup_within_the_window_and_after_it() -> None:
    log = Log()
    log.open("a1", "c1")
    for i in range(3):
        log.deposit("a1", "9000.00", T0 + i * DAY)
    first = log.alerts(rule="structuring")
    assert [a.trigger_booked_at for a in first] == [T0 + 2 * DAY]
    log.deposit("a1", "9000.00", T0 + 3 * DAY)  # a 4th in the window: nothing new
    log.deposit("a1", "9000.00", T0 + 6 * DAY)
    log.deposit("a1", "9000.00", T0 + 8 * DAY)
    log.deposit("a1", "9000.00", T0 + 9 * DAY)  # previous alert exactly 7 days old
    assert log.alerts(rule="structuring") == first
    last = log.deposit("a1", "9000.00", T0 + 9 * DAY + SECOND)  # now older than the window
    found = log.alerts(rule="structuring")
    assert [a.trigger_transaction_id for a in found] == [first[0].trigger_transaction_id, last]
    assert found[1].figures["count"] == 5  # days 3, 6, 8, 9 and 9 + 1s; day 2 is out
    assert found[1].window_start == T0 + 2 * DAY + SECOND


# -- reversals ------------------------------------------------------------------------


def test_a_same_day_reversal_removes_both_and_a_next_day_one_neither() -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    third = log.deposit("a1", "9000.00", T0 + 2 * DAY)
    log.reverse(third, T0 + 2 * DAY + timedelta(hours=11))  # 23:00 UTC the same day
    assert log.alerts(rule="structuring") == []
    # The reversal itself counts for no rule (a reversal of a deposit is an "out").
    assert all(m.kind != "reversal" for m in effective(log.movements, UTC))

    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "9000.00", T0)
    log.deposit("a1", "9000.00", T0 + DAY)
    third = log.deposit("a1", "9000.00", T0 + 2 * DAY)
    log.reverse(third, T0 + 3 * DAY)
    assert [a.trigger_transaction_id for a in log.alerts(rule="structuring")] == [third]


def test_the_business_day_is_in_the_business_time_zone() -> None:
    log = Log()
    log.open("a1", "c1")
    original = log.deposit("a1", "500.00", datetime(2026, 3, 2, 21, 0, tzinfo=UTC))
    reversal = log.reverse(original, datetime(2026, 3, 2, 22, 30, tzinfo=UTC))
    assert effective(log.movements, UTC) == []
    plus_two = timezone(timedelta(hours=2))  # 23:00 and 00:30 the next day there
    kept = effective(log.movements, plus_two)
    assert [m.transaction_id for m in kept] == [original]
    assert reversal not in {m.transaction_id for m in kept}


def test_effective_sorts_by_booking_position_and_seq() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("a2", "c2")
    late = log.deposit("a1", "1.00", T0 + DAY)
    both = log.transfer("a2", "a1", "2.00", T0)
    early = log.deposit("a1", "3.00", T0)
    assert [(m.transaction_id, m.seq) for m in effective(log.movements, UTC)] == [
        (both, 0), (both, 1), (early, 0), (late, 0)]


# -- round amounts --------------------------------------------------------------------


def test_round_amounts_fire_on_the_third() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("a2", "c1")
    t1 = log.deposit("a1", "1000.00", T0, channel="wire")
    log.deposit("a1", "1000.50", T0 + DAY)
    log.withdraw("a1", "1500.00", T0 + DAY)
    t2 = log.withdraw("a2", "2000.00", T0 + 2 * DAY)
    log.transfer("a1", "a2", "5000.00", T0 + 3 * DAY)  # not a deposit or withdrawal
    assert log.alerts(rule="round_amounts") == []
    t3 = log.deposit("a2", "3000.00", T0 + 30 * DAY)
    (alert,) = log.alerts(rule="round_amounts")
    assert (alert.customer_id, alert.trigger_transaction_id) == ("c1", t3)
    assert alert.account_ids == ("a1", "a2")
    assert alert.transaction_ids == (t1, t2, t3)
    assert alert.figures == {"count": 3, "total": "6000.00", "currency": "USD"}
    assert (alert.window_start, alert.window_end) == (T0, T0 + 30 * DAY)


def test_round_amounts_window_is_thirty_days_inclusive() -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "1000.00", T0)
    log.deposit("a1", "1000.00", T0 + DAY)
    log.deposit("a1", "1000.00", T0 + 30 * DAY + SECOND)
    assert log.alerts(rule="round_amounts") == []


def test_round_amounts_in_several_currencies_have_no_total() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("e1", "c1", "EUR")
    log.deposit("a1", "1000.00", T0)
    log.deposit("e1", "1000.00", T0 + DAY)
    log.withdraw("a1", "4000.00", T0 + 2 * DAY)
    (alert,) = log.alerts(rule="round_amounts")
    assert alert.figures == {"count": 3, "total": None, "currency": None}


def test_round_amounts_are_on_the_customers_own_accounts() -> None:
    log = Log()
    log.open("y1", "cy")
    log.open("x1", "cx")
    log.deposit("y1", "1000.00", T0, channel="cash", conducted_by="cx")
    log.deposit("y1", "2000.00", T0 + DAY, channel="cash", conducted_by="cx")
    log.deposit("x1", "3000.00", T0 + 2 * DAY)
    assert log.alerts(rule="round_amounts") == []
    t = log.deposit("y1", "1000.00", T0 + 3 * DAY, conducted_by="cx")
    (alert,) = log.alerts(rule="round_amounts")
    assert (alert.customer_id, alert.trigger_transaction_id) == ("cy", t)


# -- dormant reactivation -------------------------------------------------------------


def test_a_dormant_account_reactivated() -> None:
    log = Log()
    opened = T0 - 400 * DAY
    log.open("a1", "c1", at=opened)
    log.open("a2", "c2", at=opened)
    log.transfer("a2", "a1", "50.00", T0 - 100 * DAY)  # incoming: not the customer's doing
    t = log.withdraw("a1", "700.00", T0)
    (alert,) = log.alerts(rule="dormant_reactivation")
    assert (alert.customer_id, alert.trigger_transaction_id) == ("c1", t)
    assert (alert.account_ids, alert.transaction_ids) == (("a1",), (t,))
    assert alert.figures == {"last_activity_at": "2024-12-01T12:00:00Z",
                             "amount": "700.00", "currency": "USD"}
    assert alert.window_start == T0 - 365 * DAY


@pytest.mark.parametrize(("age", "fires"), [
    (364 * DAY, False), (365 * DAY, False), (365 * DAY + SECOND, True)])
def test_dormancy_needs_the_account_to_exist_throughout(age: timedelta, fires: bool) -> None:
    # The opening is itself activity: opened exactly 365 days before is in the window.
    log = Log()
    log.open("a1", "c1", at=T0 - age)
    log.capture("a1", "10.00", T0)
    assert len(log.alerts(rule="dormant_reactivation")) == (1 if fires else 0)


@pytest.mark.parametrize(("age", "fires"), [(365 * DAY, False), (365 * DAY + SECOND, True)])
def test_dormancy_is_365_days_without_activity(age: timedelta, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 1000 * DAY)
    log.deposit("a1", "10.00", T0 - age, channel="wire")
    log.transfer("a1", "a1", "10.00", T0)
    assert len(log.alerts(rule="dormant_reactivation")) == (1 if fires else 0)


@pytest.mark.parametrize(("age", "fires"), [(365 * DAY - SECOND, False), (365 * DAY, True)])
def test_existing_throughout_without_a_recorded_opening(age: timedelta, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - age, recorded=False)
    log.withdraw("a1", "5.00", T0)
    found = log.alerts(rule="dormant_reactivation")
    assert len(found) == (1 if fires else 0)
    if fires:
        assert found[0].figures["last_activity_at"] is None


@pytest.mark.parametrize(("kind", "fires"), [
    ("deposit", False), ("withdrawal", False), ("transfer out", False),
    ("transfer in", True), ("capture out", True), ("capture in", True)])
def test_what_is_customer_activity(kind: str, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 1000 * DAY)
    log.open("b1", "c2", at=T0 - 1000 * DAY)
    log.deposit("a1", "10.00", T0 - 400 * DAY)  # so the outgoing ones below are not dormant
    at = T0 - 100 * DAY
    if kind == "deposit":
        log.deposit("a1", "10.00", at, channel="wire")
    elif kind == "withdrawal":
        log.withdraw("a1", "10.00", at)
    elif kind == "transfer out":
        log.transfer("a1", "b1", "10.00", at)
    elif kind == "transfer in":
        log.transfer("b1", "a1", "10.00", at)
    elif kind == "capture out":
        log.capture("a1", "10.00", at, payee="b1")
    else:
        log.capture("b1", "10.00", at, payee="a1")
    t = log.withdraw("a1", "5.00", T0)
    found = [a for a in log.alerts(rule="dormant_reactivation") if a.customer_id == "c1"]
    assert [a.trigger_transaction_id for a in found] == ([t] if fires else [])


def test_a_hold_is_activity() -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 1000 * DAY)
    log.hold("a1", T0 - 10 * DAY)
    log.withdraw("a1", "10.00", T0)
    assert log.alerts(rule="dormant_reactivation") == []


@pytest.mark.parametrize(("reversed_after", "fires"), [(timedelta(hours=1), True),
                                                       (DAY, False)])
def test_a_deposit_reversed_the_same_day_is_no_activity(reversed_after: timedelta,
                                                        fires: bool) -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 1000 * DAY)
    deposit = log.deposit("a1", "10.00", T0 - 30 * DAY)
    log.reverse(deposit, T0 - 30 * DAY + reversed_after)
    log.withdraw("a1", "5.00", T0)
    assert len(log.alerts(rule="dormant_reactivation")) == (1 if fires else 0)


def test_dormancy_without_any_recorded_activity() -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 1000 * DAY)
    t = log.withdraw("a1", "5.00", T0)
    found = evaluate_person("c1", log.movements, T0, [], lambda account, at: None,
                            {"a1": T0 - 1000 * DAY}, Rules())
    assert [(a.rule, a.trigger_transaction_id, a.figures["last_activity_at"])
            for a in found] == [("dormant_reactivation", t, None)]
    # Without an opening date the account is not known to have existed throughout.
    assert evaluate_person("c1", log.movements, T0, [], lambda account, at: None, {},
                           Rules()) == []


# -- large outgoing -------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "fires"), [("1500.00", False), ("1500.01", True)])
def test_large_outgoing_is_more_than_one_and_a_half_times(amount: str, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.withdraw("a1", "1000.00", T0 - 50 * DAY)
    log.withdraw("a1", "200.00", T0 - 40 * DAY)
    log.deposit("a1", "50000.00", T0 - 2 * DAY, channel="wire")
    log.withdraw("a1", "300.00", T0 - DAY)
    t = log.transfer("a1", "a1", amount, T0)
    found = log.alerts(rule="large_outgoing")
    assert len(found) == (1 if fires else 0)
    if fires:
        assert (found[0].trigger_transaction_id, found[0].transaction_ids) == (t, (t,))
        assert found[0].figures == {"amount": "1500.01", "largest_before": "1000.00",
                                    "currency": "USD"}


@pytest.mark.parametrize(("amount", "fires"), [("1600.00", False), ("2100.00", False),
                                              ("2100.01", True)])
def test_large_outgoing_compares_with_the_largest(amount: str, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.withdraw("a1", "1000.00", T0 - 3 * DAY)
    log.withdraw("a1", "1400.00", T0 - 2 * DAY)
    log.withdraw("a1", "100.00", T0 - DAY)
    log.withdraw("a1", amount, T0)
    assert len(log.alerts(rule="large_outgoing")) == (1 if fires else 0)


def test_large_outgoing_needs_an_earlier_outgoing() -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", "100.00", T0 - DAY, channel="wire")
    log.withdraw("a1", "9000.00", T0)
    assert log.alerts(rule="large_outgoing") == []


@pytest.mark.parametrize(("age", "fires"), [(90 * DAY, True), (90 * DAY + SECOND, False)])
def test_large_outgoing_looks_back_ninety_days(age: timedelta, fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.withdraw("a1", "100.00", T0 - age)
    log.capture("a1", "1000.00", T0)
    assert len(log.alerts(rule="large_outgoing")) == (1 if fires else 0)


def test_large_outgoing_at_the_same_instant_follows_log_order() -> None:
    log = Log()
    log.open("a1", "c1")
    log.withdraw("a1", "100.00", T0)
    second = log.withdraw("a1", "1000.00", T0)
    found = log.alerts(rule="large_outgoing")
    assert [a.trigger_transaction_id for a in found] == [second]


# -- pass-through ---------------------------------------------------------------------


def test_pass_through_fires() -> None:
    log = Log()
    log.open("a1", "c1")
    log.open("b1", "c2")
    t1 = log.deposit("a1", "6000.00", T0, channel="wire")
    t2 = log.transfer("b1", "a1", "4000.00", T0 + timedelta(hours=5))
    t3 = log.transfer("a1", "b1", "9000.00", T0 + 48 * timedelta(hours=1))
    found = log.alerts(rule="pass_through")
    assert [(a.customer_id, a.trigger_transaction_id) for a in found] == [("c1", t3)]
    assert found[0].account_ids == ("a1",)
    assert found[0].transaction_ids == (t1, t2, t3)
    assert found[0].figures == {"incoming": "10000.00", "outgoing": "9000.00",
                                "currency": "USD"}


@pytest.mark.parametrize(("incoming", "outgoing", "gap", "fires"), [
    ("10000.00", "9000.00", timedelta(hours=48), True),
    ("10000.00", "9000.00", timedelta(hours=48) + SECOND, False),
    ("9999.99", "9999.99", timedelta(hours=1), False),
    ("10000.00", "8999.00", timedelta(hours=1), False),  # 89.99 %
])
def test_pass_through_bounds(incoming: str, outgoing: str, gap: timedelta,
                             fires: bool) -> None:
    log = Log()
    log.open("a1", "c1")
    log.deposit("a1", incoming, T0, channel="wire")
    log.withdraw("a1", outgoing, T0 + gap, channel="wire")
    assert len(log.alerts(rule="pass_through")) == (1 if fires else 0)


def test_pass_through_can_be_triggered_by_the_incoming_side() -> None:
    log = Log()
    log.open("a1", "c1", "EUR")
    log.withdraw("a1", "9500.00", T0, channel="wire")
    t = log.capture("a1", "500.00", T0 + SECOND)
    log.open("b1", "c2", "EUR")
    t2 = log.capture("b1", "10000.00", T0 + timedelta(hours=2), payee="a1")
    found = log.alerts(rule="pass_through")
    assert [(a.customer_id, a.trigger_transaction_id) for a in found] == [("c1", t2)]
    assert t in found[0].transaction_ids
    assert found[0].figures == {"incoming": "10000.00", "outgoing": "10000.00",
                                "currency": "EUR"}


# -- the incremental form -------------------------------------------------------------


def test_evaluate_person_reads_triggers_from_since_and_dedups_on_previous() -> None:
    log = Log()
    log.open("a1", "c1")
    for i in range(5):
        log.deposit("a1", "9000.50", T0 + i * DAY)
    rules = Rules()
    everything = log.alerts(rules, rule="structuring")
    assert [a.trigger_booked_at for a in everything] == [T0 + 2 * DAY]
    last = brute_last_activity(log.movements, log.activities)
    opened = {"a1": log.accounts["a1"].opened_at}
    # From day 3 on, without the earlier alert: day 3 is a trigger of its own.
    alone = evaluate_person("c1", log.movements, T0 + 3 * DAY, [], last, opened, rules)
    assert [(a.rule, a.trigger_booked_at) for a in alone] == [("structuring", T0 + 3 * DAY)]
    # With it, nothing more in the window.
    assert evaluate_person("c1", log.movements, T0 + 3 * DAY, everything, last, opened,
                           rules) == []
    # Another customer's alert does not count.
    other = [Alert("x", "structuring", "c9", "t", T0 + 2 * DAY, T0, T0, (), ())]
    assert evaluate_person("c1", log.movements, T0 + 3 * DAY, other, last, opened,
                           rules) == alone


def test_evaluate_person_agrees_with_all_alerts_on_every_rule() -> None:
    log = Log()
    log.open("a1", "c1", at=T0 - 500 * DAY)
    log.open("a2", "c1", at=T0 - 500 * DAY)
    log.open("b1", "c2", at=T0 - 500 * DAY)
    log.withdraw("a1", "100.00", T0)  # dormant
    log.withdraw("a1", "1000.00", T0 + DAY)  # large, round
    log.deposit("a1", "9000.00", T0 + 2 * DAY, conducted_by="c2")
    log.deposit("a2", "9000.00", T0 + 2 * DAY)
    log.deposit("b1", "9000.00", T0 + 3 * DAY, conducted_by="c1")  # structuring
    log.deposit("a2", "3000.00", T0 + 4 * DAY, channel="wire")  # round
    log.transfer("a2", "a1", "11000.00", T0 + 4 * DAY)  # pass-through on a2
    expected = log.alerts(Rules())
    assert {a.rule for a in expected} == set(RULES)
    for starts in ([T0 - DAY, T0 + DAY, T0 + 3 * DAY], [T0 + 2 * DAY], [T0, T0 + 4 * DAY]):
        # Only the first batch's "since" bounds what is evaluated at all.
        assert incremental(log, Rules(), UTC, starts) == [
            a for a in expected if a.trigger_booked_at >= starts[0]]


CUSTOMERS = ("c1", "c2", "c3")
ACCOUNTS = {"a1": ("c1", "USD"), "a2": ("c1", "EUR"), "a3": ("c2", "USD"),
            "a4": ("c3", "GBP"), "a5": ("c2", "USD")}
# Swarm testing: each history draws from a subset of the gaps and operations, so some
# are all short gaps and cash deposits (structuring), others long gaps (dormancy), etc.
GAPS = [timedelta(0), SECOND, timedelta(hours=1), timedelta(hours=20), DAY, 2 * DAY,
        7 * DAY, 7 * DAY + SECOND, 30 * DAY, 90 * DAY, 365 * DAY]
AMOUNTS = ["1000.00", "2000.00", "3000.00", "7999.99", "8000.00", "9000.00", "9500.50",
           "10000.00", "10000.01", "12000.00", "20000.00", "500.00", "1500.00", "1500.01",
           "250.75", "7272.73"]
CASH_BAND = ["8000.00", "9000.00", "9500.50", "10000.00", "7272.73"]
# An event may instead be placed exactly one window (or a window and a second) after an
# earlier one, to hit the boundaries.
WINDOWS = [7 * DAY, timedelta(hours=48), 30 * DAY, 90 * DAY, 365 * DAY, 3 * DAY,
           timedelta(hours=12), 120 * DAY, 100 * DAY]
SETTINGS = [RATES, Rules(), Rules(
    structuring_days=3, structuring_count=2, round_amount_count=4, dormant_days=100,
    large_outgoing_days=120, large_outgoing_factor=D("1.2"), pass_through_hours=12,
    pass_through_incoming=D("5000.00"), pass_through_ratio=D("0.5"),
    fx_rates={"GBP": {"USD": D("1.25")}})]

accounts_ = st.sampled_from(sorted(ACCOUNTS))
amounts_ = st.sampled_from(AMOUNTS)
OPERATIONS = {
    "deposit": st.tuples(st.just("deposit"), accounts_, amounts_,
                         st.sampled_from(["cash", "wire"]),
                         st.sampled_from([None, "c1", "c2", "c3", "x9"])),
    "cash_band": st.tuples(st.just("deposit"), accounts_, st.sampled_from(CASH_BAND),
                           st.just("cash"), st.sampled_from([None, "c1", "c2", "c3", "x9"])),
    "withdraw": st.tuples(st.just("withdraw"), accounts_, amounts_,
                          st.sampled_from(["cash", "wire"])),
    "transfer": st.tuples(st.just("transfer"), accounts_, accounts_, amounts_),
    "capture": st.tuples(st.just("capture"), accounts_, amounts_, st.none() | accounts_),
    "reverse": st.tuples(st.just("reverse"), st.integers(0, 10**6)),
    "hold": st.tuples(st.just("hold"), accounts_),
}


@st.composite
def histories(draw: st.DrawFn) -> tuple[Log, list[datetime], tzinfo, Rules]:
    log = Log()
    for account, (customer, currency) in sorted(ACCOUNTS.items()):
        age = draw(st.sampled_from([0, 1, 364, 365, 366, 700]))
        log.open(account, customer, currency, at=T0 - age * DAY, recorded=draw(st.booleans()))
    at = T0 - draw(st.sampled_from([0, 400])) * DAY
    reversible: list[str] = []
    gaps = st.sampled_from(draw(st.lists(st.sampled_from(GAPS), min_size=1, unique=True)))
    kinds = draw(st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=1, unique=True))
    operations = st.one_of(*(OPERATIONS[kind] for kind in kinds))
    anchors = st.none()
    if draw(st.booleans()):
        anchors |= st.tuples(st.integers(0, 10**6), st.sampled_from(WINDOWS),
                             st.sampled_from([timedelta(0), SECOND]))
    times: list[datetime] = []
    for _ in range(draw(st.integers(3, 60))):
        gap, op, anchor = draw(gaps), draw(operations), draw(anchors)
        if anchor is not None and times:
            at = times[anchor[0] % len(times)] + anchor[1] + anchor[2]
        else:
            at = max(times, default=at) + gap
        times.append(at)
        if op[0] == "deposit":
            reversible.append(log.deposit(op[1], op[2], at, op[3], op[4]))
        elif op[0] == "withdraw":
            reversible.append(log.withdraw(op[1], op[2], at, op[3]))
        elif op[0] == "transfer":
            reversible.append(log.transfer(op[1], op[2], op[3], at))
        elif op[0] == "capture":
            reversible.append(log.capture(op[1], op[2], at, op[3]))
        elif op[0] == "reverse" and reversible:
            log.reverse(reversible.pop(op[1] % len(reversible)), at)
        elif op[0] == "hold":
            log.hold(op[1], at)
    times = sorted({m.booked_at for m in log.movements})
    cuts: set[datetime] = set()
    for exact, n in draw(st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)),
                                  max_size=6)):
        if times and exact:
            cuts.add(times[n % len(times)])
        elif times:
            span = (times[-1] - times[0]).total_seconds()
            cuts.add(times[0] + timedelta(seconds=round(span * n / 10**6)))
    tz = draw(st.sampled_from([UTC, timezone(timedelta(hours=10)),
                               timezone(timedelta(hours=-5))]))
    rules = draw(st.sampled_from(SETTINGS))
    return log, sorted(cuts), tz, rules


@settings(max_examples=200)
@given(histories())
def test_evaluating_in_steps_gives_all_alerts(history) -> None:
    log, cuts, tz, rules = history
    expected = all_alerts(log.movements, log.activities, log.accounts, rules, tz)
    assert incremental(log, rules, tz, [T0 - 5000 * DAY, *cuts]) == expected
