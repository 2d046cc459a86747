"""Business days and months as instants: [start, end) in the business time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo


def day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    return day_start(day, tz), day_start(day + timedelta(days=1), tz)


def day_last_instant(day: date, tz: tzinfo) -> datetime:
    """The last instant of the day (an inclusive end: ``to=`` a bare date)."""
    return day_start(day + timedelta(days=1), tz) - timedelta(microseconds=1)


def month_days(month: date) -> tuple[date, date]:
    """The first day of the month and the first of the next."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following


def business_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
