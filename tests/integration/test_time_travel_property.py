"""Time travel against a brute force over the log, on this run's store.

Random histories (deposits, withdrawals, transfers, reversals, holds and captures,
freezes, limits, closes, batches, and imports booked in the past, some refused) are
applied through the Bank's use cases; then, at random moments T (at, around and between
the times of the history's events, before the first and now):

- ``bank.balance(account, as_of=T)["ledger_balance"]`` and every row of
  ``bank.audit.balances(T)`` equal the sum of the account's entries booked at or before
  T, worked out here from the decoded ``Transaction.Posted`` events (their entries and
  ``booked_at``), and the totals equal the sums of those balances; an account is
  listed from its ``opened_at`` on;
- ``bank.audit.account_history(account)``: one step per event of the account, each with
  the ledger balance the account's own credits and debits give up to it (their amounts
  taken from the transactions' entries), and a final state that is the account as
  ``bank.get_account`` reads it.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from projection_helpers import (
    CHANNELS,
    CURRENCIES,
    IMPORT_AGES,
    History,
    LogFacts,
    Stores,
    catch_up,
    clock_stopped,
    opened_bank,
    random_operations,
    read_log,
    running_projections,
)

from application.bank import Bank
from domain.account import Account
from domain.currencies import MINOR_UNITS
from domain.transaction import Transaction


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("time-travel-stores"))


# ------------------------------------------------------------------ the histories

index = st.integers(0, 63)
ages = st.sampled_from(IMPORT_AGES)  # seconds before now (some refused: before opening)
batch_items = st.one_of(
    st.tuples(
        st.sampled_from(["deposit", "withdrawal"]),
        index,
        st.integers(1, 30_000),
        st.sampled_from(CHANNELS),
        st.one_of(st.none(), ages),
    ),
    st.tuples(st.just("transfer"), index, index, st.integers(1, 30_000),
              st.one_of(st.none(), ages)),
)
# (weight, strategy) per kind of operation, in History's tuples. Holds never lapse
# here (no expiry, or half an hour, and the clock is not moved on), so the history's
# last state and the account as read now agree on what is held.
OPERATIONS: dict[str, tuple[int, st.SearchStrategy[tuple]]] = {
    "customer": (1, st.tuples(st.just("customer"), st.sampled_from(["ES", "JP"]))),
    "open": (2, st.tuples(
        st.just("open"), index, st.sampled_from(CURRENCIES),
        st.sampled_from([0, 0, 5_000]), st.sampled_from(["current", "savings"]),
        st.sampled_from([0, 2]),  # opened now, or two days ago (an import of history)
    )),
    "deposit": (5, st.tuples(st.just("deposit"), index, st.integers(1, 60_000),
                             st.sampled_from(CHANNELS))),
    "withdraw": (3, st.tuples(st.just("withdraw"), index, st.integers(1, 60_000),
                              st.sampled_from(CHANNELS))),
    "transfer": (4, st.tuples(st.just("transfer"), index, index, st.integers(1, 60_000),
                              st.booleans())),
    "reverse": (3, st.tuples(st.just("reverse"), index)),
    "import": (4, st.tuples(st.just("import"), index, st.integers(1, 60_000),
                            st.booleans(), ages)),
    "batch": (3, st.tuples(st.just("batch"), st.booleans(),
                           st.lists(batch_items, min_size=1, max_size=4).map(tuple))),
    "hold": (2, st.tuples(st.just("hold"), index, st.integers(1, 20_000),
                          st.sampled_from([0, 1800]))),
    "capture": (2, st.tuples(st.just("capture"), index, st.sampled_from([0, 1, 500]),
                             st.sampled_from([-1, 0, 1]))),
    "release": (1, st.tuples(st.just("release"), index)),
    "freeze": (1, st.tuples(st.just("freeze"), index)),
    "unfreeze": (1, st.tuples(st.just("unfreeze"), index)),
    "limit": (1, st.tuples(st.just("limit"), index, st.sampled_from([0, 1000, 50_000]))),
    "empty_and_close": (1, st.tuples(st.just("empty_and_close"), index)),
    "close_day": (1, st.tuples(st.just("close_day"), st.sampled_from([1, 2]))),
}
operations = st.sampled_from(
    [kind for kind, (weight, _) in OPERATIONS.items() for _ in range(weight)]
).flatmap(lambda kind: OPERATIONS[kind][1])

# Every example begins with these, on the prelude's accounts (0: EUR, 1: JPY, 2: BHD,
# opened three days ago): postings now, then imports booked before them (so entries
# are inserted before later ones), a transfer, and reversals of an import and of a
# posting.
STORY: list[tuple] = [
    ("open", 0, "EUR", 10_000, "current", 2),  # account 3: EUR, opened two days ago
    ("withdraw", 0, 1_500, "cash"),
    ("import", 0, 2_000, True, 30 * 3600),
    ("import", 3, 700, False, 3600),  # into the overdraft, an hour ago
    ("batch", False, (("deposit", 0, 300, "wire", 50 * 3600),
                      ("transfer", 0, 3, 1_000, 7200))),
    ("transfer", 3, 0, 250, True),
    ("reverse", 4),  # the import 30 hours ago (transactions: 3 deposits, then these)
    ("reverse", 0),  # the prelude's EUR deposit
]

PROPERTY_SETTINGS = hypothesis_settings(
    # a fresh store per example: modest, and fewer if the loaded profile asks for fewer
    max_examples=min(15, hypothesis_settings().max_examples),
    deadline=None,
    # shrinking on a real store takes long: the failing history is printed instead
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------ the brute force


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.{MINOR_UNITS[currency]}f}"


def booked_at(posted: Transaction.Posted) -> datetime:
    """An import carries its booked_at; everything else is booked when recorded."""
    return posted.booked_at if posted.booked_at is not None else posted.timestamp


class Replay:
    """What the log says, from its decoded events."""

    def __init__(self, facts: LogFacts) -> None:
        self.facts = facts
        # account id -> (position, Opened), in the order the accounts were opened
        self.opened: dict[UUID, tuple[int, Account.Opened]] = {}
        for account_id in facts.ids("Account"):
            position, first = facts.events[account_id][0]
            assert isinstance(first, Account.Opened), first
            self.opened[account_id] = (position, first)
        self.opened = dict(sorted(self.opened.items(), key=lambda item: item[1][0]))
        # account id -> [(booked_at, signed amount)]; transaction id -> account -> amount
        self.entries: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
        self.moves: dict[UUID, dict[str, Decimal]] = defaultdict(dict)
        for _, posted in facts.posted:
            for row in posted.entries:
                amount = Decimal(row["amount"])
                signed = amount if row["direction"] == "credit" else -amount
                self.entries[row["account"]].append((booked_at(posted), signed))
                assert row["account"] not in self.moves[posted.originator_id]
                self.moves[posted.originator_id][row["account"]] = signed

    def currency(self, account_id: UUID) -> str:
        return self.opened[account_id][1].currency

    def opened_at(self, account_id: UUID) -> datetime:
        event = self.opened[account_id][1]
        return event.opened_at if event.opened_at is not None else event.timestamp

    def ledger(self, account_id: UUID, moment: datetime) -> Decimal:
        return sum(
            (amount for at, amount in self.entries[str(account_id)] if at <= moment),
            Decimal(0),
        )

    def rows(self, moment: datetime) -> list[dict[str, Any]]:
        return [
            {
                "account_id": str(account_id),
                "customer_id": str(opened.customer_id),
                "currency": opened.currency,
                "ledger_balance": money(self.ledger(account_id, moment), opened.currency),
            }
            for account_id, (_, opened) in self.opened.items()
            if self.opened_at(account_id) <= moment
        ]

    def instants(self) -> list[datetime]:
        """Every time at which a balance or the list of accounts may change."""
        found = {booked_at(p) for _, p in self.facts.posted}
        found.update(p.timestamp for _, p in self.facts.posted)
        found.update(self.opened_at(a) for a in self.opened)
        found.update(e.timestamp for _, e in self.opened.values())
        return sorted(found)


def totals(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    sums: dict[str, list[Decimal]] = {}
    for row in rows:
        balance = Decimal(row["ledger_balance"])
        credit_debit = sums.setdefault(row["currency"], [Decimal(0), Decimal(0)])
        if balance > 0:
            credit_debit[0] += balance
        else:
            credit_debit[1] += -balance
    return [
        {"currency": currency, "credit_balances": money(credit, currency),
         "debit_balances": money(debit, currency)}
        for currency, (credit, debit) in sorted(sums.items())
    ]


def candidate_moments(replay: Replay, now: datetime) -> list[datetime]:
    """At, a microsecond either side of, and midway between the history's instants
    (never after now)."""
    instants = replay.instants()
    step = timedelta(microseconds=1)
    candidates = sorted(
        {t + d for t in instants for d in (-step, timedelta(0), step)}
        | {a + (b - a) / 2 for a, b in itertools.pairwise(instants)}
    )
    return [t for t in candidates if t <= now]


def moments_to_check(replay: Replay, now: datetime, data: st.DataObject) -> list[datetime]:
    """Before the first event, now, and moments drawn from :func:`candidate_moments`."""
    instants = replay.instants()
    candidates = candidate_moments(replay, now)
    drawn = data.draw(
        st.lists(st.sampled_from(candidates), min_size=6, max_size=10, unique=True),
        label="moments",
    )
    return [instants[0] - timedelta(days=1), *sorted(drawn), now]


# -------------------------------------------------------------------- the checks


def check_balances_at(bank: Bank, replay: Replay, moment: datetime, head: int) -> None:
    expected = replay.rows(moment)
    found = bank.audit.balances(moment)  # type: ignore[union-attr]
    where = f"as of {moment.isoformat()}"
    assert found["as_of_position"] == head, where
    listed = [row["account_id"] for row in found["accounts"]]
    assert len(set(listed)) == len(listed), where
    by_id = lambda row: row["account_id"]
    assert sorted(found["accounts"], key=by_id) == sorted(expected, key=by_id), where
    assert found["totals"] == totals(expected), where
    for account_id in replay.opened:
        want = money(replay.ledger(account_id, moment), replay.currency(account_id))
        got = bank.balance(account_id, as_of=moment)
        assert got["ledger_balance"] == want, f"{account_id} {where}"


STATUS_AFTER = {
    Account.Opened: "active",
    Account.Frozen: "frozen",
    Account.Unfrozen: "active",
    Account.Closed: "closed",
}


def check_history(bank: Bank, replay: Replay, account_id: UUID) -> None:
    history = bank.audit.account_history(account_id)  # type: ignore[union-attr]
    assert history["account_id"] == str(account_id)
    steps = history["events"]
    own = replay.facts.events[account_id]
    assert [s["position"] for s in steps] == [p for p, _ in own]
    currency = replay.currency(account_id)
    ledger = Decimal(0)
    status = "active"
    for step, (_, event) in zip(steps, own, strict=True):
        assert step["type"] == type(event).__name__
        if isinstance(event, Account.FundsCredited | Account.FundsDebited):
            signed = replay.moves[event.transaction_id][str(account_id)]
            credit = isinstance(event, Account.FundsCredited)
            assert (signed > 0) == credit and abs(signed) == event.amount
            ledger += signed
        status = STATUS_AFTER.get(type(event), status)
        state = step["state"]
        assert state["version"] == event.originator_version, step["position"]
        assert state["ledger_balance"] == money(ledger, currency), step["position"]
        assert state["status"] == status, step["position"]
        assert state["account_id"] == str(account_id)
    assert ledger == replay.ledger(account_id, datetime.max.replace(tzinfo=UTC))
    now = bank.get_account(account_id)
    assert now["position"] == steps[-1]["position"]
    assert now == steps[-1]["state"]


# -------------------------------------------------------------------- the property


@PROPERTY_SETTINGS
@given(
    history=st.lists(operations, min_size=5, max_size=40),
    start=st.integers(0, 40),
    data=st.data(),
)
def test_balances_as_of_any_moment_are_the_logs_sums(
    stores: Stores, history: list[tuple], start: int, data: st.DataObject
) -> None:
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        applied.prelude()
        applied.apply_all(STORY)
        applied.apply_all(history[:start])  # a backlog for the runners
        with running_projections(bank, url) as service:
            applied.live = True
            applied.apply_all(history[start:])
            note(f"refused: {dict(applied.refused)}; applied: {dict(applied.applied)}")
            head = catch_up(bank, services=[service])
            assert head == applied.last_position
            replay = Replay(read_log(bank))
            assert any(p.booked_at is not None for _, p in replay.facts.posted)
            assert any(p.reverses is not None for _, p in replay.facts.posted)
            with clock_stopped(bank) as now:
                for moment in moments_to_check(replay, now, data):
                    check_balances_at(bank, replay, moment, head)
                for account_id in replay.opened:
                    check_history(bank, replay, account_id)


# Operations of random_operations that keep holds from lapsing (see OPERATIONS).
LAPSING = {"advance", "sweep", "expire", "hold"}


def test_every_moment_of_a_longer_history(stores: Stores) -> None:
    """A longer seeded history, every candidate moment checked (not a sample)."""
    rnd = random.Random(20261124)
    operations = [op for op in random_operations(rnd, 160) if op[0] not in LAPSING]
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        applied.prelude()
        applied.apply_all(STORY)
        with running_projections(bank, url) as service:
            applied.live = True
            applied.apply_all(operations)
            head = catch_up(bank, services=[service])
            replay = Replay(read_log(bank))
            imports = sum(1 for _, p in replay.facts.posted if p.booked_at is not None)
            reversals = sum(1 for _, p in replay.facts.posted if p.reverses is not None)
            assert imports >= 5 and reversals >= 3, (imports, reversals)
            assert len(replay.opened) >= 5
            with clock_stopped(bank) as now:
                moments = candidate_moments(replay, now)
                assert len(moments) > 200
                for moment in [moments[0] - timedelta(days=1), *moments, now]:
                    check_balances_at(bank, replay, moment, head)
                for account_id in replay.opened:
                    check_history(bank, replay, account_id)
