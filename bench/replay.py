"""Replay speed of the projections: a full rebuild of every view over a large log.

Run it from the repository root, once ``make test`` or ``make run`` has created the venv:

    .venv/bin/python bench/replay.py                     # 1,000,000 events, both stores
    .venv/bin/python bench/replay.py --events 100000 --store sqlite
    .venv/bin/python bench/replay.py --pg-schema replay_1m --sqlite-file var/replay_1m.sqlite
    .venv/bin/python bench/replay.py --pg-schema replay_1m --sqlite-file var/replay_1m.sqlite \
        --reuse                                          # replay the kept logs again
    .venv/bin/python bench/replay.py --store sqlite --sqlite-file var/replay_1m.sqlite \
        --reuse --profile py-spy                         # where the time goes

1. The log (unless ``--reuse``): exactly ``--events`` events, built once and written to
   every store asked for. Customers, accounts in EUR, USD, GBP and JPY, each funded by
   a deposit as it opens, then mostly transfers and deposits, some withdrawals, freezes
   and unfreezes, overdraft limit changes. The events come from the domain aggregates
   and services in memory (``Customer.register``, ``Account.open``,
   ``posting.transfer``...), each use case's aggregates in the order the Bank saves
   them, use cases one after another, so versions and positions are those the
   application would write; stored with the Bank's mapper and appended ``--chunk`` at
   a time (SQLite: ``recorder.insert_events``; PostgreSQL: ``COPY``, see ``Appender``)
   instead of one transaction per use case. Account snapshots are written where the
   Bank's ``snapshotting_intervals`` would take them, so the application can use the
   store too. On PostgreSQL the events table is then analyzed, as autovacuum would
   (``--no-analyze`` leaves it without statistics: see ``analyze_events_table``).
   Prints the build rate.
2. Per store, a full rebuild of every view: ``rebuild_projections(settings).run()``
   with ``--page-size``. Reported: the events it applied (it does not read Customer
   events: no view uses them), seconds, events/s, and the CPU used meanwhile (% of one
   core) by this process, by the PostgreSQL backends serving it, and ``other``: the
   rest of the machine (well above a few percent: something else ran, figures are low).
3. Checks of the rebuilt views: one ``transactions`` row per ``Transaction.Posted``
   event, one ``accounts`` row per account; per currency, the accounts' ledger
   balances plus the internal ledger balances sum to zero (and, for a log built in
   this run, the accounts' sum equals the aggregates'); for ``--sample`` random
   accounts, the view's ledger balance and the statement's closing balance equal the
   aggregate's balance (as built in memory, or loaded from the log with ``--reuse``).
   The exit status is 1 when a check fails or a store could not be measured.

``--profile cprofile`` runs the rebuild under cProfile (exact call counts, but it slows
Python-heavy code more than database calls: its events/s are not the figure) and
prints the top 25 functions by cumulative and by self time. ``--profile py-spy``
samples the rebuild from outside (``.venv/bin/pip install py-spy``; it needs ptrace
rights over this process) at little cost, with the same two tables as shares of the
samples taken while Python was running (time waiting on PostgreSQL is not sampled).

Stores: ``--sqlite-file PATH`` and ``--pg-schema NAME`` say where the logs live; they
are kept, for ``--reuse`` later. Without them the log goes to a temporary SQLite file
and a ``bench_replay_<random>`` schema of the PostgreSQL database at ``--pg-url``,
both removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import logging
import os
import pstats
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

import psycopg
import structlog
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from procstat import (  # bench/procstat.py
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
)

from application.bank import Bank
from application.projections import PROJECTIONS, topic_of
from domain import posting
from domain.account import ACTIVE, Account
from domain.cause import Cause
from domain.currencies import MINOR_UNITS
from domain.customer import Customer
from domain.money import Money
from domain.transaction import Transaction
from infrastructure.bootstrap import bootstrap, rebuild_projections
from infrastructure.settings import Settings
from infrastructure.views.rebuild import Progress, RebuildResult

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# (currency, share of the accounts)
CURRENCIES = (("EUR", 50), ("USD", 30), ("GBP", 15), ("JPY", 5))
COUNTRIES = ("DE", "FR", "NL", "IT", "ES", "GB", "US", "JP", "CH", "AT")
EVENTS_PER_ACCOUNT = 100  # the log has one account per this many events
# Share of the use cases after the set-up (the rest: overdraft limit changes).
TRANSFERS, DEPOSITS, WITHDRAWALS, FREEZES = 0.60, 0.30, 0.07, 0.015
PROGRESS_SECONDS = 5.0
POSTED_TOPIC = topic_of(Transaction.Posted)
OPENED_TOPIC = topic_of(Account.Opened)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- the log


@dataclass
class Expected:
    """What the views must show once they have replayed the whole log."""

    events: int  # in the log
    posted: int  # Transaction.Posted events
    accounts: int
    balances: dict[UUID, Decimal]  # a sample of accounts: the aggregate's ledger balance
    totals: dict[str, Decimal] | None = None  # customers' balances per currency (if built)


class Appender:
    """Appends chunks of stored events to one store, in a thread of its own: the
    database's share of the work overlaps the building of the next chunk.

    SQLite: the recorder's own insert, without fsync. PostgreSQL: ``COPY`` into the events table, in
    chunk order, so the table's sequence numbers the rows exactly as one INSERT per
    chunk would (the recorder's 10,000-row INSERT took ~40 µs an event, COPY 5 to 8).
    Nothing else writes to the bench's store, so the recorder's table lock is left out.
    """

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        datastore = bank.recorder.datastore  # type: ignore[attr-defined]
        self._copy: str | None = None
        if isinstance(datastore, PostgresDatastore):
            self._copy = (
                f'COPY "{datastore.schema}"."{bank.recorder.events_table_name}" '  # type: ignore[attr-defined]
                "(originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
            )
        self.failure: BaseException | None = None
        self._chunks: queue.Queue[tuple[list[StoredEvent], list[StoredEvent]] | None] = (
            queue.Queue(maxsize=2)
        )
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
        self._thread.start()

    def append(self, events: list[StoredEvent], snapshots: list[StoredEvent]) -> None:
        if self.failure is not None:
            raise self.failure
        self._chunks.put((events, snapshots))

    def close(self) -> None:
        """Wait until every chunk is in; raise what went wrong, if anything did."""
        self._chunks.put(None)
        self._thread.join()
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self.failure is not None:
                continue  # drain: the builder sees the failure at its next append
            events, snapshots = chunk
            try:
                self._insert(events)
                if snapshots:
                    self.bank.snapshots.recorder.insert_events(snapshots)  # type: ignore[union-attr]
            except BaseException as error:  # noqa: BLE001 (raised again in the builder)
                self.failure = error

    def _insert(self, events: list[StoredEvent]) -> None:
        recorder = self.bank.recorder
        datastore = recorder.datastore  # type: ignore[attr-defined]
        if self._copy is None:
            with datastore.get_connection(commit=True) as conn:
                # The table's primary key index is keyed by random ids: with the default
                # 2 MB page cache a chunk re-reads most of it (chunks took 0.05 s at
                # 10,000 events, 0.15 to 0.35 s at 300,000), and a bench's log needs no
                # fsync. Per connection: nothing else is affected.
                conn._sqlite_conn.execute("PRAGMA cache_size = -1000000")  # 1 GB
                conn._sqlite_conn.execute("PRAGMA synchronous = OFF")
                with conn.transaction(commit=True) as cursor:
                    recorder._insert_events(cursor, events)  # type: ignore[attr-defined]
            return
        with (
            datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(self._copy) as copy,
        ):
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for e in events:
                copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))


class LogBuilder:
    """Use cases on in-memory aggregates; their events appended in big chunks, the same
    stored events to every store."""

    def __init__(self, banks: list[Bank], events: int, chunk: int, seed: int,
                 sample: int) -> None:
        self.banks = banks
        self.appenders: list[Appender] = []
        self.target = events
        self.chunk = chunk
        self.sample = sample
        self.rng = random.Random(seed)
        self.snapshot_interval = Bank.snapshotting_intervals.get(Account)
        self.pending: list[Any] = []  # domain events, in the order Bank.save records them
        self.snapshots: list[Snapshot] = []
        self.written = 0
        self.posted = 0
        self.accounts: list[Account] = []
        self.by_currency: dict[str, list[Account]] = {code: [] for code, _ in CURRENCIES}
        self.requests = 0
        self.teller = str(uuid.uuid4())  # an API key id, as the HTTP layer records it
        self._last_report = time.monotonic()
        self._started = time.monotonic()

    # ---------------------------------------------------------------- plumbing

    @property
    def count(self) -> int:
        return self.written + len(self.pending)

    def cause(self) -> Cause:
        self.requests += 1
        return Cause(self.teller, "teller", f"req-{self.requests:09d}", "api")

    def save(self, *aggregates: Aggregate) -> None:
        """What ``Bank.save(*aggregates)`` records, and the snapshots it takes."""
        for aggregate in aggregates:
            events = aggregate.collect_events()
            self.pending.extend(events)
            if isinstance(aggregate, Account) and self.snapshot_interval:
                for event in events:
                    if event.originator_version % self.snapshot_interval == 0:
                        # Snapshot.take copies the aggregate as it is now: right only
                        # for its latest event, as each use case here makes at most one.
                        assert event is events[-1] and aggregate.version == event.originator_version
                        self.snapshots.append(Snapshot.take(aggregate))
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        # Every Bank has the same mapper (transcodings, no cipher, no compression).
        mapper = self.banks[0].mapper
        events = [mapper.to_stored_event(e) for e in self.pending]
        snapshots = [mapper.to_stored_event(s) for s in self.snapshots]
        for appender in self.appenders:
            appender.append(events, snapshots)
        self.written += len(self.pending)
        self.pending, self.snapshots = [], []
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_SECONDS:
            self._last_report = now
            rate = self.written / (now - self._started)
            say(f"  built {self.written:,} of {self.target:,} events ({rate:,.0f} events/s)")

    # ----------------------------------------------------------- the use cases

    def amount(self, currency: str, low: int, high: int) -> Money:
        """A random amount of ``low``..``high`` major units, to the currency's precision."""
        places = MINOR_UNITS[currency]
        minor = self.rng.randint(low * 10**places, high * 10**places)
        return Money(Decimal(minor).scaleb(-places), currency)

    def register_customer(self) -> Customer:
        rng = self.rng
        person = rng.random() < 0.85
        details: dict[str, Any] = {
            "name": f"Bench {'person' if person else 'company'} {self.requests}",
            "kind": "person" if person else "organization",
            "country": rng.choice(COUNTRIES),
            "address": {"street": f"{rng.randint(1, 200)} Main Street", "city": "Springfield",
                        "postal_code": f"{rng.randint(10000, 99999)}",
                        "country": rng.choice(COUNTRIES)},
        }
        if person:
            details["date_of_birth"] = date(rng.randint(1940, 2005), rng.randint(1, 12),
                                            rng.randint(1, 28))
        customer = Customer.register(details, self.cause(), today=date.today())
        self.save(customer)
        return customer

    def open_account(self, customer: Customer, currency: str) -> Account:
        cause = self.cause()
        savings = self.rng.random() < 0.2
        limit = Decimal(0) if savings or self.rng.random() < 0.5 else self.amount(
            currency, 100, 2000).amount
        account = Account.open(customer.id, currency, cause,
                               "savings" if savings else "current", limit)
        customer.add_account(account.id, cause)
        self.save(account, customer)
        self.accounts.append(account)
        self.by_currency[currency].append(account)
        return account

    def deposit(self, account: Account, money: Money | None = None) -> None:
        channel = self.rng.choice(("cash", "cash", "cheque", "wire"))
        counterparty = (
            {"name": "Bench Payer Ltd", "account": f"GB{self.rng.randint(10**9, 10**10)}",
             "country": self.rng.choice(COUNTRIES)}
            if channel == "wire" else None
        )
        money = money or self.amount(account.currency, 10, 3000)
        txn = posting.deposit(account, money, channel, self.cause(),
                              reference=f"DEP-{self.requests}", counterparty=counterparty)
        self.save(account, txn)
        self.posted += 1

    def withdraw(self, account: Account) -> bool:
        available = account.available_balance
        if account.status != ACTIVE or available < 1:
            return False
        money = self.amount(account.currency, 1, int(min(available, 1000)))
        txn = posting.withdraw(account, money, self.rng.choice(("cash", "wire")), self.cause())
        self.save(account, txn)
        self.posted += 1
        return True

    def transfer(self, source: Account, destination: Account) -> bool:
        available = source.available_balance
        if source.status != ACTIVE or available < 1:
            return False
        money = self.amount(source.currency, 1, int(min(available, 500)))
        reference = f"INV-{self.requests}" if self.rng.random() < 0.5 else None
        txn = posting.transfer(source, destination, money, self.cause(), reference=reference)
        self.save(source, destination, txn)
        self.posted += 1
        return True

    def toggle_freeze(self, account: Account) -> None:
        if account.status == ACTIVE:
            account.freeze("bench: compliance review", self.cause())
        else:
            account.unfreeze(self.cause())
        self.save(account)

    def change_limit(self, account: Account) -> None:
        limit = self.amount(account.currency, 0, 2000).amount
        if limit == account.overdraft_limit:
            limit += 1  # an unchanged limit records nothing
        account.set_overdraft_limit(limit, self.cause())
        self.save(account)

    # -------------------------------------------------------------------- plan

    def build(self) -> Expected:
        self.appenders = [Appender(bank) for bank in self.banks]
        try:
            expected = self._build()
        finally:
            for appender in self.appenders:
                appender.close()
        return expected

    def _build(self) -> Expected:
        rng = self.rng
        accounts = max(2 * len(CURRENCIES), self.target // EVENTS_PER_ACCOUNT)
        # Every currency gets at least two accounts (transfers need a pair).
        currencies = [code for code, _ in CURRENCIES for _ in range(2)]
        codes, weights = zip(*CURRENCIES, strict=True)
        currencies += rng.choices(codes, weights, k=accounts - len(currencies))
        # Customers with 1 to 3 accounts, each account funded as it is opened.
        while currencies:
            customer = self.register_customer()
            for _ in range(min(len(currencies), rng.choice((1, 1, 2, 3)))):
                account = self.open_account(customer, currencies.pop())
                self.deposit(account, self.amount(account.currency, 1000, 50000))
        if self.count > self.target:
            raise SystemExit(f"--events {self.target} is too few for the set-up "
                             f"({self.count} events); ask for more")
        while self.count < self.target:
            remaining = self.target - self.count
            roll = rng.random()
            if remaining == 1:
                self.change_limit(rng.choice(self.accounts))
            elif remaining == 2 or TRANSFERS <= roll < TRANSFERS + DEPOSITS:
                self.deposit(rng.choice(self.accounts))
            elif roll < TRANSFERS:
                pool = self.by_currency[rng.choices(codes, weights)[0]]
                source, destination = rng.sample(pool, 2)
                if not self.transfer(source, destination):
                    self.deposit(source)
            elif roll < TRANSFERS + DEPOSITS + WITHDRAWALS:
                account = rng.choice(self.accounts)
                if not self.withdraw(account):
                    self.deposit(account)
            elif roll < TRANSFERS + DEPOSITS + WITHDRAWALS + FREEZES:
                self.toggle_freeze(rng.choice(self.accounts))
            else:
                self.change_limit(rng.choice(self.accounts))
        self.flush()
        totals: dict[str, Decimal] = {code: Decimal(0) for code in codes}
        for account in self.accounts:
            totals[account.currency] += account.ledger_balance
        return Expected(
            events=self.written,
            posted=self.posted,
            accounts=len(self.accounts),
            balances={
                a.id: a.ledger_balance
                for a in rng.sample(self.accounts, min(self.sample, len(self.accounts)))
            },
            totals=totals,
        )


def build_log(database_urls: list[str], args: argparse.Namespace) -> tuple[Expected, float]:
    """One log, written to every store; the expectations and the seconds it took."""
    banks: list[Bank] = []
    try:
        for url in database_urls:
            banks.append(bootstrap(database_url=url))
            if banks[-1].recorder.max_notification_id():
                raise SystemExit(f"{url} already holds a log: pass --reuse to replay it")
        builder = LogBuilder(banks, args.events, args.chunk, args.seed, args.sample)
        started = time.perf_counter()
        expected = builder.build()
        seconds = time.perf_counter() - started
        for url, bank in zip(database_urls, banks, strict=True):
            head = bank.recorder.max_notification_id()
            if head != expected.events:
                raise RuntimeError(f"{url}: the log's head is {head}, not {expected.events}")
            if args.analyze:
                analyze_events_table(bank)
        return expected, seconds
    finally:
        for bank in banks:
            bank.close()


def analyze_events_table(bank: Bank) -> None:
    """PostgreSQL: statistics for the new log, as autovacuum would gather after a load.

    Without them (autovacuum off, or not yet run) the planner reads each of the
    rebuild's pages with a scan and sort of the whole rest of the log: measured on
    1,000,000 events, 2.0 s for the first page, 30 to 50 ms with statistics.
    """
    datastore = bank.recorder.datastore  # type: ignore[attr-defined]
    if not isinstance(datastore, PostgresDatastore):
        return
    table = f'"{datastore.schema}"."{bank.recorder.events_table_name}"'  # type: ignore[attr-defined]
    with datastore.get_connection() as conn:
        if conn.execute("SHOW autovacuum").fetchone()["autovacuum"] != "on":
            say("warning: autovacuum is off on this server: a real log's statistics go "
                "stale, and the rebuild's page reads slow down (see --no-analyze)")
        conn.execute(f"ANALYZE {table}")


def _events_query(bank: Bank, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Raw SQL on the events table: ``{events}`` is its (schema-qualified) name."""
    recorder = bank.recorder
    datastore = recorder.datastore  # type: ignore[attr-defined]
    if isinstance(datastore, PostgresDatastore):
        table = f'"{datastore.schema}"."{recorder.events_table_name}"'  # type: ignore[attr-defined]
        with datastore.get_connection() as conn:
            rows = conn.execute(sql.format(events=table), params).fetchall()
        return [tuple(row.values()) for row in rows]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(sql.format(events=recorder.events_table_name).replace("%s", "?"), params)
        return [tuple(row) for row in cursor.fetchall()]


def expected_from_log(database_url: str, sample: int, seed: int) -> Expected:
    """For a reused log: counts from the events table, balances from the aggregates."""
    bank = bootstrap(database_url=database_url)
    try:
        events = bank.recorder.max_notification_id() or 0
        if not events:
            raise SystemExit(f"--reuse: {database_url} holds no events")
        [(posted,)] = _events_query(bank, "SELECT COUNT(*) FROM {events} WHERE topic = %s",
                                   (POSTED_TOPIC,))
        ids = [UUID(str(row[0])) for row in _events_query(
            bank, "SELECT originator_id FROM {events} WHERE topic = %s", (OPENED_TOPIC,))]
        chosen = random.Random(seed).sample(ids, min(sample, len(ids)))
        balances = {i: bank.repository.get(i).ledger_balance for i in chosen}
        return Expected(events=events, posted=int(posted), accounts=len(ids), balances=balances)
    finally:
        bank.close()


# ------------------------------------------------------------------------ CPU use

SAMPLE_SECONDS = 1.0


def _postgres_backends_of(pids: list[int]) -> list[int]:
    """The PostgreSQL backends serving these processes' connections, found by the client
    port in their process title (``postgres: 15/main: postgres test 127.0.0.1(44154)``):
    other sessions (a test suite beside) are not among them."""
    sockets = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        sockets.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in sockets:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    backends = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
                client = re.search(r"\((\d+)\)", title)
                if client and int(client.group(1)) in ports:
                    backends.append(int(entry.name))
    return backends


class CpuMeter:
    """CPU used between start() and stop(), in % of one core: this process with its
    worker processes, the PostgreSQL backends serving them, and ``other``, the rest of
    the machine. Workers and their backends come and go, so on PostgreSQL a thread
    looks every ``SAMPLE_SECONDS``; a backend born meanwhile counts from zero."""

    def __init__(self, *, postgres: bool) -> None:
        self.postgres = postgres
        self.backends: dict[int, tuple[float, float]] = {}  # pid: (at start, last seen)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.machine = machine_busy_seconds()
        self.own = self._own()  # joined workers count in children's times
        if self.postgres:
            self._sample(baseline=True)
            self._thread.start()

    def stop(self) -> dict[str, float]:
        if self.postgres:
            self._sample()
            self._stopping.set()
            self._thread.join()
        wall = time.perf_counter() - self.wall
        machine = machine_busy_seconds() - self.machine
        own = self._own() - self.own
        postgres = sum(last - first for first, last in self.backends.values())
        share = {"bench": own, "postgres": postgres, "other": max(0.0, machine - own - postgres)}
        return {name: round(100 * seconds / wall, 1) for name, seconds in share.items()}

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    def _run(self) -> None:
        while not self._stopping.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self, *, baseline: bool = False) -> None:
        for pid in _postgres_backends_of(process_tree(os.getpid())):
            seconds = cpu_seconds(pid)
            first = self.backends.get(pid, (seconds if baseline else 0.0, 0.0))[0]
            self.backends[pid] = (first, seconds)


# ---------------------------------------------------------------------- profiles

TOP = 25


def _short(path: str) -> str:
    for prefix in (str(ROOT) + "/", "site-packages/"):
        if prefix in path:
            return path.split(prefix, 1)[1]
    return path


def _table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = [title, "  ".join(f"{h:>9}" for h in header[:-1]) + "  " + header[-1]]
    lines += ["  ".join(f"{c:>9}" for c in row[:-1]) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def cprofiled(report: list[str]) -> Iterator[None]:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [
        (ct, tt, nc, f"{name} ({_short(file)}:{line})")
        for (file, line, name), (_cc, nc, tt, ct, _callers) in stats.items()
    ]
    header = ("cum s", "self s", "calls", "function")
    for title, key in (("cumulative", 0), ("self", 1)):
        top = sorted(rows, key=lambda r: r[key], reverse=True)[:TOP]
        report.append(_table(
            f"cProfile, top {TOP} by {title} time:", [
                (f"{ct:.2f}", f"{tt:.2f}", str(nc), where) for ct, tt, nc, where in top
            ], header,
        ))


@contextlib.contextmanager
def py_spied(report: list[str], workdir: Path) -> Iterator[None]:
    """py-spy sampling this process; stacks are folded into self and cumulative shares."""
    executable = Path(sys.executable).with_name("py-spy")
    if not executable.exists():
        executable = Path(shutil.which("py-spy") or "py-spy")
    output, messages = workdir / "py-spy.txt", workdir / "py-spy.stderr"
    with messages.open("wb") as stderr:
        spy = subprocess.Popen(
            [str(executable), "record", "--pid", str(os.getpid()), "--format", "raw",
             "--output", str(output), "--rate", "200", "--function", "--nonblocking",
             "--subprocesses"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    time.sleep(1.0)  # attached before the work starts
    if spy.poll() is not None:
        raise RuntimeError(f"py-spy failed: {messages.read_text(errors='replace')}")
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=120)
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stack = re.sub(r'process (\d+):"[^"]*"', r"process \1", stack)  # its command line
        frames = [_short(frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            cumulative[frame] += int(count)
    header = ("cum %", "self %", "samples", "function")
    for title, counter in (("cumulative", cumulative), ("self", own)):
        report.append(_table(
            f"py-spy, {total} samples while running Python, top {TOP} by {title} share:", [
                (f"{100 * cumulative[f] / total:.1f}", f"{100 * own[f] / total:.1f}",
                 str(counter[f]), f)
                for f, _ in counter.most_common(TOP)
            ], header,
        ))


# ------------------------------------------------------------------- the rebuild


def rebuild(database_url: str, args: argparse.Namespace, workdir: Path,
            report: list[str]) -> tuple[RebuildResult, dict[str, float]]:
    last = time.monotonic()

    def show(progress: Progress) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            rate = progress.events / progress.seconds if progress.seconds else 0.0
            say(f"  replayed to {progress.position:,} of {progress.head:,} "
                f"({progress.events:,} events, {rate:,.0f} events/s)")

    job = rebuild_projections(Settings(database_url=database_url), page_size=args.page_size,
                              processes=args.processes, on_progress=show)
    profiler: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if args.profile == "cprofile":
        profiler = cprofiled(report)
    elif args.profile == "py-spy":
        profiler = py_spied(report, workdir)
    meter = CpuMeter(postgres=database_url.startswith("postgresql:"))
    with profiler:
        meter.start()
        result = job.run()
        cpu = meter.stop()
    return result, cpu


def check_views(database_url: str, expected: Expected) -> list[str]:
    """What the rebuilt views must show; the problems found (none: all is well)."""
    bank = bootstrap(database_url=database_url)
    problems: list[str] = []
    try:
        views = bank.views
        assert views is not None
        with views.store.read() as cur:  # type: ignore[attr-defined]
            transactions = int(cur.run("SELECT COUNT(*) AS n FROM {transactions}").one()["n"])
            accounts = cur.run("SELECT currency, ledger_balance FROM {accounts}").all()
        if transactions != expected.posted:
            problems.append(f"{transactions} transactions rows for {expected.posted} postings")
        if len(accounts) != expected.accounts:
            problems.append(f"{len(accounts)} accounts rows for {expected.accounts} accounts")
        customers: Counter[str] = Counter()
        for row in accounts:
            customers[row["currency"]] += Decimal(row["ledger_balance"])
        internal: Counter[str] = Counter()
        for balance in views.ledger_balances():
            internal[balance.currency] += balance.balance
        for currency in sorted(set(customers) | set(internal)):
            total = customers[currency] + internal[currency]
            if total != 0:
                problems.append(f"{currency}: accounts + internal ledger = {total}, not 0")
        for currency, total in (expected.totals or {}).items():
            if customers[currency] != total:
                problems.append(f"{currency}: accounts sum to {customers[currency]}, "
                                f"the aggregates to {total}")
        for account_id, balance in expected.balances.items():
            row = views.account(account_id)
            closing = views.statement(account_id, None, None, None, 1).closing_balance
            if row is None or row.ledger_balance != balance or closing != balance:
                problems.append(
                    f"account {account_id}: view {row and row.ledger_balance}, "
                    f"statement {closing}, aggregate {balance}"
                )
    finally:
        bank.close()
    return problems


# ------------------------------------------------------------------------ stores


@contextlib.contextmanager
def sqlite_store(args: argparse.Namespace) -> Iterator[str]:
    if args.sqlite_file:
        path = Path(args.sqlite_file).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{path}"
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    path = directory / "replay.sqlite"
    try:
        yield f"sqlite:///{path}"
    finally:
        if args.keep:
            say(f"kept the SQLite log: --sqlite-file {path} --reuse")
        else:
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_store(args: argparse.Namespace) -> Iterator[str]:
    base = args.pg_url.split("?", 1)[0]
    schema = args.pg_schema or f"bench_replay_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    try:
        yield f"{base}?schema={schema}"
    finally:
        if args.pg_schema or args.keep:
            say(f"kept the PostgreSQL log: --pg-schema {schema} --reuse")
        else:
            try:
                with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            except psycopg.Error as error:  # report, never mask the run's own error
                say(f"warning: could not drop schema {schema}: {error}")


# -------------------------------------------------------------------------- main


@dataclass
class Outcome:
    store: str
    log_events: int
    build_seconds: float | None  # None: a reused log
    rebuild: dict[str, Any]
    cpu: dict[str, float]
    problems: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)

    @property
    def check(self) -> str:
        return "ok" if not self.problems else "FAILED: " + "; ".join(self.problems)

    def line(self) -> str:
        build = (
            "reused"
            if self.build_seconds is None
            else f"built in {self.build_seconds:.1f} s "
                 f"({self.log_events / self.build_seconds:,.0f} events/s)"
        )
        cpu = " ".join(f"{name}={value:.0f}%" for name, value in self.cpu.items())
        r = self.rebuild
        return (
            f"{self.store:<8} log={self.log_events:,} events ({build})  "
            f"rebuild: events={r['events']:,} seconds={r['seconds']:.1f} "
            f"events/s={r['events_per_second']:,.0f} processes={r['processes']}"
            f"{' (profiled)' if self.profile else ''}  "
            f"cpu[{cpu}]  check={self.check}"
        )

    def as_json(self) -> str:
        body = asdict(self)
        body.pop("profile")
        body["check"] = self.check
        if self.build_seconds:
            body["build_events_per_second"] = round(self.log_events / self.build_seconds, 1)
        return json.dumps(body)


def replay_store(kind: str, database_url: str, expected: Expected,
                 build_seconds: float | None, args: argparse.Namespace,
                 workdir: Path) -> Outcome:
    say(f"{kind}: rebuilding {', '.join(PROJECTIONS)} (page size {args.page_size})")
    report: list[str] = []
    result, cpu = rebuild(database_url, args, workdir, report)
    return Outcome(
        store=kind,
        log_events=expected.events,
        build_seconds=build_seconds,
        rebuild={"events": result.events, "seconds": round(result.seconds, 3),
                 "events_per_second": round(result.events_per_second, 1),
                 "processes": result.processes, "position": result.position,
                 "generations": result.generations},
        cpu=cpu,
        problems=check_views(database_url, expected),
        profile=report,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build a large event log, then time a full rebuild of every view.",
    )
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events in the log to build (default 1,000,000)")
    parser.add_argument("--page-size", type=int, default=10000,
                        help="events the rebuild reads a page (default 10000, the rebuild's own)")
    parser.add_argument("--processes", type=int,
                        help="rebuild worker processes (default: the rebuild's own choice)")
    parser.add_argument("--chunk", type=int, default=10_000,
                        help="events appended at a time while building (default 10,000)")
    parser.add_argument("--profile", choices=("cprofile", "py-spy"),
                        help="profile the rebuild and print the top functions")
    parser.add_argument("--sqlite-file", metavar="PATH",
                        help="the SQLite log's file (kept; default: a temporary file)")
    parser.add_argument("--pg-schema", metavar="NAME",
                        help="the PostgreSQL log's schema (kept; default: a temporary one)")
    parser.add_argument("--reuse", action="store_true",
                        help="replay the log already in --sqlite-file / --pg-schema")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="PostgreSQL: leave the new log without planner statistics")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary stores (and say how to reuse them)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_URL),
                        help=f"PostgreSQL database to make a schema in (default {DEFAULT_PG_URL})")
    parser.add_argument("--sample", type=int, default=20,
                        help="accounts whose balances are checked (default 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    if args.reuse and any(
        not (args.sqlite_file if kind == "sqlite" else args.pg_schema) for kind in stores
    ):
        parser.error("--reuse needs --sqlite-file and/or --pg-schema for each --store")
    if min(args.events, args.page_size, args.chunk) < 1 or args.sample < 0:
        parser.error("--events, --page-size and --chunk must be at least 1, --sample >= 0")
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.profile == "cprofile" and args.processes is None:
        args.processes = 1  # cProfile sees this process only: keep the replay in it
    args.stores = stores
    return args


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: temporary stores removed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The summary is the output: the rebuild's own log lines only when something is wrong.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    signal.signal(signal.SIGTERM, _terminate)
    failed = False
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-replay-")))
        stores = {"sqlite": sqlite_store, "postgres": postgres_store}
        urls = {kind: stack.enter_context(stores[kind](args)) for kind in args.stores}
        build_seconds: float | None = None
        if args.reuse:
            expected = {}
            for kind, url in urls.items():
                say(f"{kind}: reading the log at {url}")
                expected[kind] = expected_from_log(url, args.sample, args.seed)
        else:
            say(f"building {args.events:,} events into {', '.join(urls.values())}")
            built, build_seconds = build_log(list(urls.values()), args)
            say(f"built in {build_seconds:.1f} s ({built.events / build_seconds:,.0f} events/s)")
            expected = dict.fromkeys(urls, built)
        for kind, url in urls.items():
            try:
                outcome = replay_store(kind, url, expected[kind], build_seconds, args, workdir)
            except Exception as error:  # noqa: BLE001 (one broken store, not the other)
                failed = True
                message = f"{type(error).__name__}: {error}"
                print(json.dumps({"store": kind, "error": message}) if args.json
                      else f"{kind:<8} FAILED  {message}", flush=True)
                continue
            failed = failed or bool(outcome.problems)
            for table in outcome.profile:
                print(table, end="\n\n", file=sys.stderr, flush=True)
            print(outcome.as_json() if args.json else outcome.line(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (temporary stores removed)", file=sys.stderr)
        sys.exit(130)
