"""Reconciliation (infrastructure/audit/reconcile.py): the log replayed into scratch
tables, compared row by row with the live views.

A history with deposits, withdrawals, transfers, holds (captured and released) and a
reversal; the four projections' live runners catch up and are stopped, so what the
live tables hold is fixed. Then a row of a live table is changed behind its
projection's back (in SQL, as a mistaken hand could) and the reconciliation must name
the projection, the table and the row's key, with both sides of the row. One test
keeps the runners running and writing while it reconciles.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest
from projection_helpers import NAMES, catch_up, opened_bank, running_projections
from psycopg.rows import dict_row

from application.audit.ports import Difference
from application.bank import Bank
from application.errors import ServiceUnavailable
from application.followers import FOLLOWERS
from domain.cause import Cause
from infrastructure.store import parse_database_url
from infrastructure.views.locks import projection_lock
from infrastructure.views.tables import TABLES

ROOT = Path(__file__).resolve().parents[2]
CAUSE = Cause.cli()


@dataclass
class Views:
    bank: Bank
    url: str
    accounts: list[UUID]
    generations: dict[str, int]

    @property
    def kind(self) -> str:
        return "postgres" if self.url.startswith("postgres") else "sqlite"

    def table(self, base: str) -> str:
        """The live physical table of a view (``accounts`` -> ``accounts_g1``)."""
        name = next(n for n, tables in TABLES.items() if any(t.base == base for t in tables))
        physical = f"{base}_g{self.generations[name]}"
        if self.kind == "postgres":
            return f'"{parse_qs(urlsplit(self.url).query)["schema"][0]}"."{physical}"'
        return f'"{physical}"'

    def run(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """One statement, committed; ``{accounts}`` etc. name the live tables."""
        sql = sql.format_map(_Tables(self))
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=10)
            conn.row_factory = sqlite3.Row
            try:
                rows = [dict(r) for r in conn.execute(sql.replace("%s", "?"), params).fetchall()]
                conn.commit()
                return rows
            finally:
                conn.close()
        with psycopg.connect(self.url.split("?", 1)[0], row_factory=dict_row) as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def log(self) -> list[tuple[int, str]]:
        """(position, topic) of every event."""
        if self.kind == "sqlite":
            rows = self.run('SELECT rowid AS p, topic FROM "stored_events" ORDER BY rowid')
        else:
            schema = parse_qs(urlsplit(self.url).query)["schema"][0]
            rows = self.run(
                f'SELECT notification_id AS p, topic FROM "{schema}"."bank_events" ORDER BY 1'
            )
        return [(r["p"], r["topic"]) for r in rows]

    def expected_positions(self) -> dict[str, int]:
        """Each projection's position: the last event of its own topics in the log."""
        log = self.log()
        return {
            name: max(p for p, topic in log if topic in FOLLOWERS[name].topics) for name in NAMES
        }


class _Tables(dict):
    def __init__(self, views: Views) -> None:
        super().__init__()
        self.views = views

    def __missing__(self, key: str) -> str:
        return self.views.table(key)


def write_history(bank: Bank) -> list[UUID]:
    accounts: list[UUID] = []
    for i in range(2):
        customer = bank.register_customer(
            {"name": f"Customer {i}", "kind": "person", "country": "GB"}, CAUSE
        ).response()
        for currency in ("EUR", "EUR", "JPY"):
            opened = bank.open_account(UUID(customer["customer_id"]), currency, CAUSE).response()
            accounts.append(UUID(opened["account_id"]))
    eur = [a for i, a in enumerate(accounts) if i % 3 != 2]
    for i, account in enumerate(eur):
        bank.deposit(account, f"{100 + i}.00", "EUR", "cash", CAUSE, reference=f"d{i}")
    bank.deposit(accounts[2], "5000", "JPY", "wire", CAUSE)
    bank.withdraw(eur[0], "12.50", "EUR", "cash", CAUSE)
    transfers = [
        bank.transfer(eur[i], eur[i + 1], "7.25", "EUR", CAUSE).response() for i in range(3)
    ]
    bank.reverse_transaction(UUID(transfers[1]["transaction_id"]), "keyed twice", CAUSE)
    captured = bank.place_hold(eur[1], "20.00", "EUR", CAUSE, reference="h1").response()
    released = bank.place_hold(eur[2], "15.00", "EUR", CAUSE).response()
    bank.capture_hold(UUID(captured["hold_id"]), CAUSE, amount="8.00", to_account_id=eur[3])
    bank.release_hold(UUID(released["hold_id"]), CAUSE, reason="cancelled")
    bank.transfer(eur[3], eur[0], "1.00", "EUR", CAUSE)
    return accounts


@pytest.fixture
def views(database_url: str) -> Iterator[Views]:
    with opened_bank(database_url) as bank:
        accounts = write_history(bank)
        with running_projections(bank, database_url, NAMES) as service:
            catch_up(bank, services=[service])
        generations = bank.views.store.generations()  # type: ignore[union-attr]
        yield Views(bank, database_url, accounts, generations)


def reconcile(views: Views) -> Any:
    """``bank.audit.reconcile()``, tried again for a moment if it is refused as busy:
    on PostgreSQL the previous reconciliation's lock outlives its release for a few
    milliseconds (the bug of test_a_released_reconciliation_lock_is_free_at_once)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return views.bank.audit.reconcile()  # type: ignore[union-attr]
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def row_count(views: Views) -> int:
    return sum(
        views.run(f"SELECT COUNT(*) AS n FROM {views.table(t.base)}")[0]["n"]
        for name in NAMES
        for t in TABLES[name]
    )


def test_caught_up_views_reconcile(views: Views) -> None:
    last_write = views.bank.last_position()
    result = reconcile(views)
    assert result.differences == [] and result.differences_total == 0
    expected = views.expected_positions()
    assert result.positions == expected
    # Each view is at its last own event: none of the log up to the last write is left.
    assert max(expected.values()) == last_write
    assert result.checked_at_position == min(expected.values())
    assert result.rows_compared == row_count(views) > 40
    # The scratch tables are gone; the live generations are untouched.
    assert views.bank.views.store.generations() == views.generations  # type: ignore[union-attr]
    for name in NAMES:
        assert views.bank.views.store.existing_generations(name) == [views.generations[name]]  # type: ignore[union-attr]


# ------------------------------------------------------------ rows changed behind

Tamper = Callable[[Views], Difference]


def balance_overwritten(views: Views) -> Difference:
    account = str(views.accounts[0])
    (row,) = views.run("SELECT * FROM {accounts} WHERE account_id = %s", (account,))
    assert row["ledger_balance"] != "999.00"
    views.run("UPDATE {accounts} SET ledger_balance = '999.00' WHERE account_id = %s", (account,))
    return Difference(
        "accounts", {"table": "accounts", "account_id": account},
        {**row, "ledger_balance": "999.00"}, row,
    )


def statement_entry_deleted(views: Views) -> Difference:
    account = str(views.accounts[1])
    entries = views.run(
        "SELECT * FROM {statement_entries} WHERE account_id = %s ORDER BY booked_at, position, seq",
        (account,),
    )
    assert len(entries) >= 3
    row = entries[1]
    views.run(
        "DELETE FROM {statement_entries} WHERE account_id = %s AND position = %s AND seq = %s",
        (account, row["position"], row["seq"]),
    )
    key = {k: row[k] for k in ("account_id", "booked_at", "position", "seq")}
    return Difference("statements", {"table": "statement_entries", **key}, None, row)


def transaction_inserted(views: Views) -> Difference:
    model = views.run("SELECT * FROM {transactions} ORDER BY position LIMIT 1")[0]
    forged = {**model, "transaction_id": str(uuid.uuid4())}
    columns = ", ".join(forged)
    views.run(
        f"INSERT INTO {{transactions}} ({columns}) VALUES ({', '.join(['%s'] * len(forged))})",
        tuple(forged.values()),
    )
    return Difference(
        "transactions", {"table": "transactions", "transaction_id": forged["transaction_id"]},
        forged, None,
    )


def ledger_credits_changed(views: Views) -> Difference:
    row = views.run("SELECT * FROM {ledger_balances} WHERE currency = 'EUR' ORDER BY account LIMIT 1")[0]
    views.run(
        "UPDATE {ledger_balances} SET credits = %s WHERE account = %s AND currency = 'EUR'",
        ("1.00", row["account"]),
    )
    return Difference(
        "ledger", {"table": "ledger_balances", "account": row["account"], "currency": "EUR"},
        {**row, "credits": "1.00"}, row,
    )


def hold_status_changed(views: Views) -> Difference:
    (row,) = views.run("SELECT * FROM {holds} WHERE status = 'released'")
    views.run("UPDATE {holds} SET status = 'active' WHERE hold_id = %s", (row["hold_id"],))
    return Difference(
        "accounts", {"table": "holds", "hold_id": row["hold_id"]}, {**row, "status": "active"}, row
    )


def hold_change_deleted(views: Views) -> Difference:
    row = views.run("SELECT * FROM {hold_changes} ORDER BY position DESC LIMIT 1")[0]
    views.run(
        "DELETE FROM {hold_changes} WHERE account_id = %s AND effective_at = %s AND position = %s",
        (row["account_id"], row["effective_at"], row["position"]),
    )
    key = {k: row[k] for k in ("account_id", "effective_at", "position")}
    return Difference("accounts", {"table": "hold_changes", **key}, None, row)


TAMPERS: dict[str, Tamper] = {
    "account balance overwritten": balance_overwritten,
    "statement entry deleted": statement_entry_deleted,
    "transaction row inserted": transaction_inserted,
    "ledger credits changed": ledger_credits_changed,
    "hold status changed": hold_status_changed,
    "hold change deleted": hold_change_deleted,
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_row_changed_behind_the_projection_is_named(views: Views, tamper: str) -> None:
    rows_before = row_count(views)
    expected = TAMPERS[tamper](views)
    result = reconcile(views)
    assert result.differences == [expected]
    assert result.differences_total == 1
    assert result.positions == views.expected_positions()
    # Every key of either side was compared once: one more for a row only live has.
    assert result.rows_compared == rows_before + (1 if expected.replayed is None else 0)
    # Reconciling changes nothing: it reports the same difference again.
    assert reconcile(views).differences == [expected]


def test_many_rows_changed_are_all_counted(views: Views) -> None:
    account = str(views.accounts[0])
    entries = views.run("SELECT * FROM {statement_entries} WHERE account_id = %s", (account,))
    views.run("DELETE FROM {statement_entries} WHERE account_id = %s", (account,))
    views.run("UPDATE {accounts} SET status = 'frozen'")
    result = reconcile(views)
    assert result.differences_total == len(entries) + len(views.accounts)
    by_table: dict[str, int] = {}
    for difference in result.differences:
        by_table[difference.key["table"]] = by_table.get(difference.key["table"], 0) + 1
        if difference.key["table"] == "statement_entries":
            assert (difference.projection, difference.live) == ("statements", None)
            assert difference.replayed in entries
        else:
            assert difference.projection == "accounts"
            assert difference.live["status"] == "frozen" != difference.replayed["status"]  # type: ignore[index]
    assert by_table == {"accounts": len(views.accounts), "statement_entries": len(entries)}


# ------------------------------------------------------------------------- CLI


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKOFFICE_DATABASE_URL": url, "BACKOFFICE_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_cli_reconcile_exit_status(views: Views) -> None:
    clean = cli(views.url, "audit", "reconcile", "--json")
    assert clean.returncode == 0, clean.stderr
    body = json.loads(clean.stdout)
    positions = views.expected_positions()
    assert body == {
        "ok": True,
        "checked_at_position": min(positions.values()),
        "differences": [],
        "differences_total": 0,
        "projections": [{"name": n, "position": positions[n]} for n in NAMES],
        "rows_compared": row_count(views),
    }
    expected = balance_overwritten(views)
    dirty = cli(views.url, "audit", "reconcile", "--json")
    assert dirty.returncode == 1, dirty.stderr
    body = json.loads(dirty.stdout)
    assert (body["ok"], body["differences_total"]) == (False, 1)
    assert body["differences"] == [
        {"projection": "accounts", "key": expected.key, "live": expected.live,
         "replayed": expected.replayed}
    ]


# ------------------------------------------------------ while the runners run


def test_reconcile_while_runners_apply_new_writes(views: Views) -> None:
    """Live runners and writes going on: the replay stops where each live view is, so
    an honest store reconciles without differences, at or past where it started."""
    bank = views.bank
    eur = [a for i, a in enumerate(views.accounts) if i % 3 != 2]
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            i = 0
            while not stop.is_set():
                bank.transfer(eur[i % 4], eur[(i + 1) % 4], "0.01", "EUR", CAUSE)
                bank.deposit(eur[i % 4], "0.50", "EUR", "cash", CAUSE)
                i += 1
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    before = views.expected_positions()
    with running_projections(bank, views.url, NAMES) as service:
        started_at = bank.last_position()
        writer = threading.Thread(target=write)
        writer.start()
        try:
            results = [reconcile(views) for _ in range(5)]
        finally:
            stop.set()
            writer.join()
        assert not failures, failures
        assert not service.failed(), service.states()
        head = catch_up(bank, services=[service])
    assert head > started_at + 4, "the writer wrote nothing while reconciling"
    for result in results:
        assert result.differences == [], result.differences[:3]
        assert all(result.positions[n] >= before[n] for n in NAMES), (result.positions, before)
        assert result.checked_at_position == min(result.positions.values())
    final = reconcile(views)
    assert final.differences == [] and final.positions == views.expected_positions()


@pytest.mark.postgres
def test_a_released_reconciliation_lock_is_free_at_once(postgres_url: str) -> None:
    """What reconcile() takes and gives back, projection by projection: once release()
    has returned, anyone may take the lock.

    Seen in practice as test_reconcile_while_runners_apply_new_writes failing in about
    one run in seven (without its retry) with ServiceUnavailable on the next
    reconcile(). Here the window is made wide on purpose: the lock's session has
    temporary tables to drop when it ends (as any session with work to clean up),
    which the server does before it lets go of the session's advisory locks.
    """
    location = parse_database_url(postgres_url)
    key = f"backoffice:{location.schema}:rebuild:accounts"
    with psycopg.connect(postgres_url.split("?", 1)[0], autocommit=True) as other:
        for _ in range(3):
            lock = projection_lock(location, "accounts", "rebuild")
            if not lock.try_acquire():
                pytest.fail("the lock was not free before the attempt")
            session = lock._conn  # type: ignore[attr-defined]
            session.execute(
                "DO $$ BEGIN FOR i IN 1..20 LOOP "
                "EXECUTE format('CREATE TEMP TABLE scratch_%s (x int)', i); END LOOP; END $$"
            )
            lock.release()
            (free,) = other.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
            assert free, "the lock is still held after release() has returned"
            other.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
