"""The append-only guards (infrastructure/audit/guards.py and roles.py): the database
itself refuses to change or remove rows of the event log, the hash chain and its seals.

On the run's store, as the tables' owner: UPDATE and DELETE (and on PostgreSQL
TRUNCATE) of each of the three tables fail in the database, and the rows stay as they
were, while the application still appends. On PostgreSQL, an application role set up
with ``backoffice db setup --app-role`` works the bank but cannot change the log, nor
switch off or drop what guards it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest
from projection_helpers import NAMES, on_postgres, opened_bank, running_projections

from application.bank import Bank
from domain.cause import Cause

ROOT = Path(__file__).resolve().parents[2]
CAUSE = Cause.cli()
TABLES = ("events", "chain", "seals")
OPERATIONS = ("UPDATE", "DELETE", *(("TRUNCATE",) if on_postgres() else ()))


@dataclass
class Store:
    bank: Bank
    url: str
    kind: str
    tables: dict[str, str]  # events / chain / seals -> the table's bare name
    schema: str = ""

    def qualified(self, key: str) -> str:
        name = self.tables[key]
        return f'"{self.schema}"."{name}"' if self.kind == "postgres" else f'"{name}"'

    def position_column(self, key: str) -> str:
        if key != "events":
            return "position"
        return "notification_id" if self.kind == "postgres" else "rowid"

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0]

    def dump(self, key: str) -> list[tuple]:
        """Every row of the table, positions included, in order."""
        column = self.position_column(key)
        sql = f"SELECT {column}, * FROM {self.qualified(key)} ORDER BY {column}"
        if self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        with psycopg.connect(self.base) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


def write_some(bank: Bank, n: int = 3) -> UUID:
    customer = bank.register_customer(
        {"name": "A", "kind": "person", "country": "GB"}, CAUSE
    ).response()
    account = UUID(bank.open_account(UUID(customer["customer_id"]), "EUR", CAUSE).response()["account_id"])
    for i in range(n):
        bank.deposit(account, f"{10 + i}.00", "EUR", "cash", CAUSE)
    return account


def chain_up(bank: Bank, url: str, names: list[str] | None = None) -> None:
    head = bank.last_position()
    names = names or ["chain"]
    with running_projections(bank, url, names) as service:
        reached = bank.views.wait(names, head, 30)  # type: ignore[union-attr]
        assert not service.failed(), service.states()
        assert reached, bank.projection_status()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with opened_bank(database_url) as bank:
        write_some(bank)
        chain_up(bank, database_url)
        bank.audit.seal()  # type: ignore[union-attr]
        generation = bank.views.store.generations()["chain"]  # type: ignore[union-attr]
        kind = "postgres" if database_url.startswith("postgres") else "sqlite"
        tables = {
            "events": "bank_events" if kind == "postgres" else "stored_events",
            "chain": f"audit_chain_g{generation}",
            "seals": f"audit_seals_g{generation}",
        }
        found = Store(bank, database_url, kind, tables, schema_of(database_url) if kind == "postgres" else "")
        assert all(len(found.dump(key)) >= 1 for key in TABLES)
        yield found


def statement(store: Store, key: str, operation: str) -> str:
    table = store.qualified(key)
    column = store.position_column(key)
    first = f"(SELECT MIN({column}) FROM {table})"
    if operation == "UPDATE":
        change = {"events": "topic = 'forged'", "chain": "originator_version = 99",
                  "seals": "root = 'forged'"}[key]
        return f"UPDATE {table} SET {change} WHERE {column} = {first}"
    if operation == "DELETE":
        return f"DELETE FROM {table} WHERE {column} = {first}"
    return f"TRUNCATE {table}"


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("key", TABLES)
def test_the_owner_cannot_change_or_remove_rows(store: Store, key: str, operation: str) -> None:
    before = store.dump(key)
    sql = statement(store, key, operation)
    table = store.tables[key]
    if store.kind == "sqlite":
        conn = sqlite3.connect(store.url.removeprefix("sqlite:///"))
        try:
            with pytest.raises(sqlite3.IntegrityError) as refused:
                conn.execute(sql)
            conn.rollback()
        finally:
            conn.close()
        assert str(refused.value) == f"{table} is append-only: {operation} refused"
    else:
        with psycopg.connect(store.base, autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                conn.execute(sql)
        assert refused.value.diag.message_primary == f"{table} is append-only: {operation} refused"
    assert store.dump(key) == before


def test_appends_go_on_after_refusals(store: Store) -> None:
    """The guards refuse changes, not appends: the bank writes and the chain follows."""
    events_before = store.dump("events")
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.InsufficientPrivilege)):
        if store.kind == "sqlite":
            with sqlite3.connect(store.url.removeprefix("sqlite:///")) as conn:
                conn.execute(statement(store, "events", "DELETE"))
        else:
            with psycopg.connect(store.base) as conn:
                conn.execute(statement(store, "events", "DELETE"))
    account = write_some(store.bank, 2)
    chain_up(store.bank, store.url)
    events = store.dump("events")
    assert events[: len(events_before)] == events_before and len(events) == len(events_before) + 7
    assert store.bank.reconstruct(account).ledger_balance == 21  # type: ignore[union-attr]
    result = store.bank.audit.verify()  # type: ignore[union-attr]
    assert result.ok and result.events_checked == len(events), result


# ------------------------------------------------------------ an application role


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKOFFICE_DATABASE_URL": url, "BACKOFFICE_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def refusal(conn: psycopg.Connection[Any], sql: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(sql)
    return str(refused.value.diag.message_primary)


@pytest.mark.postgres
def test_an_application_role_works_the_bank_but_cannot_touch_the_log(postgres_url: str) -> None:
    role = f"app_{uuid.uuid4().hex[:10]}"
    schema = schema_of(postgres_url)
    owner = psycopg.connect(postgres_url.split("?", 1)[0], autocommit=True)
    owner.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        done = cli(postgres_url, "db", "setup", "--app-role", role, "--json")
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["guarded"] == ["bank_events", "audit_chain_g1", "audit_seals_g1"]
        assert any(role in s and "bank_events" in s for s in body["granted"]), body

        role_url = with_user(postgres_url, role)
        with opened_bank(role_url) as bank:
            account = write_some(bank, 3)
            chain_up(bank, role_url, [*NAMES, "chain"])
            head = bank.last_position()
            assert bank.get_account(account, min_position=head)["ledger_balance"] == "33.00"
            assert bank.audit.verify().ok  # type: ignore[union-attr]
            assert bank.audit.seal().position == head  # type: ignore[union-attr]

        events = f'"{schema}"."bank_events"'
        chain = f'"{schema}"."audit_chain_g1"'
        dump = f"SELECT notification_id, * FROM {events} ORDER BY notification_id"
        chain_dump = f"SELECT * FROM {chain} ORDER BY position"
        before = owner.execute(dump).fetchall()
        chain_before = owner.execute(chain_dump).fetchall()
        assert len(before) == 9 and len(chain_before) == 9
        with psycopg.connect(with_user(postgres_url.split("?", 1)[0], role), autocommit=True) as app:
            assert app.execute("SELECT current_user").fetchone()[0] == role
            # UPDATE is granted (the library's LOCK TABLE needs it): the trigger refuses.
            assert refusal(app, f"UPDATE {events} SET topic = 'forged'") == (
                "bank_events is append-only: UPDATE refused"
            )
            denied = [
                refusal(app, f"DELETE FROM {events}"),
                refusal(app, f"TRUNCATE {events}"),
                refusal(app, f"UPDATE {chain} SET hash = ''::bytea"),
                refusal(app, f"DELETE FROM {chain}"),
            ]
            assert all(m.startswith("permission denied for table") for m in denied), denied
            owners_only = [
                refusal(app, f"DROP TRIGGER backoffice_append_only ON {events}"),
                refusal(app, f"DROP TRIGGER backoffice_append_only_truncate ON {events}"),
                refusal(app, f"ALTER TABLE {events} DISABLE TRIGGER USER"),
                refusal(app, f"ALTER TABLE {events} DISABLE TRIGGER backoffice_append_only"),
                refusal(app, f"DROP TABLE {events}"),
                refusal(app, f"DROP TRIGGER backoffice_append_only ON {chain}"),
                refusal(app, f"DROP TABLE {chain}"),
            ]
            assert all(m.startswith("must be owner of") for m in owners_only), owners_only
            assert refusal(app, "SET session_replication_role = replica").startswith(
                "permission denied to set parameter"
            )
            # Appending stays possible: that is the role's job.
            assert app.execute("SELECT has_table_privilege(%s, 'INSERT')", (events,)).fetchone()[0]
        assert owner.execute(dump).fetchall() == before
        assert owner.execute(chain_dump).fetchall() == chain_before
        triggers = owner.execute(
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND t.tgname LIKE 'backoffice_append_only%%' ORDER BY 1, 2",
            (schema,),
        ).fetchall()
        assert [(r[0], r[1], r[2]) for r in triggers] == [
            (table, name, "O")
            for table in ("audit_chain_g1", "audit_seals_g1", "bank_events")
            for name in ("backoffice_append_only", "backoffice_append_only_truncate")
        ]
    finally:
        # The role's objects (the projections' tables) go first, then the role; the
        # fixture drops the schema afterwards.
        owner.execute(f'DROP OWNED BY "{role}"')
        owner.execute(f'DROP ROLE "{role}"')
        owner.close()
