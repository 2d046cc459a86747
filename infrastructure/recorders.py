"""A PostgreSQL application recorder that holds the event table's lock for less time.

The library's recorder takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` so that positions
commit in the order they are issued (tailing readers never skip a gap that fills in
later). It keeps that lock across a client round trip: it syncs the pipeline after the
INSERT, reads the new positions, and only then sends COMMIT. In a threaded server the
thread holding the lock may also wait for the GIL before it can send COMMIT, so every
other writer waits too.

This recorder sends BEGIN, the lock, NOTIFY, the INSERT and COMMIT in one pipeline with a
single sync: the lock is held only while the server runs those statements. Ordering and
atomicity are unchanged (same lock, same transaction); a unique violation aborts the
transaction, which is rolled back before the connection goes back to the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Composed, Identifier

# Rows per INSERT statement. psycopg converts a query's placeholders in Python and
# caches the conversion only for queries under 4 KB: one 3,000-row INSERT (a batch of
# 1,000 transfers) spent ~17% of the server's CPU converting. Chunks of this size stay
# cached (and prepared), and still go in one pipeline, in order, under the one lock.
_ROWS_PER_INSERT = 100


class PipelinedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._insert_statements: dict[int, Composed] = {}

    def _insert_statement(self, rows: int) -> Composed:
        statement = self._insert_statements.get(rows)
        if statement is None:
            values = SQL(", ").join([SQL("(%b, %b, %b, %b)")] * rows)
            statement = SQL(
                "INSERT INTO {0}.{1} (originator_id, originator_version, topic, state) "
                "VALUES {2} RETURNING notification_id"
            ).format(
                Identifier(self.datastore.schema), Identifier(self.events_table_name), values
            )
            self._insert_statements[rows] = statement
        return statement

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:  # never enabled by backoffice
            return super().insert_events(stored_events, **kwargs)
        if not stored_events:
            return []
        # Plain multi-row VALUES with binary parameters: dumping the library's
        # composite-type array is done in Python and cost ~10% of a request's CPU.
        chunks = [
            stored_events[start : start + _ROWS_PER_INSERT]
            for start in range(0, len(stored_events), _ROWS_PER_INSERT)
        ]
        with self.datastore.get_connection() as conn:
            failure: psycopg.Error | None = None
            notification_ids: list[int] = []
            with conn.pipeline() as pipeline, conn.cursor() as control:
                control.execute("BEGIN")
                for statement in self.lock_table_statements:
                    control.execute(statement, prepare=True)
                self._notify_channel(control)
                inserts = []
                for chunk in chunks:
                    params: list[Any] = []
                    for e in chunk:
                        params.extend((e.originator_id, e.originator_version, e.topic, e.state))
                    insert = conn.cursor()
                    insert.execute(self._insert_statement(len(chunk)), params, prepare=True)
                    inserts.append(insert)
                control.execute("COMMIT")
                try:
                    pipeline.sync()
                    for insert in inserts:
                        notification_ids.extend(row["notification_id"] for row in insert.fetchall())
                except psycopg.Error as error:
                    failure = error
                finally:
                    for insert in inserts:
                        insert.close()
            if failure is not None:
                # Explicit transaction blocks stay aborted after an error: end it here.
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise failure  # get_connection() maps it to the library's errors
        return notification_ids
