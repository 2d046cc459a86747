"""What every projection of the bank's log shares: batches, topics and a row cache."""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection

V = TypeVar("V", bound=TrackingRecorder)
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

# A domain event and its position in the log (a domain event does not carry it).
Item = tuple[DomainEventProtocol[Any], int]


def topic_of(event_class: type) -> str:
    return f"{event_class.__module__}:{event_class.__qualname__}"


class BatchProjection(Projection[V], Generic[V]):
    """A projection that applies many events per database transaction.

    ``process_event`` (the library's one-event interface) is a batch of one, so the
    library's own runner can drive these projections too. The tracking record of a
    batch is its last position, written in the same transaction as the rows.
    """

    name = ""
    topics: tuple[str, ...] = ()

    @abstractmethod
    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        """Apply the events in order and record ``tracking`` with the rows."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        self.process_batch([(domain_event, tracking.notification_id)], tracking)

    def forget(self) -> None:
        """Drop anything remembered between batches (after a failed transaction)."""

    @contextmanager
    def forgetting(self) -> Iterator[None]:
        """Around a batch's writes: a failure leaves nothing remembered that the view
        may not hold."""
        try:
            yield
        except BaseException:
            self.forget()
            raise


class RowCache(Generic[K, R]):
    """The rows a projection wrote last, kept so a batch needs no read-back.

    Only the one runner holding the projection's lock writes its view, so what it
    wrote is what the view holds; any failed transaction clears the cache.
    """

    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self._rows: OrderedDict[K, R] = OrderedDict()

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, R], list[K]]:
        found: dict[K, R] = {}
        missing: list[K] = []
        for key in keys:
            row = self._rows.get(key)
            if row is None:
                missing.append(key)
            else:
                found[key] = row
        return found, missing

    def update(self, rows: dict[K, R]) -> None:
        self._rows.update(rows)
        for key in rows:
            self._rows.move_to_end(key)
        while len(self._rows) > self.maxsize:
            self._rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()
