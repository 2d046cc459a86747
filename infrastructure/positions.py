"""Find the global log position of one stored event, for each kind of recorder."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from application.ports import PositionLookup


def position_lookup(recorder: ApplicationRecorder) -> PositionLookup:
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres(recorder)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite(recorder)
    if isinstance(recorder, POPOApplicationRecorder):
        return _popo(recorder)
    raise TypeError(f"no position lookup for {type(recorder).__name__}")


def _postgres(recorder: PostgresApplicationRecorder) -> PositionLookup:
    statement = SQL(
        "SELECT notification_id FROM {0}.{1} WHERE originator_id = %s AND originator_version = %s"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

    def lookup(originator_id: UUID, version: int) -> int | None:
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id, version), prepare=True)
            row = curs.fetchone()
            return None if row is None else int(row["notification_id"])

    return lookup


def _sqlite(recorder: SQLiteApplicationRecorder) -> PositionLookup:
    # The library's SQLite table keys notifications by rowid.
    statement = (
        f"SELECT rowid FROM {recorder.events_table_name} "
        "WHERE originator_id = ? AND originator_version = ?"
    )

    def lookup(originator_id: UUID, version: int) -> int | None:
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (originator_id.hex, version))
            row = curs.fetchone()
            return None if row is None else int(row[0])

    return lookup


def _popo(recorder: POPOApplicationRecorder) -> PositionLookup:
    def lookup(originator_id: UUID, version: int) -> int | None:
        with recorder._database_lock:
            index = recorder._stored_events_index.get(str(originator_id), {})
            return index[version] + 1 if version in index else None

    return lookup
