"""One writer per view: a lock per projection (and per rebuild) across processes.

PostgreSQL: a session advisory lock on a connection kept for the runner's life.
SQLite: ``flock`` on a file beside the database. Both are released by the operating
system or the server when the holder dies, so a killed runner never blocks its
successor. Tracking records would refuse a second writer anyway (a position can be
recorded once); the lock makes the second runner wait instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import psycopg

from infrastructure.store import StoreLocation


class ProjectionLock(Protocol):
    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def still_held(self) -> bool:
        """False once the lock is lost (its PostgreSQL session ended)."""


class FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def still_held(self) -> bool:
        return self._fd is not None  # only this process can give it up


class AdvisoryLock:
    def __init__(self, location: StoreLocation, key: str) -> None:
        self.location = location
        self.key = key
        self._conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        loc = self.location
        conn = psycopg.connect(
            host=loc.host, port=loc.port, user=loc.user, password=loc.password or None,
            dbname=loc.dbname, autocommit=True, connect_timeout=5,
            application_name="backoffice-projection-lock",
        )
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        if self._conn is not None:
            # Unlock first: closing alone frees the lock only once the server has ended
            # the session, so the next rebuild or reconciliation could find it taken.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            self._conn.close()
            self._conn = None

    def still_held(self) -> bool:
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


def projection_lock(location: StoreLocation, name: str, purpose: str) -> ProjectionLock:
    """``purpose`` is ``run`` (the live runner) or ``rebuild``."""
    if location.kind == "postgres":
        return AdvisoryLock(location, f"backoffice:{location.schema or 'public'}:{purpose}:{name}")
    assert location.path is not None
    return FileLock(f"{location.path}.{purpose}-{name}.lock")


def acquire_waiting(lock: ProjectionLock, stopping: threading.Event, interval: float = 0.5) -> bool:
    """Wait for the lock until it is ours (True) or ``stopping`` is set (False)."""
    while not stopping.is_set():
        if lock.try_acquire():
            return True
        stopping.wait(interval)
    return False


@contextlib.contextmanager
def holding_all(
    location: StoreLocation, names: list[str], purpose: str, refused: Callable[[str], Exception]
) -> Iterator[None]:
    """Each projection's lock for ``purpose``, all or none, held for the block; the
    first name whose lock another holds is raised as ``refused(name)``."""
    taken: list[ProjectionLock] = []
    try:
        for name in names:
            lock = projection_lock(location, name, purpose)
            if not lock.try_acquire():
                raise refused(name)
            taken.append(lock)
        yield
    finally:
        for held in taken:
            held.release()
