"""The one map from refusals to HTTP statuses, and RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout
from starlette.responses import JSONResponse

STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "idempotency_key_required": 400,
    "idempotency_key_reused": 422,
    "currency_mismatch": 422,
    "insufficient_funds": 409,
    "account_frozen": 409,
    "account_closed": 409,
    "account_not_empty": 409,
    "hold_not_active": 409,
    "capture_exceeds_hold": 409,
    "already_reversed": 409,
    "business_day_closed": 409,
    "batch_rejected": 409,
    "payload_too_large": 413,
    "service_unavailable": 503,
    "internal_error": 500,
}

TITLES: dict[str, str] = {
    "validation_error": "The request is not valid",
    "unauthorized": "Missing, unknown or revoked API key",
    "forbidden": "This key's role may not make this call",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "idempotency_key_required": "An Idempotency-Key header is required",
    "idempotency_key_reused": "Idempotency-Key already used for another request",
    "currency_mismatch": "Currency does not match the account",
    "insufficient_funds": "Insufficient funds",
    "account_frozen": "Account is frozen",
    "account_closed": "Account is closed",
    "account_not_empty": "Account is not empty",
    "hold_not_active": "Hold is not active",
    "capture_exceeds_hold": "Capture exceeds what remains held",
    "already_reversed": "Transaction already reversed",
    "business_day_closed": "Business day is closed",
    "batch_rejected": "Batch rejected",
    "payload_too_large": "Payload too large",
    "service_unavailable": "Service unavailable",
    "internal_error": "Internal error",
}

# Failures of the database itself: the request may be retried later.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeout)


def problem(
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status = STATUS_BY_CODE[code]
    body = {
        "type": f"https://backoffice.example/problems/{code}",
        "title": TITLES[code],
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")
