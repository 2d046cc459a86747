"""Idempotency-Key: replays, stored refusals, reuse, scope, and racing retries."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from e2e_helpers import (
    UNKNOWN_ID,
    account,
    balance,
    deposit,
    funded_account,
    get,
    headers,
    new_customer,
    ok,
    open_account,
    patch,
    post,
    problem,
    transfer,
    withdraw,
    wrote_at,
)

from application.idempotency import Claim, fingerprint
from domain.cause import Cause


def test_replay_returns_the_same_answer_without_a_second_effect(client, teller):
    acct = open_account(client, teller)
    first = deposit(client, teller, acct["account_id"], "10.50", idem="dep-1")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    position = ok(first, 201)["position"]
    again = deposit(client, teller, acct["account_id"], "10.50", idem="dep-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["position"] == position
    assert balance(client, teller, acct["account_id"]) == "10.50"
    assert client.get("/readyz").json()["position"] == position  # the replay wrote nothing


def test_replay_of_each_kind_of_write(client, teller, admin):
    customer_body = {"name": "Replay", "kind": "organization", "country": "NL"}
    c1 = post(client, "/v1/customers", teller, customer_body, idem="c")
    c2 = post(client, "/v1/customers", teller, customer_body, idem="c")
    assert (c1.status_code, c2.status_code) == (201, 201)
    assert c2.json() == c1.json() and c2.headers["idempotent-replayed"] == "true"
    cid = c1.json()["customer_id"]

    open_body = {"customer_id": cid, "currency": "EUR"}
    a1 = post(client, "/v1/accounts", teller, open_body, idem="a")
    a2 = post(client, "/v1/accounts", teller, open_body, idem="a")
    assert (a1.status_code, a2.status_code) == (201, 201)
    assert a2.json() == a1.json() and a2.headers["idempotent-replayed"] == "true"
    accounts = ok(get(client, f"/v1/customers/{cid}/accounts", teller), 200)["accounts"]
    assert len(accounts) == 1
    aid = a1.json()["account_id"]

    other = funded_account(client, teller, "30.00")
    t1 = transfer(client, teller, other["account_id"], aid, "7.00", idem="t")
    t2 = transfer(client, teller, other["account_id"], aid, "7.00", idem="t")
    assert t2.json() == ok(t1, 201) and t2.headers["idempotent-replayed"] == "true"
    w1 = withdraw(client, teller, aid, "2.00", idem="w")
    w2 = withdraw(client, teller, aid, "2.00", idem="w")
    assert w2.json() == ok(w1, 201) and w2.headers["idempotent-replayed"] == "true"
    assert balance(client, teller, aid) == "5.00"
    assert balance(client, teller, other["account_id"]) == "23.00"

    for path, body in ((f"/v1/accounts/{aid}/limits", {"overdraft_limit": "40.00"}),
                       (f"/v1/accounts/{aid}/freeze", {"reason": "check"}),
                       (f"/v1/accounts/{aid}/unfreeze", None)):
        r1 = post(client, path, admin, body, idem=f"adm-{path}")
        r2 = post(client, path, admin, body, idem=f"adm-{path}")
        assert r2.json() == ok(r1, 200) and r2.headers["idempotent-replayed"] == "true"
    after = account(client, teller, aid)
    assert after["status"] == "active"
    assert after["available_balance"] == "45.00"


def test_replay_does_not_undo_later_changes(client, teller, admin):
    """Replaying the freeze after an unfreeze must not freeze the account again."""
    acct = open_account(client, teller)
    url = f"/v1/accounts/{acct['account_id']}"
    frozen = ok(post(client, f"{url}/freeze", admin, {"reason": "x"}, idem="f"), 200)
    assert frozen["status"] == "frozen"
    ok(post(client, f"{url}/unfreeze", admin), 200)
    replay = post(client, f"{url}/freeze", admin, {"reason": "x"}, idem="f")
    assert replay.json() == frozen
    assert account(client, teller, acct["account_id"])["status"] == "active"


def test_stored_404_replays(client, teller):
    first = deposit(client, teller, UNKNOWN_ID, "5.00", idem="nf")
    body = problem(first, 404, "not_found")
    assert "idempotent-replayed" not in first.headers
    again = deposit(client, teller, UNKNOWN_ID, "5.00", idem="nf")
    assert problem(again, 404, "not_found") == body
    assert again.headers["idempotent-replayed"] == "true"


def test_stored_409_replays_with_no_effect(client, teller):
    acct = funded_account(client, teller, "3.00")
    body = problem(withdraw(client, teller, acct["account_id"], "5.00", idem="too-much"), 409,
                   "insufficient_funds")
    ok(deposit(client, teller, acct["account_id"], "10.00"), 201)
    again = withdraw(client, teller, acct["account_id"], "5.00", idem="too-much")
    assert problem(again, 409, "insufficient_funds") == body
    assert again.headers["idempotent-replayed"] == "true"
    assert balance(client, teller, acct["account_id"]) == "13.00"


def test_stored_currency_mismatch_replays(client, teller):
    acct = open_account(client, teller, "EUR")
    body = problem(deposit(client, teller, acct["account_id"], "5.00", "USD", idem="ccy"), 422,
                   "currency_mismatch")
    again = deposit(client, teller, acct["account_id"], "5.00", "USD", idem="ccy")
    assert problem(again, 422, "currency_mismatch") == body
    assert again.headers["idempotent-replayed"] == "true"


def test_validation_errors_are_not_stored(client, teller):
    acct = open_account(client, teller)
    for _ in range(2):
        r = deposit(client, teller, acct["account_id"], "1e3", idem="v")
        problem(r, 422, "validation_error")
        assert "idempotent-replayed" not in r.headers
    # The key is still free: a corrected request with it goes through.
    fixed = deposit(client, teller, acct["account_id"], "1000.00", idem="v")
    assert ok(fixed, 201)["amount"] == "1000.00"
    assert "idempotent-replayed" not in fixed.headers
    assert balance(client, teller, acct["account_id"]) == "1000.00"


def test_same_key_with_another_request_is_reused(client, teller):
    acct = open_account(client, teller)
    other = open_account(client, teller)
    ok(deposit(client, teller, acct["account_id"], "5.00", idem="k"), 201)
    reused = deposit(client, teller, acct["account_id"], "6.00", idem="k")
    problem(reused, 422, "idempotency_key_reused")
    assert "idempotent-replayed" not in reused.headers
    # Same body, another path.
    problem(withdraw(client, teller, acct["account_id"], "5.00", idem="k"), 422,
            "idempotency_key_reused")
    problem(deposit(client, teller, other["account_id"], "5.00", idem="k"), 422,
            "idempotency_key_reused")
    assert balance(client, teller, acct["account_id"]) == "5.00"
    assert balance(client, teller, other["account_id"]) == "0.00"


def test_keys_are_scoped_to_the_calling_api_key(client, make_key, teller):
    _, other_teller = make_key("teller", "branch-13")
    acct = open_account(client, teller)
    a = ok(deposit(client, teller, acct["account_id"], "5.00", idem="shared"), 201)
    b = deposit(client, other_teller, acct["account_id"], "5.00", idem="shared")
    assert "idempotent-replayed" not in b.headers
    b = ok(b, 201)
    assert a["transaction_id"] != b["transaction_id"]
    assert balance(client, teller, acct["account_id"]) == "10.00"
    # And a different request under the other key is not "reused" either.
    ok(deposit(client, other_teller, acct["account_id"], "1.00", idem="mine"), 201)
    c = ok(deposit(client, teller, acct["account_id"], "2.00", idem="mine"), 201)
    assert c["amount"] == "2.00"
    assert balance(client, teller, acct["account_id"]) == "13.00"


def test_json_key_order_and_whitespace_do_not_matter(client, teller):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    h = {**headers(teller, "ordered"), "Content-Type": "application/json"}
    one = f'{{"account_id": "{aid}", "amount": "4.00", "currency": "EUR", "channel": "wire"}}'
    two = f'{{ "channel":"wire","currency":"EUR",\n "amount":"4.00", "account_id":"{aid}" }}'
    first = client.post("/v1/deposits", content=one.encode(), headers=h)
    second = client.post("/v1/deposits", content=two.encode(), headers=h)
    assert second.json() == ok(first, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert balance(client, teller, aid) == "4.00"


@pytest.mark.parametrize("bad_key", ["x" * 256, "x" * 300, "", "tab\there"])
def test_invalid_idempotency_key_header_is_400(client, teller, bad_key):
    acct = open_account(client, teller)
    problem(deposit(client, teller, acct["account_id"], "1.00", idem=bad_key), 400,
            "idempotency_key_required")
    assert balance(client, teller, acct["account_id"]) == "0.00"


def test_longest_and_odd_printable_keys_are_accepted(client, teller):
    acct = open_account(client, teller)
    for key in ("k" * 255, "~!@#$%^&*()_+ {}|:<>?", "1"):
        r1 = deposit(client, teller, acct["account_id"], "1.00", idem=key)
        r2 = deposit(client, teller, acct["account_id"], "1.00", idem=key)
        assert r2.json() == ok(r1, 201)
        assert r2.headers["idempotent-replayed"] == "true"
    assert balance(client, teller, acct["account_id"]) == "3.00"


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/accounts", "/v1/deposits",
                                  "/v1/withdrawals", "/v1/transfers"])
def test_teller_posts_need_an_idempotency_key(client, teller, path):
    problem(post(client, path, teller, {}, idem=None), 400, "idempotency_key_required")


@pytest.mark.parametrize("suffix", ["freeze", "unfreeze", "close", "limits"])
def test_admin_posts_need_an_idempotency_key(client, admin, suffix):
    acct = open_account(client, admin)
    problem(post(client, f"/v1/accounts/{acct['account_id']}/{suffix}", admin, {}, idem=None),
            400, "idempotency_key_required")
    assert account(client, admin, acct["account_id"])["status"] == "active"


def test_patch_with_an_idempotency_key_replays(client, teller):
    customer = new_customer(client, teller)
    url = f"/v1/customers/{customer['customer_id']}"
    first = ok(patch(client, url, teller, {"occupation": "pilot"}, idem="p"), 200)
    ok(patch(client, url, teller, {"occupation": "diver"}), 200)
    again = patch(client, url, teller, {"occupation": "pilot"}, idem="p")
    assert again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    assert ok(get(client, url, teller), 200)["occupation"] == "diver"


# ------------------------------------------------------------------ concurrency

N = 8


def test_racing_retries_in_the_application_have_one_effect(bank, client, make_key, teller):
    view, _ = make_key("teller", "racer")
    source = funded_account(client, teller, "100.00")
    destination = open_account(client, teller)
    body = {"from_account_id": source["account_id"], "to_account_id":
            destination["account_id"], "amount": "30.00", "currency": "EUR"}
    claim = Claim(scope=view["key_id"], key="race-1",
                  fingerprint=fingerprint("POST", "/v1/transfers", body))
    cause = Cause(actor_key_id=view["key_id"], actor_role="teller", request_id=None, via="api")
    barrier = threading.Barrier(N)

    def attempt(_):
        barrier.wait()
        return bank.transfer(UUID(body["from_account_id"]), UUID(body["to_account_id"]),
                             "30.00", "EUR", cause, claim=claim)

    with ThreadPoolExecutor(N) as pool:
        outcomes = list(pool.map(attempt, range(N)))
    answers = [json.dumps(o.response(), sort_keys=True) for o in outcomes]
    assert len(set(answers)) == 1, answers
    assert sum(not o.replayed for o in outcomes) == 1
    # The writes bypassed HTTP, so tell the reading client where they ended.
    wrote_at(outcomes[0].position)
    assert balance(client, teller, source["account_id"]) == "70.00"
    assert balance(client, teller, destination["account_id"]) == "30.00"


def test_racing_retries_over_http_have_one_effect(client, teller):
    source = funded_account(client, teller, "100.00")
    destination = open_account(client, teller)
    barrier = threading.Barrier(N)

    def attempt(_):
        barrier.wait()
        return transfer(client, teller, source["account_id"], destination["account_id"],
                        "25.00", idem="race-http")

    with ThreadPoolExecutor(N) as pool:
        responses = list(pool.map(attempt, range(N)))
    assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses]
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert balance(client, teller, source["account_id"]) == "75.00"
    assert balance(client, teller, destination["account_id"]) == "25.00"
