"""PostgreSQL: let the application connect as a role that does not own the log.

The tables' owner (who runs ``backoffice db setup``) keeps the event table, the hash
chain and the triggers that guard them; the application role may read and append, and
owns only what it rebuilds (the projections' tables). It cannot drop a trigger, alter
the log or truncate it. It is granted UPDATE on the event table only because the
library takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` before inserting, which PostgreSQL
allows only to roles with UPDATE, DELETE or TRUNCATE; the trigger refuses the updates.
"""

from __future__ import annotations

from eventsourcing.persistence import ApplicationRecorder
from psycopg import sql

from infrastructure.audit.guards import guarded_tables
from infrastructure.views.store import ViewStore

_CHAIN_VIEWS = ("audit_chain", "audit_seals")


class UnknownRole(ValueError):
    pass


def grant_app_role(store: ViewStore, recorder: ApplicationRecorder, role: str) -> list[str]:
    """Grant ``role`` what the application needs; returns the statements run."""
    if store.kind != "postgres":
        raise ValueError("roles are PostgreSQL's; SQLite's guards are its triggers alone")
    schema = store.schema
    events, *chain_tables = guarded_tables(store, recorder)
    ran: list[str] = []
    with store.write() as cur:
        if cur.run("SELECT 1 AS found FROM pg_roles WHERE rolname = %s", (role,)).one() is None:
            raise UnknownRole(f"no role {role!r}: CREATE ROLE {role} LOGIN first")
        tables = [
            row["name"]
            for row in cur.run(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = %s", (schema,)
            ).all()
        ]
        views = [
            row["name"]
            for row in cur.run(
                "SELECT viewname AS name FROM pg_views WHERE schemaname = %s", (schema,)
            ).all()
        ]

        def run(template: str, *names: str) -> None:
            statement = sql.SQL(template).format(
                *[sql.Identifier(schema, n) for n in names],
                schema=sql.Identifier(schema), role=sql.Identifier(role),
            )
            cur.raw.execute(statement)
            ran.append(statement.as_string(cur.raw.connection))

        run("GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}")
        run("GRANT SELECT, INSERT, UPDATE ON {} TO {role}", events)
        for table in chain_tables:
            run("GRANT SELECT, INSERT ON {} TO {role}", table)
        run("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        guarded = {events, *chain_tables}
        for table in tables:
            if table in guarded:
                continue
            # Projection tables, tracking, generation records and snapshots: the
            # application rebuilds them (creates and drops generations), so owns them.
            run("ALTER TABLE {} OWNER TO {role}", table)
        for view in views:
            if view in _CHAIN_VIEWS:
                run("GRANT SELECT ON {} TO {role}", view)
            else:
                run("ALTER VIEW {} OWNER TO {role}", view)
    return ran
