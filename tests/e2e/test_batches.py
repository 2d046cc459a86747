"""Batches: items applied in order against the running state, atomic or not; their form,
size, roles, idempotency and reading them back; batches racing each other."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from e2e_helpers import (
    AUTO,
    UNKNOWN_ID,
    account,
    funded_account,
    get,
    new_customer,
    ok,
    open_account,
    post,
    problem,
    race,
    withdraw,
)
from httpx import Response

# --- helpers -------------------------------------------------------------------------


def cash(kind: str, account_id: str, amount: str, currency: str = "EUR",
         channel: str = "cash", **fields: Any) -> dict:
    return {"type": kind, "account_id": account_id, "amount": amount, "currency": currency,
            "channel": channel, **fields}


def dep(account_id: str, amount: str, **fields: Any) -> dict:
    return cash("deposit", account_id, amount, **fields)


def wd(account_id: str, amount: str, **fields: Any) -> dict:
    return cash("withdrawal", account_id, amount, **fields)


def xfer(source: str, destination: str, amount: str, currency: str = "EUR",
         **fields: Any) -> dict:
    return {"type": "transfer", "from_account_id": source, "to_account_id": destination,
            "amount": amount, "currency": currency, **fields}


def batch(client, key, items: list, atomic: bool = False, idem: Any = AUTO) -> Response:
    return post(client, "/v1/batches", key, {"atomic": atomic, "items": items}, idem=idem)


def read_batch(client, key, batch_id: str) -> Response:
    return get(client, f"/v1/batches/{batch_id}", key)


def ledger(client, key, account_id: str) -> str:
    return account(client, key, account_id)["ledger_balance"]


def outcomes(body: dict) -> list[tuple[int, str, str]]:
    """(index, status, the transaction's kind or the error's code) per result."""
    return [(r["index"], r["status"],
             r["transaction"]["kind"] if r["status"] == "posted" else r["error"]["code"])
            for r in body["results"]]


def assert_well_formed(body: dict, atomic: bool) -> None:
    assert set(body) == {"batch_id", "atomic", "results", "position"}
    UUID(body["batch_id"])
    assert body["atomic"] is atomic
    assert [r["index"] for r in body["results"]] == list(range(len(body["results"])))
    positions = []
    for result in body["results"]:
        if result["status"] == "posted":
            assert set(result) == {"index", "status", "transaction"}
            positions.append(result["transaction"]["position"])
        else:
            assert result["status"] == "rejected"
            assert set(result) == {"index", "status", "error"}
            assert set(result["error"]) == {"code", "detail"} and result["error"]["detail"]
    assert positions == sorted(set(positions))
    assert all(body["position"] > p for p in positions)




# --- applying items --------------------------------------------------------------------


def test_a_batch_applies_its_items_in_order(client, teller):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller)["account_id"]
    items = [dep(a, "50.00", reference="opening"), wd(a, "80.00"), xfer(a, b, "30.00"),
             wd(a, "20.00", channel="wire"), wd(a, "0.01")]
    body = ok(batch(client, teller, items), 201)
    assert_well_formed(body, atomic=False)
    assert outcomes(body) == [(0, "posted", "deposit"), (1, "rejected", "insufficient_funds"),
                              (2, "posted", "transfer"), (3, "posted", "withdrawal"),
                              (4, "rejected", "insufficient_funds")]
    first = body["results"][0]["transaction"]
    assert (first["amount"], first["channel"], first["reference"], first["status"]) == (
        "50.00", "cash", "opening", "posted")
    assert sorted(body["results"][3]["transaction"]["entries"],
                  key=lambda e: e["direction"]) == [
        {"account": "clearing", "direction": "credit", "amount": "20.00"},
        {"account": a, "direction": "debit", "amount": "20.00"},
    ]
    assert (ledger(client, teller, a), ledger(client, teller, b)) == ("0.00", "30.00")
    # Each transaction is a transaction like any other.
    read = ok(get(client, f"/v1/transactions/{first['transaction_id']}", teller), 200)
    assert read == first
    assert ok(read_batch(client, teller, body["batch_id"]), 200) == body


def test_an_atomic_batch_posts_every_item(client, teller):
    a = funded_account(client, teller, "10.00")["account_id"]
    b = open_account(client, teller)["account_id"]
    body = ok(batch(client, teller, [wd(a, "10.00"), dep(a, "5.00"), xfer(a, b, "5.00")],
                    atomic=True), 201)
    assert_well_formed(body, atomic=True)
    assert outcomes(body) == [(0, "posted", "withdrawal"), (1, "posted", "deposit"),
                              (2, "posted", "transfer")]
    assert (ledger(client, teller, a), ledger(client, teller, b)) == ("0.00", "5.00")
    assert ok(read_batch(client, teller, body["batch_id"]), 200) == body


def test_an_atomic_batch_posts_nothing_and_names_every_failing_item(client, teller, admin):
    a = open_account(client, teller)["account_id"]
    frozen = funded_account(client, teller, "10.00")["account_id"]
    ok(post(client, f"/v1/accounts/{frozen}/freeze", admin, {"reason": "x"}), 200)
    closed = open_account(client, teller)["account_id"]
    ok(post(client, f"/v1/accounts/{closed}/close", admin), 200)
    usd = open_account(client, teller, "USD")["account_id"]
    items = [dep(a, "10.00"), wd(a, "20.00"), wd(frozen, "1.00"), xfer(a, usd, "1.00"),
             dep(UNKNOWN_ID, "1.00"), dep(closed, "1.00"), dep(frozen, "1.00")]
    found = problem(batch(client, teller, items, atomic=True), 409, "batch_rejected")
    assert [(i["index"], i["code"]) for i in found["items"]] == [
        (1, "insufficient_funds"), (2, "account_frozen"), (3, "currency_mismatch"),
        (4, "not_found"), (5, "account_closed")]
    assert all(isinstance(i["detail"], str) and i["detail"] for i in found["items"])
    assert ledger(client, teller, a) == "0.00"
    # The 10.00 of item 0 is not there for the next write either.
    problem(withdraw(client, teller, a, "0.01"), 409, "insufficient_funds")
    assert outcomes(ok(batch(client, teller, [wd(a, "0.01")]), 201)) == [
        (0, "rejected", "insufficient_funds")]
    assert ledger(client, teller, frozen) == "10.00"
    statement = ok(get(client, f"/v1/accounts/{a}/statement", teller), 200)
    assert statement["entries"] == []


def test_the_same_items_not_atomic_post_what_they_can(client, teller, admin):
    a = open_account(client, teller)["account_id"]
    frozen = funded_account(client, teller, "10.00")["account_id"]
    ok(post(client, f"/v1/accounts/{frozen}/freeze", admin, {"reason": "x"}), 200)
    items = [dep(a, "10.00"), wd(a, "20.00"), wd(frozen, "1.00"), dep(UNKNOWN_ID, "1.00"),
             dep(frozen, "1.00"), wd(a, "10.00")]
    body = ok(batch(client, teller, items), 201)
    assert outcomes(body) == [(0, "posted", "deposit"), (1, "rejected", "insufficient_funds"),
                              (2, "rejected", "account_frozen"), (3, "rejected", "not_found"),
                              (4, "posted", "deposit"), (5, "posted", "withdrawal")]
    assert (ledger(client, teller, a), ledger(client, teller, frozen)) == ("0.00", "11.00")


def test_order_matters_within_an_atomic_batch(client, teller):
    a = open_account(client, teller)["account_id"]
    found = problem(batch(client, teller, [wd(a, "30.00"), dep(a, "30.00")], atomic=True),
                    409, "batch_rejected")
    assert [(i["index"], i["code"]) for i in found["items"]] == [(0, "insufficient_funds")]
    ok(batch(client, teller, [dep(a, "30.00"), wd(a, "30.00")], atomic=True), 201)
    assert ledger(client, teller, a) == "0.00"


def test_items_respect_holds_and_overdraft_limits(client, teller):
    a = funded_account(client, teller, "100.00", overdraft_limit="20.00")["account_id"]
    ok(post(client, "/v1/holds", teller, {"account_id": a, "amount": "80.00",
                                          "currency": "EUR"}), 201)
    body = ok(batch(client, teller, [wd(a, "40.01"), wd(a, "40.00")]), 201)
    assert outcomes(body) == [(0, "rejected", "insufficient_funds"),
                              (1, "posted", "withdrawal")]
    acct = account(client, teller, a)
    assert (acct["ledger_balance"], acct["held_amount"], acct["available_balance"]) == (
        "60.00", "80.00", "0.00")


def test_item_details_are_kept(client, teller):
    a = open_account(client, teller)["account_id"]
    runner = new_customer(client, teller, name="Runner")["customer_id"]
    counterparty = {"name": "ACME", "account": "NL91ABNA0417164300", "country": "NL"}
    items = [dep(a, "9.99", channel="wire", reference="INV-1", conducted_by=runner,
                 counterparty=counterparty),
             dep(a, "1.00", conducted_by=UNKNOWN_ID)]
    body = ok(batch(client, teller, items), 201)
    txn = body["results"][0]["transaction"]
    assert (txn["channel"], txn["reference"], txn["conducted_by"], txn["counterparty"]) == (
        "wire", "INV-1", runner, counterparty)
    assert outcomes(body)[1] == (1, "rejected", "not_found")
    assert ledger(client, teller, a) == "9.99"


def test_other_currencies_print_their_minor_units(client, teller):
    jpy = open_account(client, teller, "JPY")["account_id"]
    kwd = open_account(client, teller, "KWD")["account_id"]
    body = ok(batch(client, teller, [cash("deposit", jpy, "1500", "JPY"),
                                     cash("deposit", kwd, "2.5", "KWD")], atomic=True), 201)
    assert [r["transaction"]["amount"] for r in body["results"]] == ["1500", "2.500"]
    assert (ledger(client, teller, jpy), ledger(client, teller, kwd)) == ("1500", "2.500")


# --- form and size ---------------------------------------------------------------------


MALFORMED_ITEMS = {
    "amount precision": lambda a: dep(a, "1.001"),
    "zero amount": lambda a: dep(a, "0.00"),
    "amount as a number": lambda a: dep(a, 1),
    "no account": lambda a: {k: v for k, v in dep(a, "1.00").items() if k != "account_id"},
    "unknown type": lambda a: {**dep(a, "1.00"), "type": "fee"},
    "no type": lambda a: {k: v for k, v in dep(a, "1.00").items() if k != "type"},
    "transfer to itself": lambda a: xfer(a, a, "1.00"),
    "lower-case currency": lambda a: dep(a, "1.00", currency="eur"),
    "unknown channel": lambda a: dep(a, "1.00", channel="ach"),
    "unknown field": lambda a: {**dep(a, "1.00"), "ammount": "1.00"},
    "unknown country": lambda a: dep(a, "1.00", counterparty={"country": "ZZ"}),
    "long reference": lambda a: dep(a, "1.00", reference="r" * 256),
    "not an object": lambda a: "deposit 1.00",
}


@pytest.mark.parametrize("atomic", [True, False])
def test_a_malformed_item_makes_the_whole_request_a_422_naming_it(client, teller, atomic):
    a = open_account(client, teller)["account_id"]
    for name, malformed in MALFORMED_ITEMS.items():
        items = [dep(a, "10.00"), malformed(a), dep(a, "5.00")]
        found = problem(batch(client, teller, items, atomic=atomic), 422, "validation_error")
        assert found["errors"] and all(
            e["loc"][:3] == ["body", "items", 1] for e in found["errors"]), (name, found)
    assert ledger(client, teller, a) == "0.00"


@pytest.mark.parametrize("names", [
    ["amount precision", "transfer to itself", "lower-case currency", "unknown country"],
    ["no account", "unknown type", "unknown field", "unknown channel"],
])
def test_every_malformed_item_is_named(client, teller, names):
    a = open_account(client, teller)["account_id"]
    items = [dep(a, "10.00")] + [MALFORMED_ITEMS[name](a) for name in names]
    found = problem(batch(client, teller, items), 422, "validation_error")
    assert {e["loc"][2] for e in found["errors"]} == set(range(1, len(items)))
    assert ledger(client, teller, a) == "0.00"


def test_malformed_batches_are_422(client, teller):
    for body in ({"atomic": True, "items": []}, {"atomic": True}, {"items": []},
                 {"atomic": "sometimes", "items": [{"type": "deposit"}]},
                 {"atomic": True, "items": {"0": {}}}, {"atomic": True, "items": [], "note": 1},
                 [], "batch"):
        problem(post(client, "/v1/batches", teller, body), 422, "validation_error")


def test_an_empty_batch_names_items(client, teller):
    found = problem(batch(client, teller, []), 422, "validation_error")
    assert ["body", "items"] in [e["loc"] for e in found["errors"]]


def test_a_thousand_items_post_and_one_more_is_413(client, teller):
    a = open_account(client, teller)["account_id"]
    body = ok(batch(client, teller, [dep(a, "0.01")] * 1000, atomic=True), 201)
    assert len(body["results"]) == 1000
    assert ledger(client, teller, a) == "10.00"
    found = problem(batch(client, teller, [dep(a, "0.01")] * 1001), 413, "payload_too_large")
    assert "1000" in found["detail"] or "1,000" in found["detail"]
    # 413 comes before 422: the items need not even be well formed.
    problem(batch(client, teller, [{"type": "?"}] * 1001), 413, "payload_too_large")
    assert ledger(client, teller, a) == "10.00"


def test_size_checks_come_after_auth_and_idempotency(client, teller, auditor):
    items = [{"type": "?"}] * 1001
    problem(batch(client, None, items), 401, "unauthorized")
    problem(batch(client, auditor, items), 403, "forbidden")
    problem(batch(client, teller, items, idem=None), 400, "idempotency_key_required")
    a = open_account(client, teller)["account_id"]
    ok(batch(client, teller, [dep(a, "1.00")], idem="used"), 201)
    problem(batch(client, teller, items, idem="used"), 422, "idempotency_key_reused")


# --- roles -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["auditor", "compliance"])
def test_only_tellers_and_admins_post_batches(client, keys, role):
    a = open_account(client, keys["teller"])["account_id"]
    problem(batch(client, keys[role], [dep(a, "1.00")], idem=None), 403, "forbidden")
    problem(batch(client, keys[role], [dep(a, "1.00")]), 403, "forbidden")
    assert ok(batch(client, keys["admin"], [dep(a, "1.00")]), 201)["results"][0]["status"] == (
        "posted")
    assert ledger(client, keys["teller"], a) == "1.00"


def test_who_reads_batches(client, keys):
    a = open_account(client, keys["teller"])["account_id"]
    body = ok(batch(client, keys["teller"], [dep(a, "1.00"), wd(a, "2.00")]), 201)
    for role in ("teller", "auditor", "admin"):
        assert ok(read_batch(client, keys[role], body["batch_id"]), 200) == body
    problem(read_batch(client, keys["compliance"], body["batch_id"]), 403, "forbidden")
    problem(read_batch(client, None, body["batch_id"]), 401, "unauthorized")
    txn_id = body["results"][0]["transaction"]["transaction_id"]
    for unknown in (UNKNOWN_ID, "batch-1", txn_id):
        problem(read_batch(client, keys["auditor"], unknown), 404, "not_found")


# --- idempotency -----------------------------------------------------------------------


def test_a_batch_replays_without_a_second_effect(client, teller):
    a = open_account(client, teller)["account_id"]
    items = [dep(a, "10.00"), wd(a, "15.00"), wd(a, "4.00")]
    first = batch(client, teller, items, idem="batch-1")
    body = ok(first, 201)
    assert "idempotent-replayed" not in first.headers
    again = batch(client, teller, items, idem="batch-1")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == body
    assert ledger(client, teller, a) == "6.00"
    problem(batch(client, teller, items[:1], idem="batch-1"), 422, "idempotency_key_reused")
    problem(batch(client, teller, items, atomic=True, idem="batch-1"), 422,
            "idempotency_key_reused")
    assert client.get("/readyz").json()["position"] == body["position"]


def test_a_rejected_atomic_batch_replays_its_refusal(client, teller):
    a = open_account(client, teller)["account_id"]
    items = [wd(a, "1.00")]
    first = problem(batch(client, teller, items, atomic=True, idem="b-2"), 409,
                    "batch_rejected")
    ok(batch(client, teller, [dep(a, "5.00")]), 201)  # it would post now
    again = batch(client, teller, items, atomic=True, idem="b-2")
    assert problem(again, 409, "batch_rejected") == first
    assert again.headers["idempotent-replayed"] == "true"
    assert ledger(client, teller, a) == "5.00"


def test_a_batch_replay_answers_the_stored_body_after_a_reversal(client, teller, admin):
    a = open_account(client, teller)["account_id"]
    items = [dep(a, "10.00")]
    body = ok(batch(client, teller, items, idem="b-3"), 201)
    txn_id = body["results"][0]["transaction"]["transaction_id"]
    ok(post(client, f"/v1/transactions/{txn_id}/reverse", admin, {"reason": "dup"}), 201)
    again = batch(client, teller, items, idem="b-3")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == body


# --- races -----------------------------------------------------------------------------


def test_concurrent_batches_never_overdraw(client, teller):
    a = funded_account(client, teller, "100.00")["account_id"]
    b = open_account(client, teller)["account_id"]
    responses = race(4, lambda i: batch(client, teller, [wd(a, "30.00"), xfer(a, b, "30.00")]))
    bodies = [ok(r, 201) for r in responses]
    posted = [r for body in bodies for r in body["results"] if r["status"] == "posted"]
    rejected = [r for body in bodies for r in body["results"] if r["status"] == "rejected"]
    assert len(posted) == 3 and len(rejected) == 5
    assert {r["error"]["code"] for r in rejected} == {"insufficient_funds"}
    moved = sum(1 for r in posted if r["transaction"]["kind"] == "transfer")
    assert ledger(client, teller, a) == "10.00"
    assert ledger(client, teller, b) == f"{30 * moved}.00"


def test_concurrent_atomic_batches_all_or_nothing(client, teller):
    a = funded_account(client, teller, "100.00")["account_id"]
    b = open_account(client, teller)["account_id"]
    responses = race(4, lambda i: batch(client, teller, [xfer(a, b, "20.00"),
                                                         wd(a, "20.00")], atomic=True))
    posted = [r for r in responses if r.status_code == 201]
    assert len(posted) == 2, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            found = problem(response, 409, "batch_rejected")
            assert found["items"][0]["code"] == "insufficient_funds"
    assert (ledger(client, teller, a), ledger(client, teller, b)) == ("20.00", "40.00")
