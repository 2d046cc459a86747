"""Helpers for tests/integration/test_projections.py.

Fresh stores of the kind the run is for (a SQLite file, or a PostgreSQL schema of its
own), banks and live runners that are always closed and stopped, a history generator
that drives the Bank's use cases, and :func:`check_views` which compares every row of
the four views with what the event log and the aggregates replayed from it say.

The expected rows are worked out from the log independently of the projections: the
statement model below sorts a customer account's entries by (booked_at, position, seq)
and sums them, it does not reuse any of the projections' code. Holds, what accounts
hold over time and their limits over time are worked out from the holds' and the
accounts' own events the same way, and :func:`check_balances_as_of` compares balances
as of past moments with a brute-force sum over the log.
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
from application.views import account_view, hold_view, transaction_view
from domain.account import Account
from domain.cause import Cause
from domain.currencies import MINOR_UNITS
from domain.customer import Customer
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    AlreadyReversed,
    BatchRejected,
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldNotActive,
    InsufficientFunds,
)
from domain.hold import Hold
from domain.ledger import CREDIT, DEBIT, INTERNAL_ACCOUNTS
from domain.money import format_amount
from domain.transaction import Transaction
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings
from infrastructure.views.runner import ProjectionService

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(PROJECTIONS)
CAUSE = Cause.cli()

# Refusals a random history runs into; anything else is a bug (or a bad generator).
# (An item of a batch that is not atomic is refused on its own, in the batch's record.)
REFUSALS = (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    AlreadyReversed,
    BatchRejected,
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldNotActive,
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
# A hold's life from its placement, in seconds of the bank's clock (0: no expiry).
HOLD_EXPIRIES = (0, 0, 600, 1800, 7200)
# How far a history moves the bank's clock on at a time.
CLOCK_STEPS = (300, 1200, 3600)
# How long before now an import is booked (some before the day, some before the
# account was opened: those are the items' own refusals).
IMPORT_AGES = (0, 1, 60, 3600, 7200, 30 * 3600, 50 * 3600)


def money_text(minor: int, currency: str) -> str:
    return format_amount(Decimal(minor).scaleb(-MINOR_UNITS[currency]), currency)


class Clock:
    """The bank's clock in a history: the wall clock, moved on by :meth:`advance`
    (never back), so holds lapse without the test waiting for them.

    Events keep the wall clock's timestamps; this clock only decides what the Bank
    reads as now (expiries, lapses, business days, what is "in the future").
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@contextmanager
def clock_stopped(bank: Bank) -> Iterator[datetime]:
    """The bank's clock held at one moment, so reads made one after the other agree
    on which holds have lapsed (nothing may be written meanwhile)."""
    moment = bank.clock()
    running = bank.clock
    bank.clock = lambda: moment
    try:
        yield moment
    finally:
        bank.clock = running


def without_account_snapshots(bank: Bank) -> Bank:
    """BUG workaround (see tests/integration/test_hold_snapshots.py): an account that
    reaches a snapshot version (every 100 events) while it holds money fails to save
    its snapshot, after its events are recorded. Long histories with holds turn the
    snapshots off, so they test the views rather than trip over that."""
    bank.snapshotting_intervals = {}  # type: ignore[misc]
    return bank


@dataclass
class History:
    """Applies operations (tuples, see ``tests.integration.test_projections``) to a bank.

    Indices pick among what exists (modulo), so any list of operations is valid; an
    operation with nothing to act on is skipped. Refusals are expected and counted.

    The history installs its :class:`Clock` as the bank's clock. ``live``: runners are
    running, so a sweep first waits for the accounts view (which it looks lapsed
    holds up in) to have caught up; without runners it sweeps what the view holds.
    """

    bank: Bank
    customers: list[UUID] = field(default_factory=list)
    accounts: list[tuple[UUID, str]] = field(default_factory=list)  # id, currency
    transactions: list[UUID] = field(default_factory=list)
    reversals: set[UUID] = field(default_factory=set)
    holds: list[UUID] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    applied: Counter = field(default_factory=Counter)  # operations that wrote
    last_position: int = 0
    live: bool = False
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.bank.clock = self.clock

    def prelude(self) -> None:
        """A customer with an account in each currency (opened three days ago, so
        imports can book into its past), each with a deposit."""
        self.apply(("customer", "ES"))
        for i, currency in enumerate(CURRENCIES):
            self.apply(("open", 0, currency, 0, "current", 3))
            self.apply(("deposit", i, 50_000, "cash"))

    def apply_all(self, operations: Sequence[tuple]) -> None:
        for operation in operations:
            self.apply(operation)

    def apply(self, op: tuple) -> None:
        before = self.last_position
        try:
            outcome = self._apply(op)
        except REFUSALS as error:
            self.refused[type(error).__name__] += 1
            outcome = None
        # A refused capture or release may have recorded the hold's expiry first.
        self.last_position = self.bank.last_position()
        if self.last_position != before:
            self.applied[op[0]] += 1
        if outcome is None or not isinstance(outcome.body, dict):
            return
        body = outcome.body
        if "transaction_id" in body:
            self.transactions.append(UUID(body["transaction_id"]))
            if body.get("reverses"):
                self.reversals.add(UUID(body["transaction_id"]))
        elif "hold_id" in body and op[0] == "hold":
            self.holds.append(UUID(body["hold_id"]))
        for result in body.get("results", ()):
            if "transaction" in result:
                self.transactions.append(UUID(result["transaction"]["transaction_id"]))

    def _account(self, index: int) -> tuple[UUID, str] | None:
        return self.accounts[index % len(self.accounts)] if self.accounts else None

    def _other(
        self, account: tuple[UUID, str], index: int, same_currency: bool
    ) -> tuple[UUID, str] | None:
        targets = [
            a
            for a in self.accounts
            if a[0] != account[0] and (a[1] == account[1] or not same_currency)
        ]
        return targets[index % len(targets)] if targets else None

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
        if kind == "advance":
            self.clock.advance(op[1])
            return None
        if kind == "sweep":
            if self.live:  # the sweeper looks lapsed holds up in the accounts view
                reached = bank.views.wait(["accounts"], bank.last_position(), 30)  # type: ignore[union-attr]
                assert reached, "the accounts view did not catch up for a sweep"
            bank.expire_lapsed_holds()
            return None
        if kind == "close_day":
            day = self.clock().date() - timedelta(days=op[1])
            return bank.close_business_day(day, CAUSE)
        if kind in ("capture", "release", "expire"):
            return self._hold_operation(op)
        if kind == "reverse":
            targets = [t for t in self.transactions if t not in self.reversals]
            if not targets:
                return None
            return bank.reverse_transaction(
                targets[op[1] % len(targets)], "entered in error", CAUSE
            )
        if kind == "batch":
            return self._batch(op[1], op[2])
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
            target = self._other(account, to_index, same_currency)
            if target is None:
                return None
            return bank.transfer(
                account_id, target[0], money_text(minor, currency), currency, CAUSE
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
        if kind == "hold":
            _, _, minor, lifetime = op
            return bank.place_hold(
                account_id,
                money_text(minor, currency),
                currency,
                CAUSE,
                reference=f"hold {len(self.holds)}",
                expires_at=self.clock() + timedelta(seconds=lifetime)
                if lifetime
                else None,
            )
        if kind == "import":
            # A batch of one, booked in the past (an item refused for its day or for
            # predating the account is left out: the batch is not atomic).
            _, _, minor, credit, seconds_ago = op
            item = (
                "deposit" if credit else "withdrawal",
                op[1],
                minor,
                "wire",
                seconds_ago,
            )
            return self._batch(False, (item,))
        raise ValueError(f"unknown operation {op!r}")

    def _hold_operation(self, op: tuple) -> Any:
        if not self.holds:
            return None
        bank, hold_id = self.bank, self.holds[op[1] % len(self.holds)]
        if op[0] == "expire":  # the hold's next touch records a due expiry
            bank.expire_hold(hold_id)
            return None
        if op[0] == "release":
            return bank.release_hold(hold_id, CAUSE, reason="not needed")
        _, _, minor, to_index = op
        hold = bank.repository.get(hold_id)
        account = next(a for a in self.accounts if a[0] == hold.account_id)
        destination = None
        if to_index >= 0:
            target = self._other(account, to_index, same_currency=to_index % 5 != 0)
            destination = target and target[0]
        return bank.capture_hold(
            hold_id,
            CAUSE,
            amount=money_text(minor, account[1]) if minor else None,
            to_account_id=destination,
        )

    def _batch(self, atomic: bool, items: Sequence[tuple]) -> Any:
        """Items ``(type, account, to, minor, seconds_ago)`` for transfers and
        ``(type, account, minor, channel, seconds_ago)`` otherwise; ``seconds_ago``
        None books now, else it is an import (booked_at must not decrease within a
        batch, so the imports' times are handed out in order)."""
        if not self.accounts:
            return None
        now = datetime.now(UTC)  # the wall clock: the events' own timestamps
        ages = sorted((i[-1] for i in items if i[-1] is not None), reverse=True)
        booked = iter(now - timedelta(seconds=age) for age in ages)
        raw: list[dict[str, Any]] = []
        for item in items:
            kind, index = item[0], item[1]
            account_id, currency = self._account(index)  # type: ignore[misc]
            booked_at = next(booked) if item[-1] is not None else None
            if kind == "transfer":
                target = self._other((account_id, currency), item[2], item[2] % 4 != 0)
                if target is None:
                    continue
                raw.append(
                    {
                        "type": "transfer",
                        "from_account_id": account_id,
                        "to_account_id": target[0],
                        "amount": money_text(item[3], currency),
                        "currency": currency,
                        "reference": f"batch item {len(raw)}",
                        "booked_at": booked_at,
                    }
                )
            else:
                raw.append(
                    {
                        "type": kind,
                        "account_id": account_id,
                        "amount": money_text(item[2], currency),
                        "currency": currency,
                        "channel": item[3],
                        "reference": f"batch item {len(raw)}",
                        "conducted_by": None,
                        "counterparty": None,
                        "booked_at": booked_at,
                    }
                )
        if not raw:
            return None
        return self.bank.post_batch(atomic, raw, CAUSE)

    def _keep(self, outcome: Any) -> None:
        self.last_position = outcome.position
        self.transactions.append(UUID(outcome.body["transaction_id"]))


def random_batch_items(rnd: random.Random) -> tuple[tuple, ...]:
    items = []
    for _ in range(rnd.randint(1, 4)):
        seconds_ago = rnd.choice(IMPORT_AGES) if rnd.random() < 0.5 else None
        kind = rnd.choice(["deposit", "deposit", "withdrawal", "transfer"])
        if kind == "transfer":
            items.append(
                (
                    kind,
                    rnd.randrange(64),
                    rnd.randrange(64),
                    rnd.randrange(1, 30_000),
                    seconds_ago,
                )
            )
        else:
            items.append(
                (
                    kind,
                    rnd.randrange(64),
                    rnd.randrange(1, 30_000),
                    rnd.choice(CHANNELS),
                    seconds_ago,
                )
            )
    return tuple(items)


def random_operations(rnd: random.Random, count: int) -> list[tuple]:
    """A seeded history of the operation kinds :class:`History` knows."""
    kinds = (
        ["deposit"] * 6
        + ["withdraw"] * 3
        + ["transfer"] * 5
        + ["hold"] * 5
        + ["capture"] * 3
        + ["release"] * 2
        + ["reverse"] * 2
        + ["batch"] * 2
        + ["import"] * 2
        + [
            "freeze",
            "unfreeze",
            "limit",
            "close",
            "empty_and_close",
            "open",
            "customer",
            "advance",
            "sweep",
            "expire",
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
            found.append((kind, i, minor, rnd.random() < 0.8, rnd.choice(IMPORT_AGES)))
        elif kind == "hold":
            found.append((kind, i, minor // 2 + 1, rnd.choice(HOLD_EXPIRIES)))
        elif kind == "capture":
            found.append(
                (kind, i, rnd.choice([0, 0, minor // 4 + 1]), rnd.choice([-1, -1, i]))
            )
        elif kind == "advance":
            found.append((kind, rnd.choice(CLOCK_STEPS)))
        elif kind == "sweep":
            found.append((kind,))
        elif kind == "batch":
            found.append((kind, rnd.random() < 0.4, random_batch_items(rnd)))
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
        else:  # freeze, unfreeze, close, empty_and_close, release, expire, reverse
            found.append((kind, i))
    return found


# Holds for random operations to work on, one on each of the prelude's accounts: one
# without expiry, one lapsing in half an hour, one in ten minutes.
HOLDS_PRELUDE: list[tuple] = [
    ("hold", 0, 5_000, 0),
    ("hold", 1, 3_000, 1800),
    ("hold", 2, 4_000, 600),
]


# Every kind of hold and posting the views keep, in a few steps on the prelude's
# accounts (0: EUR, 1: JPY, 2: BHD): placed with and without expiry, captured in part
# and in full (to clearing and to another account), released, lapsed and swept,
# expired on its next touch, reversals (of a deposit, a transfer and a capture), and
# batches with imports booked in the past (atomic and not, one refused in part).
HOLD_STORY: list[tuple] = [
    ("open", 0, "EUR", 20_000, "current", 2),  # account 3: EUR, with a limit
    ("deposit", 3, 30_000, "wire"),
    ("hold", 0, 10_000, 0),  # hold 0: no expiry
    ("hold", 0, 5_000, 1800),  # hold 1: lapses in half an hour
    ("hold", 3, 40_000, 600),  # hold 2: into the overdraft, lapses in ten minutes
    ("hold", 1, 2_000, 7200),  # hold 3: JPY
    ("capture", 0, 2_500, -1),  # part of hold 0 to clearing
    ("capture", 0, 0, 3),  # the rest of hold 0 to account 3
    ("capture", 1, 1_000, -1),  # part of hold 1
    ("transfer", 0, 0, 1_234, True),
    ("reverse", -1),  # the transfer (the latest transaction)
    ("reverse", 0),  # the prelude's EUR deposit
    ("reverse", 0),  # again: already reversed
    ("batch", True, (("deposit", 0, 700, "cash", 3600), ("transfer", 3, 0, 300, 60))),
    (
        "batch",
        False,
        (("withdrawal", 1, 10**9, "cash", None), ("deposit", 2, 900, "wire", 7200)),
    ),
    ("import", 3, 4_321, True, 30 * 3600),
    ("hold", 2, 3_000, 0),  # hold 4: BHD, released below
    ("release", 4),
    ("advance", 1200),  # hold 2 has lapsed, hold 1 not yet
    ("expire", 2),  # recorded on its next touch
    ("advance", 1200),  # hold 1 has lapsed too
    ("sweep",),
    ("hold", 0, 1_000, 600),  # hold 5
    ("reverse", 5),  # the capture of the rest of hold 0 (into account 3)
    ("limit", 3, 1000),
    ("close_day", 2),
    ("import", 0, 100, True, 50 * 3600),  # refused: its day is closed
]


def story_then(rnd: random.Random, count: int) -> list[tuple]:
    return [*HOLD_STORY, *random_operations(rnd, count)]


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
    "account_limits": (
        "SELECT * FROM {account_limits} ORDER BY account_id, effective_at, position"
    ),
    "holds": "SELECT * FROM {holds} ORDER BY hold_id",
    "hold_changes": (
        "SELECT * FROM {hold_changes} ORDER BY account_id, effective_at, position"
    ),
    "statement_entries": (
        "SELECT * FROM {statement_entries} ORDER BY account_id, booked_at, position, seq"
    ),
    "ledger_balances": "SELECT * FROM {ledger_balances} ORDER BY account, currency",
    "transactions": "SELECT * FROM {transactions} ORDER BY transaction_id",
}


def dump_views(bank: Bank) -> dict[str, list[dict[str, Any]]]:
    """Every row of every stable view, in key order, from one snapshot."""
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


def maybe_time(text: str | None) -> datetime | None:
    return None if text is None else stored_time(text)


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


def limit_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": str(row["account_id"]),
        "effective_at": stored_time(row["effective_at"]),
        "position": int(row["position"]),
        "overdraft_limit": Decimal(row["overdraft_limit"]),
    }


def hold_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "hold_id": str(row["hold_id"]),
        "account_id": str(row["account_id"]),
        "amount": Decimal(row["amount"]),
        "captured_amount": Decimal(row["captured_amount"]),
        "currency": row["currency"],
        "status": row["status"],
        "expires_at": maybe_time(row["expires_at"]),
        "reference": row["reference"],
        "placed_at": stored_time(row["placed_at"]),
        "ended_at": maybe_time(row["ended_at"]),
        "position": int(row["position"]),
    }


def hold_change_of_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": str(row["account_id"]),
        "effective_at": stored_time(row["effective_at"]),
        "position": int(row["position"]),
        "hold_id": str(row["hold_id"]),
        "delta": Decimal(row["delta"]),
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


# The aggregates whose events the model replays.
REPLAYED = ("Account", "Transaction", "Hold")


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
    # every event of each account, transaction and hold, with its position
    events: dict[UUID, list[tuple[int, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    kinds: dict[UUID, str] = field(default_factory=dict)  # aggregate id -> class name
    topics: Counter = field(default_factory=Counter)  # "Hold.Placed": count

    def replay(self, aggregate_id: UUID, upto: int | None = None) -> Any:
        """The aggregate replayed from its events up to position ``upto`` (default
        all) in the store: as Bank.reconstruct does, without a query per aggregate."""
        aggregate = None
        for position, event in self.events[aggregate_id]:
            if upto is not None and position > upto:
                break
            aggregate = event.mutate(aggregate)
        return aggregate

    def ids(self, kind: str) -> list[UUID]:
        return [i for i, k in self.kinds.items() if k == kind]

    def last_position(self, aggregate_id: UUID, upto: int) -> int | None:
        found = [p for p, _ in self.events[aggregate_id] if p <= upto]
        return found[-1] if found else None


def read_log(bank: Bank) -> LogFacts:
    facts = LogFacts()
    start = 1
    while True:
        page = bank.recorder.select_notifications(start, 2000)
        for notification in page:
            event = bank.mapper.to_domain_event(notification)
            position = notification.id
            facts.head = max(facts.head, position)
            name = type(event).__qualname__
            facts.topics[name] += 1
            kind = name.split(".", 1)[0]
            if kind in REPLAYED:
                facts.events[event.originator_id].append((position, event))
                facts.kinds[event.originator_id] = kind
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


def booked_at_of(posted: Any) -> datetime:
    return posted.booked_at or posted.timestamp


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
                    "booked_at": booked_at_of(posted),
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


def expected_holds(facts: LogFacts, upto: int) -> dict[str, dict[str, Any]]:
    """Each hold as its own events say, up to ``upto``: captured in full, released
    or expired ends it (an expiry at the hold's expires_at, whenever recorded)."""
    found: dict[str, dict[str, Any]] = {}
    for hold_id in facts.ids("Hold"):
        row: dict[str, Any] | None = None
        for position, event in facts.events[hold_id]:
            if position > upto:
                break
            if isinstance(event, Hold.Placed):
                row = {
                    "hold_id": str(hold_id),
                    "account_id": str(event.account_id),
                    "amount": event.amount,
                    "captured_amount": Decimal(0),
                    "currency": event.currency,
                    "status": "active",
                    "expires_at": event.expires_at,
                    "reference": event.reference,
                    "placed_at": event.timestamp,
                    "ended_at": None,
                }
            else:
                assert row is not None and row["status"] == "active", (
                    f"hold {hold_id}: {type(event).__qualname__} of a hold not active"
                )
                if isinstance(event, Hold.Captured):
                    row["captured_amount"] += event.amount
                    assert row["captured_amount"] <= row["amount"]
                    if row["captured_amount"] == row["amount"]:
                        row["status"], row["ended_at"] = "captured", event.timestamp
                elif isinstance(event, Hold.Released):
                    row["status"], row["ended_at"] = "released", event.timestamp
                else:
                    assert isinstance(event, Hold.Expired), event
                    assert event.expired_at == row["expires_at"]
                    row["status"], row["ended_at"] = "expired", event.expired_at
            row["position"] = position
        if row is not None:
            found[str(hold_id)] = row
    return found


def hold_moves(
    facts: LogFacts, account_id: UUID, upto: int | None = None
) -> list[dict[str, Any]]:
    """What the account holds over time, from its own record of its holds: +amount
    from the hold's placed_at (its own Placed event), -amount from the booked_at of
    each capture of it (the transaction debiting the account right after) or from
    its release (as the account recorded it). An expiry is no change: a hold stops
    counting at its expires_at, recorded or not."""
    booked = {posted.originator_id: booked_at_of(posted) for _, posted in facts.posted}
    events = facts.events[account_id]
    found = []
    for n, (position, event) in enumerate(events):
        if upto is not None and position > upto:
            break
        if isinstance(event, Account.FundsHeld):
            placed = facts.events[event.hold_id][0][1]
            assert isinstance(placed, Hold.Placed), placed
            effective_at, delta = placed.timestamp, event.amount
        elif isinstance(event, Account.HeldFundsReleased):
            assert event.reason in ("captured", "released", "expired"), event.reason
            if event.reason == "expired":
                continue
            effective_at, delta = event.timestamp, -event.amount
            if event.reason == "captured":
                debit = events[n + 1][1]
                assert isinstance(debit, Account.FundsDebited), debit
                assert debit.amount == event.amount
                effective_at = booked[debit.transaction_id]
        else:
            continue
        found.append(
            {
                "account_id": str(account_id),
                "effective_at": effective_at,
                "position": position,
                "hold_id": str(event.hold_id),
                "delta": delta,
            }
        )
    return found


def expected_hold_changes(facts: LogFacts, upto: int) -> list[dict[str, Any]]:
    found = [
        move
        for account_id in facts.ids("Account")
        for move in hold_moves(facts, account_id, upto)
    ]
    return sorted(
        found, key=lambda c: (c["account_id"], c["effective_at"], c["position"])
    )


def expected_limits(facts: LogFacts, upto: int) -> list[dict[str, Any]]:
    """Each account's overdraft limit from its opening (as of its opened_at) and from
    each change (as of the change)."""
    found = []
    for account_id in facts.ids("Account"):
        for position, event in facts.events[account_id]:
            if position > upto:
                break
            if isinstance(event, Account.Opened):
                effective_at = event.opened_at or event.timestamp
            elif isinstance(event, Account.OverdraftLimitChanged):
                effective_at = event.timestamp
            else:
                continue
            found.append(
                {
                    "account_id": str(account_id),
                    "effective_at": effective_at,
                    "position": position,
                    "overdraft_limit": event.overdraft_limit,
                }
            )
    return sorted(
        found, key=lambda c: (c["account_id"], c["effective_at"], c["position"])
    )


# What a history with holds must have gone through for a test to say it covered them.
STORY_COVERAGE = frozenset(
    {
        "Hold.Placed",
        "Hold.Captured",
        "Hold.Released",
        "Hold.Expired",
        "Account.FundsHeld",
        "Account.HeldFundsReleased",
        "Transaction.Reversed",
        "Batch.Recorded",
        "BusinessCalendar.HistoryImported",
        "BusinessCalendar.DayClosed",
        "import",
        "capture to clearing",
        "capture to an account",
        "capture in parts",
        "reversal of a deposit",
        "reversal of a transfer",
        "reversal of a capture",
    }
)


def covered(facts: LogFacts) -> set[str]:
    """The kinds of event and of posting in the log (see STORY_COVERAGE)."""
    found = {name for name, count in facts.topics.items() if count}
    for _, posted in facts.posted:
        if posted.booked_at is not None:
            found.add("import")
        if posted.kind == "capture":
            internal = any(r["account"] in INTERNAL_ACCOUNTS for r in posted.entries)
            found.add("capture to clearing" if internal else "capture to an account")
        if posted.reverses is not None:
            found.add(f"reversal of a {facts.replay(posted.reverses).kind}")
    for hold_id in facts.ids("Hold"):
        if len(facts.replay(hold_id).capture_ids) > 1:
            found.add("capture in parts")
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
    from the views) are checked against the aggregates' own contract shapes too, at
    one moment of the bank's clock (held still meanwhile).
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
    with clock_stopped(bank) as now:
        viewed = check_accounts(bank, facts, rows, upto["accounts"], api=api, now=now)
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
        check_transactions(
            bank, facts, rows["transactions"], upto["transactions"], api=api
        )
    return facts


def check_accounts(
    bank: Bank,
    facts: LogFacts,
    rows: dict[str, list[dict[str, Any]]],
    upto: int,
    *,
    api: bool,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """One row per account, as the account replayed up to ``upto`` says; its limits
    over time, its holds and what it holds over time, as their events say."""
    viewed = {row["account_id"]: row for row in map(account_of_row, rows["accounts"])}
    holds = check_holds(bank, facts, rows, upto, api=api, now=now)
    held_by_holds: Counter = Counter()
    for hold in holds.values():
        if hold["status"] == "active":
            held_by_holds[hold["account_id"]] += (
                hold["amount"] - hold["captured_amount"]
            )
    known: set[str] = set()
    for account_id, all_events in facts.account_events.items():
        events = [(v, p) for v, p in all_events if p <= upto]
        if not events:
            continue
        known.add(str(account_id))
        assert str(account_id) in viewed, (
            f"account {account_id} is missing from the view"
        )
        account = facts.replay(account_id, upto)
        assert isinstance(account, Account)
        assert [v for v, _ in events] == list(range(1, account.version + 1))
        # What the account holds is what its active holds have left.
        assert account.held_amount() == held_by_holds[str(account_id)], (
            f"account {account_id}: held {account.held_amount()}, its holds "
            f"{held_by_holds[str(account_id)]}"
        )
        want = {
            "account_id": str(account_id),
            "customer_id": str(account.customer_id),
            "currency": account.currency,
            "product": account.product,
            "status": account.status,
            "ledger_balance": account.ledger_balance,
            # as recorded: holds past their expiry count until their expiry is
            "held_amount": account.held_amount(),
            "overdraft_limit": account.overdraft_limit,
            "opened_at": account.opened_on,
            "opened_position": events[0][1],
            "version": account.version,
            "position": events[-1][1],
        }
        assert viewed[str(account_id)] == want, f"account {account_id}"
        if api:
            rebuilt = bank.reconstruct(account_id)  # its own query: the same story
            assert account_view(rebuilt, now) == account_view(account, now)  # type: ignore[arg-type]
            answer = bank.get_account(account_id)
            assert answer == {
                **account_view(account, now),
                "position": events[-1][1],
            }, f"account {account_id} as read at {now}"
    assert set(viewed) == known, (
        f"rows of other accounts: {sorted(set(viewed) - known)}"
    )
    limits = list(map(limit_of_row, rows["account_limits"]))
    want_limits = expected_limits(facts, upto)
    assert limits == want_limits, first_difference("limits", limits, want_limits)
    changes = list(map(hold_change_of_row, rows["hold_changes"]))
    want_changes = expected_hold_changes(facts, upto)
    assert changes == want_changes, first_difference(
        "hold changes", changes, want_changes
    )
    if api:  # each customer's accounts, in the order they were opened
        for customer_id in facts.customers:
            customer = bank.reconstruct(customer_id)
            listed = [
                UUID(a["account_id"]) for a in bank.customer_accounts(customer_id)
            ]
            assert listed == customer.account_ids  # type: ignore[union-attr]
    return viewed


def check_holds(
    bank: Bank,
    facts: LogFacts,
    rows: dict[str, list[dict[str, Any]]],
    upto: int,
    *,
    api: bool,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """One row per hold, as its events say (and as the replayed hold agrees)."""
    viewed = {row["hold_id"]: row for row in map(hold_of_row, rows["holds"])}
    want = expected_holds(facts, upto)
    assert set(viewed) == set(want), (
        f"hold ids: {sorted(set(viewed) ^ set(want))} differ"
    )
    for hold_id, row in want.items():
        assert viewed[hold_id] == row, f"hold {hold_id}"
        hold = facts.replay(UUID(hold_id), upto)
        assert isinstance(hold, Hold)
        assert (
            hold.status,
            hold.amount,
            hold.captured_amount,
            hold.expires_at,
            hold.created_on,
        ) == (
            row["status"],
            row["amount"],
            row["captured_amount"],
            row["expires_at"],
            row["placed_at"],
        ), f"hold {hold_id} replayed"
    if api:  # the holds of each account, from the view, as the holds' records say
        by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in sorted(want.values(), key=lambda r: (r["placed_at"], r["position"])):
            by_account[row["account_id"]].append(row)
        for account_id, listed in by_account.items():
            shown = [
                {
                    **hold_view(facts.replay(UUID(r["hold_id"])), now),
                    "position": r["position"],
                }
                for r in listed
            ]
            assert [bank.get_hold(UUID(r["hold_id"])) for r in listed] == shown
            assert bank.account_holds(UUID(account_id)) == shown, (
                f"holds of {account_id}"
            )
    return want


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
    """The contract's body of every transaction (reversed or not), as the replayed
    record says, at the position of its last event."""
    transactions = {r["transaction_id"]: r for r in map(transaction_of_row, rows)}
    expected = [(position, p) for position, p in facts.posted if position <= upto]
    assert set(transactions) == {str(p.originator_id) for _, p in expected}, (
        "transaction ids"
    )
    for _, posted in expected:
        txn = facts.replay(posted.originator_id, upto)
        assert isinstance(txn, Transaction)
        position = facts.last_position(txn.id, upto)
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
    # A reversal names what it reverses, which names it back (once both are in).
    for _, posted in expected:
        if posted.reverses is not None:
            original = transactions[str(posted.reverses)]["body"]
            assert original["status"] == "reversed"
            assert original["reversed_by"] == str(posted.originator_id)


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


# ------------------------------------------------------- balances as of a moment
#
# A brute force over the log: the ledger balance from every entry booked at or
# before T; what was held at T from the account's record of its holds (see
# hold_moves: placed at or before T, less what was captured or released at or before
# T), leaving out holds whose expires_at <= T; the overdraft limit in force at T (the
# opening's, as of the opening, or the last change at or before T).


def expected_balance(
    facts: LogFacts, account_id: UUID, moment: datetime
) -> tuple[Decimal, Decimal]:
    """(ledger, available) of the account at ``moment``."""
    ledger = Decimal(0)
    for _, posted in facts.posted:
        if booked_at_of(posted) > moment:
            continue
        for row in posted.entries:
            if row["account"] == str(account_id):
                amount = Decimal(row["amount"])
                ledger += amount if row["direction"] == CREDIT else -amount
    limit: tuple[datetime, int, Decimal] | None = None
    expiries: dict[str, datetime | None] = {}
    for position, event in facts.events[account_id]:
        if isinstance(event, Account.FundsHeld):
            expiries[str(event.hold_id)] = event.expires_at
        if isinstance(event, Account.Opened | Account.OverdraftLimitChanged):
            at = (
                (event.opened_at or event.timestamp)
                if isinstance(event, Account.Opened)
                else event.timestamp
            )
            if at <= moment and (limit is None or (at, position) > limit[:2]):
                limit = (at, position, event.overdraft_limit)
    held = Decimal(0)
    for move in hold_moves(facts, account_id):
        expires_at = expiries[move["hold_id"]]
        if expires_at is not None and expires_at <= moment:
            continue  # lapsed at the moment: the hold no longer counts at all
        if move["effective_at"] <= moment:
            held += move["delta"]
    overdraft = limit[2] if limit else Decimal(0)
    return ledger, ledger - held + overdraft


def balance_moments(facts: LogFacts, account_id: UUID, now: datetime) -> list[datetime]:
    """Moments around everything that moved the account's balances: each event's
    timestamp, each booking, opening, placement and expiry, a microsecond either
    side, and the middle of each gap between them; none after ``now``."""
    instants: set[datetime] = set()
    for _, event in facts.events[account_id]:
        instants.add(event.timestamp)
        if isinstance(event, Account.Opened) and event.opened_at is not None:
            instants.add(event.opened_at)
        if isinstance(event, Account.FundsHeld) and event.expires_at is not None:
            instants.add(event.expires_at)
    instants.update(move["effective_at"] for move in hold_moves(facts, account_id))
    for _, posted in facts.posted:
        if any(row["account"] == str(account_id) for row in posted.entries):
            instants.add(booked_at_of(posted))
    step = timedelta(microseconds=1)
    ordered = sorted(instants)
    moments = {t + d for t in ordered for d in (-step, timedelta(0), step)}
    moments.update(a + (b - a) / 2 for a, b in itertools.pairwise(ordered))
    moments.add(ordered[0] - timedelta(days=1))
    return sorted(m for m in moments if m <= now)


def check_balances_as_of(
    bank: Bank, facts: LogFacts, rnd: random.Random | None = None, per_account: int = 0
) -> int:
    """``bank.balance(account, as_of=T)`` against :func:`expected_balance`, at every
    moment of :func:`balance_moments` (or ``per_account`` of them, drawn with
    ``rnd``, plus the first and the last); and as of now against the account's read.
    The views must have caught up with the log. Returns how many were compared."""
    compared = 0
    with clock_stopped(bank) as now:
        for account_id in facts.ids("Account"):
            currency = facts.events[account_id][0][1].currency
            money = lambda amount: format_amount(amount, currency)  # noqa: B023
            moments = balance_moments(facts, account_id, now)
            if per_account and len(moments) > per_account:
                assert rnd is not None
                moments = [
                    moments[0],
                    *rnd.sample(moments[1:-1], per_account - 2),
                    moments[-1],
                ]
            for moment in moments:
                ledger, available = expected_balance(facts, account_id, moment)
                got = bank.balance(account_id, as_of=moment)
                assert (got["ledger_balance"], got["available_balance"]) == (
                    money(ledger),
                    money(available),
                ), f"balance of {account_id} as of {moment.isoformat()}"
                compared += 1
            current = bank.balance(account_id)
            account = bank.get_account(account_id)
            assert (current["ledger_balance"], current["available_balance"]) == (
                account["ledger_balance"],
                account["available_balance"],
            ), f"balance of {account_id} now"
    return compared


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
