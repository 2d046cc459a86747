"""Refusals made at the HTTP edge, in the same hierarchy as the domain's."""

from __future__ import annotations

from domain.errors import BankError


class Unauthorized(BankError):
    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("a valid API key is required: Authorization: Bearer <key>")


class Forbidden(BankError):
    code = "forbidden"

    def __init__(self, role: str) -> None:
        super().__init__(f"the {role} role may not make this call", role=role)


class IdempotencyKeyRequired(BankError):
    code = "idempotency_key_required"

    def __init__(self, detail: str = "this call needs an Idempotency-Key header") -> None:
        super().__init__(detail)


class PayloadTooLarge(BankError):
    code = "payload_too_large"

    def __init__(self, limit: int, max_items: int | None = None) -> None:
        if max_items is None:
            super().__init__(f"the request body exceeds {limit} bytes", limit_bytes=limit)
        else:
            super().__init__(
                f"a batch has at most {max_items} items", limit_bytes=limit, max_items=max_items
            )


class RouteNotFound(BankError):
    code = "not_found"


class MethodNotAllowed(BankError):
    code = "method_not_allowed"
