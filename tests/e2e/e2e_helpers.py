"""Small helpers for the HTTP end-to-end tests: requests with a key, and problem checks."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

AUTO = object()  # a fresh Idempotency-Key per call

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def headers(key: str | None, idem: Any = None, extra: dict[str, str] | None = None) -> dict:
    h: dict[str, str] = {}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    if idem is AUTO:
        idem = uuid.uuid4().hex
    if idem is not None:
        h["Idempotency-Key"] = idem
    h.update(extra or {})
    return h


def post(
    client: TestClient, path: str, key: str | None, body: Any = None, idem: Any = AUTO,
    extra: dict[str, str] | None = None,
) -> Response:
    """POST ``body`` as JSON (or no body when None) with a fresh Idempotency-Key by default."""
    h = headers(key, idem, extra)
    if body is None:
        return client.post(path, headers=h)
    return client.post(path, json=body, headers=h)


def patch(client: TestClient, path: str, key: str | None, body: Any, idem: Any = None) -> Response:
    return client.patch(path, json=body, headers=headers(key, idem))


# The last position a write answered with: reads ask the views to have reached it, as a
# teller's system does to read its own writes (reset before each test).
LAST_POSITION: list[int | None] = [None]


class ReadYourWritesClient(TestClient):
    """Remembers the position of every write, so helper reads can wait for it."""

    def request(self, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        response = super().request(*args, **kwargs)
        if response.request.method != "GET":
            remember_position(response)
        return response


def remember_position(response: Response) -> Response:
    if response.headers.get("content-type", "").startswith("application/json"):
        position = response.json().get("position") if isinstance(response.json(), dict) else None
        if isinstance(position, int):
            wrote_at(position)
    return response


def wrote_at(position: int) -> None:
    """Reads wait for ``position`` too (for writes made without the HTTP client)."""
    LAST_POSITION[0] = max(position, LAST_POSITION[0] or 0)


def get(
    client: TestClient, path: str, key: str | None, extra: dict[str, str] | None = None,
    fresh: bool = True,
) -> Response:
    """GET; ``fresh`` adds ``min_position`` = the last write's position to /v1 reads."""
    if fresh and LAST_POSITION[0] is not None and path.startswith("/v1/") and "min_position=" not in path:
        path += ("&" if "?" in path else "?") + f"min_position={LAST_POSITION[0]}"
    return client.get(path, headers=headers(key, None, extra))


def ok(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def problem(response: Response, status: int, code: str) -> dict:
    """Assert an RFC 9457 problem document with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    for field in ("type", "title", "detail"):
        assert isinstance(body[field], str) and body[field], field
    if code == "validation_error":
        assert body["errors"], body
        for error in body["errors"]:
            assert isinstance(error["loc"], list) and error["loc"]
            assert isinstance(error["msg"], str) and error["msg"]
    return body


def error_locs(body: dict) -> list[list]:
    return [e["loc"] for e in body["errors"]]


def loc_names(body: dict, field: str) -> bool:
    """Does some error's loc name ``field`` (as its last element)?"""
    return any(loc[-1] == field for loc in error_locs(body))


# --- building blocks ---------------------------------------------------------------


def new_customer(client: TestClient, key: str, **fields: Any) -> dict:
    body = {"name": "Ada Lovelace", "kind": "person", "country": "GB", **fields}
    return ok(post(client, "/v1/customers", key, body), 201)


def open_account(
    client: TestClient, key: str, currency: str = "EUR", customer_id: str | None = None,
    **fields: Any,
) -> dict:
    if customer_id is None:
        customer_id = new_customer(client, key)["customer_id"]
    body = {"customer_id": customer_id, "currency": currency, **fields}
    return ok(post(client, "/v1/accounts", key, body), 201)


def deposit(client: TestClient, key: str, account_id: str, amount: str, currency: str = "EUR",
            channel: str = "cash", idem: Any = AUTO, **fields: Any) -> Response:
    body = {"account_id": account_id, "amount": amount, "currency": currency,
            "channel": channel, **fields}
    return post(client, "/v1/deposits", key, body, idem=idem)


def withdraw(client: TestClient, key: str, account_id: str, amount: str, currency: str = "EUR",
             channel: str = "cash", idem: Any = AUTO, **fields: Any) -> Response:
    body = {"account_id": account_id, "amount": amount, "currency": currency,
            "channel": channel, **fields}
    return post(client, "/v1/withdrawals", key, body, idem=idem)


def transfer(client: TestClient, key: str, source: str, destination: str, amount: str,
             currency: str = "EUR", idem: Any = AUTO, **fields: Any) -> Response:
    body = {"from_account_id": source, "to_account_id": destination, "amount": amount,
            "currency": currency, **fields}
    return post(client, "/v1/transfers", key, body, idem=idem)


def account(client: TestClient, key: str, account_id: str) -> dict:
    return ok(get(client, f"/v1/accounts/{account_id}", key), 200)


def balance(client: TestClient, key: str, account_id: str) -> str:
    return account(client, key, account_id)["ledger_balance"]


def funded_account(client: TestClient, key: str, amount: str, currency: str = "EUR",
                   **fields: Any) -> dict:
    acct = open_account(client, key, currency, **fields)
    ok(deposit(client, key, acct["account_id"], amount, currency), 201)
    return acct


def race(count: int, attempt: Callable[[int], Response]) -> list[Response]:
    """``count`` calls started together, each on its own thread."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Response:
        barrier.wait()
        return attempt(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
