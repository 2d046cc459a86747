"""Properties of the compliance reports over random histories, on this run's store.

Each example drives the Bank's use cases (no HTTP) on a fresh store with the
compliance, statements and accounts projections running: customers, USD and EUR
accounts (some opened long ago), imports of history over a few past days (cash and
non-cash deposits and withdrawals, some conducted by another customer, transfers), then
postings today and reversals (of today's postings: same day; of imports: a later day).
Half the examples convert EUR through an ``fx_rates`` setting, half have no rate.

What is checked, each against this file's own record of what it posted (the bodies
the use cases answered with), never against the implementation's code:

- CTR totals: each CTR's cash_in / cash_out is the sum of the USD value of the cash
  entries of its listed transactions on that side;
- nobody reportable is missed: the set of (customer_id, cash_in, cash_out) per day
  equals a brute-force recomputation (and so does ``unconverted``);
- a report for a past date keeps its digest when postings booked after that date
  arrive;
- the alerts equal ``application.compliance.alerts.all_alerts`` over the movements
  rebuilt from the record, and the structuring and round_amounts alerts equal a
  recomputation written here from docs/reports.md.

Interpretation (docs/reports.md is silent): a EUR amount's USD value is rounded
half-even to cents per transaction, before the per-person sums (the alert rules
compare the exact value with the structuring band).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, event, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from projection_helpers import CAUSE, Stores, opened_bank

from application.bank import Bank
from application.compliance.alerts import all_alerts
from application.compliance.facts import IN, OUT, AccountFacts, Activity, Movement
from application.compliance.rules import Rules
from application.errors import RulesChanged
from application.views import timestamp
from domain.errors import InsufficientFunds
from infrastructure.bootstrap import rebuild_projections, start_projections
from infrastructure.settings import Settings

VIEWS = ["compliance", "statements", "accounts"]
RATE = Decimal("1.25")  # 1 EUR = 1.25 USD, when the example has a rate
THRESHOLD = Decimal("10000.00")
INTERNAL = ("cash", "clearing")

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=min(15, hypothesis_settings().max_examples),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking on a real store
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("report-property-stores"))


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.json"
    path.write_text(json.dumps({"fx_rates": {"EUR": {"USD": str(RATE)}}}))
    return path


# ------------------------------------------------------------------- the histories

USD_AMOUNTS = ["2500.00", "4000.01", "5000.00", "6000.00", "8000.00", "9000.00", "9500.50",
               "10000.00", "10000.01", "12000.00", "3000.00", "777.77"]
# In USD at 1.25: 8,000.00 (the band's floor), 10,000.00, 10,000.0125, 8,750, 5,000 ...
EUR_AMOUNTS = ["6400.00", "8000.00", "8000.01", "7000.00", "4000.00", "3200.01", "9000.00",
               "1000.00", "6399.99"]
CHANNELS = ["cash", "cash", "cash", "wire", "cheque", "internal"]

index = st.integers(0, 31)
# Few distinct times, so that some postings share their booked_at (ordered by position).
hours = st.sampled_from([0, 9, 12, 12, 15, 23])
minutes = st.sampled_from([0, 0, 30, 59])
# Mostly the tables above (thresholds and the structuring band), sometimes any amount.
table_choice = st.integers(0, 31)
amount_choice = st.one_of(table_choice, table_choice, table_choice,
                          st.integers(1, 1_500_000).map(lambda c: -c))
conductor = st.one_of(st.none(), st.none(), index)

cash_item = st.tuples(st.sampled_from(["deposit", "deposit", "withdrawal"]), index,
                      amount_choice, st.sampled_from(CHANNELS), conductor, hours, minutes)
transfer_item = st.tuples(st.just("transfer"), index, index, amount_choice, hours, minutes)
# Two cash deposits in the structuring band into one account (conducted or not).
burst = st.tuples(st.just("burst"), index, conductor, hours, minutes)
day_items = st.lists(st.one_of(cash_item, cash_item, cash_item, transfer_item, burst),
                     min_size=2, max_size=10)

live_operation = st.one_of(
    st.tuples(st.sampled_from(["deposit", "deposit", "withdrawal"]), index, amount_choice,
              st.sampled_from(CHANNELS), conductor),
    st.tuples(st.just("transfer"), index, index, amount_choice),
    st.tuples(st.just("reverse"), index),
    st.just(("reverse_last",)),
)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "rate": draw(st.booleans()),
        "customers": draw(st.integers(2, 4)),
        # (customer index, currency, opened days ago)
        "accounts": draw(st.lists(
            st.tuples(index, st.sampled_from(["USD", "USD", "EUR"]), st.sampled_from([10, 400])),
            min_size=2, max_size=4)),
        # imports: days 4, 3 and 2 before today, then (later) day 1
        "early": [draw(day_items) for _ in (4, 3, 2)],
        "early_reversals": draw(st.lists(index, max_size=2)),
        "late": draw(day_items),
        # imports booked in the reported past after all that (days 3 and 2 before today)
        "backdated": [draw(st.lists(st.one_of(cash_item, transfer_item, burst), max_size=4))
                      for _ in (3, 2)],
        "live": draw(st.lists(live_operation, max_size=10)),
    }


# ----------------------------------------------------------------------- the record


@dataclass
class Posted:
    transaction_id: str
    kind: str
    channel: str
    currency: str
    amount: Decimal
    booked_at: datetime
    position: int
    entries: list[dict[str, Any]]
    conducted_by: str | None
    counterparty_country: str | None
    reverses: str | None


@dataclass
class Record:
    """What this test posted, from the bodies the use cases answered with."""

    bank: Bank
    customers: list[str] = field(default_factory=list)
    accounts: list[tuple[str, str, str, datetime, int]] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    refused: int = 0

    def owner(self, account_id: str) -> str:
        return next(a[1] for a in self.accounts if a[0] == account_id)

    def currency(self, account_id: str) -> str:
        return next(a[2] for a in self.accounts if a[0] == account_id)

    def keep(self, body: dict[str, Any], position: int) -> None:
        self.posted.append(Posted(
            transaction_id=body["transaction_id"], kind=body["kind"], channel=body["channel"],
            currency=body["currency"], amount=Decimal(body["amount"]),
            booked_at=datetime.fromisoformat(body["booked_at"]), position=position,
            entries=body["entries"], conducted_by=body["conducted_by"],
            counterparty_country=(body.get("counterparty") or {}).get("country"),
            reverses=body.get("reverses"),
        ))

    def by_id(self, transaction_id: str) -> Posted:
        return next(p for p in self.posted if p.transaction_id == transaction_id)


def amount_text(choice: int, currency: str) -> str:
    if choice >= 0:
        table = USD_AMOUNTS if currency == "USD" else EUR_AMOUNTS
        return table[choice % len(table)]
    cents = -choice
    return f"{cents // 100}.{cents % 100:02d}"


def day_at(days_ago: int, hour: int, minute: int) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def setup(record: Record, history: dict[str, Any]) -> None:
    bank = record.bank
    for n in range(history["customers"]):
        body = bank.register_customer(
            {"name": f"Customer {n}", "kind": "person", "country": ["US", "ES", "KY"][n % 3]},
            CAUSE).body
        record.customers.append(body["customer_id"])
    for who, currency, days_ago in history["accounts"]:
        owner = record.customers[who % len(record.customers)]
        opened = datetime.now(UTC) - timedelta(days=days_ago)
        outcome = bank.open_account(UUID(owner), currency, CAUSE,
                                    overdraft_limit="1000000.00", opened_at=opened)
        body = outcome.body
        record.accounts.append((body["account_id"], owner, currency,
                                datetime.fromisoformat(body["opened_at"]), outcome.position))


def import_day(record: Record, days_ago: int, items: list[tuple]) -> None:
    """One batch (not atomic) of the day's items, in time order."""
    accounts = record.accounts
    raw: list[dict[str, Any]] = []
    expanded: list[tuple] = []
    for it in items:
        if it[0] == "burst":
            _, which, by, hour, minute = it
            band = (6, 7) if accounts[which % len(accounts)][2] == "USD" else (0, 3)
            expanded += [("deposit", which, band[0], "cash", by, hour, minute),
                         ("deposit", which, band[1], "cash", by, hour, minute)]
        else:
            expanded.append(it)
    for it in sorted(expanded, key=lambda i: (i[-2], i[-1])):
        booked_at = day_at(days_ago, it[-2], it[-1])
        if it[0] == "transfer":
            source = accounts[it[1] % len(accounts)]
            targets = [a for a in accounts if a[2] == source[2] and a[0] != source[0]]
            if not targets:
                continue
            target = targets[it[2] % len(targets)]
            raw.append({"type": "transfer", "from_account_id": UUID(source[0]),
                        "to_account_id": UUID(target[0]),
                        "amount": amount_text(it[3], source[2]), "currency": source[2],
                        "reference": None, "booked_at": booked_at})
        else:
            kind, which, choice, channel, by = it[:5]
            account = accounts[which % len(accounts)]
            raw.append({"type": kind, "account_id": UUID(account[0]),
                        "amount": amount_text(choice, account[2]), "currency": account[2],
                        "channel": channel, "reference": None,
                        "conducted_by": None if by is None else UUID(
                            record.customers[by % len(record.customers)]),
                        "counterparty": None, "booked_at": booked_at})
    if not raw:
        return
    outcome = record.bank.post_batch(False, raw, CAUSE)
    for result in outcome.body["results"]:
        if "transaction" in result:
            record.keep(result["transaction"], result["transaction"]["position"])
        else:
            record.refused += 1


def reverse(record: Record, which: int) -> None:
    targets = [p for p in record.posted if p.kind != "reversal" and not any(
        q.reverses == p.transaction_id for q in record.posted)]
    if not targets:
        return
    original = targets[which % len(targets)]
    outcome = record.bank.reverse_transaction(UUID(original.transaction_id), "error", CAUSE)
    record.keep(outcome.body, outcome.positions[UUID(outcome.body["transaction_id"])])


def live(record: Record, op: tuple) -> None:
    bank, accounts = record.bank, record.accounts
    if op[0] == "reverse":
        reverse(record, op[1])
        return
    if op[0] == "reverse_last":
        reverse(record, -1)  # the latest posting not yet reversed
        return
    try:
        if op[0] == "transfer":
            source = accounts[op[1] % len(accounts)]
            targets = [a for a in accounts if a[2] == source[2] and a[0] != source[0]]
            if not targets:
                return
            target = targets[op[2] % len(targets)]
            outcome = bank.transfer(UUID(source[0]), UUID(target[0]),
                                    amount_text(op[3], source[2]), source[2], CAUSE)
        else:
            kind, which, choice, channel, by = op
            account = accounts[which % len(accounts)]
            move = bank.deposit if kind == "deposit" else bank.withdraw
            outcome = move(UUID(account[0]), amount_text(choice, account[2]), account[2],
                           channel, CAUSE, conducted_by=None if by is None else UUID(
                               record.customers[by % len(record.customers)]))
    except InsufficientFunds:
        record.refused += 1
        return
    record.keep(outcome.body, outcome.positions[UUID(outcome.body["transaction_id"])])


def wait_for_views(bank: Bank) -> int:
    head = bank.last_position()
    assert bank.views.wait(VIEWS, head, 60), bank.projection_status()  # type: ignore[union-attr]
    return head


@contextmanager
def scenario(stores: Stores, rules_file: Path, history: dict[str, Any]) -> Iterator[Record]:
    """A fresh store with the views running, and the history's set-up applied."""
    overrides = {"rules_file": str(rules_file)} if history["rate"] else {}
    with stores.fresh() as url, opened_bank(url, **overrides) as bank:
        assert bank.rules.fx_rates == ({"EUR": {"USD": RATE}} if history["rate"] else {})
        # The runners evaluate the alert rules: with the same settings as the bank.
        service = start_projections(bank, Settings(database_url=url, **overrides), VIEWS)
        try:
            record = Record(bank)
            setup(record, history)
            yield record
            assert not service.failed(), service.states()
        finally:
            service.stop()


def apply_early(record: Record, history: dict[str, Any]) -> None:
    for days_ago, items in zip((4, 3, 2), history["early"], strict=True):
        import_day(record, days_ago, items)
    for which in history["early_reversals"]:
        reverse(record, which)  # booked today: a later day than the imports'


def apply_late(record: Record, history: dict[str, Any]) -> None:
    import_day(record, 1, history["late"])
    for op in history["live"]:
        live(record, op)


def apply_backdated(record: Record, history: dict[str, Any]) -> None:
    for days_ago, items in zip((3, 2), history["backdated"], strict=True):
        import_day(record, days_ago, items)


# ------------------------------------------------------------------ the brute force


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def voided(record: Record) -> set[str]:
    """Transactions reversed on the business day they were booked."""
    return {
        r.reverses for r in record.posted
        if r.reverses is not None
        and day_of(r.booked_at) == day_of(record.by_id(r.reverses).booked_at)
    }


def usd_value(p: Posted, rated: bool) -> Decimal | None:
    if p.currency == "USD":
        return p.amount
    if not rated:
        return None
    return (p.amount * RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def cash_account(p: Posted) -> str:
    (account,) = [e["account"] for e in p.entries if e["account"] not in INTERNAL]
    return account


def counted_for(record: Record, p: Posted) -> set[str]:
    owner = record.owner(cash_account(p))
    return {owner} | ({p.conducted_by} if p.conducted_by else set())


def expected_ctrs(record: Record, day: date, rated: bool) -> tuple[set, set]:
    """({(customer_id, cash_in, cash_out)}, {unconverted transaction ids}) for ``day``."""
    gone = voided(record)
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    unconverted = set()
    for p in record.posted:
        if (p.kind not in ("deposit", "withdrawal") or p.channel != "cash"
                or day_of(p.booked_at) != day or p.transaction_id in gone):
            continue
        value = usd_value(p, rated)
        if value is None:
            unconverted.add(p.transaction_id)
            continue
        for person in counted_for(record, p):
            sums[person][0 if p.kind == "deposit" else 1] += value
    found = set()
    for person, (cash_in, cash_out) in sums.items():
        if cash_in > THRESHOLD or cash_out > THRESHOLD:
            found.add((person, f"{cash_in:.2f}" if cash_in > THRESHOLD else None,
                       f"{cash_out:.2f}" if cash_out > THRESHOLD else None))
    return found, unconverted


def days_of(record: Record) -> list[date]:
    return sorted({day_of(p.booked_at) for p in record.posted})


def movements(record: Record) -> list[Movement]:
    """The record's transactions as the rules read them: one per customer entry."""
    found = []
    for p in record.posted:
        for seq, entry in enumerate(p.entries):
            if entry["account"] in INTERNAL:
                continue
            found.append(Movement(
                transaction_id=p.transaction_id, position=p.position, seq=seq,
                booked_at=p.booked_at, kind=p.kind, channel=p.channel, currency=p.currency,
                amount=Decimal(entry["amount"]), account_id=entry["account"],
                customer_id=record.owner(entry["account"]),
                flow=IN if entry["direction"] == "credit" else OUT,
                conducted_by=p.conducted_by, counterparty_country=p.counterparty_country,
                reverses=p.reverses,
            ))
    return found


def alert_key(alert: dict[str, Any]) -> tuple:
    return (alert["alert_id"], alert["rule"], alert["customer_id"],
            alert["trigger_transaction_id"], tuple(alert["account_ids"]),
            tuple(alert["transaction_ids"]), alert["window_start"], alert["window_end"],
            json.dumps(alert["figures"], sort_keys=True))


def reference_alerts(record: Record, rules: Rules) -> list[tuple]:
    accounts = {a[0]: AccountFacts(a[0], a[1], a[2], a[3], a[4]) for a in record.accounts}
    activities = [Activity(a[0], a[1], a[3], a[4], "opened") for a in record.accounts]
    found = all_alerts(movements(record), activities, accounts, rules, UTC)
    return sorted(alert_key({
        "alert_id": a.alert_id, "rule": a.rule, "customer_id": a.customer_id,
        "trigger_transaction_id": a.trigger_transaction_id,
        "account_ids": list(a.account_ids), "transaction_ids": list(a.transaction_ids),
        "window_start": timestamp(a.window_start), "window_end": timestamp(a.window_end),
        "figures": a.figures,
    }) for a in found)


def my_patterns(record: Record, rated: bool) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """structuring and round_amounts, from docs/reports.md: (rule, customer, trigger,
    the transactions in the trigger's window)."""
    gone = voided(record)
    kept = sorted(
        (p for p in record.posted if p.kind != "reversal" and p.transaction_id not in gone),
        key=lambda p: (p.booked_at, p.position))
    candidates: dict[tuple[str, str], list[tuple[Posted, tuple[str, ...]]]] = defaultdict(list)
    # 1. structuring: >= 3 cash deposits counting for one person within 7 days, each
    #    8,000.00 to 10,000.00 in USD.
    band = []
    for p in kept:
        if p.kind == "deposit" and p.channel == "cash":
            value = p.amount if p.currency == "USD" else (p.amount * RATE if rated else None)
            if value is not None and Decimal("8000.00") <= value <= THRESHOLD:
                band.append(p)
    people = {person for p in band for person in counted_for(record, p)}
    for person in people:
        mine = [p for p in band if person in counted_for(record, p)]
        for n, t in enumerate(mine):
            window = [p for p in mine[: n + 1] if p.booked_at >= t.booked_at - timedelta(days=7)]
            if len(window) >= 3:
                candidates[("structuring", person)].append(
                    (t, tuple(p.transaction_id for p in window)))
    # 2. round_amounts: >= 3 deposits or withdrawals, whole multiples of 1,000.00, on one
    #    customer's accounts within 30 days.
    rounds = [p for p in kept if p.kind in ("deposit", "withdrawal")
              and p.amount % Decimal("1000.00") == 0]
    for person in {record.owner(cash_account(p)) for p in rounds}:
        mine = [p for p in rounds if record.owner(cash_account(p)) == person]
        for n, t in enumerate(mine):
            window = [p for p in mine[: n + 1] if p.booked_at >= t.booked_at - timedelta(days=30)]
            if len(window) >= 3:
                candidates[("round_amounts", person)].append(
                    (t, tuple(p.transaction_id for p in window)))
    raised = set()
    for (rule, person), found in candidates.items():
        days = 7 if rule == "structuring" else 30
        last: datetime | None = None
        for t, window in found:
            if last is None or last < t.booked_at - timedelta(days=days):
                raised.add((rule, person, t.transaction_id, window))
                last = t.booked_at
    return raised


def describe(record: Record) -> None:
    note(f"accounts: {[(a[0][:8], a[1][:8], a[2]) for a in record.accounts]}")
    for p in record.posted:
        note(f"{p.booked_at.isoformat()} {p.position} {p.kind} {p.channel} {p.amount} "
             f"{p.currency} {[(e['account'][:8], e['direction']) for e in p.entries]} "
             f"by={p.conducted_by and p.conducted_by[:8]} rev={p.reverses and p.reverses[:8]}")


@contextmanager
def whole_history(
    stores: Stores, rules_file: Path, history: dict[str, Any]
) -> Iterator[tuple[Record, Any]]:
    """The history posted, imported and backdated, with the views caught up."""
    with scenario(stores, rules_file, history) as record:
        apply_early(record, history)
        apply_late(record, history)
        apply_backdated(record, history)
        wait_for_views(record.bank)
        describe(record)
        assert record.bank.compliance is not None
        yield record, record.bank.compliance


# ------------------------------------------------------------------- the properties


@PROPERTY_SETTINGS
@given(history=histories())
def test_each_ctr_is_the_sum_of_its_listed_cash_transactions(
        stores: Stores, rules_file: Path, history: dict[str, Any]) -> None:
    with whole_history(stores, rules_file, history) as (record, compliance):
        checked = 0
        for day in days_of(record):
            report = compliance.ctr(day)
            for ctr in report["ctrs"]:
                listed = [record.by_id(t) for t in ctr["transaction_ids"]]
                assert all(p.channel == "cash" and p.kind in ("deposit", "withdrawal")
                           and day_of(p.booked_at) == day for p in listed), ctr
                for side, kind in (("cash_in", "deposit"), ("cash_out", "withdrawal")):
                    mine = [p for p in listed if p.kind == kind]
                    if ctr[side] is None:
                        assert mine == [], (side, ctr)
                        continue
                    total = sum((usd_value(p, history["rate"]) for p in mine), Decimal(0))
                    assert Decimal(ctr[side]) == total > THRESHOLD, (side, ctr)
                    checked += 1
                    if len(mine) > 1:
                        assert ctr["multiple_transactions"] is True, ctr
                assert ctr["multiple_transactions"] == any(
                    len([p for p in listed if p.kind == k]) > 1 for k in ("deposit", "withdrawal")
                ), ctr
                assert ctr["account_ids"] == sorted({cash_account(p) for p in listed})
                assert all(ctr["customer_id"] in counted_for(record, p) for p in listed), ctr
        note(f"sides checked: {checked}")
        event(f"CTR sides checked: {min(checked, 3)}{'+' if checked >= 3 else ''}")


@PROPERTY_SETTINGS
@given(history=histories())
def test_no_reportable_person_is_missed(
        stores: Stores, rules_file: Path, history: dict[str, Any]) -> None:
    with whole_history(stores, rules_file, history) as (record, compliance):
        for day in days_of(record):
            report = compliance.ctr(day)
            found = {(c["customer_id"], c["cash_in"], c["cash_out"]) for c in report["ctrs"]}
            expected, unconverted = expected_ctrs(record, day, history["rate"])
            assert found == expected, day
            if found:
                event("a day with CTRs")
            if unconverted:
                event("a day with unconverted cash")
            assert [c["customer_id"] for c in report["ctrs"]] == sorted(
                c["customer_id"] for c in report["ctrs"])
            assert {u["transaction_id"] for u in report["unconverted"]} == unconverted, day
            assert all(c["due_date"] == (day + timedelta(days=15)).isoformat()
                       for c in report["ctrs"])


def past_reports(bank: Bank, head: int | None = None) -> dict[str, dict[str, Any]]:
    compliance = bank.compliance
    assert compliance is not None
    today = datetime.now(UTC).date()
    d4, d3, d2 = (today - timedelta(days=n) for n in (4, 3, 2))
    end_of_d2 = datetime.combine(d2 + timedelta(days=1), time(0), tzinfo=UTC) - timedelta(
        microseconds=1)
    return {
        "ctr d-4": compliance.ctr(d4, as_of_position=head),
        "ctr d-3": compliance.ctr(d3, as_of_position=head),
        "ctr d-2": compliance.ctr(d2, as_of_position=head),
        "trial balance USD d-3": compliance.trial_balance(d3, "USD", detail=True,
                                                          as_of_position=head),
        "trial balance EUR d-2": compliance.trial_balance(d2, "EUR", as_of_position=head),
        "alerts to d-2": compliance.alerts(None, end_of_d2, as_of_position=head),
        "liquidity d-4..d-2": compliance.liquidity(d4, d2, as_of_position=head),
        "overdrafts d-2": compliance.overdrafts(d2, as_of_position=head),
        "exposures d-3": compliance.exposures(d3, as_of_position=head),
    }


@PROPERTY_SETTINGS
@given(history=histories())
def test_a_report_for_a_past_date_keeps_its_digest(
        stores: Stores, rules_file: Path, history: dict[str, Any]) -> None:
    with scenario(stores, rules_file, history) as record:
        apply_early(record, history)
        then = wait_for_views(record.bank)
        before = past_reports(record.bank)
        apply_late(record, history)  # booked on day -1 and today: after every report's date
        now = wait_for_views(record.bank)
        describe(record)
        after = past_reports(record.bank)
        for name, report in before.items():
            assert report["as_of_position"] == then
            assert after[name]["as_of_position"] == now
            assert after[name]["digest"] == report["digest"], name
            assert {k: v for k, v in after[name].items() if k != "as_of_position"} == {
                k: v for k, v in report.items() if k != "as_of_position"}, name
        # Imports booked in those past days change them; reports as of the earlier
        # positions stay the ones made then.
        apply_backdated(record, history)
        wait_for_views(record.bank)
        assert past_reports(record.bank, then) == before
        assert past_reports(record.bank, now) == after


@PROPERTY_SETTINGS
@given(history=histories())
def test_alerts_are_the_rules_over_the_movements(
        stores: Stores, rules_file: Path, history: dict[str, Any]) -> None:
    with whole_history(stores, rules_file, history) as (record, compliance):
        report = compliance.alerts()
        got = sorted(alert_key(a) for a in report["alerts"])
        assert got == reference_alerts(record, record.bank.rules)
        mine = {(a["rule"], a["customer_id"], a["trigger_transaction_id"],
                 tuple(a["transaction_ids"])) for a in report["alerts"]
                if a["rule"] in ("structuring", "round_amounts")}
        assert mine == my_patterns(record, history["rate"])
        for rule in sorted({a["rule"] for a in report["alerts"]}):
            event(f"alert {rule}")


# ------------------------------------------------------- the settings' version


def test_alerts_follow_the_rules_version_they_carry(stores: Stores, rules_file: Path) -> None:
    today = datetime.now(UTC).date()
    with stores.fresh() as url:
        with opened_bank(url) as bank:  # the default rules: no rate for EUR
            service = start_projections(bank, Settings(database_url=url), VIEWS)
            try:
                record = Record(bank)
                setup(record, {"customers": 1, "accounts": [(0, "EUR", 10)]})
                import_day(record, 1, [("deposit", 0, 3, "cash", None, h, 0)
                                      for h in (9, 10, 11)])
                wait_for_views(bank)
                assert bank.compliance is not None
                old = bank.compliance.alerts(rule="structuring")
                assert old["alerts"] == []  # 7,000.00 EUR has no USD value: ignored
                assert [u["amount"] for u in bank.compliance.ctr(
                    today - timedelta(days=1))["unconverted"]] == ["7000.00"] * 3
            finally:
                service.stop()
        # The same log, served with a rate for EUR (1.25: 8,750.00 USD each): the
        # stored alerts were evaluated under the old rules, so the view refuses to
        # answer, or to go on, until it is rebuilt under the new ones.
        overrides = {"rules_file": str(rules_file)}
        settings = Settings(database_url=url, **overrides)
        with opened_bank(url, **overrides) as bank:
            assert bank.compliance is not None
            with pytest.raises(RulesChanged) as refused:
                bank.compliance.alerts(rule="structuring")
            assert refused.value.built_with == old["rules_version"]
            assert refused.value.configured == bank.rules.version
            with pytest.raises(RulesChanged):
                bank.compliance.ctr(today - timedelta(days=1))
            rebuild_projections(settings, ["compliance"], processes=1).run()
            service = start_projections(bank, settings, VIEWS)
            try:
                wait_for_views(bank)
                ctr = bank.compliance.ctr(today - timedelta(days=1))
                assert ctr["rules_version"] == bank.rules.version != old["rules_version"]
                assert [c["cash_in"] for c in ctr["ctrs"]] == ["26250.00"]
                new = bank.compliance.alerts(rule="structuring")
                assert new["rules_version"] == bank.rules.version
                assert [(a["customer_id"], a["figures"]) for a in new["alerts"]] == [
                    (record.customers[0], {"count": 3, "total": "26250.00", "currency": "USD"})]
            finally:
                service.stop()
