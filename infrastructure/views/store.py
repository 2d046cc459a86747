"""SQL access to the views for both stores: transactions, generations, tracking.

One SQL text serves SQLite and PostgreSQL: statements are written with ``%s``
placeholders and ``{t:name}``-style table names, and :class:`ViewStore` turns them into
each dialect. Write transactions are re-entrant per thread, so a rebuild can apply its
last events and switch generations in one transaction.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from infrastructure.views.tables import TABLES, generation_table

POINTERS = "projection_generations"
PG_TRACKING_TABLE = "projection_tracking"


class GenerationSuperseded(Exception):
    """A rebuild has switched the projection to a newer generation."""


def tracking_key(name: str, generation: int) -> str:
    return f"{name}.g{generation}"


def time_text(moment: datetime) -> str:
    """Fixed width, so text order is time order: ``2026-11-23T10:00:00.000000Z``."""
    if moment.utcoffset() != _ZERO:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_ZERO = timedelta(0)


def parse_time(text: str) -> datetime:
    # fromisoformat reads the trailing Z (Python 3.11+), ~10x faster than strptime.
    return datetime.fromisoformat(text)


class Cursor:
    """One interface over a sqlite3 cursor and a psycopg cursor (dict rows)."""

    def __init__(self, store: ViewStore, raw: Any) -> None:
        self.store = store
        self.raw = raw

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        statement = self.store.sql(sql)
        if self.store.kind == "sqlite":
            _sqlite_call(lambda: self.raw.execute(statement, params))
        else:
            self.raw.execute(statement, params)
        return self

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        statement = self.store.sql(sql)
        if self.store.kind == "sqlite":
            _sqlite_call(lambda: self.raw.executemany(statement, rows))
        else:
            self.raw.executemany(statement, rows)

    def one(self) -> Any:
        return self.raw.fetchone()

    def all(self) -> list[Any]:
        return list(self.raw.fetchall())


class ViewStore:
    """The views' tables in the event store's database."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.kind = "postgres" if isinstance(datastore, PostgresDatastore) else "sqlite"
        self.schema = datastore.schema if isinstance(datastore, PostgresDatastore) else ""
        self._local = threading.local()
        self._sql_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ dialect

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.kind == "postgres" else f'"{name}"'

    def sql(self, text: str) -> str:
        """``{name}`` becomes a (schema-qualified) table name; ``%s`` a placeholder."""
        cached = self._sql_cache.get(text)
        if cached is None:
            cached = re.sub(r"\{(\w+)\}", lambda m: self.table(m.group(1)), text)
            if self.kind == "sqlite":
                cached = cached.replace("%s", "?")
            self._sql_cache[text] = cached
        return cached

    # ------------------------------------------------------------- transactions

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        """A write transaction; nested calls in one thread join the outer one."""
        current: Cursor | None = getattr(self._local, "cursor", None)
        if current is not None:
            yield current
            return
        with self._transaction(write=True) as cursor:
            self._local.cursor = cursor
            try:
                yield cursor
            finally:
                self._local.cursor = None

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A consistent snapshot for several queries (or the open write transaction)."""
        current: Cursor | None = getattr(self._local, "cursor", None)
        if current is not None:
            yield current
            return
        with self._transaction(write=False) as cursor:
            yield cursor

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.get_connection() as conn:
                with conn.transaction(force_rollback=not write), conn.cursor() as raw:
                    if not write:
                        raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    yield Cursor(self, raw)
            return
        with self.datastore.get_connection(commit=write) as conn:
            raw_conn: sqlite3.Connection = conn._sqlite_conn
            raw = raw_conn.cursor()
            try:
                # IMMEDIATE takes the write lock up front: a deferred transaction
                # that reads first cannot upgrade once another writer has committed.
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield Cursor(self, raw)
            except BaseException:
                raw_conn.rollback()
                raise
            else:
                if write:
                    _sqlite_call(raw_conn.commit)
                else:
                    raw_conn.rollback()
            finally:
                raw.close()

    # -------------------------------------------------------------- generations

    def ensure_schema(self, names: Sequence[str]) -> None:
        """Create what readers need: the generation records, tracking and generation 1."""
        with self.write() as cur:
            if self.kind == "postgres":
                # Serialise schema creation between processes starting together.
                cur.run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"backoffice:{self.schema}",))
            self._create_tracking_table(cur)
            cur.run(
                "CREATE TABLE IF NOT EXISTS {" + POINTERS + "} ("
                "name TEXT PRIMARY KEY, generation INTEGER NOT NULL, switched_at TEXT NOT NULL)"
            )
            current = self._generations(cur)
            existing = self._relations(cur)
            for name in names:
                if name not in current:
                    self.create_tables(cur, name, 1)
                    self._point(cur, name, 1, insert=True)
                else:  # tables or indexes added since the generation was made
                    self.create_tables(cur, name, current[name], existing=existing)

    def _create_tracking_table(self, cur: Cursor) -> None:
        """The library's single-row tracking table, as its recorders create it (with
        the row that marks it migrated), but inside this locked transaction: the
        library's own create_table() run by processes starting together can fail."""
        cur.run(
            "CREATE TABLE IF NOT EXISTS {" + self.tracking_table + "} ("
            "application_name TEXT, notification_id BIGINT, PRIMARY KEY (application_name))"
            + (" WITHOUT ROWID" if self.kind == "sqlite" else "")
        )
        cur.run(
            "INSERT INTO {" + self.tracking_table + "} (application_name, notification_id) "
            "VALUES (%s, 1) ON CONFLICT (application_name) DO NOTHING",
            ("__migration__",),
        )

    def generations(self) -> dict[str, int]:
        with self.read() as cur:
            return self._generations(cur)

    def generations_in(self, cur: Cursor) -> dict[str, int]:
        """The current generations, inside a transaction the caller holds."""
        return self._generations(cur)

    def _generations(self, cur: Cursor) -> dict[str, int]:
        rows = cur.run("SELECT name, generation FROM {" + POINTERS + "}").all()
        return {row["name"]: int(row["generation"]) for row in rows}

    def check_generation(self, cur: Cursor, name: str, generation: int) -> None:
        """Inside a live runner's write: refuse if a rebuild has switched generations.

        On PostgreSQL the row lock makes a switch wait for this transaction, and this
        transaction wait for a switch in progress.
        """
        lock = " FOR SHARE" if self.kind == "postgres" else ""
        row = cur.run(
            "SELECT generation FROM {" + POINTERS + "} WHERE name = %s" + lock, (name,)
        ).one()
        if row is None or int(row["generation"]) != generation:
            raise GenerationSuperseded(name)

    def lock_generations(self, cur: Cursor, names: Sequence[str]) -> dict[str, int]:
        """Inside a switch: hold the generation records until it commits."""
        lock = " FOR UPDATE" if self.kind == "postgres" else ""
        found: dict[str, int] = {}
        for name in names:
            row = cur.run(
                "SELECT generation FROM {" + POINTERS + "} WHERE name = %s" + lock, (name,)
            ).one()
            found[name] = int(row["generation"])
        return found

    def switch(self, cur: Cursor, name: str, generation: int) -> None:
        self._point(cur, name, generation, insert=False)

    def _point(self, cur: Cursor, name: str, generation: int, *, insert: bool) -> None:
        for table in TABLES[name]:
            cur.run(f"DROP VIEW IF EXISTS {{{table.base}}}")
            cur.run(
                f"CREATE VIEW {{{table.base}}} AS SELECT * FROM "
                f"{{{generation_table(table.base, generation)}}}"
            )
        now = time_text(datetime.now(UTC))
        if insert:
            cur.run(
                "INSERT INTO {" + POINTERS + "} (name, generation, switched_at) VALUES (%s, %s, %s)",
                (name, generation, now),
            )
        else:
            cur.run(
                "UPDATE {" + POINTERS + "} SET generation = %s, switched_at = %s WHERE name = %s",
                (generation, now, name),
            )

    def create_tables(
        self, cur: Cursor, name: str, generation: int, *, existing: set[str] | None = None
    ) -> None:
        """The generation's tables and indexes; with ``existing`` (the names already
        there), only those missing: every process runs this at start, and on
        PostgreSQL even CREATE INDEX IF NOT EXISTS locks a table against writes."""
        existing = existing or set()
        for table in TABLES[name]:
            physical = generation_table(table.base, generation)
            suffix = " WITHOUT ROWID" if table.clustered and self.kind == "sqlite" else ""
            if physical not in existing:
                cur.run(
                    f"CREATE TABLE IF NOT EXISTS {{{physical}}} ({table.columns}, "
                    f"PRIMARY KEY ({table.primary_key})){suffix}"
                )
            for index_suffix, columns in table.indexes:
                if f"{physical}_{index_suffix}" in existing:
                    continue
                index = f'"{physical}_{index_suffix}"'
                target = self.table(physical)
                cur.run(f"CREATE INDEX IF NOT EXISTS {index} ON {target} ({columns})")

    def _relations(self, cur: Cursor) -> set[str]:
        """The names of the tables and indexes in this store's schema."""
        if self.kind == "postgres":
            rows = cur.run(
                "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s",
                (self.schema,),
            ).all()
        else:
            rows = cur.run("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')").all()
        return {row["name"] for row in rows}

    def drop_tables(self, cur: Cursor, name: str, generation: int) -> None:
        for table in TABLES[name]:
            cur.run(f"DROP TABLE IF EXISTS {{{generation_table(table.base, generation)}}}")
        self.forget_tracking(cur, tracking_key(name, generation))

    def existing_generations(self, name: str) -> list[int]:
        """Generations whose tables exist (a crashed rebuild may leave some behind)."""
        base = TABLES[name][0].base
        with self.read() as cur:
            if self.kind == "postgres":
                rows = cur.run(
                    "SELECT table_name AS name FROM information_schema.tables "
                    "WHERE table_schema = %s AND table_name LIKE %s",
                    (self.schema, f"{base}_g%"),
                ).all()
            else:
                rows = cur.run(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE %s",
                    (f"{base}_g%",),
                ).all()
        found = []
        for row in rows:
            match = re.fullmatch(rf"{base}_g(\d+)", row["name"])
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    # ----------------------------------------------------------------- tracking

    def tracking_recorder(self) -> SQLiteTrackingRecorder | PostgresTrackingRecorder:
        if isinstance(self.datastore, PostgresDatastore):
            return PostgresTrackingRecorder(self.datastore, tracking_table_name=PG_TRACKING_TABLE)
        return SQLiteTrackingRecorder(self.datastore)

    @property
    def tracking_table(self) -> str:
        return PG_TRACKING_TABLE if self.kind == "postgres" else "tracking"

    def tracked(self, cur: Cursor, key: str) -> int | None:
        row = cur.run(
            "SELECT notification_id FROM {" + self.tracking_table + "} WHERE application_name = %s",
            (key,),
        ).one()
        return None if row is None else int(row["notification_id"])

    def forget_tracking(self, cur: Cursor, key: str) -> None:
        cur.run("DELETE FROM {" + self.tracking_table + "} WHERE application_name = %s", (key,))

    def positions(self) -> dict[str, tuple[int, int]]:
        """Each projection's current generation and processed position."""
        with self.read() as cur:
            generations = self._generations(cur)
            return {
                name: (generation, self.tracked(cur, tracking_key(name, generation)) or 0)
                for name, generation in generations.items()
            }


def record_tracking(
    recorder: SQLiteTrackingRecorder | PostgresTrackingRecorder, cur: Cursor, tracking: Tracking
) -> None:
    """The library's tracking insert, in our transaction: a repeat raises IntegrityError."""
    recorder._insert_tracking(cur.raw, tracking)


def _sqlite_call(call: Any) -> Any:
    try:
        return call()
    except sqlite3.IntegrityError as error:
        raise IntegrityError(error) from error
    except sqlite3.OperationalError as error:
        raise OperationalError(error) from error
    except sqlite3.ProgrammingError as error:
        raise ProgrammingError(error) from error
    except sqlite3.DatabaseError as error:
        raise DatabaseError(error) from error
    except sqlite3.Error as error:
        raise PersistenceError(error) from error


__all__ = [
    "Cursor",
    "GenerationSuperseded",
    "ViewStore",
    "parse_time",
    "record_tracking",
    "time_text",
    "tracking_key",
]
