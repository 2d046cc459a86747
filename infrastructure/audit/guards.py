"""Append-only guards: the database itself refuses UPDATE, DELETE and TRUNCATE of the
event log and of the audit chain, whoever asks.

Triggers are created by the tables' owner (the process that creates the tables). On
PostgreSQL the application should connect as a role that does not own the tables, so
it cannot drop the triggers either (README, "Append-only on PostgreSQL"): such a role
finds the triggers in place and creates nothing.
"""

from __future__ import annotations

import structlog
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder

from infrastructure.views.store import ViewStore
from infrastructure.views.tables import generation_table

log = structlog.get_logger("audit")

TRIGGER = "backoffice_append_only"
FUNCTION = "backoffice_append_only"


def guarded_tables(store: ViewStore, recorder: ApplicationRecorder) -> list[str]:
    """The unqualified names of the tables that must only grow."""
    events = getattr(recorder, "events_table_name", "stored_events")
    chain = store.generations().get("chain", 1)
    return [events, generation_table("audit_chain", chain), generation_table("audit_seals", chain)]


def install_guards(store: ViewStore, recorder: ApplicationRecorder) -> list[str]:
    """Create the missing triggers; returns the tables it could not guard (a role that
    does not own a table finds it unguarded only if nobody set the guards up)."""
    tables = guarded_tables(store, recorder)
    if isinstance(recorder, PostgresApplicationRecorder):
        return _install_postgres(store, tables)
    with store.write() as cur:
        for table in tables:
            for operation in ("UPDATE", "DELETE"):
                cur.run(
                    f'CREATE TRIGGER IF NOT EXISTS "{TRIGGER}_{table}_{operation.lower()}" '
                    f'BEFORE {operation} ON "{table}" BEGIN '
                    f"SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
                )
    return []


def _install_postgres(store: ViewStore, tables: list[str]) -> list[str]:
    schema = store.schema
    unguarded: list[str] = []
    with store.write() as cur:
        # Processes starting together: one creates, the others find the triggers.
        cur.run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"backoffice-guards:{schema}",))
        present = {
            row["table_name"]
            for row in cur.run(
                "SELECT c.relname AS table_name FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND t.tgname = %s",
                (schema, TRIGGER),
            ).all()
        }
        missing = [t for t in tables if t not in present]
        if not missing:
            return []
        owned = {
            row["tablename"]
            for row in cur.run(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND pg_has_role(current_user, tableowner, 'USAGE')",
                (schema,),
            ).all()
        }
        if any(t in owned for t in missing):
            cur.raw.execute(  # no parameters: the body's % are plpgsql's own
                f'CREATE OR REPLACE FUNCTION "{schema}".{FUNCTION}() RETURNS trigger '
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                "'% is append-only: % refused', TG_TABLE_NAME, TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            )
        for table in missing:
            if table not in owned:
                unguarded.append(table)
                continue
            target = f'"{schema}"."{table}"'
            cur.run(
                f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {target} "
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".{FUNCTION}()'
            )
            cur.run(
                f"CREATE TRIGGER {TRIGGER}_truncate BEFORE TRUNCATE ON {target} "
                f'FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".{FUNCTION}()'
            )
    if unguarded:
        log.warning("tables without append-only guards (ask their owner to start once)",
                    tables=unguarded)
    return unguarded
