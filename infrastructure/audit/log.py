"""Raw reads of the event log and of the hash chain, in one snapshot, for both stores.

The library's readers decode; the audit needs the stored bytes as they are, their
positions, and pages large enough to verify a million events in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row

from application.audit.verify import LinkRow, StoredRow
from infrastructure.views.store import Cursor, ViewStore

PAGE = 20_000
# Below every position: a row forged at position 0 (or less) is still read and reported.
BEFORE_ALL = -(2**62)


class EventTable:
    """Where the recorder keeps the events, in each dialect."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        if isinstance(recorder, PostgresApplicationRecorder):
            self.kind = "postgres"
            self.name = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            self.position = "notification_id"
        else:
            self.kind = "sqlite"
            self.name = getattr(recorder, "events_table_name", "stored_events")
            self.position = "rowid"

    def select(self, where: str = "", order: str = "", limit: bool = False) -> str:
        mark = "%s" if self.kind == "postgres" else "?"
        sql = (
            f"SELECT {self.position} AS position, originator_id, originator_version, topic, state "
            f"FROM {self.name}"
        )
        if where:
            sql += " WHERE " + where.replace("%s", mark).replace("{position}", self.position)
        sql += f" ORDER BY {order or self.position}"
        if limit:
            sql += f" LIMIT {mark}"
        return sql

    def originator(self, originator_id: str) -> Any:
        """The originator id as the column holds it."""
        return UUID(originator_id) if self.kind == "postgres" else UUID(originator_id).hex


def oid_hex(value: Any) -> str:
    return value.hex if isinstance(value, UUID) else value


def as_bytes(value: Any) -> bytes:
    """A state as bytes, whatever a hand in the database left there (SQLite keeps text
    put into a BLOB column as text)."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int | float):
        return str(value).encode("ascii")
    return bytes(value)


def event_row(row: Any) -> StoredRow:
    return (
        int(row["position"]), oid_hex(row["originator_id"]), int(row["originator_version"]),
        row["topic"], as_bytes(row["state"]),
    )


class LogSnapshot:
    """Reads of the log and the chain inside one read transaction (``ViewStore.read``)."""

    def __init__(self, table: EventTable, store: ViewStore, cur: Cursor) -> None:
        self.table = table
        self.store = store
        self.cur = cur

    def _tuples(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows as plain tuples, for the scans of the whole log (a third faster than
        the dict rows the rest of the code reads)."""
        connection = self.cur.raw.connection
        if self.table.kind == "postgres":
            with connection.cursor(row_factory=tuple_row, binary=True) as cursor:
                return cursor.execute(sql, params).fetchall()
        cursor = connection.cursor()
        cursor.row_factory = None
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def _raw(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self.table.kind == "postgres":
            return list(self.cur.raw.execute(sql, params, binary=True).fetchall())
        return list(self.cur.raw.execute(sql, params).fetchall())

    # ------------------------------------------------------------------- events

    def events(self, after: int = BEFORE_ALL, until: int | None = None) -> Iterator[StoredRow]:
        """Every stored event after ``after`` (up to ``until``), in position order."""
        where = "{position} > %s" + (" AND {position} <= %s" if until is not None else "")
        sql = self.table.select(where, limit=True)
        while True:
            params = (after, until, PAGE) if until is not None else (after, PAGE)
            rows = self._tuples(sql, params)
            if not rows:
                return
            for position, originator_id, version, topic, state in rows:
                yield (
                    position, originator_id if type(originator_id) is str else oid_hex(originator_id),
                    version, topic, state if type(state) is bytes else as_bytes(state),
                )
            after = rows[-1][0]
            if len(rows) < PAGE:
                return

    def page(
        self, after: int, limit: int, originator_id: str | None = None, topics: Sequence[str] = ()
    ) -> list[StoredRow]:
        clauses, params = ["{position} > %s"], [after]
        if originator_id is not None:
            clauses.append("originator_id = %s")
            params.append(self.table.originator(originator_id))
        if topics:
            clauses.append("topic IN (" + ", ".join(["%s"] * len(topics)) + ")")
            params.extend(topics)
        sql = self.table.select(" AND ".join(clauses), limit=True)
        return [event_row(row) for row in self._raw(sql, [*params, limit])]

    def originator_events(self, originator_id: str) -> list[StoredRow]:
        sql = self.table.select("originator_id = %s", order="originator_version")
        return [event_row(row) for row in self._raw(sql, [self.table.originator(originator_id)])]

    def first_events(self, originator_ids: Sequence[str]) -> list[StoredRow]:
        """The creation event (version 1) of each originator."""
        found: list[StoredRow] = []
        for start in range(0, len(originator_ids), 500):
            chunk = [self.table.originator(i) for i in originator_ids[start : start + 500]]
            marks = ", ".join(["%s"] * len(chunk))
            sql = self.table.select(f"originator_id IN ({marks}) AND originator_version = 1")
            found.extend(event_row(row) for row in self._raw(sql, chunk))
        return found

    def event_position(self, originator_id: str, version: int) -> int | None:
        sql = self.table.select("originator_id = %s AND originator_version = %s")
        rows = self._raw(sql, [self.table.originator(originator_id), version])
        return int(rows[0]["position"]) if rows else None

    def head(self) -> int:
        row = self._raw(f"SELECT MAX({self.table.position}) AS head FROM {self.table.name}", [])
        return int(row[0]["head"] or 0)

    def count_events(self, until: int) -> int:
        sql = f"SELECT COUNT(*) AS n FROM {self.table.name} WHERE {self.table.position} <= "
        row = self._raw(sql + ("%s" if self.table.kind == "postgres" else "?"), [until])
        return int(row[0]["n"])

    def first_position(self) -> int:
        row = self._raw(f"SELECT MIN({self.table.position}) AS first FROM {self.table.name}", [])
        return int(row[0]["first"] or 0)

    # -------------------------------------------------------------------- chain

    def links(self, after: int = 0, until: int | None = None) -> Iterator[LinkRow]:
        sql = self.store.sql(
            "SELECT position, originator_id, originator_version, content, hash FROM {audit_chain} "
            "WHERE position > %s" + (" AND position <= %s" if until is not None else "")
            + " ORDER BY position LIMIT %s"
        )
        while True:
            params = (after, until, PAGE) if until is not None else (after, PAGE)
            rows = self._tuples(sql, params)
            if not rows:
                return
            for position, originator_id, version, content, hashed in rows:
                yield position, originator_id, version, bytes(content), bytes(hashed)
            after = rows[-1][0]
            if len(rows) < PAGE:
                return

    def link_at_or_before(self, position: int) -> tuple[int, bytes] | None:
        rows = self._raw(
            self.store.sql(
                "SELECT position, hash FROM {audit_chain} WHERE position <= %s "
                "ORDER BY position DESC LIMIT 1"
            ),
            [position],
        )
        return (int(rows[0]["position"]), bytes(rows[0]["hash"])) if rows else None

    def link_position(self, originator_id: str, version: int) -> int | None:
        # No index on the identity: this runs once, at a mismatch, so a scan is fine.
        rows = self._raw(
            self.store.sql(
                "SELECT position FROM {audit_chain} WHERE originator_id = %s "
                "AND originator_version = %s"
            ),
            [originator_id, version],
        )
        return int(rows[0]["position"]) if rows else None

    def hashes(self, positions: Sequence[int]) -> dict[int, str]:
        # By the positions themselves: a filtered page's events may lie far apart.
        found: dict[int, str] = {}
        for start in range(0, len(positions), 500):
            chunk = list(positions[start : start + 500])
            rows = self._raw(
                self.store.sql(
                    "SELECT position, hash FROM {audit_chain} WHERE position IN ("
                    + ", ".join(["%s"] * len(chunk)) + ")"
                ),
                chunk,
            )
            found.update({int(row["position"]): bytes(row["hash"]).hex() for row in rows})
        return found

    def chain_head(self) -> int:
        rows = self._raw(self.store.sql("SELECT MAX(position) AS head FROM {audit_chain}"), [])
        return int(rows[0]["head"] or 0)

    def seals(self) -> dict[int, str]:
        rows = self._raw(self.store.sql("SELECT position, root FROM {audit_seals}"), [])
        return {int(row["position"]): row["root"] for row in rows}

    def seal_rows(self) -> list[Any]:
        return self._raw(self.store.sql("SELECT * FROM {audit_seals} ORDER BY position"), [])
