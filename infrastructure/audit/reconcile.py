"""Reconciliation: replay the log into fresh tables and compare every row with the
live views, at the very positions the live views have reached.

The replay fills scratch tables (the next generation's names, which no reader sees)
while the live runners go on. It first catches up with where the live views were when
it started; then, in one transaction that holds the generation records (live runners'
writes wait, as they do for a rebuild's switch), it applies what the live views applied
meanwhile and compares. The scratch tables are dropped afterwards. A rebuild and a
reconciliation of one projection exclude each other (the rebuild lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog

from application.audit.ports import Difference, Reconciliation
from application.errors import ServiceUnavailable
from application.projections import PROJECTIONS
from infrastructure.store import StoreLocation
from infrastructure.views.locks import holding_all
from infrastructure.views.rebuild import Replayer
from infrastructure.views.store import Cursor, ViewStore, tracking_key
from infrastructure.views.tables import TABLES, Table, generation_table

log = structlog.get_logger("audit")

MAX_DIFFERENCES = 1000
_FETCH = 5000
_PAST_THE_END = 2**62


class Reconciler:
    def __init__(
        self,
        open_source: Callable[[], tuple[Any, ViewStore]],
        location: StoreLocation,
        names: Sequence[str] = (),
        page_size: int = 10000,
    ) -> None:
        self.open_source = open_source
        self.location = location
        self.names = list(names) or list(PROJECTIONS)
        self.page_size = page_size

    def run(self, on_progress: Callable[[int, int], None] = lambda done, total: None) -> Reconciliation:
        # The rebuild's locks: a rebuild and a reconciliation exclude each other.
        with holding_all(self.location, self.names, "rebuild", _refused):
            source, store = self.open_source()
            started = time.monotonic()
            try:
                return self._reconcile(source, store, on_progress, started)
            finally:
                source.close()

    def _reconcile(
        self, source: Any, store: ViewStore, on_progress: Callable[[int, int], None], started: float
    ) -> Reconciliation:
        live = store.generations()
        scratch = {name: live[name] + 1 for name in self.names}
        with store.write() as cur:
            for name in self.names:
                for generation in store.existing_generations(name):
                    if generation >= scratch[name]:
                        store.drop_tables(cur, name, generation)
                store.create_tables(cur, name, scratch[name])
        try:
            replayer = Replayer(self.names, scratch, source, store, self.page_size)
            positions = dict.fromkeys(self.names, 0)
            with store.read() as cur:
                targets = self._live_positions(store, live, cur)
            total = max(targets.values(), default=0)
            self._catch_up(replayer, positions, targets, lambda p: on_progress(p, total))
            with store.write() as cur:
                store.lock_generations(cur, self.names)
                targets = self._live_positions(store, live, cur)
                self._catch_up(replayer, positions, targets, lambda p: on_progress(p, total))
                differences, total_differences, rows = self._compare(cur, store, live, scratch)
        finally:
            with store.write() as cur:
                for name in self.names:
                    store.drop_tables(cur, name, scratch[name])
        on_progress(total, total)
        seconds = time.monotonic() - started
        log.info(
            "reconciled", positions=targets, differences=total_differences, rows=rows,
            seconds=round(seconds, 3),
        )
        return Reconciliation(
            checked_at_position=min(targets.values(), default=0),
            positions=targets,
            differences=differences,
            differences_total=total_differences,
            rows_compared=rows,
            seconds=seconds,
            events=replayer.events,
        )

    def _live_positions(self, store: ViewStore, live: dict[str, int], cur: Cursor) -> dict[str, int]:
        return {n: store.tracked(cur, tracking_key(n, live[n])) or 0 for n in self.names}

    def _catch_up(
        self,
        replayer: Replayer,
        positions: dict[str, int],
        targets: dict[str, int],
        on_page: Callable[[int], None],
    ) -> None:
        """Bring each scratch view exactly to its live view's position (never past it)."""
        for target in sorted(set(targets.values())):
            behind = [n for n in self.names if targets[n] >= target and positions[n] < target]
            if not behind:
                continue
            # The replayer applies an event to every projection whose position is below
            # it: the others are marked as past the end, so they stay where they are.
            applying = {n: positions[n] if n in behind else _PAST_THE_END for n in self.names}
            replayer.apply(applying, target, on_page)
            positions.update({n: target for n in behind})

    def _compare(
        self, cur: Cursor, store: ViewStore, live: dict[str, int], scratch: dict[str, int]
    ) -> tuple[list[Difference], int, int]:
        differences: list[Difference] = []
        total = 0
        rows = 0
        for name in self.names:
            for table in TABLES[name]:
                live_rows = _rows(store, cur, table, live[name])
                replayed_rows = _rows(store, cur, table, scratch[name])
                for key, left, right in _merge(table, live_rows, replayed_rows):
                    rows += 1
                    if left == right:
                        continue
                    total += 1
                    if len(differences) < MAX_DIFFERENCES:
                        differences.append(
                            Difference(name, {"table": table.base, **key}, left, right)
                        )
        return differences, total, rows


def _refused(name: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"a rebuild or reconciliation of {name!r} is running; retry when it ends", retry_after=5
    )


def _key_columns(table: Table) -> list[str]:
    return [column.strip() for column in table.primary_key.split(",")]


def _rows(store: ViewStore, cur: Cursor, table: Table, generation: int) -> Iterator[dict[str, Any]]:
    """Every row of one generation's table, in key order, streamed."""
    name = store.sql("{" + generation_table(table.base, generation) + "}")
    # The merge compares keys in Python, so the database must order text bytewise.
    collate = ' COLLATE "C"' if store.kind == "postgres" else ""
    text_columns = {
        part.split()[0] for part in table.columns.split(",") if part.split()[1].upper() == "TEXT"
    }
    order = ", ".join(f"{c}{collate if c in text_columns else ''}" for c in _key_columns(table))
    sql = f"SELECT * FROM {name} ORDER BY {order}"
    if store.kind == "postgres":
        with cur.raw.connection.cursor(name=f"reconcile_{table.base}_{generation}") as named:
            named.itersize = _FETCH
            named.execute(sql)
            for row in named:
                yield {k: _plain(v) for k, v in row.items()}
    else:
        raw = cur.raw.connection.cursor()
        try:
            raw.execute(sql)
            while batch := raw.fetchmany(_FETCH):
                for row in batch:
                    yield {k: _plain(row[k]) for k in row.keys()}  # noqa: SIM118 (a sqlite3.Row iterates its values)
        finally:
            raw.close()


def _plain(value: Any) -> Any:
    return bytes(value).hex() if isinstance(value, bytes | memoryview) else value


def _merge(
    table: Table, live: Iterator[dict[str, Any]], replayed: Iterator[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]]:
    keys = _key_columns(table)

    def key_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in keys)

    left = next(live, None)
    right = next(replayed, None)
    while left is not None or right is not None:
        if right is None or (left is not None and key_of(left) < key_of(right)):
            assert left is not None
            yield dict(zip(keys, key_of(left), strict=True)), left, None
            left = next(live, None)
        elif left is None or key_of(right) < key_of(left):
            yield dict(zip(keys, key_of(right), strict=True)), None, right
            right = next(replayed, None)
        else:
            yield dict(zip(keys, key_of(left), strict=True)), left, right
            left, right = next(live, None), next(replayed, None)
