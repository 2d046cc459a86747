"""Helpers for tests/integration/test_projections.py.

Fresh stores of the kind the run is for (a SQLite file, or a PostgreSQL schema of its
own), banks and live runners that are always closed and stopped, a history generator
that drives the Bank's use cases, and :func:`check_views` which compares every row of
the four views with what the event log and the aggregates replayed from it say.

The expected rows are worked out from the log independently of the projections: the
statement model below sorts a customer account's entries by (booked_at, position, seq)
and sums them, it does not reuse any of the projections' code.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from application.bank import Bank
from application.projections import PROJECTIONS
from application.views import account_view, transaction_view
from domain.account import Account
from domain.cause import Cause
from domain.currencies import MINOR_UNITS
from domain.customer import Customer
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    CurrencyMismatch,
    InsufficientFunds,
)
from domain.ledger import CREDIT, DEBIT, INTERNAL_ACCOUNTS, Entry, internal_account_for
from domain.money import format_amount
from domain.transaction import Transaction
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings
from infrastructure.views.runner import ProjectionService

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(PROJECTIONS)
CAUSE = Cause.cli()

# Refusals a random history runs into; anything else is a bug (or a bad generator).
REFUSALS = (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    CurrencyMismatch,
    InsufficientFunds,
)


# ---------------------------------------------------------------------- stores


def configured_url() -> str:
    return os.environ.get("BACKOFFICE_DATABASE_URL", "")


def on_postgres() -> bool:
    return configured_url().startswith(("postgresql://", "postgres://"))


def _postgres_required() -> bool:
    return os.environ.get("BACKOFFICE_REQUIRE_POSTGRES", "") in ("1", "true", "yes")


class Stores:
    """Fresh, empty stores of this run's kind, any number of them (one per example)."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self._numbers = itertools.count()

    @contextmanager
    def fresh(self) -> Iterator[str]:
        if not on_postgres():
            directory = self.tmp_dir / f"store-{next(self._numbers)}"
            directory.mkdir(parents=True)
            yield f"sqlite:///{directory}/bank.sqlite"
            return
        url = configured_url()
        base = url.split("?", 1)[0]
        schema = f"t_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as error:
            if _postgres_required():
                pytest.fail(f"PostgreSQL is required but unreachable: {error}")
            pytest.skip(f"PostgreSQL unreachable: {error}")
        try:
            yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def opened_bank(url: str, **overrides: Any) -> Iterator[Bank]:
    bank = bootstrap(database_url=url, **overrides)
    try:
        yield bank
    finally:
        bank.close()


@contextmanager
def running_projections(
    bank: Bank, url: str, names: Sequence[str] = ()
) -> Iterator[ProjectionService]:
    service = start_projections(bank, Settings(database_url=url), names)
    try:
        yield service
    finally:
        service.stop()


def catch_up(
    bank: Bank,
    position: int | None = None,
    timeout: float = 30.0,
    services: Sequence[ProjectionService] = (),
) -> int:
    """Wait until every projection has reached ``position`` (default: the log's head)."""
    position = bank.last_position() if position is None else position
    reached = bank.views.wait(NAMES, position, timeout)  # type: ignore[union-attr]
    for service in services:
        assert not service.failed(), f"runners failed: {service.states()}"
    assert reached, (
        f"projections did not reach {position} in {timeout} s: {bank.projection_status()}; "
        f"runners: {[s.states() for s in services]}"
    )
    return position


def run_projections_process(
    url: str, *names: str, log: Path | None = None
) -> subprocess.Popen:
    """``backoffice projections run`` in a process of its own."""
    env = {
        **os.environ,
        "BACKOFFICE_DATABASE_URL": url,
        "BACKOFFICE_LOG_LEVEL": "warning",
        "BACKOFFICE_LOG_FORMAT": "console",
    }
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", "projections", "run", *names],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


# -------------------------------------------------------------------- histories

# EUR 2 decimals, JPY none, BHD 3
CURRENCIES = ("EUR", "JPY", "BHD")
CHANNELS = ("cash", "cheque", "wire", "internal")


def money_text(minor: int, currency: str) -> str:
    return format_amount(Decimal(minor).scaleb(-MINOR_UNITS[currency]), currency)


@dataclass
class History:
    """Applies operations (tuples, see ``tests.integration.test_projections``) to a bank.

    Indices pick among what exists (modulo), so any list of operations is valid; an
    operation with nothing to act on is skipped. Refusals are expected and counted.
    """

    bank: Bank
    customers: list[UUID] = field(default_factory=list)
    accounts: list[tuple[UUID, str]] = field(default_factory=list)  # id, currency
    transactions: list[UUID] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    last_position: int = 0

    def prelude(self) -> None:
        """A customer with an account in each currency, each with a deposit."""
        self.apply(("customer", "ES"))
        for i, currency in enumerate(CURRENCIES):
            self.apply(("open", 0, currency, 0, "current", 0))
            self.apply(("deposit", i, 50_000, "cash"))

    def apply_all(self, operations: Sequence[tuple]) -> None:
        for operation in operations:
            self.apply(operation)

    def apply(self, op: tuple) -> None:
        try:
            outcome = self._apply(op)
        except REFUSALS as error:
            self.refused[type(error).__name__] += 1
            return
        if outcome is not None and outcome.position is not None:
            self.last_position = outcome.position
            if "transaction_id" in outcome.body:
                self.transactions.append(UUID(outcome.body["transaction_id"]))

    def _account(self, index: int) -> tuple[UUID, str] | None:
        return self.accounts[index % len(self.accounts)] if self.accounts else None

    def _apply(self, op: tuple) -> Any:
        bank, kind = self.bank, op[0]
        if kind == "customer":
            body = bank.register_customer(
                {
                    "name": f"Customer {len(self.customers)}",
                    "kind": "person",
                    "country": op[1],
                },
                CAUSE,
            )
            self.customers.append(UUID(body.body["customer_id"]))
            return body
        if kind == "open":
            _, index, currency, limit, product, days_ago = op
            if not self.customers:
                return None
            opened_at = (
                datetime.now(UTC) - timedelta(days=days_ago, seconds=1)
                if days_ago
                else None
            )
            outcome = bank.open_account(
                self.customers[index % len(self.customers)],
                currency,
                CAUSE,
                product=product,
                overdraft_limit=money_text(limit, currency),
                opened_at=opened_at,
            )
            self.accounts.append((UUID(outcome.body["account_id"]), currency))
            return outcome
        account = self._account(op[1])
        if account is None:
            return None
        account_id, currency = account
        if kind in ("deposit", "withdraw"):
            _, _, minor, channel = op
            move = bank.deposit if kind == "deposit" else bank.withdraw
            return move(
                account_id, money_text(minor, currency), currency, channel, CAUSE
            )
        if kind == "transfer":
            _, _, to_index, minor, same_currency = op
            targets = [
                a
                for a in self.accounts
                if a[0] != account_id and (a[1] == currency or not same_currency)
            ]
            if not targets:
                return None
            target = targets[to_index % len(targets)][0]
            return bank.transfer(
                account_id, target, money_text(minor, currency), currency, CAUSE
            )
        if kind == "freeze":
            return bank.freeze_account(account_id, "review", CAUSE)
        if kind == "unfreeze":
            return bank.unfreeze_account(account_id, CAUSE)
        if kind == "limit":
            return bank.set_overdraft_limit(
                account_id, money_text(op[2], currency), CAUSE
            )
        if kind == "close":
            return bank.close_account(account_id, CAUSE)
        if kind == "empty_and_close":
            balance = bank.reconstruct(account_id).ledger_balance  # type: ignore[union-attr]
            text = format_amount(abs(balance), currency)
            if balance > 0:
                self._keep(bank.withdraw(account_id, text, currency, "cash", CAUSE))
            elif balance < 0:
                self._keep(bank.deposit(account_id, text, currency, "wire", CAUSE))
            return bank.close_account(account_id, CAUSE)
        if kind == "import":
            # A booking in the past. No use case books in the past yet, so this goes
            # through the domain as an import would: post with booked_at, then save the
            # account and the record together.
            _, _, minor, credit, seconds_ago = op
            return book_in_past(
                bank,
                account_id,
                Decimal(minor).scaleb(-MINOR_UNITS[currency]),
                currency,
                datetime.now(UTC) - timedelta(seconds=seconds_ago),
                credit=credit,
            )
        raise ValueError(f"unknown operation {op!r}")

    def _keep(self, outcome: Any) -> None:
        self.last_position = outcome.position
        self.transactions.append(UUID(outcome.body["transaction_id"]))


def random_operations(rnd: random.Random, count: int) -> list[tuple]:
    """A seeded history of the operation kinds :class:`History` knows."""
    kinds = (
        ["deposit"] * 6
        + ["withdraw"] * 4
        + ["transfer"] * 6
        + [
            "freeze",
            "unfreeze",
            "limit",
            "close",
            "empty_and_close",
            "import",
            "open",
            "customer",
        ]
    )
    found: list[tuple] = []
    for _ in range(count):
        kind, i, minor = rnd.choice(kinds), rnd.randrange(64), rnd.randrange(1, 60_000)
        if kind in ("deposit", "withdraw"):
            found.append((kind, i, minor, rnd.choice(CHANNELS)))
        elif kind == "transfer":
            found.append((kind, i, rnd.randrange(64), minor, rnd.random() < 0.9))
        elif kind == "limit":
            found.append((kind, i, rnd.choice([0, 1000, 50_000])))
        elif kind == "import":
            found.append((kind, i, minor, rnd.random() < 0.8, rnd.randrange(0, 7200)))
        elif kind == "open":
            currency = rnd.choice(CURRENCIES)
            found.append(
                (
                    kind,
                    i,
                    currency,
                    rnd.choice([0, 5000]),
                    "current",
                    rnd.choice([0, 3]),
                )
            )
        elif kind == "customer":
            found.append((kind, rnd.choice(["ES", "JP", "BH"])))
        else:
            found.append((kind, i))
    return found


@dataclass(frozen=True)
class Booked:
    body: dict[str, Any]
    position: int


def book_in_past(
    bank: Bank,
    account_id: UUID,
    amount: Decimal,
    currency: str,
    booked_at: datetime,
    *,
    credit: bool = True,
    channel: str = "wire",
) -> Booked:
    account = bank.repository.get(account_id)
    assert isinstance(account, Account)
    account.check_currency(currency)
    if credit:
        account.check_can_credit()
    else:
        account.check_can_debit(amount)
    customer_entry = Entry.credit if credit else Entry.debit
    bank_entry = Entry.debit if credit else Entry.credit
    txn = Transaction.post(
        kind="deposit" if credit else "withdrawal",
        amount=amount,
        currency=currency,
        channel=channel,
        entries=[
            customer_entry(account.id, amount),
            bank_entry(internal_account_for(channel), amount),
        ],
        cause=CAUSE,
        reference="import",
        booked_at=booked_at,
    )
    if credit:
        account.credit(txn.id, amount, CAUSE)
    else:
        account.debit(txn.id, amount, CAUSE)
    recordings = bank.save(account, txn)
    return Booked(transaction_view(txn), max(r.notification.id for r in recordings))


def bulk_transfers(
    bank: Bank,
    accounts: Sequence[UUID],
    count: int,
    amount: str = "0.01",
    chunk: int = 500,
) -> int:
    """``count`` transfers between EUR ``accounts`` appended in few saves (a backlog).

    Goes through the domain services (each transfer checks funds as the use case
    does), but saves ``chunk`` transfers per database transaction. Returns the head.
    """
    from domain import posting
    from domain.money import Money

    money = Money(Decimal(amount), "EUR")
    loaded = {a: bank.repository.get(a) for a in accounts}
    pending: list[Any] = []
    for n in range(count):
        source = loaded[accounts[n % len(accounts)]]
        target = loaded[accounts[(n * 7 + 1) % len(accounts)]]
        if source is target:
            target = loaded[accounts[(n + 1) % len(accounts)]]
        pending.append(posting.transfer(source, target, money, CAUSE))
        if len(pending) >= chunk:
            bank.save(*loaded.values(), *pending)
            pending = []
    if pending:
        bank.save(*loaded.values(), *pending)
    return bank.last_position()


# ------------------------------------------------------------ the views vs the log
#
# Rows are compared as plain dicts of Python values (ids as text, amounts as Decimal,
# times as aware datetimes), parsed here from the stored columns: independent of the
# projections' own row classes and of how they parse rows.

VIEW_QUERIES = {
    "accounts": "SELECT * FROM {accounts} ORDER BY account_id",
    "statement_entries": (
        "SELECT * FROM {statement_entries} ORDER BY account_id, booked_at, position, seq"
    ),
    "ledger_balances": "SELECT * FROM {ledger_balances} ORDER BY account, currency",
    "transactions": "SELECT * FROM {transactions} ORDER BY transaction_id",
}


def dump_views(bank: Bank) -> dict[str, list[dict[str, Any]]]:
    """Every row of the four stable views, in key order, from one snapshot."""
    store = bank.views.store  # type: ignore[union-attr]
    with store.read() as cur:
        return {
            name: [dict(row) for row in cur.run(sql).all()]
            for name, sql in VIEW_QUERIES.items()
        }


def stored_time(text: str) -> datetime:
    assert len(text) == 27 and text.endswith("Z"), (
        f"not a fixed-width UTC time: {text!r}"
    )
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def account_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": str(row["account_id"]),
        "customer_id": str(row["customer_id"]),
        "currency": row["currency"],
        "product": row["product"],
        "status": row["status"],
        "ledger_balance": Decimal(row["ledger_balance"]),
        "held_amount": Decimal(row["held_amount"]),
        "overdraft_limit": Decimal(row["overdraft_limit"]),
        "opened_at": stored_time(row["opened_at"]),
        "opened_position": int(row["opened_position"]),
        "version": int(row["version"]),
        "position": int(row["position"]),
    }


def entry_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": str(row["account_id"]),
        "booked_at": stored_time(row["booked_at"]),
        "position": int(row["position"]),
        "seq": int(row["seq"]),
        "transaction_id": str(row["transaction_id"]),
        "kind": row["kind"],
        "direction": row["direction"],
        "amount": Decimal(row["amount"]),
        "balance_after": Decimal(row["balance_after"]),
        "reference": row["reference"],
    }


def ledger_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account": row["account"],
        "currency": row["currency"],
        "debits": Decimal(row["debits"]),
        "credits": Decimal(row["credits"]),
        "position": int(row["position"]),
    }


def transaction_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": str(row["transaction_id"]),
        "position": int(row["position"]),
        "booked_at": stored_time(row["booked_at"]),
        "kind": row["kind"],
        "currency": row["currency"],
        "body": json.loads(row["body"]),
    }


@dataclass
class LogFacts:
    """What the event log says, read once from position 1 to the head."""

    head: int = 0
    # account id -> [(version, position)] in log order
    account_events: dict[UUID, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # account id -> Counter of (transaction id, direction, amount) from its own events
    account_moves: dict[UUID, Counter] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    customers: set[UUID] = field(default_factory=set)
    posted: list[tuple[int, Any]] = field(default_factory=list)  # (position, Posted)
    # every event of each account and transaction, to replay them from
    events: dict[UUID, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def replay(self, aggregate_id: UUID, count: int | None = None) -> Any:
        """The aggregate replayed from its first ``count`` (default all) events in the
        store: as Bank.reconstruct does, without a query per aggregate."""
        aggregate = None
        for event in self.events[aggregate_id][:count]:
            aggregate = event.mutate(aggregate)
        return aggregate


def read_log(bank: Bank) -> LogFacts:
    facts = LogFacts()
    start = 1
    while True:
        page = bank.recorder.select_notifications(start, 2000)
        for notification in page:
            event = bank.mapper.to_domain_event(notification)
            position = notification.id
            facts.head = max(facts.head, position)
            kind = type(event).__qualname__.split(".", 1)[0]
            if kind in ("Account", "Transaction"):
                facts.events[event.originator_id].append(event)
            if isinstance(event, Transaction.Posted):
                facts.posted.append((position, event))
            elif kind == "Account":
                account_id = event.originator_id
                facts.account_events[account_id].append(
                    (event.originator_version, position)
                )
                if isinstance(event, Account.FundsCredited | Account.FundsDebited):
                    direction = (
                        CREDIT if isinstance(event, Account.FundsCredited) else DEBIT
                    )
                    move = (str(event.transaction_id), direction, event.amount)
                    facts.account_moves[account_id][move] += 1
            elif isinstance(event, Customer.Registered):
                facts.customers.add(event.originator_id)
        if len(page) < 2000:
            return facts
        start = page[-1].id + 1


def expected_statements(facts: LogFacts, upto: int) -> dict[str, list[dict[str, Any]]]:
    """Each customer account's entries in (booked_at, position, seq) order, summed."""
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for position, posted in facts.posted:
        if position > upto:
            break
        for seq, row in enumerate(posted.entries):
            if row["account"] in INTERNAL_ACCOUNTS:
                continue
            entries[str(row["account"])].append(
                {
                    "account_id": str(row["account"]),
                    "booked_at": posted.booked_at or posted.timestamp,
                    "position": position,
                    "seq": seq,
                    "transaction_id": str(posted.originator_id),
                    "kind": posted.kind,
                    "direction": row["direction"],
                    "amount": Decimal(row["amount"]),
                    "balance_after": None,
                    "reference": posted.reference,
                }
            )
    summed: dict[str, list[dict[str, Any]]] = {}
    for account_id, found in entries.items():
        balance = Decimal(0)
        ordered = []
        for entry in sorted(
            found, key=lambda e: (e["booked_at"], e["position"], e["seq"])
        ):
            balance += (
                entry["amount"] if entry["direction"] == CREDIT else -entry["amount"]
            )
            ordered.append({**entry, "balance_after": balance})
        summed[account_id] = ordered
    return summed


def expected_ledger(
    facts: LogFacts, upto: int
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for position, posted in facts.posted:
        if position > upto:
            break
        for row in posted.entries:
            if row["account"] not in INTERNAL_ACCOUNTS:
                continue
            key = (row["account"], posted.currency)
            balance = found.setdefault(
                key,
                {
                    "account": key[0],
                    "currency": key[1],
                    "debits": Decimal(0),
                    "credits": Decimal(0),
                    "position": 0,
                },
            )
            side = "debits" if row["direction"] == DEBIT else "credits"
            balance[side] += Decimal(row["amount"])
            balance["position"] = position
    return found


def first_difference(name: str, got: Sequence[Any], want: Sequence[Any]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"{name}, row {i}:\n  view:     {g}\n  expected: {w}"
    return f"{name}: {len(got)} rows in the view, {len(want)} expected"


def tracked_positions(bank: Bank) -> dict[str, int]:
    """Each projection's tracking record in its current generation."""
    return {
        name: position for name, (_, position) in bank.views.store.positions().items()
    }  # type: ignore[union-attr]


def check_views(
    bank: Bank, *, api: bool = True, upto: dict[str, int] | None = None
) -> LogFacts:
    """Every row of every view equals what the log and the replayed aggregates say.

    By default the views must have caught up with the log's head (the caller waits)
    and nothing may be written meanwhile. ``upto`` (projection -> position) checks
    each view against the log's prefix up to that position instead: what a runner
    killed mid-stream must have left. With ``api`` the Bank's reads (which answer
    from the views) are checked against the aggregates' own contract shapes too.
    """
    facts = read_log(bank)
    rows = dump_views(bank)
    if upto is None:
        assert bank.last_position() == facts.head, (
            "the log grew while it was being checked"
        )
        upto = dict.fromkeys(NAMES, facts.head)
    else:
        api = False  # the Bank's reads answer for the whole log
    viewed = check_accounts(bank, facts, rows["accounts"], upto["accounts"], api=api)
    check_statements(
        bank, facts, rows["statement_entries"], upto["statements"], viewed, api=api
    )
    ledger = {
        (r["account"], r["currency"]): r
        for r in map(ledger_of_row, rows["ledger_balances"])
    }
    assert ledger == expected_ledger(facts, upto["ledger"]), "ledger balances"
    if api:
        assert bank.internal_balances() == bank.replayed_internal_balances()
    check_transactions(bank, facts, rows["transactions"], upto["transactions"], api=api)
    return facts


def check_accounts(
    bank: Bank, facts: LogFacts, rows: list[dict[str, Any]], upto: int, *, api: bool
) -> dict[str, dict[str, Any]]:
    """One row per account, as the account replayed up to ``upto`` says."""
    viewed = {row["account_id"]: row for row in map(account_of_row, rows)}
    known: set[str] = set()
    for account_id, all_events in facts.account_events.items():
        events = [(v, p) for v, p in all_events if p <= upto]
        if not events:
            continue
        known.add(str(account_id))
        assert str(account_id) in viewed, (
            f"account {account_id} is missing from the view"
        )
        account = facts.replay(account_id, len(events))
        assert isinstance(account, Account)
        assert [v for v, _ in events] == list(range(1, account.version + 1))
        want = {
            "account_id": str(account_id),
            "customer_id": str(account.customer_id),
            "currency": account.currency,
            "product": account.product,
            "status": account.status,
            "ledger_balance": account.ledger_balance,
            "held_amount": Decimal(0),
            "overdraft_limit": account.overdraft_limit,
            "opened_at": account.opened_on,
            "opened_position": events[0][1],
            "version": account.version,
            "position": events[-1][1],
        }
        assert viewed[str(account_id)] == want, f"account {account_id}"
        if api:
            rebuilt = bank.reconstruct(account_id)  # its own query: the same story
            assert account_view(rebuilt) == account_view(account)  # type: ignore[arg-type]
            answer = bank.get_account(account_id)
            assert answer == {**account_view(account), "position": events[-1][1]}
    assert set(viewed) == known, (
        f"rows of other accounts: {sorted(set(viewed) - known)}"
    )
    if api:  # each customer's accounts, in the order they were opened
        for customer_id in facts.customers:
            customer = bank.reconstruct(customer_id)
            listed = [
                UUID(a["account_id"]) for a in bank.customer_accounts(customer_id)
            ]
            assert listed == customer.account_ids  # type: ignore[union-attr]
    return viewed


def check_statements(
    bank: Bank,
    facts: LogFacts,
    rows: list[dict[str, Any]],
    upto: int,
    accounts: dict[str, dict[str, Any]],
    *,
    api: bool,
) -> None:
    """Every entry of every customer account, in booking order, with running balances."""
    statements = expected_statements(facts, upto)
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in map(entry_of_row, rows):
        by_account[entry["account_id"]].append(entry)
    assert set(by_account) == set(statements), "statement entries of other accounts"
    for account_id, want in statements.items():
        got = by_account[account_id]
        assert got == want, first_difference(f"statement of {account_id}", got, want)
    if upto < facts.head:
        return
    # Complete: the statements agree with the accounts' own events and balances.
    for account_id, moves in facts.account_moves.items():
        got = by_account.get(str(account_id), [])
        assert (
            Counter((e["transaction_id"], e["direction"], e["amount"]) for e in got)
            == moves
        ), (
            f"the statement of {account_id} and the account's own credits and debits differ"
        )
        if got:
            closing = got[-1]["balance_after"]
            assert closing == accounts[str(account_id)]["ledger_balance"], (
                f"closing balance of {account_id}"
            )
    if api:
        for account_id, row in accounts.items():
            check_statement_pages(
                bank, UUID(account_id), row["currency"], statements.get(account_id, [])
            )


def check_transactions(
    bank: Bank, facts: LogFacts, rows: list[dict[str, Any]], upto: int, *, api: bool
) -> None:
    """The contract's body of every transaction, as the replayed record says."""
    transactions = {r["transaction_id"]: r for r in map(transaction_of_row, rows)}
    expected = [(position, p) for position, p in facts.posted if position <= upto]
    assert set(transactions) == {str(p.originator_id) for _, p in expected}, (
        "transaction ids"
    )
    for position, posted in expected:
        txn = facts.replay(posted.originator_id)
        assert isinstance(txn, Transaction)
        want = {
            "transaction_id": str(txn.id),
            "position": position,
            "booked_at": txn.booked_at,
            "kind": txn.kind,
            "currency": txn.currency,
            "body": transaction_view(txn),
        }
        assert transactions[str(txn.id)] == want, f"transaction {txn.id}"
        if api:
            assert transaction_view(bank.reconstruct(txn.id)) == want["body"]  # type: ignore[arg-type]
            assert bank.get_transaction(txn.id) == {
                **want["body"],
                "position": position,
            }


def check_statement_pages(
    bank: Bank, account_id: UUID, currency: str, want: list[dict[str, Any]]
) -> None:
    """The statement read's pages, put together, are the expected entries."""
    money = lambda amount: format_amount(amount, currency)
    closing = want[-1]["balance_after"] if want else Decimal(0)
    got: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = bank.statement(account_id, cursor=cursor, limit=100)
        assert page["opening_balance"] == money(Decimal(0))
        assert page["closing_balance"] == money(closing)
        got.extend(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(e["transaction_id"], e["position"], e["balance_after"]) for e in got] == [
        (e["transaction_id"], e["position"], money(e["balance_after"])) for e in want
    ]


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
