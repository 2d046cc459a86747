"""The auditors' endpoints over HTTP: the event feed (/v1/audit/events), account
histories, balances as booked at a moment (JSON and CSV), verification of the hash
chain, reconciliation, and who may call them.

The store is fresh for each test, so the feed holds the test's own events (and the
API keys its fixtures created) and nothing else.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

import pytest
from e2e_helpers import (
    RFC3339,
    UNKNOWN_ID,
    account,
    deposit,
    get,
    ok,
    open_account,
    post,
    problem,
    transfer,
    withdraw,
)
from fastapi.testclient import TestClient

from application.bank import Bank
from domain.cause import Cause
from infrastructure.bootstrap import start_projections
from infrastructure.settings import Settings
from infrastructure.views.tables import generation_table
from interfaces.http.app import create_app

EVENT_FIELDS = {
    "position", "recorded_at", "originator_id", "originator_version", "type", "data",
    "actor", "request_id", "via", "hash",
}
ACCOUNT_FIELDS = {
    "account_id", "customer_id", "currency", "product", "status", "ledger_balance",
    "available_balance", "held_amount", "overdraft_limit", "opened_at", "version",
}
BALANCE_COLUMNS = ["account_id", "customer_id", "currency", "ledger_balance"]


# --------------------------------------------------------------------------- helpers


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def shifted(text: str, microseconds: int) -> str:
    return iso(parse(text) + timedelta(microseconds=microseconds))


def moment() -> datetime:
    """Now, strictly between the writes before and after it."""
    time.sleep(0.003)
    now = datetime.now(UTC)
    time.sleep(0.003)
    return now


def feed_response(client, key, **params: Any):
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return get(client, "/v1/audit/events" + (f"?{query}" if query else ""), key)


def feed(client, key, **params: Any) -> dict:
    body = ok(feed_response(client, key, **params), 200)
    assert set(body) == {"events", "next_after"}, body.keys()
    return body


def feed_all(client, key, limit: int, **params: Any) -> list[dict]:
    """Every event the filters let through, page by page, checking each page."""
    found: list[dict] = []
    after = params.pop("after", 0)
    pages = 0
    while True:
        page = feed(client, key, after=after, limit=limit, **params)
        events = page["events"]
        assert len(events) <= limit
        if not events:
            assert page["next_after"] == after
            return found
        assert page["next_after"] == events[-1]["position"]
        assert all(e["position"] > after for e in events)
        found.extend(events)
        after = page["next_after"]
        pages += 1
        assert pages < 10_000


def by_request(events: list[dict], request_id: str) -> list[dict]:
    return [e for e in events if e["request_id"] == request_id]


def posted_with_id(client, path: str, key: str, body: dict, request_id: str) -> dict:
    response = post(client, path, key, body, extra={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    return response.json() | {"_status": response.status_code}


def history(client, key, account_id: str) -> dict:
    return ok(get(client, f"/v1/audit/accounts/{account_id}/history", key), 200)


def balances(client, key, as_of: str, form: str | None = None):
    path = f"/v1/audit/balances?as_of={quote(as_of)}"
    if form is not None:
        path += f"&format={form}"
    return get(client, path, key)


def balances_json(client, key, as_of: str) -> dict:
    body = ok(balances(client, key, as_of), 200)
    assert set(body) == {"as_of", "as_of_position", "accounts", "totals"}, body.keys()
    return body


def verify(client, key, body: Any = None, idem: Any = None):
    return post(client, "/v1/audit/verify", key, body, idem=idem)


def exported(bank: Bank) -> list[dict]:
    lines: list[str] = []
    bank.audit.export(lines.append)  # type: ignore[union-attr]
    return [json.loads(line) for line in lines]


def recomputed_chain(lines: list[dict]) -> dict[int, str]:
    """The chain's hash at each position, from the exported stored events, by the
    documented formula (application/audit/chain.py), without the bank's code."""
    header, *events, trailer = lines
    assert header["kind"] == "header" and trailer["kind"] == "end"
    previous = bytes.fromhex(header["previous_hash"])
    found: dict[int, str] = {}
    for line in events:
        content = hashlib.sha256(
            line["originator_id"].replace("-", "").encode() + b"\x00"
            + str(line["originator_version"]).encode() + b"\x00"
            + line["topic"].encode() + b"\x00" + line["state"].encode()
        ).digest()
        previous = hashlib.sha256(
            previous + line["position"].to_bytes(8, "big") + content
        ).digest()
        found[line["position"]] = previous.hex()
    assert trailer["root"] == previous.hex()
    return found


@pytest.fixture
def teller_key(make_key) -> tuple[str, str]:
    """(key id, secret) of a teller's key."""
    view, secret = make_key("teller", "audited-teller")
    return view["key_id"], secret


@pytest.fixture
def admin_key(make_key) -> tuple[str, str]:
    view, secret = make_key("admin", "audited-admin")
    return view["key_id"], secret


# -------------------------------------------------------------------------- the feed


def test_the_feed_shows_each_event_with_who_caused_it(client, auditor, teller_key, admin_key):
    teller_id, teller = teller_key
    admin_id, admin = admin_key
    customer = ok(post(client, "/v1/customers", teller,
                       {"name": "Ada", "kind": "person", "country": "GB"},
                       extra={"X-Request-ID": "audit-customer"}), 201)
    opened = posted_with_id(client, "/v1/accounts", teller,
                            {"customer_id": customer["customer_id"], "currency": "EUR"},
                            "audit-open")
    a = opened["account_id"]
    dep = posted_with_id(client, "/v1/deposits", teller,
                         {"account_id": a, "amount": "100.00", "currency": "EUR",
                          "channel": "cash", "reference": "first"}, "audit-deposit")
    wd = posted_with_id(client, "/v1/withdrawals", teller,
                        {"account_id": a, "amount": "30.50", "currency": "EUR",
                         "channel": "wire"}, "audit-withdrawal")
    frozen = posted_with_id(client, f"/v1/accounts/{a}/freeze", admin,
                            {"reason": "kyc review"}, "audit-freeze")
    assert (dep["_status"], wd["_status"], frozen["_status"]) == (201, 201, 200)

    everything = feed(client, auditor, limit=1000)["events"]
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for event in everything:
        assert set(event) >= EVENT_FIELDS, event.keys()
        assert RFC3339.match(event["recorded_at"]), event
        assert isinstance(event["originator_version"], int) and event["originator_version"] >= 1
        assert event["hash"] is not None and len(event["hash"]) == 64

    # The account's own events, in order, with the cause of each.
    own = [e for e in everything if e["originator_id"] == a]
    assert [(e["type"], e["originator_version"]) for e in own] == [
        ("Opened", 1), ("FundsCredited", 2), ("FundsDebited", 3), ("Frozen", 4)]
    assert {e["aggregate"] for e in own} == {"Account"}
    assert [e["request_id"] for e in own] == [
        "audit-open", "audit-deposit", "audit-withdrawal", "audit-freeze"]
    assert [e["actor"] for e in own] == [{"key_id": teller_id, "role": "teller"}] * 3 + [
        {"key_id": admin_id, "role": "admin"}]
    assert {e["via"] for e in own} == {"api"}
    assert own[0]["data"]["customer_id"] == customer["customer_id"]
    assert (own[0]["data"]["currency"], own[0]["data"]["product"]) == ("EUR", "current")
    assert own[0]["data"]["opened_at"] is None
    assert own[0]["recorded_at"] == opened["opened_at"]
    assert own[1]["data"] == {"transaction_id": dep["transaction_id"], "amount": "100.00"}
    assert own[2]["data"] == {"transaction_id": wd["transaction_id"], "amount": "30.50"}
    assert own[3]["data"] == {"reason": "kyc review"}

    # Everything one request wrote carries its request id; the last is its position.
    for response, request_id, types in (
        (dep, "audit-deposit", {"FundsCredited", "Posted", "Recorded"}),
        (wd, "audit-withdrawal", {"FundsDebited", "Posted", "Recorded"}),
        (frozen, "audit-freeze", {"Frozen", "Recorded"}),
    ):
        mine = by_request(everything, request_id)
        assert {e["type"] for e in mine} == types, request_id
        assert max(e["position"] for e in mine) == response["position"], request_id
        assert all(e["via"] == "api" for e in mine)

    # The transaction's record: the body of the response, as the event holds it.
    (posted,) = [e for e in everything if e["originator_id"] == dep["transaction_id"]]
    assert (posted["type"], posted["aggregate"], posted["originator_version"]) == (
        "Posted", "Transaction", 1)
    assert posted["recorded_at"] == dep["recorded_at"]
    data = posted["data"]
    assert (data["kind"], data["amount"], data["currency"], data["channel"], data["reference"]) == (
        "deposit", "100.00", "EUR", "cash", "first")
    assert data["entries"] == dep["entries"] == [
        {"account": a, "direction": "credit", "amount": "100.00"},
        {"account": "cash", "direction": "debit", "amount": "100.00"}]
    assert data["booked_at"] is None and data["reverses"] is None
    (posted_wd,) = [e for e in everything if e["originator_id"] == wd["transaction_id"]]
    assert posted_wd["data"]["entries"] == [
        {"account": a, "direction": "debit", "amount": "30.50"},
        {"account": "clearing", "direction": "credit", "amount": "30.50"}]

    # The keys the fixtures made with the CLI's cause.
    created = [e for e in everything if e["originator_id"] == teller_id]
    assert created and created[0]["type"] == "Created"
    assert created[0]["via"] == "cli" and created[0]["actor"] == {"key_id": None, "role": "admin"}


def test_an_import_and_a_reversal_are_in_the_feed(client, auditor, admin):
    a = open_account(client, admin, opened_at=iso(datetime.now(UTC) - timedelta(days=5)))
    booked = iso(datetime.now(UTC) - timedelta(days=2))
    item = {"type": "deposit", "account_id": a["account_id"], "amount": "12.34",
            "currency": "EUR", "channel": "wire", "booked_at": booked}
    batch = ok(post(client, "/v1/batches", admin, {"atomic": True, "items": [item]},
                    extra={"X-Request-ID": "audit-import"}), 201)
    txn = batch["results"][0]["transaction"]
    reversal = ok(post(client, f"/v1/transactions/{txn['transaction_id']}/reverse", admin,
                       {"reason": "twice"}), 201)
    events = feed(client, auditor, originator_id=a["account_id"])["events"]
    assert events[0]["data"]["opened_at"] == a["opened_at"]
    assert [e["type"] for e in events] == ["Opened", "FundsCredited", "FundsDebited"]
    assert events[1]["via"] == "import" and events[1]["request_id"] == "audit-import"
    assert events[2]["via"] == "api"
    assert events[2]["data"] == {"transaction_id": reversal["transaction_id"], "amount": "12.34"}
    original = feed(client, auditor, originator_id=txn["transaction_id"])["events"]
    assert [e["type"] for e in original] == ["Posted", "Reversed"]
    assert original[0]["data"]["booked_at"] == booked
    assert original[0]["via"] == "import"
    assert original[1]["data"]["reversed_by"] == reversal["transaction_id"]
    assert original[1]["data"]["reason"] == "twice"
    mirrored = feed(client, auditor, originator_id=reversal["transaction_id"])["events"]
    assert mirrored[0]["data"]["reverses"] == txn["transaction_id"]
    assert mirrored[0]["data"]["kind"] == "reversal"
    assert mirrored[0]["data"]["entries"] == reversal["entries"]


def test_the_feed_pages_with_after_and_limit_until_exhausted(client, auditor, teller, admin):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller)["account_id"]
    # A batch of 260 deposits: over 500 events, more than the default page.
    items = [{"type": "deposit", "account_id": (a, b)[i % 2], "amount": f"{i + 1}.00",
              "currency": "EUR", "channel": "cash"} for i in range(260)]
    batch = ok(post(client, "/v1/batches", teller, {"atomic": True, "items": items}), 201)
    ok(transfer(client, teller, a, b, "1.00"), 201)
    last = ok(withdraw(client, teller, b, "2.00"), 201)

    everything = feed(client, auditor, limit=1000)
    events = everything["events"]
    assert len(events) > 520
    assert everything["next_after"] == events[-1]["position"] == last["position"]
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))
    assert batch["position"] in positions

    default = feed(client, auditor)
    assert default["events"] == events[:500]
    assert default["next_after"] == events[499]["position"]

    for limit in (7, 500):
        paged = feed_all(client, auditor, limit)
        assert [e["position"] for e in paged] == positions, limit
    assert feed_all(client, auditor, 64) == events
    tail = positions[-12]
    assert feed_all(client, auditor, 1, after=tail) == [e for e in events if e["position"] > tail]

    middle = positions[len(positions) // 2]
    rest = feed(client, auditor, after=middle, limit=1000)
    assert rest["events"] == [e for e in events if e["position"] > middle]
    past_the_end = feed(client, auditor, after=last["position"] + 5)
    assert past_the_end == {"events": [], "next_after": last["position"] + 5}
    # Empty parameters are the defaults.
    assert feed(client, auditor, after="", limit="", originator_id="")["events"] == events[:500]


def test_the_feed_filters_by_originator_and_type(client, auditor, teller, admin):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller, currency="JPY")["account_id"]
    c = open_account(client, teller, currency="JPY")["account_id"]
    ok(deposit(client, teller, a, "10.00"), 201)
    ok(deposit(client, teller, b, "500", currency="JPY"), 201)
    items = [{"type": "deposit", "account_id": a, "amount": "1.00", "currency": "EUR",
              "channel": "cash"},
             {"type": "transfer", "from_account_id": b, "to_account_id": c, "amount": "200",
              "currency": "JPY"}]
    batch = ok(post(client, "/v1/batches", teller, {"atomic": True, "items": items}), 201)
    ok(withdraw(client, teller, a, "3.00"), 201)
    everything = feed(client, auditor, limit=1000)["events"]

    only_a = feed(client, auditor, originator_id=a)["events"]
    assert only_a == [e for e in everything if e["originator_id"] == a]
    assert [e["type"] for e in only_a] == ["Opened", "FundsCredited", "FundsCredited",
                                           "FundsDebited"]
    assert feed(client, auditor, originator_id=a.upper())["events"] == only_a
    assert feed(client, auditor, originator_id=UNKNOWN_ID) == {"events": [], "next_after": 0}

    credited = feed(client, auditor, type="FundsCredited", limit=1000)["events"]
    assert credited == [e for e in everything if e["type"] == "FundsCredited"]
    assert len(credited) == 4  # a twice, b, and c by the transfer
    assert {e["aggregate"] for e in credited} == {"Account"}
    assert feed(client, auditor, type="Account.FundsCredited", limit=1000)["events"] == credited
    posted = feed(client, auditor, type="Transaction.Posted", limit=1000)["events"]
    assert posted == [e for e in everything if e["type"] == "Posted"]
    assert len(posted) == 5
    assert feed(client, auditor, type="Posted", limit=1000)["events"] == posted

    # "Recorded" is the name of two aggregates' events: both are listed.
    recorded = feed(client, auditor, type="Recorded", limit=1000)["events"]
    assert recorded == [e for e in everything if e["type"] == "Recorded"]
    assert {e["aggregate"] for e in recorded} == {"Batch", "IdempotencyRecord"}
    batches = feed(client, auditor, type="Batch.Recorded", limit=1000)["events"]
    assert [e["originator_id"] for e in batches] == [batch["batch_id"]]
    records = feed(client, auditor, type="IdempotencyRecord.Recorded", limit=1000)["events"]
    assert records == [e for e in recorded if e["aggregate"] == "IdempotencyRecord"]
    assert len(records) == len(recorded) - 1 == 10  # one per write through the API

    # Both filters together, and paging within them.
    assert feed(client, auditor, originator_id=a, type="FundsCredited")["events"] == [
        e for e in credited if e["originator_id"] == a]
    assert feed(client, auditor, originator_id=b, type="Frozen")["events"] == []
    assert feed_all(client, auditor, 1, type="FundsCredited") == credited
    assert feed_all(client, auditor, 2, type="Recorded") == recorded
    assert feed_all(client, auditor, 1, originator_id=a) == only_a
    after = credited[1]["position"]
    page = feed(client, auditor, type="FundsCredited", after=after, limit=1)
    assert page == {"events": [credited[2]], "next_after": credited[2]["position"]}


BAD_FEED_PARAMETERS = [
    ({"type": "FundsDeposited"}, "type"),
    ({"type": "Account.Recorded"}, "type"),  # a real name, on the wrong aggregate
    ({"type": "fundscredited"}, "type"),
    ({"type": "domain.account:Account.FundsCredited"}, "type"),
    ({"originator_id": "not-a-uuid"}, "originator_id"),
    ({"originator_id": "1234"}, "originator_id"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": "-1"}, "after"),
    ({"after": "1.5"}, "after"),
]


def test_bad_feed_parameters_are_422(client, auditor, teller):
    open_account(client, teller)
    for params, field in BAD_FEED_PARAMETERS:
        found = problem(feed_response(client, auditor, **params), 422, "validation_error")
        assert ["query", field] in [e["loc"] for e in found["errors"]], (params, found)


def test_the_largest_page_is_a_thousand(client, auditor, teller):
    open_account(client, teller)
    assert feed(client, auditor, limit=1000)["events"]
    problem(feed_response(client, auditor, limit=1001), 422, "validation_error")


def test_an_empty_type_means_no_filter(client, auditor, teller):
    open_account(client, teller)
    everything = feed(client, auditor)["events"]
    assert feed(client, auditor, after=0, limit=500, originator_id="", type="")[
        "events"] == everything


def test_feed_hashes_are_the_chains(client, bank, auditor, teller, admin):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, a, "50.00"), 201)
    moved = ok(transfer(client, teller, a, b, "20.00"), 201)
    ok(post(client, f"/v1/transactions/{moved['transaction_id']}/reverse", admin,
            {"reason": "error"}), 201)
    last = ok(withdraw(client, teller, a, "5.00"), 201)

    events = feed(client, auditor, limit=1000, min_position=last["position"])["events"]
    assert events[-1]["position"] == last["position"]
    assert all(e["hash"] is not None for e in events)
    lines = exported(bank)
    stored = {line["position"]: line for line in lines[1:-1]}
    assert set(stored) == {e["position"] for e in events}
    assert all(line["chained"] for line in stored.values())
    chain = recomputed_chain(lines)
    for event in events:
        line = stored[event["position"]]
        assert event["hash"] == line["hash"] == chain[event["position"]], event["position"]
        assert (event["originator_id"], event["originator_version"]) == (
            line["originator_id"], line["originator_version"])
        assert event["type"] == line["type"]
    # A filtered page shows the same hashes.
    for event in feed(client, auditor, originator_id=a)["events"]:
        assert event["hash"] == chain[event["position"]]
    # The chain's root is what verification recomputes.
    checked = ok(verify(client, auditor), 200)
    assert (checked["last_position"], checked["root"]) == (last["position"], lines[-1]["root"])


def test_a_hash_is_null_until_the_chain_reaches_it(bank, database_url, make_key):
    """With no runner following the log, the feed shows the events without hashes and
    a read that asks for a position waits, then answers 503; once the chain's runner
    has run, the same read shows every hash."""
    auditor = make_key("auditor", "chain-watcher")[1]
    auth = {"Authorization": f"Bearer {auditor}"}
    app = create_app(Settings(database_url=database_url, run_projections=False,
                              hold_sweep_seconds=0), bank=bank)
    with TestClient(app) as client:
        customer = bank.register_customer(
            {"name": "Ada", "kind": "person", "country": "GB"}, Cause.cli()).body
        opened = bank.open_account(UUID(customer["customer_id"]), "EUR", Cause.cli()).body
        bank.deposit(UUID(opened["account_id"]), "5.00", "EUR", "cash", Cause.cli())
        head = bank.last_position()
        events = ok(client.get("/v1/audit/events", headers=auth), 200)["events"]
        assert events[-1]["position"] == head
        assert [e["hash"] for e in events] == [None] * len(events)
        bank.read_wait_seconds = 0.2
        waited = client.get(f"/v1/audit/events?min_position={head}", headers=auth)
        problem(waited, 503, "service_unavailable")
        assert waited.headers["retry-after"]
        # So do the balances as booked (they read the views)...
        as_of = quote(iso(datetime.now(UTC)))
        problem(client.get(f"/v1/audit/balances?as_of={as_of}&min_position={head}",
                           headers=auth), 503, "service_unavailable")
        # ... but not the history, which reads the log itself: always current.
        history_path = f"/v1/audit/accounts/{opened['account_id']}/history"
        for path in (history_path, f"{history_path}?min_position={head}"):
            steps = ok(client.get(path, headers=auth), 200)["events"]
            assert [e["state"]["ledger_balance"] for e in steps] == ["0.00", "5.00"]
        service = start_projections(bank, Settings(database_url=database_url), ["chain"])
        try:
            bank.read_wait_seconds = 10.0
            events = ok(client.get(f"/v1/audit/events?min_position={head}", headers=auth),
                        200)["events"]
        finally:
            service.stop()
        assert events[-1]["position"] == head
        assert all(e["hash"] is not None for e in events)
        assert {e["position"]: e["hash"] for e in events} == recomputed_chain(exported(bank))


# ------------------------------------------------------------------ account history


def test_an_accounts_history_shows_it_after_each_event(client, auditor, teller, admin_key):
    admin_id, admin = admin_key
    a = open_account(client, teller)
    aid = a["account_id"]
    b = open_account(client, teller)["account_id"]
    steps = [
        ok(deposit(client, teller, aid, "100.00"), 201),
        ok(withdraw(client, teller, aid, "30.00"), 201),
        ok(post(client, f"/v1/accounts/{aid}/freeze", admin, {"reason": "review"},
                extra={"X-Request-ID": "history-freeze"}), 200),
        ok(deposit(client, teller, aid, "5.25"), 201),  # a frozen account takes credits
        ok(post(client, f"/v1/accounts/{aid}/unfreeze", admin), 200),
        ok(post(client, f"/v1/accounts/{aid}/limits", admin, {"overdraft_limit": "40.00"}),
           200),
        ok(post(client, "/v1/holds", teller, {"account_id": aid, "amount": "10.00",
                                              "currency": "EUR"}), 201),
        ok(transfer(client, teller, aid, b, "90.00"), 201),
    ]
    hold_id = steps[6]["hold_id"]
    steps.append(ok(post(client, f"/v1/holds/{hold_id}/release", teller), 200))

    found = history(client, auditor, aid)
    assert set(found) == {"account_id", "events"} and found["account_id"] == aid
    events = found["events"]
    assert [e["type"] for e in events] == [
        "Opened", "FundsCredited", "FundsDebited", "Frozen", "FundsCredited", "Unfrozen",
        "OverdraftLimitChanged", "FundsHeld", "FundsDebited", "HeldFundsReleased"]
    states = [e["state"] for e in events]
    assert [s["version"] for s in states] == list(range(1, 11))
    assert [s["ledger_balance"] for s in states] == [
        "0.00", "100.00", "70.00", "70.00", "75.25", "75.25", "75.25", "75.25", "-14.75",
        "-14.75"]
    assert [s["status"] for s in states] == ["active"] * 3 + ["frozen"] * 2 + ["active"] * 5
    assert [s["overdraft_limit"] for s in states] == ["0.00"] * 6 + ["40.00"] * 4
    assert [s["held_amount"] for s in states] == ["0.00"] * 7 + ["10.00"] * 2 + ["0.00"]
    assert [s["available_balance"] for s in states] == [
        "0.00", "100.00", "70.00", "70.00", "75.25", "75.25", "115.25", "105.25", "15.25",
        "25.25"]
    for state in states:
        assert set(state) >= ACCOUNT_FIELDS, state.keys()
        assert (state["account_id"], state["customer_id"], state["currency"], state["product"],
                state["opened_at"]) == (aid, a["customer_id"], "EUR", "current", a["opened_at"])

    # The same events as the feed, with the same positions, times, data and causes.
    feed_events = feed(client, auditor, originator_id=aid)["events"]
    assert [e["position"] for e in events] == [e["position"] for e in feed_events]
    for mine, theirs in zip(events, feed_events, strict=True):
        for name in ("recorded_at", "type", "data", "actor"):
            assert mine[name] == theirs[name], name
    assert events[3]["actor"] == {"key_id": admin_id, "role": "admin"}
    assert events[3]["data"] == {"reason": "review"}
    assert events[3]["request_id"] == "history-freeze"
    assert events[1]["data"] == {"transaction_id": steps[0]["transaction_id"],
                                 "amount": "100.00"}
    assert events[8]["data"] == {"transaction_id": steps[7]["transaction_id"],
                                 "amount": "90.00"}
    assert events[7]["position"] <= steps[6]["position"]

    # After the last event, the account is as GET /v1/accounts/{id} shows it.
    now = account(client, teller, aid)
    assert now == states[-1]


def test_history_states_have_the_accounts_shape(client, auditor, teller):
    aid = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, aid, "1.00"), 201)
    events = history(client, auditor, aid)["events"]
    assert set(events[-1]["state"]) == set(account(client, teller, aid))
    assert [e["state"]["position"] for e in events] == [e["position"] for e in events]


def test_an_imported_accounts_history(client, auditor, admin):
    opened_at = iso(datetime.now(UTC) - timedelta(days=4))
    a = open_account(client, admin, opened_at=opened_at)
    items = [{"type": "deposit", "account_id": a["account_id"], "amount": "7.00",
              "currency": "EUR", "channel": "wire",
              "booked_at": iso(datetime.now(UTC) - timedelta(days=1))}]
    ok(post(client, "/v1/batches", admin, {"atomic": True, "items": items}), 201)
    events = history(client, auditor, a["account_id"])["events"]
    assert [e["state"]["opened_at"] for e in events] == [opened_at, opened_at]
    assert [e["state"]["ledger_balance"] for e in events] == ["0.00", "7.00"]
    assert events[1]["via"] == "import"


def test_history_of_what_is_not_an_account_is_404(client, auditor, teller):
    a = open_account(client, teller)
    txn = ok(deposit(client, teller, a["account_id"], "1.00"), 201)
    for other in (UNKNOWN_ID, a["customer_id"], txn["transaction_id"], "not-a-uuid"):
        problem(get(client, f"/v1/audit/accounts/{other}/history", auditor), 404, "not_found")
    assert history(client, auditor, a["account_id"])["events"]


# ------------------------------------------------------------------------- balances


def test_balances_as_booked_at_moments_between_writes(client, auditor, teller, admin):
    before_all = moment()
    a = open_account(client, teller)
    t_opened_a = moment()
    dep = ok(deposit(client, teller, a["account_id"], "100.00"), 201)
    t_deposit = moment()
    b = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{b['account_id']}/limits", admin,
            {"overdraft_limit": "50.00"}), 200)
    t_opened_b = moment()
    ok(transfer(client, teller, a["account_id"], b["account_id"], "30.00"), 201)
    ok(withdraw(client, teller, b["account_id"], "60.00"), 201)
    t_overdrawn = moment()
    j = open_account(client, teller, currency="JPY")
    last = ok(deposit(client, teller, j["account_id"], "1500", currency="JPY"), 201)
    t_last = moment()

    def row(acct: dict, balance: str) -> dict:
        return {"account_id": acct["account_id"], "customer_id": acct["customer_id"],
                "currency": acct["currency"], "ledger_balance": balance}

    expected = [
        (before_all, [], []),
        (t_opened_a, [row(a, "0.00")], [("EUR", "0.00", "0.00")]),
        (t_deposit, [row(a, "100.00")], [("EUR", "100.00", "0.00")]),
        (t_opened_b, [row(a, "100.00"), row(b, "0.00")], [("EUR", "100.00", "0.00")]),
        (t_overdrawn, [row(a, "70.00"), row(b, "-30.00")], [("EUR", "70.00", "30.00")]),
        (t_last, [row(a, "70.00"), row(b, "-30.00"), row(j, "1500")],
         [("EUR", "70.00", "30.00"), ("JPY", "1500", "0")]),
    ]
    for when, accounts, totals in expected:
        body = balances_json(client, auditor, iso(when))
        assert body["as_of"] == iso(when)
        assert body["as_of_position"] == last["position"]
        assert body["accounts"] == accounts, when
        assert [(t["currency"], t["credit_balances"], t["debit_balances"])
                for t in body["totals"]] == totals, when

    # Booked at or before as_of counts; opened at or before as_of is listed.
    at_deposit = balances_json(client, auditor, dep["booked_at"])["accounts"]
    assert at_deposit == [row(a, "100.00")]
    just_before = balances_json(client, auditor, shifted(dep["booked_at"], -1))["accounts"]
    assert just_before == [row(a, "0.00")]
    assert balances_json(client, auditor, a["opened_at"])["accounts"] == [row(a, "0.00")]
    assert balances_json(client, auditor, shifted(a["opened_at"], -1))["accounts"] == []

    # The same moment with another offset is the same answer, as_of shown in UTC.
    there = parse(iso(t_overdrawn)).astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00+05:30").tzinfo).isoformat()
    shown = balances_json(client, auditor, there)
    assert shown["as_of"] == iso(t_overdrawn)
    assert shown["accounts"] == [row(a, "70.00"), row(b, "-30.00")]

    # CSV: a header, then one row per account, as in the JSON.
    response = balances(client, admin, iso(t_last), "csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == BALANCE_COLUMNS
    assert table[1:] == [[r[c] for c in BALANCE_COLUMNS] for r in expected[-1][1]]
    empty = balances(client, auditor, iso(before_all), "csv")
    assert list(csv.reader(io.StringIO(empty.text))) == [BALANCE_COLUMNS]
    assert ok(balances(client, auditor, iso(t_last), "json"), 200) == balances_json(
        client, auditor, iso(t_last))


def test_balances_count_imports_booked_before_later_postings(client, auditor, admin, teller):
    now = datetime.now(UTC)
    a = open_account(client, admin, opened_at=iso(now - timedelta(days=5)))
    late = open_account(client, teller)  # opened now: absent from the past
    ok(deposit(client, teller, a["account_id"], "100.00"), 201)
    items = [
        {"type": "deposit", "account_id": a["account_id"], "amount": "40.00",
         "currency": "EUR", "channel": "wire", "booked_at": iso(now - timedelta(days=3))},
        {"type": "withdrawal", "account_id": a["account_id"], "amount": "15.00",
         "currency": "EUR", "channel": "wire", "booked_at": iso(now - timedelta(days=2))},
    ]
    ok(post(client, "/v1/batches", admin, {"atomic": True, "items": items}), 201)

    def listed(days_ago: float) -> list[tuple[str, str]]:
        body = balances_json(client, auditor, iso(now - timedelta(days=days_ago)))
        return [(r["account_id"], r["ledger_balance"]) for r in body["accounts"]]

    assert listed(6) == []
    assert listed(4) == [(a["account_id"], "0.00")]
    assert listed(2.5) == [(a["account_id"], "40.00")]
    assert listed(1) == [(a["account_id"], "25.00")]
    body = balances_json(client, auditor, iso(moment()))
    assert [(r["account_id"], r["ledger_balance"]) for r in body["accounts"]] == [
        (a["account_id"], "125.00"), (late["account_id"], "0.00")]
    assert body["totals"] == [
        {"currency": "EUR", "credit_balances": "125.00", "debit_balances": "0.00"}]


BAD_BALANCES_QUERIES = [
    "",  # as_of is required
    "as_of=",
    "as_of=yesterday",
    "as_of=2026-01-01",
    "as_of=2026-01-01T10:00:00",  # no offset
    "as_of=9999-01-01T00:00:00Z",
    "as_of={future}",
    "as_of={past}&format=xml",
    "as_of={past}&format=CSV",
]


def test_bad_balances_queries_are_422(client, auditor, teller):
    open_account(client, teller)
    future = quote(iso(datetime.now(UTC) + timedelta(minutes=5)))
    past = quote(iso(datetime.now(UTC) - timedelta(days=1)))
    for query in BAD_BALANCES_QUERIES:
        path = "/v1/audit/balances?" + query.format(future=future, past=past)
        found = problem(get(client, path, auditor), 422, "validation_error")
        field = "format" if "format" in query else "as_of"
        assert ["query", field] in [e["loc"] for e in found["errors"]], (query, found)


# ---------------------------------------------------------------------- verification


def test_verify_checks_the_chain_and_an_expected_root(client, bank, auditor, admin, teller):
    a = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, a, "10.00"), 201)
    last = ok(withdraw(client, teller, a, "4.00"), 201)
    feed(client, auditor, min_position=last["position"])  # the chain has reached it

    for key in (auditor, admin):
        body = ok(verify(client, key), 200)  # no Idempotency-Key needed
        assert set(body) == {"ok", "events_checked", "last_position", "root", "first_mismatch"}
        assert body["ok"] is True and body["first_mismatch"] is None
        assert body["last_position"] == last["position"] == bank.last_position()
        assert body["events_checked"] == len(feed(client, auditor, limit=1000)["events"])
        assert len(body["root"]) == 64
    assert ok(verify(client, auditor, {}), 200) == body
    assert bank.last_position() == last["position"]  # verification writes nothing

    # A root kept from a verification: the log still leads to it.
    expect = {"position": body["last_position"], "root": body["root"]}
    again = ok(verify(client, auditor, {"expect_root": expect}), 200)
    assert again == body
    upper = {"position": body["last_position"], "root": body["root"].upper()}
    assert ok(verify(client, auditor, {"expect_root": upper}), 200)["ok"] is True
    # ... and an earlier one, from the feed's hash there.
    earlier = feed(client, auditor, limit=1000)["events"][3]
    at_earlier = {"position": earlier["position"], "root": earlier["hash"]}
    assert ok(verify(client, admin, {"expect_root": at_earlier}), 200) == body

    # A wrong root there is a root_mismatch at that position.
    wrong = "0" * 64 if body["root"] != "0" * 64 else "1" * 64
    for position in (body["last_position"], earlier["position"]):
        found = ok(verify(client, auditor, {"expect_root": {"position": position,
                                                             "root": wrong}}), 200)
        assert found["ok"] is False
        assert found["first_mismatch"] == {"position": position, "reason": "root_mismatch"}
    # A root expected beyond the log's end is never reached.
    beyond = {"position": body["last_position"] + 10, "root": body["root"]}
    found = ok(verify(client, auditor, {"expect_root": beyond}), 200)
    assert found["ok"] is False
    assert found["first_mismatch"] == {"position": beyond["position"], "reason": "root_mismatch"}
    assert bank.last_position() == last["position"]


MALFORMED_VERIFY_BODIES = [
    {"expect_root": {"position": 0, "root": "a" * 64}},
    {"expect_root": {"position": -3, "root": "a" * 64}},
    {"expect_root": {"position": 1, "root": "a" * 63}},
    {"expect_root": {"position": 1, "root": "a" * 65}},
    {"expect_root": {"position": 1, "root": "g" * 64}},
    {"expect_root": {"position": 1}},
    {"expect_root": {"root": "a" * 64}},
    {"expect_root": {"position": "first", "root": "a" * 64}},
    {"expect_root": {"position": 1.5, "root": "a" * 64}},
    {"expect_root": {"position": 1, "root": "a" * 64, "seal": True}},
    {"expect_root": "1:" + "a" * 64},
    {"expect": {"position": 1, "root": "a" * 64}},
    ["expect_root"],
]


def test_a_malformed_expect_root_is_422(client, bank, auditor, teller):
    open_account(client, teller)
    head = bank.last_position()
    for body in MALFORMED_VERIFY_BODIES:
        problem(verify(client, auditor, body), 422, "validation_error")
    assert bank.last_position() == head  # refusals are not kept either


def test_a_body_that_is_not_json_is_422(client, auditor):
    response = client.post("/v1/audit/verify", content=b"{not json",
                           headers={"Authorization": f"Bearer {auditor}",
                                    "Content-Type": "application/json"})
    problem(response, 422, "validation_error")


# -------------------------------------------------------------------- reconciliation


def test_reconciliation_finds_the_views_equal_to_the_log(client, auditor, admin, teller):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller, currency="JPY")["account_id"]
    ok(deposit(client, teller, a, "10.00"), 201)
    ok(deposit(client, teller, b, "700", currency="JPY"), 201)
    last = ok(withdraw(client, teller, a, "4.00"), 201)
    account(client, teller, a)  # the views have caught up with the last write
    ok(get(client, f"/v1/accounts/{a}/statement", teller), 200)
    own = feed(client, auditor, originator_id=a)["events"]
    for key in (auditor, admin):
        body = ok(get(client, "/v1/audit/reconciliation", key), 200)
        assert body["ok"] is True
        assert body["differences"] == []
        assert isinstance(body["checked_at_position"], int)
        # Every view had applied its own events of the last write.
        assert own[-1]["position"] <= body["checked_at_position"] <= last["position"]


def test_reconciliation_reports_a_view_row_the_log_does_not_say(client, bank, auditor, teller):
    a = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, a, "10.00"), 201)
    assert account(client, teller, a)["ledger_balance"] == "10.00"
    store = bank.views.store  # type: ignore[union-attr]
    with store.write() as cur:  # a hand in the database
        table = generation_table("accounts", store.generations_in(cur)["accounts"])
        cur.run("UPDATE {" + table + "} SET ledger_balance = %s WHERE account_id = %s",
                ("999.00", a))
    assert account(client, teller, a)["ledger_balance"] == "999.00"
    body = ok(get(client, "/v1/audit/reconciliation", auditor), 200)
    assert body["ok"] is False
    (difference,) = body["differences"]
    assert difference["projection"] == "accounts"
    assert difference["key"]["account_id"] == a
    assert Decimal(difference["live"]["ledger_balance"]) == Decimal("999.00")
    assert Decimal(difference["replayed"]["ledger_balance"]) == Decimal("10.00")


# ---------------------------------------------------------------------------- roles


def endpoints(account_id: str) -> list[tuple[str, str, Any]]:
    as_of = quote(iso(datetime.now(UTC)))
    return [
        ("GET", "/v1/audit/events", None),
        ("GET", "/v1/audit/events?type=Opened&limit=5", None),
        ("GET", f"/v1/audit/accounts/{account_id}/history", None),
        ("GET", f"/v1/audit/balances?as_of={as_of}", None),
        ("GET", f"/v1/audit/balances?as_of={as_of}&format=csv", None),
        ("POST", "/v1/audit/verify", {}),
        ("POST", "/v1/audit/verify", None),
        ("GET", "/v1/audit/reconciliation", None),
    ]


def call(client, method: str, path: str, key: str | None, body: Any, idem: Any = None):
    if method == "GET":
        return get(client, path, key)
    return post(client, path, key, body, idem=idem)


def test_auditors_and_admins_may_call_every_audit_endpoint(client, keys):
    aid = open_account(client, keys["teller"])["account_id"]
    for method, path, body in endpoints(aid):
        for role in ("auditor", "admin"):
            response = call(client, method, path, keys[role], body)
            assert response.status_code == 200, (role, path, response.text)


def test_tellers_and_compliance_are_forbidden(client, keys):
    aid = open_account(client, keys["teller"])["account_id"]
    for method, path, body in endpoints(aid):
        for role in ("teller", "compliance"):
            problem(call(client, method, path, keys[role], body), 403, "forbidden")
            if method == "POST":  # 403 before anything else is looked at
                problem(call(client, method, path, keys[role], body, idem="k-1"), 403,
                        "forbidden")
                problem(call(client, method, path, keys[role], ["bad"]), 403, "forbidden")


def test_no_key_or_an_unknown_key_is_401(client, keys):
    aid = open_account(client, keys["teller"])["account_id"]
    for method, path, body in endpoints(aid):
        problem(call(client, method, path, None, body), 401, "unauthorized")
        problem(call(client, method, path, "bo_not-a-key", body), 401, "unauthorized")
    # 401 before the query is looked at.
    problem(get(client, "/v1/audit/events?limit=0", None), 401, "unauthorized")
    problem(get(client, "/v1/audit/balances", None), 401, "unauthorized")
    problem(get(client, "/v1/audit/balances", keys["teller"]), 403, "forbidden")


def test_a_revoked_auditor_key_is_401(client, make_key, admin):
    view, secret = make_key("auditor", "former-auditor")
    assert feed(client, secret)["events"]
    ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    problem(feed_response(client, secret), 401, "unauthorized")
    problem(verify(client, secret), 401, "unauthorized")


# ------------------------------------------------------------ money in the feed's data


def test_money_in_event_data_has_the_currencys_minor_units(client, auditor, teller):
    aid = open_account(client, teller)["account_id"]
    txn = ok(deposit(client, teller, aid, "7.5"), 201)
    assert txn["amount"] == "7.50"
    events = feed(client, auditor, originator_id=aid)["events"]
    assert events[0]["data"]["overdraft_limit"] == "0.00"
    assert events[1]["data"]["amount"] == "7.50"
    (posted,) = feed(client, auditor, originator_id=txn["transaction_id"])["events"]
    assert posted["data"]["amount"] == "7.50"
    assert posted["data"]["entries"] == txn["entries"]


def test_amounts_in_event_data_are_exact_strings(client, auditor, teller):
    a = open_account(client, teller, currency="BHD", overdraft_limit="1.250")["account_id"]
    ok(deposit(client, teller, a, "0.005", currency="BHD"), 201)
    ok(deposit(client, teller, a, "12.340", currency="BHD"), 201)
    loose = ok(deposit(client, teller, a, "3.5", currency="BHD"), 201)
    events = feed(client, auditor, originator_id=a)["events"]
    assert events[0]["data"]["overdraft_limit"] == "1.250"
    amounts = [e["data"]["amount"] for e in events[1:]]
    assert all(isinstance(amount, str) for amount in amounts)
    assert amounts[:2] == ["0.005", "12.340"]
    # Whatever the printing, the value is exact (no float on the way).
    assert Decimal(amounts[2]) == Decimal(loose["amount"]) == Decimal("3.5")
    assert sum(map(Decimal, amounts)) == Decimal("15.845")
