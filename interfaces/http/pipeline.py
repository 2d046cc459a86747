"""Every /v1 call passes here, in the contract's order of checks:

401 -> 403 -> 400 idempotency_key_required -> idempotent replay or 422 reused -> 413
-> 422 validation_error; the use case then answers 404, 422 currency_mismatch, 409s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Depends, Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.responses import JSONResponse

from application.bank import Bank, Principal
from application.idempotency import Claim, Outcome, fingerprint
from domain.cause import Cause
from domain.errors import NotFound, ValidationFailed
from interfaces.http.errors import Forbidden, IdempotencyKeyRequired, PayloadTooLarge, Unauthorized

MAX_BODY_BYTES = 5 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)

TELLER, AUDITOR, COMPLIANCE, ADMIN = "teller", "auditor", "compliance", "admin"
EVERY_ROLE = (TELLER, AUDITOR, COMPLIANCE, ADMIN)


class ReplayHit(Exception):  # noqa: N818 (a control-flow signal, not a failure)
    """A retried request: answer what was answered the first time."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("idempotent replay")
        self.outcome = outcome


def bank_of(request: Request) -> Bank:
    return request.app.state.bank


def request_id_of(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def authenticate(request: Request, roles: tuple[str, ...]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized
    principal = bank_of(request).authenticate(token.strip())
    if principal is None:
        raise Unauthorized
    request.state.actor = principal
    if principal.role not in roles:
        raise Forbidden(principal.role)
    return principal


def authorized(*roles: str) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        return authenticate(request, roles)

    return dependency


@dataclass(frozen=True)
class Body:
    data: Any
    valid_json: bool
    too_large: bool


_INVALID = object()


async def read_body(request: Request) -> Body:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return Body(None, valid_json=False, too_large=True)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return Body({}, valid_json=True, too_large=False)
    try:
        return Body(json.loads(raw), valid_json=True, too_large=False)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Body(raw.decode("utf-8", "replace"), valid_json=False, too_large=False)


def _printable_ascii(text: str) -> bool:
    return 1 <= len(text) <= 255 and all(" " <= ch <= "~" for ch in text)


@dataclass(frozen=True)
class Call:
    """What a route needs: the application, who calls, the claim and the body."""

    request: Request
    bank: Bank
    principal: Principal
    claim: Claim | None
    body: Body

    @property
    def cause(self) -> Cause:
        return Cause(
            actor_key_id=self.principal.key_id,
            actor_role=self.principal.role,
            request_id=request_id_of(self.request),
            via="api",
        )

    def parse(self, model: type[M]) -> M:
        if not self.body.valid_json:
            raise ValidationFailed.at(("body",), "the body must be a JSON document")
        try:
            return model.model_validate(self.body.data)
        except PydanticValidationError as error:
            raise ValidationFailed(
                [(("body", *item["loc"]), item["msg"]) for item in error.errors()]
            ) from None

    def require_role(self, *roles: str) -> None:
        if self.principal.role not in roles:
            raise Forbidden(self.principal.role)


def call(
    *roles: str,
    idempotent: bool = True,
    admin_only_fields: tuple[str, ...] = (),
) -> Callable[..., Call]:
    """A write: ``idempotent`` ones need an Idempotency-Key (PATCH takes one if given).

    ``admin_only_fields`` are fields that turn the call into an admin-only one (an
    import's ``opened_at``): sending them with another role is a 403, checked with
    the other 403s, before anything about idempotency or validity.
    """

    def dependency(
        request: Request,
        body: Body = Depends(read_body),  # noqa: B008
    ) -> Call:
        # Authentication runs here rather than as a sub-dependency: one thread hop
        # for the checks instead of two. Reading the body first refuses nothing.
        principal = authenticate(request, roles)
        if principal.role != ADMIN and isinstance(body.data, dict):
            if any(body.data.get(field) is not None for field in admin_only_fields):
                raise Forbidden(principal.role)
        key = request.headers.get("idempotency-key")
        if key is None and idempotent:
            raise IdempotencyKeyRequired
        claim = None
        if key is not None:
            if not _printable_ascii(key):
                raise IdempotencyKeyRequired(
                    "the Idempotency-Key must be 1 to 255 printable ASCII characters"
                )
            signed = body.data if body.valid_json else {"unparsed body": body.data}
            claim = Claim(
                scope=principal.key_id,
                key=key,
                fingerprint=fingerprint(request.method, request.url.path, signed),
            )
            replay = bank_of(request).replay(claim)  # may raise the remembered refusal
            if replay is not None:
                raise ReplayHit(replay)
        if body.too_large:
            raise PayloadTooLarge(MAX_BODY_BYTES)
        return Call(request, bank_of(request), principal, claim, body)

    return dependency


def respond(outcome: Outcome, status: int) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.response(), status_code=status, headers=headers)


def path_id(value: str, kind: str) -> UUID:
    """An id in the path that is not even a UUID names nothing: 404, not 422."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(kind, value) from None
