"""``backoffice demo seed``: a deterministic synthetic history, imported through the
Bank's use cases, quiet for every alert rule and report except where a pattern is
planted.

The rules are evaluated here from the plan itself, independently of the compliance
code (docs/reports.md's definitions, written out brute force), so the test says what
the seed promises whatever the state of the projections.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from application.bank import Bank
from application.compliance.rules import DESIGNATED_TERRITORIES
from application.demo import (
    DemoPlan,
    PlannedTransaction,
    apply_plan,
    period_for,
    plan_history,
    seed_demo,
)
from domain.cause import Cause
from infrastructure.bootstrap import bootstrap

CUSTOMERS, DAYS, SEED = 300, 120, 11
PATTERNS = {
    "structuring", "round_amounts", "pass_through", "dormant_reactivation", "large_outgoing",
    "dmo_operation", "dmo_split", "dmo_resident", "ctr_cash_in", "ctr_cash_out", "ctr_conductor",
}
DESIGNATED = set(DESIGNATED_TERRITORIES)
DAY, HOURS_48 = 86400, 48 * 3600


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[Bank, DemoPlan, dict]]:
    """One seeded store for the module: reads come from the aggregates (no views)."""
    path = tmp_path_factory.mktemp("demo") / "x.sqlite"
    with bootstrap(database_url=f"sqlite:///{path}", with_views=False) as bank:
        today = bank.clock().astimezone(bank.business_tz).date()
        first_day, _ = period_for(today, DAYS)
        plan = plan_history(CUSTOMERS, DAYS, SEED, first_day=first_day,
                            business_tz=bank.business_tz.key)
        report = apply_plan(bank, plan)
        yield bank, plan, report


@pytest.fixture(scope="module")
def plan(seeded) -> DemoPlan:
    return seeded[1]


# ------------------------------------------------------------------ determinism


def test_the_same_inputs_give_the_same_plan():
    first = plan_history(CUSTOMERS, DAYS, SEED, first_day=date(2026, 1, 5))
    again = plan_history(CUSTOMERS, DAYS, SEED, first_day=date(2026, 1, 5))
    assert json.dumps(first.as_dict()) == json.dumps(again.as_dict())
    assert first.digest() == again.digest()
    assert first.describe() == again.describe()  # planted cases, with uuid5 refs
    assert {c.pattern for c in first.planted} == PATTERNS

    other_seed = plan_history(CUSTOMERS, DAYS, SEED + 1, first_day=date(2026, 1, 5))
    other_start = plan_history(CUSTOMERS, DAYS, SEED, first_day=date(2026, 1, 6))
    assert len({first.digest(), other_seed.digest(), other_start.digest()}) == 3
    assert first.customers[0].ref != other_seed.customers[0].ref


def test_booked_in_business_hours_of_the_business_time_zone_and_in_order():
    tz = ZoneInfo("Europe/Madrid")  # crosses the end of summer time on 2026-10-25
    plan = plan_history(100, 90, 3, first_day=date(2026, 9, 1), business_tz=tz.key)
    ats = [t.at for t in plan.transactions]
    assert ats == sorted(ats)
    assert [t.seq for t in plan.transactions] == list(range(len(plan.transactions)))
    last = datetime(2026, 11, 29, 18, tzinfo=tz)
    for t in plan.transactions:
        local = datetime.fromtimestamp(t.at, tz)
        assert 8 <= local.hour < 18, t
        assert local < last
        if t.pattern != "dormant_reactivation":
            assert local.date() >= date(2026, 9, 1), t
        opened = plan.accounts[t.account].opened_at
        assert t.at > opened
        if t.type == "transfer":
            assert t.at > plan.accounts[t.to_account].opened_at


# -------------------------------------------------------------------- the store


def test_nothing_is_refused(seeded):
    _, plan, report = seeded
    assert report["rejected"] == 0, report["errors"]
    assert report["transactions"] == len(plan.transactions)
    assert report["batches"] == -(-len(plan.transactions) // 1000)
    assert report["customers"] == len(plan.customers) > CUSTOMERS
    assert report["background_customers"] == CUSTOMERS


def test_every_planted_transaction_is_in_the_log_as_planned(seeded):
    bank, plan, report = seeded
    assert {case["pattern"] for case in report["planted"]} == PATTERNS
    for case, planted in zip(report["planted"], plan.planted, strict=True):
        assert case["pattern"] == planted.pattern
        for customer_id in case["customer_ids"]:
            bank.get_customer(UUID(customer_id))
        for account_id in case["account_ids"]:
            account = bank.get_account(UUID(account_id))
            assert account["customer_id"] in case["customer_ids"]
        assert case["trigger_transaction_id"] in (None, *case["transaction_ids"])
        for txn_id, booked_at, amount, seq in zip(
            case["transaction_ids"], case["booked_at"], case["amounts"], planted.transactions,
            strict=True,
        ):
            txn = bank.get_transaction(UUID(txn_id))
            expected = plan.transactions[seq]
            assert txn["booked_at"] == booked_at == _rfc3339(expected.at)
            assert txn["amount"] == amount
            assert txn["kind"] == {"deposit": "deposit", "withdrawal": "withdrawal",
                                   "transfer": "transfer"}[expected.type]
            assert set(case["account_ids"]) >= {
                e["account"] for e in txn["entries"] if e["account"] not in ("cash", "clearing")
            }


def test_money_is_conserved_and_balances_are_the_plans(seeded):
    bank, plan, report = seeded
    customers: dict[str, int] = defaultdict(int)
    accounts = [case["account_ids"] for case in report["planted"]]
    assert accounts  # (ids of background accounts are not reported: walk the customers)
    for customer in _customer_ids(bank):
        for account in bank.customer_accounts(customer):
            customers[account["currency"]] += _cents(account["ledger_balance"])
    internal = bank.internal_balances()
    for currency, total in customers.items():
        bank_side = sum(_cents(str(v)) for v in internal[currency].values())
        assert total + bank_side == 0, currency
    planned: dict[str, int] = defaultdict(int)
    for account, balance in zip(plan.accounts, plan.final_balances, strict=True):
        planned[account.currency] += balance
    assert planned == dict(customers)


def test_a_closed_day_refuses_the_seed(tmp_path):
    with bootstrap(database_url=f"sqlite:///{tmp_path}/closed.sqlite", with_views=False) as bank:
        today = bank.clock().astimezone(bank.business_tz).date()
        bank.close_business_day(today - timedelta(days=30), Cause.cli())
        with pytest.raises(ValueError, match="closed"):
            seed_demo(bank, 20, 60, 1)
        assert bank.closed_through() == today - timedelta(days=30)


# ------------------------------------------------------------------ the background


def test_the_background_is_quiet(plan):
    background = [t for t in plan.transactions if t.pattern is None]
    planted_accounts = {a.index for a in plan.accounts if a.pattern is not None}
    assert len(background) > 0.9 * len(plan.transactions)
    for customer in plan.customers:
        if customer.pattern is None:
            assert customer.details["country"] not in DESIGNATED
    incoming: dict[int, list[tuple[int, int]]] = defaultdict(list)
    outgoing: dict[int, list[tuple[int, int]]] = defaultdict(list)
    cash: dict[tuple[int, date, str], int] = defaultdict(int)
    tz = ZoneInfo(plan.business_tz)
    for t in background:
        assert t.account not in planted_accounts and t.to_account not in planted_accounts
        assert t.conducted_by == -1
        assert t.amount % 100_000 != 0, t  # never a whole multiple of 1,000.00
        if t.counterparty is not None:
            assert t.counterparty.get("country") not in DESIGNATED, t
        if t.channel == "cash":
            assert not (t.type == "deposit" and 8_000_00 <= t.amount <= 10_000_00), t
            side = "in" if t.type == "deposit" else "out"
            day = datetime.fromtimestamp(t.at, tz).date()
            cash[(plan.accounts[t.account].customer, day, side)] += t.amount
        if t.type == "deposit":
            incoming[t.account].append((t.at, t.amount))
        else:
            outgoing[t.account].append((t.at, t.amount))
        if t.type == "transfer":
            incoming[t.to_account].append((t.at, t.amount))
    # No CTR (and none through an exchange rate up to 1.5).
    assert max(cash.values()) * 3 // 2 <= 10_000_00
    # No pass-through: under 10,000.00 in on any account in any 48 hours.
    for moves in incoming.values():
        assert _max_window_sum(moves, HOURS_48) < 10_000_00
    # No large outgoing: each account's outgoings within ±15% of a typical amount.
    for moves in outgoing.values():
        amounts = [a for _, a in moves]
        assert max(amounts) <= 1.5 * min(amounts)
    # Active every few weeks, from opening to the end of the period.
    end = max(t.at for t in plan.transactions)
    activity: dict[int, list[int]] = defaultdict(list)
    for t in background:
        activity[t.account].append(t.at)
    for account in plan.accounts:
        if account.pattern is None:
            moments = [account.opened_at, *activity[account.index], end]
            gaps = [b - a for a, b in pairwise(moments)]
            assert max(gaps) <= 21 * DAY, account


def test_the_background_looks_like_a_bank(plan):
    background = [c for c in plan.customers if c.pattern is None]
    countries = defaultdict(int)
    for customer in background:
        countries[customer.details["country"]] += 1
        details = customer.details
        assert details["name"] and details["address"]["country"] == details["country"]
        assert details["identification"]["number"]
        assert (details["kind"] == "person") == ("date_of_birth" in details)
    assert countries["US"] + countries["ES"] > 0.8 * len(background)
    assert len(countries) > 3
    kinds = {c.details["kind"] for c in background}
    assert kinds == {"person", "organization"}
    for account in plan.accounts:
        country = plan.customers[account.customer].details["country"]
        if country == "US":
            assert account.currency == "USD"
        elif country == "ES":
            assert account.currency == "EUR"
    per_customer = defaultdict(int)
    for account in plan.accounts:
        per_customer[account.customer] += 1
    assert set(per_customer.values()) == {1, 2}
    groups = defaultdict(set)
    for customer in background:
        if customer.details.get("group_id"):
            groups[customer.details["group_id"]].add(customer.index)
    assert groups and all(len(members) >= 2 for members in groups.values())
    limited = [a for a in plan.accounts if a.overdraft_limit > 0]
    assert limited
    assert any(plan.final_balances[a.index] < 0 for a in limited)  # risk views show some
    kinds_seen = {(t.type, t.channel) for t in plan.transactions}
    assert kinds_seen >= {("deposit", "cash"), ("deposit", "cheque"), ("deposit", "wire"),
                          ("withdrawal", "cash"), ("withdrawal", "cheque"),
                          ("withdrawal", "wire"), ("transfer", "internal")}
    # About 5 to 30 transactions per customer per 30 days (a transfer counts for both).
    touches = sum(2 if t.type == "transfer" else 1 for t in plan.transactions)
    rate = touches / len(plan.customers) / (DAYS / 30)
    assert 4 <= rate <= 12


# ------------------------------------------------------------- rules, brute force


def test_rules_and_reports_fire_exactly_where_planted(plan):
    found = evaluate(plan)
    expected = _expected(plan)
    assert found == expected


def test_planted_windows_are_inside_the_period(plan):
    tz = ZoneInfo(plan.business_tz)
    first = datetime.combine(plan.first_day, datetime.min.time(), tzinfo=tz).timestamp()
    last = datetime.combine(plan.last_day + timedelta(days=1), datetime.min.time(),
                            tzinfo=tz).timestamp()
    windows = {"structuring": 7 * DAY, "round_amounts": 30 * DAY, "pass_through": HOURS_48}
    for case in plan.planted:
        trigger = plan.transactions[case.trigger] if case.trigger is not None else None
        moments = [plan.transactions[s].at for s in case.transactions]
        if case.pattern == "dormant_reactivation":
            assert trigger is not None and first + 7 * DAY <= trigger.at < last - 2 * DAY
            opened = plan.accounts[case.accounts[0]].opened_at
            assert trigger.at - opened > 365 * DAY
            continue
        assert first <= min(moments) and max(moments) < last - 2 * DAY, case
        if case.pattern in windows:
            assert trigger is not None and trigger.at - windows[case.pattern] >= first


def evaluate(plan: DemoPlan) -> dict[str, set]:
    """docs/reports.md, brute force over the plan (no reversals in a seed)."""
    tz = ZoneInfo(plan.business_tz)
    owner = [a.customer for a in plan.accounts]
    moves: dict[int, list[tuple[int, str, PlannedTransaction]]] = defaultdict(list)
    for t in plan.transactions:
        if t.type == "transfer":
            moves[t.account].append((t.at, "out", t))
            moves[t.to_account].append((t.at, "in", t))
        else:
            moves[t.account].append((t.at, "in" if t.type == "deposit" else "out", t))
    found: dict[str, set] = defaultdict(set)

    def persons(t: PlannedTransaction) -> set[int]:
        return {owner[t.account]} | ({t.conducted_by} if t.conducted_by >= 0 else set())

    # structuring and CTR (USD cash; counted for the account's customer and the conductor)
    structuring: dict[int, list[int]] = defaultdict(list)
    ctr: dict[tuple[int, date, str], int] = defaultdict(int)
    for t in plan.transactions:
        if t.channel != "cash" or t.currency != "USD":
            continue
        day = datetime.fromtimestamp(t.at, tz).date()
        for person in persons(t):
            ctr[(person, day, "in" if t.type == "deposit" else "out")] += t.amount
            if t.type == "deposit" and 8_000_00 <= t.amount <= 10_000_00:
                structuring[person].append(t.at)
    for person, moments in structuring.items():
        if _max_window_count(moments, 7 * DAY) >= 3:
            found["structuring"].add(person)
    found["ctr"] = {(day.isoformat(), person) for (person, day, _), total in ctr.items()
                    if total > 10_000_00}
    # round amounts, per customer over their accounts
    rounds: dict[int, list[int]] = defaultdict(list)
    for t in plan.transactions:
        if t.type != "transfer" and t.amount % 100_000 == 0:
            rounds[owner[t.account]].append(t.at)
    found["round_amounts"] = {c for c, ms in rounds.items() if _max_window_count(ms, 30 * DAY) >= 3}
    for account, entries in moves.items():
        customer = owner[account]
        activity = [plan.accounts[account].opened_at] + [
            at for at, flow, t in entries if flow == "out" or t.type == "deposit"
        ]
        for at, flow, t in entries:
            if flow == "out":
                # dormant reactivation
                before = [a for a in activity if a < at]
                if before and max(before) < at - 365 * DAY:
                    found["dormant_reactivation"].add(customer)
                # large outgoing
                earlier = [x.amount for a, f, x in entries
                           if f == "out" and at - 90 * DAY <= a < at and x is not t]
                if earlier and t.amount > 1.5 * max(earlier):
                    found["large_outgoing"].add(customer)
            # pass-through, looked at from every movement (a superset of the rule's)
            window = [(f, x.amount) for a, f, x in entries if at - HOURS_48 <= a <= at]
            came = sum(amount for f, amount in window if f == "in")
            went = sum(amount for f, amount in window if f == "out")
            if came >= 10_000_00 and went * 10 >= came * 9:
                found["pass_through"].add(customer)
    # DMO: EUR operations with a designated counterparty or by a designated resident
    scope: list[tuple[PlannedTransaction, int, str]] = []
    for t in plan.transactions:
        if t.currency != "EUR":
            continue
        customer = owner[t.account]
        resident = plan.customers[customer].details["country"]
        country = (t.counterparty or {}).get("country")
        if t.type != "transfer" and country in DESIGNATED:
            scope.append((t, customer, country))
        elif resident in DESIGNATED:
            scope.append((t, customer, resident))
    found["dmo_operation"] = {t.seq for t, _, _ in scope if t.amount > 30_000_00}
    groups: dict[tuple[int, str, str], list[PlannedTransaction]] = defaultdict(list)
    for t, customer, territory in scope:
        if t.amount <= 30_000_00:
            month = datetime.fromtimestamp(t.at, tz).strftime("%Y-%m")
            groups[(customer, territory, month)].append(t)
    found["dmo_split"] = {tuple(x.seq for x in parts) for parts in groups.values()
                          if sum(x.amount for x in parts) > 30_000_00}
    return dict(found)


def _expected(plan: DemoPlan) -> dict[str, set]:
    expected: dict[str, set] = defaultdict(set)
    for case in plan.planted:
        if case.report == "alerts":
            expected[case.rule].add(case.customers[0])
        elif case.report == "ctr":
            expected["ctr"].add((case.period, case.customers[0]))
        elif case.rule == "dmo_operation":
            expected["dmo_operation"].add(case.trigger)
        else:
            expected["dmo_split"].add(case.transactions)
    return dict(expected)


# ----------------------------------------------------------------------------- CLI


def test_the_command_prints_what_it_planted_as_json(tmp_path, monkeypatch):
    from interfaces.cli import app

    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.sqlite")
    args = ["demo", "seed", "--customers", "40", "--days", "60", "--seed", "5", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["rejected"] == 0 and body["errors"] == []
    assert (body["days"], body["seed"], body["background_customers"]) == (60, 5, 40)
    assert {case["pattern"] for case in body["planted"]} == PATTERNS
    for case in body["planted"]:
        assert case["customer_ids"] and case["account_ids"] and case["transaction_ids"]
        assert len(case["booked_at"]) == len(case["transaction_ids"])
    with bootstrap(database_url=f"sqlite:///{tmp_path}/cli.sqlite", with_views=False) as bank:
        trigger = body["planted"][0]["trigger_transaction_id"]
        assert bank.get_transaction(UUID(trigger))["booked_at"] == body["planted"][0]["booked_at"][-1]
    # The same inputs and start date plan the same history.
    plan = plan_history(40, 60, 5, first_day=date.fromisoformat(body["first_day"]),
                        business_tz=body["business_tz"])
    assert body["plan_digest"] == plan.digest()
    assert [c["booked_at"] for c in body["planted"]] == [c["booked_at"] for c in plan.describe()]


# ------------------------------------------------------------------------- helpers


def _rfc3339(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _cents(text: str) -> int:
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    value = int(whole) * 100 + int((fraction + "00")[:2])
    return -value if negative else value


def _max_window_sum(moves: list[tuple[int, int]], width: int) -> int:
    moves = sorted(moves)
    best = total = start = 0
    for at, amount in moves:
        total += amount
        while moves[start][0] < at - width:
            total -= moves[start][1]
            start += 1
        best = max(best, total)
    return best


def _max_window_count(moments: list[int], width: int) -> int:
    return _max_window_sum([(m, 1) for m in moments], width)


def _customer_ids(bank: Bank) -> list[UUID]:
    from domain.customer import Customer

    topic = f"{Customer.Registered.__module__}:{Customer.Registered.__qualname__}"
    ids, start = [], 1
    while True:
        page = bank.recorder.select_notifications(start, 1000, topics=[topic])
        ids.extend(n.originator_id for n in page)
        if len(page) < 1000:
            return ids
        start = page[-1].id + 1
