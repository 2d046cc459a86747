"""In-process turn-taking on aggregate ids (striped locks)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from uuid import UUID

from application.errors import ServiceUnavailable


class Turns:
    """Commands touching the same ids run one at a time in this process.

    Ids map onto a fixed set of locks; the locks a command needs are taken in one
    global order, so two commands can never wait for each other (no deadlock).
    """

    def __init__(self, stripes: int = 1024, wait_seconds: float = 10.0) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._wait = wait_seconds

    @contextmanager
    def taking(self, ids: Iterable[UUID]) -> Iterator[None]:
        stripes = sorted({hash(i) % len(self._locks) for i in ids})
        taken: list[threading.Lock] = []
        try:
            for stripe in stripes:
                lock = self._locks[stripe]
                if not lock.acquire(timeout=self._wait):
                    raise ServiceUnavailable(
                        "another request on the same account or idempotency key "
                        "is taking too long; retry shortly",
                        retry_after=1,
                    )
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
