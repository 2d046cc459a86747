"""Reads served from the projections: statements, accounts, a customer's accounts and
transactions, and ``min_position`` (read-your-writes, 503 when a view cannot get there)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from e2e_helpers import (
    RFC3339,
    UNKNOWN_ID,
    ReadYourWritesClient,
    account,
    deposit,
    funded_account,
    get,
    new_customer,
    ok,
    open_account,
    post,
    problem,
    transfer,
    withdraw,
)
from fastapi.testclient import TestClient

from application.bank import Bank
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from interfaces.http.app import create_app

STATEMENT_FIELDS = {"account_id", "currency", "from", "to", "opening_balance",
                    "closing_balance", "entries", "next_cursor"}
ENTRY_FIELDS = {"position", "transaction_id", "booked_at", "kind", "direction", "amount",
                "balance_after", "reference"}
ROLES = ("teller", "auditor", "compliance", "admin")


def statement(client: TestClient, key: str, account_id: str, fresh: bool = True,
              **params: object):
    """GET the statement; ``from_`` stands for the ``from`` parameter."""
    if "from_" in params:
        params["from"] = params.pop("from_")
    query = urlencode({k: v for k, v in params.items() if v is not None})
    path = f"/v1/accounts/{account_id}/statement" + (f"?{query}" if query else "")
    return get(client, path, key, fresh=fresh)


def statement_ok(client: TestClient, key: str, account_id: str, **params: object) -> dict:
    body = ok(statement(client, key, account_id, **params), 200)
    assert set(body) >= STATEMENT_FIELDS, body
    for entry in body["entries"]:
        assert set(entry) >= ENTRY_FIELDS, entry
        assert RFC3339.match(entry["booked_at"]), entry
    return body


def without_position(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "position"}


def business_day(txn: dict) -> date:
    """The UTC (default business time zone) day a transaction was booked on."""
    return datetime.fromisoformat(txn["booked_at"]).astimezone(UTC).date()


def utc_today() -> date:
    return datetime.now(UTC).date()


def all_pages(client: TestClient, key: str, account_id: str, **params: object) -> list[dict]:
    pages = [statement_ok(client, key, account_id, **params)]
    while pages[-1]["next_cursor"] is not None:
        assert len(pages) < 50, "the cursor chain does not end"
        pages.append(statement_ok(client, key, account_id, cursor=pages[-1]["next_cursor"],
                                  **params))
    return pages


# ------------------------------------------------------------------- statements


def test_statement_entries_and_running_balance(client, teller):
    a = open_account(client, teller, "EUR")["account_id"]
    b = open_account(client, teller, "EUR")["account_id"]
    before = utc_today()
    d = ok(deposit(client, teller, a, "100.00", reference="salary"), 201)
    w = ok(withdraw(client, teller, a, "30.5", channel="wire"), 201)
    out = ok(transfer(client, teller, a, b, "20.00", reference="rent"), 201)
    back = ok(transfer(client, teller, b, a, "5.25"), 201)

    body = statement_ok(client, teller, a)
    assert body["account_id"] == a
    assert body["currency"] == "EUR"
    assert body["opening_balance"] == "0.00"
    assert body["closing_balance"] == "54.75"
    assert body["next_cursor"] is None
    # Default range: the whole history, from the day the account opened to today.
    assert body["from"] == business_day(d).isoformat()
    assert body["to"] in {before.isoformat(), utc_today().isoformat()}
    assert [(e["transaction_id"], e["booked_at"], e["kind"], e["direction"], e["amount"],
             e["balance_after"], e["reference"]) for e in body["entries"]] == [
        (d["transaction_id"], d["booked_at"], "deposit", "credit", "100.00", "100.00",
         "salary"),
        (w["transaction_id"], w["booked_at"], "withdrawal", "debit", "30.50", "69.50", None),
        (out["transaction_id"], out["booked_at"], "transfer", "debit", "20.00", "49.50",
         "rent"),
        (back["transaction_id"], back["booked_at"], "transfer", "credit", "5.25", "54.75",
         None),
    ]
    # Each entry is at its transaction's position in the log, in log order here.
    positions = [e["position"] for e in body["entries"]]
    assert positions == sorted(set(positions))
    for entry, txn in zip(body["entries"], (d, w, out, back), strict=True):
        read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}", teller), 200)
        assert entry["position"] == read["position"] <= txn["position"]
    assert body["closing_balance"] == account(client, teller, a)["ledger_balance"]

    other = statement_ok(client, teller, b)
    assert [(e["transaction_id"], e["direction"], e["amount"], e["balance_after"])
            for e in other["entries"]] == [
        (out["transaction_id"], "credit", "20.00", "20.00"),
        (back["transaction_id"], "debit", "5.25", "14.75"),
    ]
    assert (other["opening_balance"], other["closing_balance"]) == ("0.00", "14.75")


def test_statement_of_an_account_without_movements(client, teller):
    acct = open_account(client, teller, "USD")
    body = statement_ok(client, teller, acct["account_id"])
    assert body["entries"] == []
    assert (body["opening_balance"], body["closing_balance"]) == ("0.00", "0.00")
    assert body["next_cursor"] is None
    assert body["currency"] == "USD"


@pytest.mark.parametrize(
    ("currency", "moves", "expected"),
    [
        ("JPY", [("deposit", "1000"), ("withdrawal", "1")],
         [("credit", "1000", "1000"), ("debit", "1", "999")]),
        ("EUR", [("deposit", "10"), ("withdrawal", "0.5")],
         [("credit", "10.00", "10.00"), ("debit", "0.50", "9.50")]),
        ("KWD", [("deposit", "1.5"), ("withdrawal", "0.001")],
         [("credit", "1.500", "1.500"), ("debit", "0.001", "1.499")]),
    ],
)
def test_statement_amounts_use_the_currency_minor_units(client, teller, currency, moves,
                                                        expected):
    acct = open_account(client, teller, currency)["account_id"]
    for kind, amount in moves:
        move = deposit if kind == "deposit" else withdraw
        ok(move(client, teller, acct, amount, currency), 201)
    body = statement_ok(client, teller, acct)
    assert [(e["direction"], e["amount"], e["balance_after"]) for e in body["entries"]] == expected
    assert body["opening_balance"] == ("0" if currency == "JPY" else "0." + "0" * (
        3 if currency == "KWD" else 2))
    assert body["closing_balance"] == expected[-1][2]


def test_statement_an_overdrawn_account_goes_negative(client, teller, admin):
    acct = open_account(client, teller, "EUR", overdraft_limit="50.00")["account_id"]
    ok(deposit(client, teller, acct, "10.00"), 201)
    ok(withdraw(client, teller, acct, "35.00"), 201)
    body = statement_ok(client, teller, acct)
    assert [e["balance_after"] for e in body["entries"]] == ["10.00", "-25.00"]
    assert body["closing_balance"] == "-25.00"


def test_statement_date_ranges(client, teller):
    acct = open_account(client, teller, "EUR")["account_id"]
    first = ok(deposit(client, teller, acct, "100.00"), 201)
    ok(withdraw(client, teller, acct, "40.00"), 201)
    last = ok(deposit(client, teller, acct, "2.50"), 201)
    day = business_day(first)
    if business_day(last) != day:
        pytest.skip("the writes straddled midnight UTC")
    iso = lambda d: d.isoformat()
    whole = statement_ok(client, teller, acct)
    assert len(whole["entries"]) == 3

    # The day they were booked on: everything, from zero.
    today = statement_ok(client, teller, acct, from_=iso(day), to=iso(day))
    assert (today["from"], today["to"]) == (iso(day), iso(day))
    assert today["entries"] == whole["entries"]
    assert (today["opening_balance"], today["closing_balance"]) == ("0.00", "62.50")

    # Entirely before: nothing, and nothing to open or close with.
    before = statement_ok(client, teller, acct, from_=iso(day - timedelta(days=30)),
                          to=iso(day - timedelta(days=1)))
    assert before["entries"] == []
    assert before["opening_balance"] == before["closing_balance"] == "0.00"
    assert (before["from"], before["to"]) == (iso(day - timedelta(days=30)),
                                              iso(day - timedelta(days=1)))

    # Entirely after: nothing moved, the balance carried through.
    after = statement_ok(client, teller, acct, from_=iso(day + timedelta(days=1)),
                         to=iso(day + timedelta(days=7)))
    assert after["entries"] == []
    assert after["opening_balance"] == after["closing_balance"] == "62.50"

    # Open-ended on either side; a range around the day.
    assert statement_ok(client, teller, acct, from_=iso(day))["entries"] == whole["entries"]
    assert statement_ok(client, teller, acct, to=iso(day))["entries"] == whole["entries"]
    up_to_before = statement_ok(client, teller, acct, to=iso(day - timedelta(days=1)))
    assert up_to_before["entries"] == []
    assert up_to_before["closing_balance"] == "0.00"
    around = statement_ok(client, teller, acct, from_=iso(day - timedelta(days=1)),
                          to=iso(day + timedelta(days=1)))
    assert around["entries"] == whole["entries"]
    assert (around["opening_balance"], around["closing_balance"]) == ("0.00", "62.50")


def test_statement_pages_chain_through_every_entry_once(client, teller):
    acct = open_account(client, teller, "EUR")["account_id"]
    posted = [ok(deposit(client, teller, acct, f"{n}.00", reference=f"d{n}"), 201)
              for n in range(1, 6)]
    day = business_day(posted[0])
    whole = statement_ok(client, teller, acct)
    assert [e["transaction_id"] for e in whole["entries"]] == [
        t["transaction_id"] for t in posted]

    for params in ({}, {"from_": day.isoformat(), "to": day.isoformat()}):
        pages = all_pages(client, teller, acct, limit=2, **params)
        assert [len(p["entries"]) for p in pages] == [2, 2, 1]
        assert [p["next_cursor"] is None for p in pages] == [False, False, True]
        for page in pages:
            assert isinstance(page["next_cursor"], (str, type(None)))
            # Opening and closing cover the whole range on every page.
            assert (page["opening_balance"], page["closing_balance"]) == ("0.00", "15.00")
            assert (page["from"], page["to"]) == (pages[0]["from"], pages[0]["to"])
            assert page["account_id"] == acct and page["currency"] == "EUR"
        chained = [e for p in pages for e in p["entries"]]
        assert chained == whole["entries"]
        assert [e["balance_after"] for e in chained] == [
            "1.00", "3.00", "6.00", "10.00", "15.00"]


@pytest.mark.parametrize(("limit", "sizes"), [(1, [1] * 5), (4, [4, 1]), (5, [5]),
                                              (1000, [5])])
def test_statement_page_sizes(client, teller, limit, sizes):
    acct = open_account(client, teller, "JPY")["account_id"]
    for n in range(5):
        ok(deposit(client, teller, acct, str(100 + n), "JPY"), 201)
    pages = all_pages(client, teller, acct, limit=limit)
    assert [len(p["entries"]) for p in pages] == sizes
    assert pages[-1]["next_cursor"] is None
    assert [e["amount"] for p in pages for e in p["entries"]] == [
        "100", "101", "102", "103", "104"]


def test_statement_default_page_is_100_entries(client, teller):
    acct = open_account(client, teller, "EUR")["account_id"]
    for _ in range(101):
        ok(deposit(client, teller, acct, "1.00"), 201)
    first = statement_ok(client, teller, acct)
    assert len(first["entries"]) == 100
    assert first["next_cursor"] is not None
    assert first["closing_balance"] == "101.00"
    rest = statement_ok(client, teller, acct, cursor=first["next_cursor"])
    assert [e["balance_after"] for e in rest["entries"]] == ["101.00"]
    assert rest["next_cursor"] is None


def test_a_cursor_sees_entries_written_after_it_was_given(client, teller):
    acct = open_account(client, teller, "EUR")["account_id"]
    for amount in ("1.00", "2.00", "3.00"):
        ok(deposit(client, teller, acct, amount), 201)
    first = statement_ok(client, teller, acct, limit=2)
    late = ok(deposit(client, teller, acct, "4.00"), 201)
    rest = statement_ok(client, teller, acct, limit=2, cursor=first["next_cursor"])
    assert [e["amount"] for e in rest["entries"]] == ["3.00", "4.00"]
    assert rest["entries"][-1]["transaction_id"] == late["transaction_id"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from_": "2026-13-01"}, "from"),
        ({"from_": "yesterday"}, "from"),
        ({"to": "2026-1-1"}, "to"),
        ({"to": "2026-02-30"}, "to"),
        ({"to": "2026-03-01T00:00:00Z"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"min_position": "-1"}, "min_position"),
        ({"min_position": "x"}, "min_position"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),  # base64 of "not a cursor"
        ({"cursor": "MjAyNi0wMS0wMXx4fDE"}, "cursor"),  # "2026-01-01|x|1"
    ],
)
def test_statement_refuses_bad_query_parameters(client, teller, params, name):
    acct = funded_account(client, teller, "5.00")["account_id"]
    body = problem(statement(client, teller, acct, fresh=False, **params), 422,
                   "validation_error")
    assert ["query", name] in [e["loc"] for e in body["errors"]], body
    # Validation comes before the 404 for an unknown account.
    problem(statement(client, teller, UNKNOWN_ID, fresh=False, **params), 422,
            "validation_error")


def test_statement_from_after_to_is_a_validation_error(client, teller):
    acct = funded_account(client, teller, "5.00")["account_id"]
    body = problem(statement(client, teller, acct, from_="2026-03-02", to="2026-03-01"), 422,
                   "validation_error")
    assert all(e["loc"][0] == "query" and e["loc"][-1] in ("from", "to") for e in body["errors"])
    # A one-day range is fine.
    statement_ok(client, teller, acct, from_="2026-03-01", to="2026-03-01")


def test_statement_limit_bounds_are_accepted(client, teller):
    acct = funded_account(client, teller, "5.00")["account_id"]
    assert len(statement_ok(client, teller, acct, limit=1)["entries"]) == 1
    assert len(statement_ok(client, teller, acct, limit=1000)["entries"]) == 1


@pytest.mark.parametrize("account_id", [UNKNOWN_ID, "not-a-uuid", "1"])
def test_statement_of_an_unknown_or_malformed_account_is_404(client, teller, account_id):
    open_account(client, teller)
    problem(statement(client, teller, account_id), 404, "not_found")


def test_statement_needs_a_key(client, teller):
    acct = funded_account(client, teller, "5.00")["account_id"]
    problem(statement(client, None, acct), 401, "unauthorized")
    problem(statement(client, "not-a-key", acct), 401, "unauthorized")
    # 401 comes before validation.
    problem(statement(client, None, acct, limit=0), 401, "unauthorized")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_read_statements_and_views(client, keys, role):
    teller = keys["teller"]
    customer = new_customer(client, teller)
    acct = open_account(client, teller, customer_id=customer["customer_id"])
    txn = ok(deposit(client, teller, acct["account_id"], "7.00"), 201)
    key = keys[role]
    body = statement_ok(client, key, acct["account_id"])
    assert [e["transaction_id"] for e in body["entries"]] == [txn["transaction_id"]]
    assert account(client, key, acct["account_id"])["ledger_balance"] == "7.00"
    listed = ok(get(client, f"/v1/customers/{customer['customer_id']}/accounts", key), 200)
    assert [a["account_id"] for a in listed["accounts"]] == [acct["account_id"]]
    read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}", key), 200)
    assert without_position(read) == without_position(txn)


# ------------------------------------------------------------ other views


def test_transaction_read_equals_what_the_post_answered(client, teller):
    a = open_account(client, teller, "EUR")["account_id"]
    b = open_account(client, teller, "EUR")["account_id"]
    payer = new_customer(client, teller, name="Payer")
    posted = [
        ok(deposit(client, teller, a, "250.00", channel="wire", reference="INV-7",
                   conducted_by=payer["customer_id"],
                   counterparty={"name": "ACME", "account": "DE89370400440532013000",
                                 "country": "DE"}), 201),
        ok(withdraw(client, teller, a, "10.01", channel="cheque"), 201),
        ok(transfer(client, teller, a, b, "99.99", reference="move"), 201),
    ]
    for txn in posted:
        read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}"
                      f"?min_position={txn['position']}", teller, fresh=False), 200)
        assert without_position(read) == without_position(txn)
        assert isinstance(read["position"], int)
        # Including the position: the Transaction is the same resource either way.
        assert read["position"] == txn["position"], (read["position"], txn["position"])


@pytest.mark.parametrize("transaction_id", [UNKNOWN_ID, "nope"])
def test_unknown_or_malformed_transaction_is_404(client, teller, transaction_id):
    open_account(client, teller)
    problem(get(client, f"/v1/transactions/{transaction_id}", teller), 404, "not_found")


def test_an_account_id_is_not_a_transaction(client, teller):
    acct = funded_account(client, teller, "1.00")
    problem(get(client, f"/v1/transactions/{acct['account_id']}", teller), 404, "not_found")


def test_customer_accounts_in_opening_order_shaped_as_accounts(client, teller, admin):
    customer = new_customer(client, teller)["customer_id"]
    other = new_customer(client, teller, name="Someone Else")["customer_id"]
    opened = []
    for currency, fields in [("USD", {}), ("EUR", {"product": "savings"}), ("JPY", {}),
                             ("EUR", {"overdraft_limit": "100.00"})]:
        opened.append(open_account(client, teller, currency, customer_id=customer, **fields))
        open_account(client, teller, currency, customer_id=other)
    ok(deposit(client, teller, opened[1]["account_id"], "12.34"), 201)
    ok(post(client, f"/v1/accounts/{opened[2]['account_id']}/freeze", admin,
            {"reason": "check"}), 200)

    listed = ok(get(client, f"/v1/customers/{customer}/accounts", teller), 200)
    assert set(listed) == {"accounts"}
    assert [a["account_id"] for a in listed["accounts"]] == [o["account_id"] for o in opened]
    for item in listed["accounts"]:
        assert item == account(client, teller, item["account_id"])
        assert item["customer_id"] == customer
    by_id = {a["account_id"]: a for a in listed["accounts"]}
    assert by_id[opened[1]["account_id"]]["ledger_balance"] == "12.34"
    assert by_id[opened[1]["account_id"]]["product"] == "savings"
    assert by_id[opened[2]["account_id"]]["status"] == "frozen"
    assert by_id[opened[3]["account_id"]]["available_balance"] == "100.00"


def test_account_read_from_the_view_matches_the_write(client, teller):
    acct = open_account(client, teller, "EUR", overdraft_limit="20.00")
    txn = ok(deposit(client, teller, acct["account_id"], "3.10"), 201)
    read = account(client, teller, acct["account_id"])
    expected = {**acct, "ledger_balance": "3.10", "available_balance": "23.10"}
    assert {k: v for k, v in read.items() if k not in ("version", "position")} == {
        k: v for k, v in expected.items() if k not in ("version", "position")}
    assert read["version"] > acct["version"]
    assert acct["position"] < read["position"] <= txn["position"]


# ------------------------------------------------------------------- min_position


def test_each_read_sees_the_write_just_before_it(client, teller):
    customer = new_customer(client, teller)["customer_id"]
    a = open_account(client, teller, "EUR", customer_id=customer)["account_id"]
    b = open_account(client, teller, "EUR", customer_id=customer)["account_id"]
    expected = Decimal("0.00")
    for n in range(1, 21):
        if n % 3 == 0:
            txn = ok(transfer(client, teller, a, b, "1.00"), 201)
            expected -= Decimal("1.00")
        else:
            txn = ok(deposit(client, teller, a, f"{n}.00"), 201)
            expected += Decimal(n)
        at = f"min_position={txn['position']}"
        read = ok(get(client, f"/v1/accounts/{a}?{at}", teller, fresh=False), 200)
        assert Decimal(read["ledger_balance"]) == expected, n
        body = ok(get(client, f"/v1/accounts/{a}/statement?limit=1000&{at}", teller,
                      fresh=False), 200)
        assert len(body["entries"]) == n
        assert body["entries"][-1]["transaction_id"] == txn["transaction_id"]
        assert Decimal(body["closing_balance"]) == expected
        read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}?{at}", teller,
                      fresh=False), 200)
        assert without_position(read) == without_position(txn)


def test_an_account_is_readable_right_after_it_opens(client, teller):
    customer = new_customer(client, teller)["customer_id"]
    opened = []
    for _ in range(10):
        acct = open_account(client, teller, customer_id=customer)
        opened.append(acct["account_id"])
        at = f"min_position={acct['position']}"
        read = ok(get(client, f"/v1/accounts/{acct['account_id']}?{at}", teller,
                      fresh=False), 200)
        assert read["account_id"] == acct["account_id"]
        listed = ok(get(client, f"/v1/customers/{customer}/accounts?{at}", teller,
                        fresh=False), 200)
        assert [a["account_id"] for a in listed["accounts"]] == opened
        assert ok(get(client, f"/v1/accounts/{acct['account_id']}/statement?{at}", teller,
                      fresh=False), 200)["entries"] == []


def test_min_position_of_zero_or_the_head_answers(client, teller):
    acct = funded_account(client, teller, "1.00")["account_id"]
    head = client.get("/readyz").json()["position"]
    for at in (head, 0):  # the head first: 0 waits for nothing, so the view must have it
        ok(get(client, f"/v1/accounts/{acct}?min_position={at}", teller, fresh=False), 200)
        ok(get(client, f"/v1/accounts/{acct}/statement?min_position={at}", teller,
               fresh=False), 200)


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "1e3", " 1"])
def test_a_bad_min_position_is_a_validation_error(client, teller, value):
    acct = funded_account(client, teller, "1.00")
    customer = acct["customer_id"]
    txn = ok(deposit(client, teller, acct["account_id"], "1.00"), 201)
    for path in (f"/v1/accounts/{acct['account_id']}", f"/v1/customers/{customer}/accounts",
                 f"/v1/accounts/{acct['account_id']}/statement",
                 f"/v1/transactions/{txn['transaction_id']}"):
        body = problem(client.get(path, params={"min_position": value},
                                  headers={"Authorization": f"Bearer {teller}"}),
                       422, "validation_error")
        assert ["query", "min_position"] in [e["loc"] for e in body["errors"]], (path, body)


@pytest.fixture
def short_wait_client(bank: Bank, database_url: str) -> Iterator[TestClient]:
    """The app with the projections running and reads waiting at most 200 ms."""
    bank.read_wait_seconds = 0.2  # a bank passed in keeps its own settings
    app = create_app(Settings(database_url=database_url, read_wait_ms=200), bank=bank)
    with ReadYourWritesClient(app) as client:
        yield client


def assert_unavailable(response) -> None:
    problem(response, 503, "service_unavailable")
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), response.headers


def test_a_position_beyond_the_log_is_503_with_retry_after(short_wait_client, teller):
    client = short_wait_client
    acct = open_account(client, teller)
    customer = acct["customer_id"]
    txn = ok(deposit(client, teller, acct["account_id"], "1.00"), 201)
    beyond = txn["position"] + 1_000_000
    for path in (f"/v1/accounts/{acct['account_id']}", f"/v1/customers/{customer}/accounts",
                 f"/v1/accounts/{acct['account_id']}/statement",
                 f"/v1/transactions/{txn['transaction_id']}"):
        assert_unavailable(get(client, f"{path}?min_position={beyond}", teller, fresh=False))
        # The same read at the write's own position answers.
        ok(get(client, f"{path}?min_position={txn['position']}", teller, fresh=False), 200)


def test_a_position_beyond_the_log_is_503_even_for_an_unknown_account(short_wait_client,
                                                                     teller):
    client = short_wait_client
    head = open_account(client, teller)["position"]
    assert_unavailable(get(client, f"/v1/accounts/{UNKNOWN_ID}?min_position={head + 10**6}",
                           teller, fresh=False))


@pytest.fixture
def runnerless_client(bank: Bank, database_url: str) -> Iterator[TestClient]:
    """The app with no projection runner in it (as beside `backoffice projections run`,
    when that is not running)."""
    settings = Settings(database_url=database_url, read_wait_ms=200, run_projections=False)
    bank.read_wait_seconds = 0.2  # a bank passed in keeps its own settings
    with ReadYourWritesClient(create_app(settings, bank=bank)) as client:
        yield client


def test_without_runners_a_read_at_a_recent_position_is_503_and_a_plain_read_is_stale(
    runnerless_client, teller
):
    client = runnerless_client
    customer = new_customer(client, teller)["customer_id"]
    acct = open_account(client, teller, customer_id=customer)
    at = f"min_position={acct['position']}"
    # Asked to include the opening: the view cannot get there, so 503.
    assert_unavailable(get(client, f"/v1/accounts/{acct['account_id']}?{at}", teller,
                           fresh=False))
    assert_unavailable(get(client, f"/v1/customers/{customer}/accounts?{at}", teller,
                           fresh=False))
    assert_unavailable(get(client, f"/v1/accounts/{acct['account_id']}/statement?{at}",
                           teller, fresh=False))
    # Not asked: the view answers as it stands, which does not know the account yet.
    problem(get(client, f"/v1/accounts/{acct['account_id']}", teller, fresh=False), 404,
            "not_found")
    listed = ok(get(client, f"/v1/customers/{customer}/accounts", teller, fresh=False), 200)
    assert listed == {"accounts": []}
    # Customers are read from the log, not a view: always current.
    ok(get(client, f"/v1/customers/{customer}", teller, fresh=False), 200)


def test_without_runners_reads_catch_up_once_a_runner_starts(bank, database_url, teller):
    settings = Settings(database_url=database_url, read_wait_ms=200, run_projections=False)
    bank.read_wait_seconds = 0.2  # a bank passed in keeps its own settings
    with ReadYourWritesClient(create_app(settings, bank=bank)) as client:
        acct = open_account(client, teller)
        txn = ok(deposit(client, teller, acct["account_id"], "8.00"), 201)
        assert_unavailable(get(client, f"/v1/transactions/{txn['transaction_id']}"
                               f"?min_position={txn['position']}", teller, fresh=False))
        problem(get(client, f"/v1/transactions/{txn['transaction_id']}", teller,
                    fresh=False), 404, "not_found")
    with ReadYourWritesClient(create_app(Settings(database_url=database_url), bank=bank)) as client:
        at = f"min_position={txn['position']}"
        read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}?{at}", teller,
                      fresh=False), 200)
        assert without_position(read) == without_position(txn)
        assert ok(get(client, f"/v1/accounts/{acct['account_id']}?{at}", teller,
                      fresh=False), 200)["ledger_balance"] == "8.00"


# ------------------------------------------------------------ business time zone


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_statement_days_are_business_days(database_url, make_key, zone):
    """Dates are calendar days in BACKOFFICE_BUSINESS_TZ (UTC+14 and UTC-12 here)."""
    teller = make_key("teller", "tz-branch")[1]
    zoned = bootstrap(database_url=database_url, business_tz=zone)
    try:
        app = create_app(Settings(database_url=database_url, business_tz=zone), bank=zoned)
        with ReadYourWritesClient(app) as client:
            acct = open_account(client, teller)["account_id"]
            txn = ok(deposit(client, teller, acct, "4.00"), 201)
            booked = datetime.fromisoformat(txn["booked_at"])
            local_day = booked.astimezone(ZoneInfo(zone)).date()
            utc_day = booked.astimezone(UTC).date()
            for day in (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1),
                        utc_day):
                body = statement_ok(client, teller, acct, from_=day.isoformat(),
                                    to=day.isoformat())
                if day == local_day:
                    assert [e["transaction_id"] for e in body["entries"]] == [
                        txn["transaction_id"]], day
                    assert (body["opening_balance"], body["closing_balance"]) == (
                        "0.00", "4.00")
                else:
                    assert body["entries"] == [], day
                    balance = "0.00" if day < local_day else "4.00"
                    assert body["opening_balance"] == body["closing_balance"] == balance
    finally:
        zoned.close()
