"""The projections seen by operations: /readyz (generation, position, lag, runner state
per projection) and the /metrics gauges, with runners in the app, without them, and
across a rebuild."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from e2e_helpers import ReadYourWritesClient, deposit, get, ok, open_account, transfer
from fastapi.testclient import TestClient

from application.bank import Bank
from infrastructure.bootstrap import rebuild_projections
from infrastructure.settings import Settings
from interfaces.http.app import create_app

NAMES = ("accounts", "statements", "ledger", "transactions", "compliance", "chain")  # every follower
GAUGES = ("backoffice_projection_position", "backoffice_projection_lag_events",
          "backoffice_projection_generation")
PATIENCE_S = 30.0  # how long the runners may take to catch up (a bound, not a speed test)


def readyz(client: TestClient) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["database"] == "ok", body
    return body


def caught_up(client: TestClient, head: int) -> dict:
    """/readyz once the log head is ``head`` and every projection's runner is running
    (not still starting) with no lag."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        body = readyz(client)
        if body["position"] >= head and all(
            body["projections"][n]["lag_events"] == 0
            and body["projections"][n]["runner"]["state"] == "running"
            for n in NAMES
        ):
            return body
        assert time.monotonic() < deadline, f"the projections did not catch up: {body}"
        time.sleep(0.02)


def gauges(client: TestClient) -> dict[str, dict[str, float]]:
    """{gauge name: {projection: value}} from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    found: dict[str, dict[str, float]] = {}
    for name in GAUGES:
        assert re.search(rf"^# TYPE {name} gauge$", text, re.MULTILINE), name
        found[name] = {
            m.group(1): float(m.group(2))
            for m in re.finditer(rf'^{name}\{{projection="([a-z_]+)"\}} (\S+)$', text,
                                 re.MULTILINE)
        }
    return found


def some_history(client: TestClient, teller: str) -> tuple[dict, dict]:
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, a, "50.00"), 201)
    last = ok(transfer(client, teller, a, b, "20.00"), 201)
    return {"a": a, "b": b}, last


def test_readyz_shows_every_projection_running_and_caught_up(client, teller):
    accounts, last = some_history(client, teller)
    body = caught_up(client, last["position"])
    assert body["position"] == last["position"]  # nothing written since
    assert set(body["projections"]) >= set(NAMES)
    for name in NAMES:
        status = body["projections"][name]
        assert set(status) >= {"generation", "position", "lag_events", "runner"}, name
        assert isinstance(status["generation"], int) and status["generation"] >= 1
        assert isinstance(status["position"], int)
        assert 0 < status["position"] <= body["position"]
        assert status["lag_events"] == 0
        assert status["runner"]["state"] == "running", (name, status)
    # Each has processed the last event of its own: the transfer, or the account's change.
    txn = ok(get(client, f"/v1/transactions/{last['transaction_id']}", teller), 200)
    for name in ("statements", "ledger", "transactions"):
        assert body["projections"][name]["position"] == txn["position"], name
    acct = ok(get(client, f"/v1/accounts/{accounts['b']}", teller), 200)
    assert body["projections"]["accounts"]["position"] == acct["position"]


def test_readyz_before_anything_happened(client):
    body = caught_up(client, 0)
    for name in NAMES:
        assert body["projections"][name]["lag_events"] == 0
        assert body["projections"][name]["runner"]["state"] == "running"


def test_metrics_gauges_match_readyz(client, teller):
    _, last = some_history(client, teller)
    body = caught_up(client, last["position"])
    found = gauges(client)
    for name in NAMES:
        status = body["projections"][name]
        assert found["backoffice_projection_position"][name] == status["position"], name
        assert found["backoffice_projection_lag_events"][name] == 0, name
        assert found["backoffice_projection_generation"][name] == status["generation"], name


@pytest.fixture
def runnerless_client(bank: Bank, database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, run_projections=False)
    with ReadYourWritesClient(create_app(settings, bank=bank)) as client:
        yield client


def test_readyz_and_metrics_report_lag_when_no_runner_is_here(runnerless_client, teller):
    client = runnerless_client
    acct = open_account(client, teller)["account_id"]
    for amount in ("1.00", "2.00", "3.00"):
        last = ok(deposit(client, teller, acct, amount), 201)
    body = readyz(client)  # lag is reported, not judged: still ready
    assert body["position"] == last["position"]
    for name in NAMES:
        status = body["projections"][name]
        assert status["runner"]["state"] != "running", (name, status)
        assert status["position"] == 0, (name, status)
    # Three postings not yet projected; the accounts view also misses the opening.
    assert body["projections"]["statements"]["lag_events"] == 3
    assert body["projections"]["transactions"]["lag_events"] == 3
    assert body["projections"]["ledger"]["lag_events"] >= 3
    assert body["projections"]["accounts"]["lag_events"] >= 4
    found = gauges(client)
    for name in NAMES:
        assert found["backoffice_projection_lag_events"][name] == (
            body["projections"][name]["lag_events"]), name
        assert found["backoffice_projection_position"][name] == 0, name


def test_the_lag_drains_once_runners_start(bank, database_url, teller):
    settings = Settings(database_url=database_url, run_projections=False)
    with ReadYourWritesClient(create_app(settings, bank=bank)) as client:
        _, last = some_history(client, teller)
        assert readyz(client)["projections"]["transactions"]["lag_events"] == 2
    with ReadYourWritesClient(create_app(Settings(database_url=database_url), bank=bank)) as client:
        body = caught_up(client, last["position"])
        assert all(body["projections"][n]["runner"]["state"] == "running" for n in NAMES)
        assert gauges(client)["backoffice_projection_lag_events"] == {n: 0 for n in NAMES}


def test_a_rebuild_while_serving_moves_readers_to_the_next_generation(
    client, teller, database_url
):
    accounts, last = some_history(client, teller)
    before = caught_up(client, last["position"])
    statement_before = ok(get(client, f"/v1/accounts/{accounts['a']}/statement", teller), 200)

    result = rebuild_projections(Settings(database_url=database_url),
                                 ["statements", "transactions"]).run()
    assert result.generations == {
        "statements": before["projections"]["statements"]["generation"] + 1,
        "transactions": before["projections"]["transactions"]["generation"] + 1,
    }
    assert result.position == last["position"]

    after = readyz(client)
    for name in NAMES:
        expected = before["projections"][name]["generation"] + (
            1 if name in ("statements", "transactions") else 0)
        assert after["projections"][name]["generation"] == expected, name
        assert gauges(client)["backoffice_projection_generation"][name] == expected, name
    # The rebuilt view answers the same, and the runners go on writing into it.
    assert ok(get(client, f"/v1/accounts/{accounts['a']}/statement", teller), 200) == (
        statement_before)
    more = ok(deposit(client, teller, accounts["b"], "5.00"), 201)
    body = ok(get(client, f"/v1/accounts/{accounts['b']}/statement", teller), 200)
    assert [e["balance_after"] for e in body["entries"]] == ["20.00", "25.00"]
    assert body["entries"][-1]["transaction_id"] == more["transaction_id"]
    ok(get(client, f"/v1/transactions/{more['transaction_id']}", teller), 200)
    final = caught_up(client, more["position"])
    assert all(final["projections"][n]["runner"]["state"] == "running" for n in NAMES)
