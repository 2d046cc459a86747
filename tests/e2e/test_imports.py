"""Imports of history (admin only): accounts opened in the past, batch items booked in the
past, in order, on open business days; closing business days."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from e2e_helpers import (
    AUTO,
    RFC3339,
    ReadYourWritesClient,
    account,
    deposit,
    get,
    ok,
    open_account,
    post,
    problem,
)
from httpx import Response

from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from interfaces.http.app import create_app

# --- helpers -------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(days: int, hour: int = 12, minute: int = 0) -> datetime:
    """That time of the (UTC) day ``days`` days before today."""
    return datetime.combine(today() - timedelta(days=days), time(hour, minute), tzinfo=UTC)


def dep(account_id: str, amount: str, booked_at: datetime | None = None, **fields: Any) -> dict:
    item = {"type": "deposit", "account_id": account_id, "amount": amount, "currency": "EUR",
            "channel": "wire", **fields}
    if booked_at is not None:
        item["booked_at"] = iso(booked_at)
    return item


def wd(account_id: str, amount: str, booked_at: datetime | None = None) -> dict:
    return {**dep(account_id, amount, booked_at), "type": "withdrawal"}


def xfer(source: str, destination: str, amount: str, booked_at: datetime) -> dict:
    return {"type": "transfer", "from_account_id": source, "to_account_id": destination,
            "amount": amount, "currency": "EUR", "booked_at": iso(booked_at)}


def batch(client, key, items: list, atomic: bool = True, idem: Any = AUTO) -> Response:
    return post(client, "/v1/batches", key, {"atomic": atomic, "items": items}, idem=idem)


def close_day(client, key, day: date | str, idem: Any = AUTO) -> Response:
    return post(client, f"/v1/business-days/{day}/close", key, idem=idem)


def imported_account(client, admin, opened_days_ago: int = 60) -> str:
    """An account for imported history, opened ``opened_days_ago`` days ago."""
    return open_account(client, admin, opened_at=iso(days_ago(opened_days_ago, 8)))[
        "account_id"]


def ledger(client, key, account_id: str) -> str:
    return account(client, key, account_id)["ledger_balance"]


def ledger_as_of(client, key, account_id: str, as_of: datetime) -> str:
    path = f"/v1/accounts/{account_id}/balance?as_of={iso(as_of)}"
    return ok(get(client, path, key), 200)["ledger_balance"]


def statement_lines(client, key, account_id: str) -> list[tuple[str, str, str, str]]:
    """(booked_at, kind, amount, balance_after) per statement entry, in statement order."""
    body = ok(get(client, f"/v1/accounts/{account_id}/statement", key), 200)
    return [(e["booked_at"], e["kind"], e["amount"], e["balance_after"]) for e in body["entries"]]


def results(body: dict) -> list[tuple[str, str | None]]:
    """(status, the error's code or None) per result."""
    return [(r["status"], r.get("error", {}).get("code")) for r in body["results"]]


# --- importing -------------------------------------------------------------------------


def test_an_import_books_in_the_past_and_records_now(client, admin):
    aid = imported_account(client, admin)
    started = datetime.now(UTC)
    items = [dep(aid, "100.00", days_ago(20)), wd(aid, "30.00", days_ago(10)),
             dep(aid, "5.00", days_ago(10))]  # equal times are in order
    body = ok(batch(client, admin, items), 201)
    txns = [r["transaction"] for r in body["results"]]
    assert [t["booked_at"] for t in txns] == [item["booked_at"] for item in items]
    for txn in txns:
        assert RFC3339.match(txn["recorded_at"])
        assert datetime.fromisoformat(txn["recorded_at"]) >= started  # real time
    assert ledger(client, admin, aid) == "75.00"
    assert ledger_as_of(client, admin, aid, days_ago(15)) == "100.00"
    assert ledger_as_of(client, admin, aid, days_ago(10)) == "75.00"
    assert ledger_as_of(client, admin, aid, days_ago(25)) == "0.00"
    read = ok(get(client, f"/v1/transactions/{txns[0]['transaction_id']}", admin), 200)
    assert read["booked_at"] == items[0]["booked_at"]


def test_statements_order_entries_by_booked_at(client, teller, admin):
    aid = imported_account(client, admin)
    now = ok(deposit(client, teller, aid, "100.00"), 201)
    ok(batch(client, admin, [dep(aid, "30.00", days_ago(5))]), 201)
    ok(batch(client, admin, [wd(aid, "10.00", days_ago(7)), dep(aid, "1.00", days_ago(6))]),
       201)
    assert statement_lines(client, teller, aid) == [
        (iso(days_ago(7)), "withdrawal", "10.00", "-10.00"),
        (iso(days_ago(6)), "deposit", "1.00", "-9.00"),
        (iso(days_ago(5)), "deposit", "30.00", "21.00"),
        (now["booked_at"], "deposit", "100.00", "121.00"),
    ]
    assert ledger(client, teller, aid) == "121.00"


def test_a_transfer_can_be_imported(client, admin):
    a, b = imported_account(client, admin), imported_account(client, admin)
    ok(batch(client, admin, [dep(a, "50.00", days_ago(9)), xfer(a, b, "20.00", days_ago(8))]),
       201)
    assert (ledger(client, admin, a), ledger(client, admin, b)) == ("30.00", "20.00")
    assert ledger_as_of(client, admin, b, days_ago(9)) == "0.00"
    assert ledger_as_of(client, admin, b, days_ago(8)) == "20.00"


def test_a_reversal_of_an_import_is_booked_now(client, admin):
    aid = imported_account(client, admin)
    body = ok(batch(client, admin, [dep(aid, "40.00", days_ago(3))]), 201)
    txn = body["results"][0]["transaction"]
    reversal = ok(post(client, f"/v1/transactions/{txn['transaction_id']}/reverse", admin,
                       {"reason": "imported twice"}), 201)
    assert reversal["booked_at"] == reversal["recorded_at"]
    assert ledger_as_of(client, admin, aid, days_ago(2)) == "40.00"
    assert ledger(client, admin, aid) == "0.00"


def test_an_import_replays(client, admin):
    aid = imported_account(client, admin)
    items = [dep(aid, "12.00", days_ago(4))]
    first = ok(batch(client, admin, items, idem="import-1"), 201)
    again = batch(client, admin, items, idem="import-1")
    assert again.status_code == 201 and again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    assert ledger(client, admin, aid) == "12.00"


# --- what an import may not do ---------------------------------------------------------


@pytest.mark.parametrize("role", ["teller", "auditor", "compliance"])
def test_only_an_admin_imports(client, keys, role):
    aid = imported_account(client, keys["admin"])
    items = [dep(aid, "1.00"), dep(aid, "1.00", days_ago(3))]
    # 403 before the idempotency key, the size and the form are looked at.
    problem(batch(client, keys[role], items, idem=None), 403, "forbidden")
    problem(batch(client, keys[role], items + [{"type": "?"}] * 1000), 403, "forbidden")
    problem(batch(client, keys[role], [{**dep(aid, "1.001"), "booked_at": "soon"}]), 403,
            "forbidden")
    assert ledger(client, keys["admin"], aid) == "0.00"


def test_a_teller_batch_may_say_booked_at_null(client, teller):
    aid = open_account(client, teller)["account_id"]
    body = ok(batch(client, teller, [{**dep(aid, "2.00"), "booked_at": None}]), 201)
    txn = body["results"][0]["transaction"]
    assert txn["booked_at"] == txn["recorded_at"]


def test_a_bad_booked_at_is_422_naming_the_item(client, admin):
    aid = imported_account(client, admin)
    for booked_at in (iso(datetime.now(UTC) + timedelta(hours=1)), "2999-01-01T00:00:00Z",
                      days_ago(3).replace(tzinfo=None).isoformat(), "last tuesday",
                      1700000000):
        items = [dep(aid, "1.00", days_ago(5)), {**dep(aid, "1.00"), "booked_at": booked_at}]
        found = problem(batch(client, admin, items), 422, "validation_error")
        assert [e["loc"][:3] for e in found["errors"]] == [["body", "items", 1]], booked_at
        assert found["errors"][0]["loc"][-1] == "booked_at"
    assert ledger(client, admin, aid) == "0.00"


def test_booked_at_must_not_decrease_within_a_batch(client, admin):
    aid = imported_account(client, admin)
    items = [dep(aid, "1.00", days_ago(5)), dep(aid, "1.00", days_ago(3)),
             dep(aid, "1.00", days_ago(4)), dep(aid, "1.00", days_ago(2))]
    for atomic in (True, False):
        found = problem(batch(client, admin, items, atomic=atomic), 422, "validation_error")
        assert [e["loc"] for e in found["errors"]] == [["body", "items", 2, "booked_at"]]
    assert ledger(client, admin, aid) == "0.00"


def test_nothing_is_booked_before_its_account_opened(client, admin):
    aid = open_account(client, admin, opened_at=iso(days_ago(10, 9)))["account_id"]
    other = open_account(client, admin)["account_id"]  # opened now
    items = [dep(aid, "1.00", days_ago(11)), dep(aid, "2.00", days_ago(10, 8, 59)),
             dep(aid, "4.00", days_ago(10, 9)), dep(other, "8.00", days_ago(1)),
             xfer(aid, other, "1.00", days_ago(1))]
    body = ok(batch(client, admin, items, atomic=False), 201)
    assert [status for status, _ in results(body)] == [
        "rejected", "rejected", "posted", "rejected", "rejected"]
    problem(batch(client, admin, items[:3], atomic=True), 409, "batch_rejected")
    assert (ledger(client, admin, aid), ledger(client, admin, other)) == ("4.00", "0.00")


# --- business days ---------------------------------------------------------------------


def test_closing_a_business_day(client, admin):
    day = today() - timedelta(days=10)
    closed = ok(close_day(client, admin, day), 200)
    assert set(closed) == {"date", "closed_at", "position"}
    assert closed["date"] == day.isoformat()
    assert RFC3339.match(closed["closed_at"])
    assert isinstance(closed["position"], int)
    # Closing an already final day (that one, or one before it) changes nothing.
    for final in (day, day - timedelta(days=3)):
        again = ok(close_day(client, admin, final), 200)
        assert again["date"] == final.isoformat()
        assert again["closed_at"] == closed["closed_at"]
    aid = imported_account(client, admin)
    body = ok(batch(client, admin, [dep(aid, "1.00", days_ago(10)),
                                    dep(aid, "2.00", days_ago(9))], atomic=False), 201)
    assert results(body) == [("rejected", "business_day_closed"), ("posted", None)]


def test_closing_an_already_final_day_writes_no_position(client, admin):
    day = today() - timedelta(days=10)
    closed = ok(close_day(client, admin, day), 200)
    assert isinstance(closed["position"], int)
    # Only the idempotency record is written (the contract keeps every outcome):
    # no event of the calendar, so no position.
    again = ok(close_day(client, admin, day), 200)
    assert again["position"] is None
    assert again["closed_at"] == closed["closed_at"]


def test_nothing_more_is_booked_on_or_before_a_closed_day(client, teller, admin):
    aid = imported_account(client, admin)
    day = today() - timedelta(days=10)
    ok(close_day(client, admin, day), 200)
    end_of_day = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=UTC)
    items = [dep(aid, "1.00", days_ago(20)), dep(aid, "2.00", end_of_day),
             dep(aid, "4.00", end_of_day + timedelta(microseconds=1)),
             dep(aid, "8.00", days_ago(2))]
    found = problem(batch(client, admin, items, atomic=True), 409, "batch_rejected")
    assert [(i["index"], i["code"]) for i in found["items"]] == [
        (0, "business_day_closed"), (1, "business_day_closed")]
    assert ledger(client, admin, aid) == "0.00"

    body = ok(batch(client, admin, items, atomic=False), 201)
    assert results(body) == [("rejected", "business_day_closed"),
                             ("rejected", "business_day_closed"), ("posted", None),
                             ("posted", None)]
    assert ledger(client, admin, aid) == "12.00"
    # Today's postings are not imports: a closed past day does not touch them.
    ok(deposit(client, teller, aid, "0.50"), 201)
    assert ledger(client, admin, aid) == "12.50"


def test_closing_a_later_day_closes_the_days_before(client, admin):
    aid = imported_account(client, admin)
    ok(close_day(client, admin, today() - timedelta(days=20)), 200)
    ok(batch(client, admin, [dep(aid, "1.00", days_ago(15))]), 201)
    ok(close_day(client, admin, today() - timedelta(days=5)), 200)
    body = ok(batch(client, admin, [dep(aid, "2.00", days_ago(15)),
                                    dep(aid, "4.00", days_ago(4))], atomic=False), 201)
    assert results(body) == [("rejected", "business_day_closed"), ("posted", None)]
    assert ledger(client, admin, aid) == "5.00"


def test_only_a_past_day_is_closed(client, admin):
    aid = imported_account(client, admin)
    for day in (today(), today() + timedelta(days=1), "2999-12-31", "2026-13-01",
                "yesterday", "20240101", "2024-1-1"):
        found = problem(close_day(client, admin, day), 422, "validation_error")
        assert ["path", "date"] in [e["loc"] for e in found["errors"]], day
    ok(batch(client, admin, [dep(aid, "1.00", days_ago(1))]), 201)  # nothing was closed


def test_closing_a_day_is_for_admins(client, keys):
    day = today() - timedelta(days=3)
    problem(close_day(client, None, day), 401, "unauthorized")
    for role in ("teller", "auditor", "compliance"):
        problem(close_day(client, keys[role], day, idem=None), 403, "forbidden")
    problem(close_day(client, keys["admin"], day, idem=None), 400, "idempotency_key_required")
    problem(post(client, f"/v1/business-days/{day}/close", keys["admin"], {"reason": "x"}),
            422, "validation_error")
    aid = imported_account(client, keys["admin"])
    ok(batch(client, keys["admin"], [dep(aid, "1.00", days_ago(3))]), 201)  # still open


def test_closing_a_day_replays(client, admin):
    day = today() - timedelta(days=4)
    first = ok(close_day(client, admin, day, idem="close-1"), 200)
    again = close_day(client, admin, day, idem="close-1")
    assert again.status_code == 200 and again.json() == first
    assert again.headers["idempotent-replayed"] == "true"


def test_business_days_are_in_the_business_time_zone(database_url, make_key):
    """Pacific/Kiritimati is UTC+14: 12:00Z is already the next business day there."""
    admin = make_key("admin", "tz-ops")[1]
    zone = "Pacific/Kiritimati"
    zoned = bootstrap(database_url=database_url, business_tz=zone)
    try:
        app = create_app(Settings(database_url=database_url, business_tz=zone,
                                  hold_sweep_seconds=0), bank=zoned)
        with ReadYourWritesClient(app) as client:
            aid = imported_account(client, admin)
            day = today() - timedelta(days=10)  # UTC calendar day
            ok(close_day(client, admin, day), 200)
            late = datetime.combine(day, time(9, 59), tzinfo=UTC)  # 23:59 there
            next_day = datetime.combine(day, time(10, 0), tzinfo=UTC)  # 00:00 next day
            body = ok(batch(client, admin, [dep(aid, "1.00", late), dep(aid, "2.00", next_day)],
                            atomic=False), 201)
            assert results(body) == [("rejected", "business_day_closed"), ("posted", None)]
    finally:
        zoned.close()


def test_a_close_racing_an_import_of_that_day(client, admin):
    """Either the import is in before the day closes, or it is refused: never after."""
    aid = imported_account(client, admin)
    for days in (30, 25, 20, 15, 10):
        day = today() - timedelta(days=days)
        barrier = threading.Barrier(2)

        def run(which: int, day: date = day, days: int = days,
                barrier: threading.Barrier = barrier) -> Response:
            barrier.wait()
            if which == 0:
                return close_day(client, admin, day)
            return batch(client, admin, [dep(aid, "1.00", days_ago(days))])

        with ThreadPoolExecutor(2) as pool:
            closed, imported = pool.map(run, (0, 1))
        closed_at = ok(closed, 200)["position"]
        if imported.status_code == 201:
            assert ok(imported, 201)["position"] < closed_at, days
        else:
            found = problem(imported, 409, "batch_rejected")
            assert [i["code"] for i in found["items"]] == ["business_day_closed"]
