"""The bank's business days: a closed day, and every day before it, is final.

One aggregate for the whole bank. Imports of history record on it what they booked,
so an import and a close of the days it books race on this one aggregate's version:
either the close comes first and the import is refused, or the import is in before
the day is closed. Ordinary postings are booked now, on today, which is never closed.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause
from domain.errors import BusinessDayClosed, ValidationFailed

CALENDAR_ID = uuid5(UUID("6f1d7c1e-3b7a-4c59-9a55-0d3c3e6b7a10"), "business-calendar")


class BusinessCalendar(Aggregate):
    class Started(Aggregate.Created):
        cause: Cause

    class DayClosed(Aggregate.Event):
        day: date
        closed_at: datetime
        cause: Cause

    class HistoryImported(Aggregate.Event):
        batch_id: UUID
        first_day: date
        last_day: date
        cause: Cause

    @event(Started)
    def __init__(self, cause: Cause) -> None:
        self.closed_through: date | None = None
        self.closed_at: datetime | None = None  # when closed_through was closed

    @classmethod
    def create_id(cls, cause: Cause) -> UUID:  # one calendar for the whole bank
        return CALENDAR_ID

    def is_open(self, day: date) -> bool:
        return self.closed_through is None or day > self.closed_through

    def check_open(self, day: date) -> None:
        if not self.is_open(day):
            raise BusinessDayClosed(day.isoformat(), str(self.closed_through))

    def close(self, day: date, now: datetime, today: date, cause: Cause) -> bool:
        """False when the day is already final (nothing to record)."""
        if day >= today:
            raise ValidationFailed.at(
                ("path", "date"), f"only a past day can be closed (today is {today.isoformat()})"
            )
        if not self.is_open(day):
            return False
        self._close(day=day, closed_at=now, cause=cause)
        return True

    def record_import(self, batch_id: UUID, first_day: date, last_day: date, cause: Cause) -> None:
        self.check_open(first_day)
        self._imported(batch_id=batch_id, first_day=first_day, last_day=last_day, cause=cause)

    @event(DayClosed)
    def _close(self, day: date, closed_at: datetime, cause: Cause) -> None:
        self.closed_through = day
        self.closed_at = closed_at

    @event(HistoryImported)
    def _imported(self, batch_id: UUID, first_day: date, last_day: date, cause: Cause) -> None:
        pass
