"""API keys over HTTP, and the operations endpoints (no auth)."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import (
    RFC3339,
    UNKNOWN_ID,
    deposit,
    get,
    new_customer,
    ok,
    open_account,
    post,
    problem,
)


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_list_keys_without_secrets(client, make_key, keys, role):
    view, secret = make_key("compliance", "aml-2")
    response = get(client, "/v1/keys", keys[role])
    listed = ok(response, 200)["keys"]
    assert len(listed) == 5
    by_name = {k["name"]: k for k in listed}
    assert set(by_name) == {"branch-12", "audit-firm", "aml-desk", "ops", "aml-2"}
    assert by_name["aml-2"] == {k: v for k, v in view.items() if k != "position"}
    assert set(by_name["aml-2"]) == {"key_id", "name", "role", "created_at", "revoked_at"}
    assert {k["name"]: k["role"] for k in listed} == {
        "branch-12": "teller", "audit-firm": "auditor", "aml-desk": "compliance",
        "ops": "admin", "aml-2": "compliance"}
    for k in listed:
        assert RFC3339.match(k["created_at"]) and k["revoked_at"] is None
    for s in [secret, *keys.values()]:
        assert s not in response.text
    assert "secret" not in response.text and "hash" not in response.text


def test_revoke_a_key(client, make_key, admin, auditor):
    view, secret = make_key("teller", "branch-99")
    ok(get(client, f"/v1/customers/{new_customer(client, secret)['customer_id']}", secret), 200)
    revoked = ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    assert revoked["key_id"] == view["key_id"]
    assert (revoked["name"], revoked["role"]) == ("branch-99", "teller")
    assert RFC3339.match(revoked["revoked_at"])
    assert isinstance(revoked["position"], int)
    assert secret not in str(revoked)

    problem(get(client, f"/v1/accounts/{UNKNOWN_ID}", secret), 401, "unauthorized")
    problem(post(client, "/v1/customers", secret,
                 {"name": "N", "kind": "person", "country": "DE"}), 401, "unauthorized")
    listed = {k["key_id"]: k for k in ok(get(client, "/v1/keys", auditor), 200)["keys"]}
    assert listed[view["key_id"]]["revoked_at"] == revoked["revoked_at"]
    assert sum(k["revoked_at"] is not None for k in listed.values()) == 1


def test_an_admin_may_revoke_its_own_key(client, make_key):
    view, secret = make_key("admin", "short-lived")
    ok(post(client, f"/v1/keys/{view['key_id']}/revoke", secret), 200)
    problem(get(client, "/v1/keys", secret), 401, "unauthorized")


def test_revoking_twice_keeps_the_first_time(client, make_key, admin):
    view, _ = make_key("auditor", "temp")
    first = ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    second = ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    assert second["revoked_at"] == first["revoked_at"]


@pytest.mark.parametrize("key_id", [UNKNOWN_ID, "not-a-key"])
def test_revoke_unknown_key_is_404(client, admin, key_id):
    problem(post(client, f"/v1/keys/{key_id}/revoke", admin), 404, "not_found")


def test_revoke_needs_an_idempotency_key(client, make_key, admin):
    view, secret = make_key("teller", "t")
    problem(post(client, f"/v1/keys/{view['key_id']}/revoke", admin, idem=None), 400,
            "idempotency_key_required")
    ok(get(client, f"/v1/accounts/{open_account(client, secret)['account_id']}", secret), 200)


def test_an_account_id_is_not_a_key(client, admin):
    acct = open_account(client, admin)
    problem(post(client, f"/v1/keys/{acct['account_id']}/revoke", admin), 404, "not_found")


# ---------------------------------------------------------------------- operations

# One sample line of the Prometheus text format: name{label="value",...} number
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
    r'(-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)$'
)


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readyz_reports_the_position(client, teller):
    first = client.get("/readyz")
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "ready"
    assert isinstance(body["position"], int)
    before = body["position"]
    acct = open_account(client, teller)
    txn = ok(deposit(client, teller, acct["account_id"], "1.00"), 201)
    after = client.get("/readyz").json()["position"]
    assert after == txn["position"] > before


def test_metrics_are_prometheus_text(client, teller):
    get(client, f"/v1/accounts/{UNKNOWN_ID}", teller)
    get(client, f"/v1/accounts/{UNKNOWN_ID}", teller)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert re.search(r"^# TYPE \w+ (counter|gauge|histogram)$", text, re.MULTILINE)
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    for line in samples:
        assert SAMPLE.match(line), line
    # A request counter saw the two 404s (whatever the project names it).
    counted = [float(line.rsplit(" ", 1)[1]) for line in samples
               if 'method="GET"' in line and 'status="404"' in line]
    assert 2.0 in counted, counted


def test_operations_need_no_key(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_unknown_route_is_a_404_problem(client, teller):
    problem(get(client, "/v1/nothing-here", teller), 404, "not_found")
