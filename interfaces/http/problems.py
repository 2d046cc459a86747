"""The one map from refusals to HTTP statuses, and RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout
from starlette.responses import JSONResponse

# code -> (HTTP status, title): the one map from refusals to responses.
PROBLEMS: dict[str, tuple[int, str]] = {
    "validation_error": (422, "The request is not valid"),
    "unauthorized": (401, "Missing, unknown or revoked API key"),
    "forbidden": (403, "This key's role may not make this call"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "idempotency_key_required": (400, "An Idempotency-Key header is required"),
    "idempotency_key_reused": (422, "Idempotency-Key already used for another request"),
    "currency_mismatch": (422, "Currency does not match the account"),
    "insufficient_funds": (409, "Insufficient funds"),
    "account_frozen": (409, "Account is frozen"),
    "account_closed": (409, "Account is closed"),
    "account_not_empty": (409, "Account is not empty"),
    "hold_not_active": (409, "Hold is not active"),
    "capture_exceeds_hold": (409, "Capture exceeds what remains held"),
    "already_reversed": (409, "Transaction already reversed"),
    "business_day_closed": (409, "Business day is closed"),
    "batch_rejected": (409, "Batch rejected"),
    "payload_too_large": (413, "Payload too large"),
    "service_unavailable": (503, "Service unavailable"),
    "internal_error": (500, "Internal error"),
}

# Failures of the database itself: the request may be retried later.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeout)


def problem(
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status, title = PROBLEMS[code]
    # The standard members last: an extra can never change them.
    body = {
        **(extra or {}),
        "type": f"https://backoffice.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")
