"""The business calendar: a closed day, and every day before it, is final."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate

from domain.calendar import CALENDAR_ID, BusinessCalendar
from domain.cause import Cause
from domain.errors import BusinessDayClosed, ValidationFailed
from infrastructure.bootstrap import bootstrap

CAUSE = Cause(actor_key_id="key-2", actor_role="admin", request_id="req-2", via="api")
NOW = datetime(2030, 3, 10, 20, 0, tzinfo=UTC)
TODAY = date(2030, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)


def a_calendar() -> BusinessCalendar:
    calendar = BusinessCalendar(cause=CAUSE)
    calendar.collect_events()
    return calendar


def test_there_is_one_calendar_and_every_day_starts_open() -> None:
    calendar = BusinessCalendar(cause=CAUSE)
    assert calendar.id == CALENDAR_ID
    assert calendar.closed_through is None
    assert calendar.is_open(date(1999, 1, 1))
    calendar.check_open(date(1999, 1, 1))


def test_closing_a_past_day_makes_it_and_every_day_before_it_final() -> None:
    calendar = a_calendar()
    assert calendar.close(YESTERDAY, NOW, TODAY, CAUSE) is True
    assert (calendar.closed_through, calendar.closed_at) == (YESTERDAY, NOW)
    [closed] = calendar.collect_events()
    assert isinstance(closed, BusinessCalendar.DayClosed)
    assert closed.day == YESTERDAY
    for day in (YESTERDAY, YESTERDAY - timedelta(days=400)):
        assert not calendar.is_open(day)
    assert calendar.is_open(TODAY)


@pytest.mark.parametrize("day", [TODAY, TODAY + timedelta(days=1)])
def test_today_and_the_future_cannot_be_closed(day: date) -> None:
    calendar = a_calendar()
    with pytest.raises(ValidationFailed) as refused:
        calendar.close(day, NOW, TODAY, CAUSE)
    assert refused.value.errors[0][0] == ("path", "date")
    assert calendar.closed_through is None
    assert calendar.collect_events() == []


@pytest.mark.parametrize("day", [YESTERDAY, YESTERDAY - timedelta(days=3)])
def test_closing_a_day_already_final_records_nothing(day: date) -> None:
    calendar = a_calendar()
    calendar.close(YESTERDAY, NOW, TODAY, CAUSE)
    calendar.collect_events()
    assert calendar.close(day, NOW + timedelta(hours=1), TODAY, CAUSE) is False
    assert (calendar.closed_through, calendar.closed_at) == (YESTERDAY, NOW)
    assert calendar.collect_events() == []


def test_a_later_close_moves_the_final_day_forward() -> None:
    calendar = a_calendar()
    calendar.close(YESTERDAY - timedelta(days=5), NOW, TODAY, CAUSE)
    calendar.close(YESTERDAY, NOW + timedelta(hours=1), TODAY, CAUSE)
    assert calendar.closed_through == YESTERDAY
    assert calendar.closed_at == NOW + timedelta(hours=1)


def test_check_open_refuses_a_closed_day_naming_it_and_the_last_final_day() -> None:
    calendar = a_calendar()
    calendar.close(YESTERDAY, NOW, TODAY, CAUSE)
    with pytest.raises(BusinessDayClosed) as refused:
        calendar.check_open(YESTERDAY - timedelta(days=2))
    assert refused.value.code == "business_day_closed"
    assert refused.value.extra() == {
        "date": (YESTERDAY - timedelta(days=2)).isoformat(),
        "closed_through": YESTERDAY.isoformat(),
    }
    calendar.check_open(TODAY)


def test_an_import_is_recorded_on_open_days_only() -> None:
    calendar = a_calendar()
    calendar.close(YESTERDAY - timedelta(days=3), NOW, TODAY, CAUSE)
    calendar.collect_events()
    batch = uuid4()
    calendar.record_import(batch, YESTERDAY - timedelta(days=2), YESTERDAY, CAUSE)
    [imported] = calendar.collect_events()
    assert isinstance(imported, BusinessCalendar.HistoryImported)
    assert (imported.batch_id, imported.first_day) == (batch, YESTERDAY - timedelta(days=2))
    with pytest.raises(BusinessDayClosed):
        calendar.record_import(uuid4(), YESTERDAY - timedelta(days=3), YESTERDAY, CAUSE)
    assert calendar.collect_events() == []


def test_replaying_the_calendar_rebuilds_it() -> None:
    calendar = BusinessCalendar(cause=CAUSE)
    calendar.close(YESTERDAY - timedelta(days=1), NOW, TODAY, CAUSE)
    calendar.record_import(uuid4(), YESTERDAY, YESTERDAY, CAUSE)
    calendar.close(YESTERDAY, NOW, TODAY, CAUSE)
    rebuilt = project_aggregate(None, calendar.collect_events())
    assert rebuilt == calendar
    assert rebuilt.closed_through == YESTERDAY


# ------------------------------------------------------------ through the Bank


def test_the_bank_closes_days_of_its_business_time_zone() -> None:
    # 20:00 UTC on the 10th is already the 11th in Auckland.
    utc = bootstrap(database_url="memory://", business_tz="UTC")
    auckland = bootstrap(database_url="memory://", business_tz="Pacific/Auckland")
    try:
        for bank in (utc, auckland):
            bank.clock = lambda: NOW
        with pytest.raises(ValidationFailed):
            utc.close_business_day(TODAY, CAUSE)
        closed = auckland.close_business_day(TODAY, CAUSE)
        assert closed.body == {"date": TODAY.isoformat(), "closed_at": "2030-03-10T20:00:00Z"}
        assert closed.position is not None
        assert auckland.closed_through() == TODAY
        again = auckland.close_business_day(YESTERDAY, CAUSE)
        assert again.position is None  # already final: nothing written
        assert again.body["closed_at"] == "2030-03-10T20:00:00Z"
        assert utc.closed_through() is None
    finally:
        utc.close()
        auckland.close()
