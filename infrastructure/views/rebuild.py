"""Rebuild: replay the whole log into a fresh generation of tables, then switch.

Readers keep reading the current generation while the next one fills. Once the
rebuild is within a page of the log's head it takes the generation records (live
runners' writes now wait), applies the last events and re-points the readers' views,
all in one transaction: readers see the old views or the complete new ones, never a
partial state, and events recorded meanwhile are applied before the switch or by the
live runner right after it.

A long log is replayed by worker processes, one per group of projections that read
different events (accounts follow the account events; statements, transactions and
the ledger follow the transactions), so decoding, which is most of the work, uses
every core. The switch is still the parent's one transaction.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder

from application.followers import FOLLOWERS
from application.projections import PROJECTIONS
from infrastructure.store import StoreLocation
from infrastructure.views.locks import holding_all, projection_lock
from infrastructure.views.store import ViewStore, record_tracking
from infrastructure.views.writers import make_view

log = structlog.get_logger("projections")

# A process per group; projections in one group read the same events, so one
# process decodes them once. (A third process for transactions alone, decoding them
# twice, was no faster on 2 cores: bench/replay.py, 1M events, 55.0 s against 54.5 s.)
GROUPS = (("accounts",), ("statements", "transactions", "ledger"))
# Below this many events, starting processes costs more than it saves.
PARALLEL_FROM_EVENTS = 100_000

SourceFactory = Callable[[], tuple[Any, ViewStore]]  # (Bank reading the log, its store)


class RebuildRefused(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rebuild of {name!r} is already running")
        self.name = name


class RebuildFailed(Exception):
    pass


@dataclass(frozen=True)
class Progress:
    position: int
    head: int
    events: int  # applied so far
    seconds: float


@dataclass(frozen=True)
class RebuildResult:
    generations: dict[str, int]
    position: int
    events: int
    seconds: float
    processes: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Replayer:
    """Applies events of the log to given generations of some projections' views."""

    def __init__(
        self,
        names: Sequence[str],
        generations: dict[str, int],
        source: Any,
        store: ViewStore,
        page_size: int,
    ) -> None:
        self.source = source
        self.store = store
        self.page_size = page_size
        self.views = {
            n: make_view(n, store, generations[n], live=False, source=source) for n in names
        }
        self.projections = {n: PROJECTIONS[n](self.views[n]) for n in names}
        self.by_topic: dict[str, list[str]] = defaultdict(list)
        for name, projection in self.projections.items():
            for topic in projection.topics:
                self.by_topic[topic].append(name)
        self.topics = list(self.by_topic)
        # Applied events per topic: processes that share a topic each apply its events.
        self.applied: dict[str, int] = defaultdict(int)
        self.earlier = 0  # events applied before this replayer (by worker processes)

    @property
    def events(self) -> int:
        return self.earlier + sum(self.applied.values())

    def positions(self) -> dict[str, int]:
        with self.store.read() as cur:
            return {n: self.store.tracked(cur, v.key) or 0 for n, v in self.views.items()}

    def apply(
        self,
        positions: dict[str, int],
        head: int,
        on_page: Callable[[int], None] = lambda position: None,
    ) -> None:
        """Apply each projection's events after its position, up to ``head``."""
        recorder, mapper = self.source.recorder, self.source.mapper
        position = min(positions.values())
        while position < head:
            page = recorder.select_notifications(
                start=position + 1, limit=self.page_size, stop=head, topics=self.topics
            )
            if not page:
                break
            own: dict[str, list[tuple[Any, int]]] = defaultdict(list)
            for notification in page:
                names = [n for n in self.by_topic[notification.topic] if notification.id > positions[n]]
                if names:
                    self.applied[notification.topic] += 1
                    item = (mapper.to_domain_event(notification), notification.id)
                    for name in names:
                        own[name].append(item)
            position = page[-1].id
            # A transaction per projection and page, each short: on SQLite the write
            # lock is shared with the tellers' postings. (The switch wraps these in its
            # own transaction.)
            for name, items in own.items():
                tracking = Tracking(self.views[name].key, position)
                self.projections[name].process_batch(items, tracking)
                positions[name] = position
            on_page(position)
        for name, done in positions.items():
            positions[name] = max(done, head)


class Rebuild:
    def __init__(
        self,
        names: Sequence[str],
        open_source: SourceFactory,
        location: StoreLocation,
        *,
        worker_source: SourceFactory | None = None,
        page_size: int = 10000,
        processes: int | None = None,
        on_progress: Callable[[Progress], None] = lambda progress: None,
    ) -> None:
        unknown = [n for n in names if n not in PROJECTIONS]
        if unknown:
            raise ValueError(f"unknown projections: {', '.join(unknown)}")
        self.names = list(names)
        self.open_source = open_source
        self.worker_source = worker_source or open_source
        self.location = location
        self.page_size = page_size
        self.processes = processes if processes is not None else min(2, os.cpu_count() or 1)
        self.on_progress = on_progress
        self._started = 0.0

    def run(self) -> RebuildResult:
        with holding_all(self.location, self.names, "rebuild", RebuildRefused):
            source, store = self.open_source()
            try:
                return self._rebuild(source, store)
            finally:
                source.close()

    def _rebuild(self, source: Any, store: ViewStore) -> RebuildResult:
        self._started = time.monotonic()
        store.ensure_schema(list(FOLLOWERS))
        current = store.generations()
        target = {name: current[name] + 1 for name in self.names}
        with store.write() as cur:
            for name in self.names:
                # Tables of an earlier, interrupted rebuild are not to be trusted.
                for generation in store.existing_generations(name):
                    if generation >= target[name]:
                        store.drop_tables(cur, name, generation)
                store.create_tables(cur, name, target[name])

        recorder = source.recorder
        self._analyze(recorder, store)
        head = recorder.max_notification_id() or 0
        groups = [[n for n in group if n in self.names] for group in GROUPS]
        groups = [g for g in groups if g]
        processes = 1
        worker_events = 0
        if self.processes > 1 and len(groups) > 1 and head >= PARALLEL_FROM_EVENTS:
            processes = len(groups)
            worker_events = self._in_processes(groups, target, head)

        replayer = Replayer(self.names, target, source, store, self.page_size)
        replayer.earlier = worker_events
        positions = replayer.positions()

        def show(position: int) -> None:
            seconds = time.monotonic() - self._started
            self.on_progress(Progress(position, latest, replayer.events, seconds))

        while True:
            latest = recorder.max_notification_id() or 0
            if latest - min(positions.values()) <= self.page_size:
                break
            replayer.apply(positions, latest, show)
        with store.write() as cur:
            store.lock_generations(cur, self.names)
            latest = head = recorder.max_notification_id() or 0
            replayer.apply(positions, head, show)
            for name in self.names:
                view = replayer.views[name]
                if head > (store.tracked(cur, view.key) or 0):
                    record_tracking(view._tracking_recorder, cur, Tracking(view.key, head))
                store.switch(cur, name, target[name])
        seconds = time.monotonic() - self._started
        self.on_progress(Progress(head, head, replayer.events, seconds))
        self._drop_replaced(store, current)
        log.info(
            "projections rebuilt", projections=self.names, generations=target, position=head,
            events=replayer.events, seconds=round(seconds, 3), processes=processes,
        )
        return RebuildResult(target, head, replayer.events, seconds, processes)

    @staticmethod
    def _analyze(recorder: Any, store: ViewStore) -> None:
        """Fresh planner statistics for the event table before reading all of it.

        Without them PostgreSQL may read a page by sorting the rest of the log
        (measured: 2 s for the first page of a 1M-event log, 0.04 s after ANALYZE).
        """
        if not isinstance(recorder, PostgresApplicationRecorder):
            return
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        try:
            with store.write() as cur:
                cur.raw.execute(f"ANALYZE {table}")
        except PersistenceError as error:  # e.g. a role that does not own the table
            log.warning("could not analyze the event table", error=str(error))

    def _in_processes(self, groups: list[list[str]], target: dict[str, int], head: int) -> int:
        """Replay (0, head] with a process per group; returns the events they applied."""
        context = multiprocessing.get_context("spawn")  # no fork of pools and threads
        reports: Any = context.Queue()
        workers = [
            context.Process(
                target=_replay_in_process,
                args=(self.worker_source, group, target, head, self.page_size, index, reports),
                name=f"rebuild-{'-'.join(group)}",
            )
            for index, group in enumerate(groups)
        ]
        for worker in workers:
            worker.start()
        positions = [0] * len(workers)
        applied: list[dict[str, int]] = [{} for _ in workers]
        done = 0

        def events() -> int:  # each event once, though two processes may apply it
            topics = {topic for counts in applied for topic in counts}
            return sum(max(counts.get(topic, 0) for counts in applied) for topic in topics)

        while done < len(workers):
            try:
                index, position, counts, finished = reports.get(timeout=1.0)
            except queue.Empty:
                if any(w.exitcode not in (None, 0) for w in workers):
                    break
                continue
            positions[index], applied[index] = position, counts
            done += finished
            seconds = time.monotonic() - self._started
            self.on_progress(Progress(min(positions), head, events(), seconds))
        for worker in workers:
            worker.join()
        failed = [w.name for w in workers if w.exitcode != 0]
        if failed:
            raise RebuildFailed(f"rebuild worker(s) failed: {', '.join(failed)}")
        return events()

    def _drop_replaced(self, store: ViewStore, previous: dict[str, int]) -> None:
        """Drop the replaced tables now if no live runner holds them; else it will."""
        for name in self.names:
            lock = projection_lock(self.location, name, "run")
            if not lock.try_acquire():
                continue
            try:
                with store.write() as cur:
                    for generation in store.existing_generations(name):
                        if generation <= previous[name]:
                            store.drop_tables(cur, name, generation)
            finally:
                lock.release()


def _replay_in_process(
    open_source: SourceFactory,
    names: list[str],
    generations: dict[str, int],
    head: int,
    page_size: int,
    index: int,
    reports: Any,
) -> None:
    source, store = open_source()
    try:
        replayer = Replayer(names, generations, source, store, page_size)
        positions = replayer.positions()
        replayer.apply(
            positions, head,
            lambda position: reports.put((index, position, dict(replayer.applied), 0)),
        )
        reports.put((index, head, dict(replayer.applied), 1))
    finally:
        source.close()

