"""Live runners: each keeps one projection's current generation up to date.

A runner takes its projection's lock (waiting while another process holds it), then
follows the log from its tracking record in batches. Each batch is one database
transaction: the rows and the tracking record together, so a runner killed at any
moment resumes exactly after the last batch it committed. When a rebuild switches
generations, the runner's next write is refused and it resumes on the new tables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError, Tracking

from application.followers import FOLLOWERS
from infrastructure.store import StoreLocation
from infrastructure.views.locks import ProjectionLock, acquire_waiting, projection_lock
from infrastructure.views.store import GenerationSuperseded, ViewStore
from infrastructure.views.subscriptions import Doorbell, subscribe
from infrastructure.views.writers import make_view

log = structlog.get_logger("projections")


# Seconds between checks that a runner still holds its lock (a query on PostgreSQL);
# a write by a runner that lost it is refused by the tracking record meanwhile.
LOCK_CHECK_SECONDS = 1.0


class LockLost(Exception):
    """The runner's lock went with its database session: another may hold it now."""


class ProjectionWorker:
    def __init__(
        self,
        name: str,
        source: Any,  # the Bank whose recorder and mapper read the log
        store: ViewStore,
        location: StoreLocation,
        *,
        on_commit: Callable[[str, int], None] = lambda name, position: None,
        doorbell: Doorbell | None = None,
        page_size: int = 1000,
        poll_interval: float = 0.05,
    ) -> None:
        self.name = name
        self.source = source
        self.store = store
        self.location = location
        self.on_commit = on_commit
        self.doorbell = doorbell
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.state = "starting"  # waiting for the lock | running | failed | stopped
        self.failure: str | None = None
        self.position = 0
        self._stopping = threading.Event()
        self._subscription: Any = None
        self._thread = threading.Thread(target=self._run, name=f"projection-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.join(timeout)

    def request_stop(self) -> None:
        self._stopping.set()
        subscription = self._subscription
        if subscription is not None:
            subscription.stop()

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        lock = projection_lock(self.location, self.name, "run")
        while not self._stopping.is_set():
            if not lock.try_acquire():
                self.state = "waiting for the lock"
                log.info("projection runner waits: another runner holds the lock", projection=self.name)
                if not acquire_waiting(lock, self._stopping):
                    break
            try:
                self._follow_generations(lock)
            except LockLost:
                # Another runner may hold it now: stop writing, then queue for it again.
                log.warning("projection runner lost its lock", projection=self.name)
            finally:
                lock.release()
            if self.state == "failed":
                return
        self.state = "stopped"

    def _follow_generations(self, lock: ProjectionLock) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                self._follow(lock)
                backoff = 0.1
            except GenerationSuperseded:
                log.info("projection switched to a rebuilt generation", projection=self.name)
            except LockLost:
                raise
            except PersistenceError as error:
                # The database went away or refused for a moment: resume from the
                # tracking record, which is where the last committed batch ended.
                log.warning("projection runner retries", projection=self.name, error=str(error))
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as error:
                # A bug or an event it cannot apply: stop, loudly, rather than skip
                # an event or spin on it. /readyz and `projections status` show it.
                self.state, self.failure = "failed", f"{type(error).__name__}: {error}"
                log.exception("projection runner failed", projection=self.name)
                return

    def _follow(self, lock: ProjectionLock) -> None:
        generation = self.store.generations()[self.name]
        self._drop_older_generations(generation)
        view = make_view(self.name, self.store, generation, live=True, source=self.source)
        projection = FOLLOWERS[self.name](view)
        raw = getattr(projection, "raw", False)  # the chain hashes stored events as stored
        self.position = view.max_tracking_id() or 0
        self.state = "running"
        subscription = subscribe(
            self.source.recorder, self.position, projection.topics,
            page_size=self.page_size, doorbell=self.doorbell, interval=self.poll_interval,
        )
        self._subscription = subscription
        mapper = self.source.mapper
        with subscription:
            if self._stopping.is_set():
                return
            lock_checked = time.monotonic()
            while True:
                try:
                    batch = subscription.next_batch(self.page_size)
                except StopIteration:
                    return
                if time.monotonic() - lock_checked > LOCK_CHECK_SECONDS:
                    if not lock.still_held():
                        raise LockLost(self.name)
                    lock_checked = time.monotonic()
                items = [(n if raw else mapper.to_domain_event(n), n.id) for n in batch]
                projection.process_batch(items, Tracking(view.key, batch[-1].id))
                self.position = batch[-1].id
                self.on_commit(self.name, self.position)


    def _drop_older_generations(self, current: int) -> None:
        older = [g for g in self.store.existing_generations(self.name) if g < current]
        if older:
            with self.store.write() as cur:
                for generation in older:
                    self.store.drop_tables(cur, self.name, generation)
            log.info("dropped replaced generations", projection=self.name, generations=older)


class ProjectionService:
    """The runners of one process (inside ``backoffice serve`` or on their own)."""

    def __init__(self, workers: Sequence[ProjectionWorker], source: Any) -> None:
        self.workers = list(workers)
        self.source = source

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.request_stop()  # all at once: each takes up to a poll interval
        for worker in self.workers:
            worker.join()
        self.source.close()

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            w.name: {"state": w.state, **({"failure": w.failure} if w.failure else {})}
            for w in self.workers
        }

    def failed(self) -> list[str]:
        return [w.name for w in self.workers if w.state == "failed"]
