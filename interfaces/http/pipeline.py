"""Every /v1 call passes here, in the contract's order of checks:

401 -> 403 -> 400 idempotency_key_required -> idempotent replay or 422 reused -> 413
-> 422 validation_error; the use case then answers 404, 422 currency_mismatch, 409s.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar, get_type_hints
from uuid import UUID

import anyio.to_thread
from fastapi import Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.responses import JSONResponse, Response

from application.bank import Bank, Principal
from application.idempotency import Claim, Outcome, fingerprint
from domain.cause import Cause
from domain.errors import NotFound, ValidationFailed
from interfaces.http.errors import (
    Forbidden,
    IdempotencyKeyRequired,
    PayloadTooLarge,
    Unauthorized,
)

MAX_BODY_BYTES = 5 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)

TELLER, AUDITOR, COMPLIANCE, ADMIN = "teller", "auditor", "compliance", "admin"
EVERY_ROLE = (TELLER, AUDITOR, COMPLIANCE, ADMIN)


class ReplayHit(Exception):
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


@dataclass(frozen=True)
class Body:
    data: Any
    valid_json: bool
    too_large: bool


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



def _checked_call(
    request: Request,
    body: Body,
    roles: tuple[str, ...],
    idempotent: bool,
    admin_only_fields: tuple[str, ...],
    max_items: int | None = None,
) -> Call:
    principal = authenticate(request, roles)
    if principal.role != ADMIN and any(_names(body.data, f) for f in admin_only_fields):
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
    items = body.data.get("items") if isinstance(body.data, dict) else None
    if max_items is not None and isinstance(items, list) and len(items) > max_items:
        raise PayloadTooLarge(MAX_BODY_BYTES, max_items)
    return Call(request, bank_of(request), principal, claim, body)


def _names(data: Any, field: str) -> bool:
    """Whether the body gives ``field`` a value; ``items[].name`` looks in each item."""
    if not isinstance(data, dict):
        return False
    if field.startswith("items[]."):
        items = data.get("items")
        name = field.removeprefix("items[].")
        return isinstance(items, list) and any(
            isinstance(item, dict) and item.get(name) is not None for item in items
        )
    return data.get(field) is not None


def _endpoint(
    handler: Callable[..., Any], run: Callable[..., Any], *, reads_body: bool
) -> Callable[..., Any]:
    """An async endpoint with the handler's path parameters after ``leading`` ones."""
    hints = get_type_hints(handler)
    path_params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(name, str))
        for name in list(inspect.signature(handler).parameters)[1:]
        if name != "query"
    ]

    async def endpoint(**kwargs: Any) -> Any:
        if reads_body:
            kwargs["body"] = await read_body(kwargs["request"])
        # One thread hop per request: every blocking step runs in it, in order.
        return await anyio.to_thread.run_sync(functools.partial(run, **kwargs))

    request = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
    endpoint.__signature__ = inspect.Signature([request, *path_params])  # type: ignore[attr-defined]
    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def writes(
    *roles: str,
    idempotent: bool = True,
    admin_only_fields: tuple[str, ...] = (),
    max_items: int | None = None,
) -> Callable[[Callable[..., Response]], Callable[..., Any]]:
    """A write: ``idempotent`` ones need an Idempotency-Key (PATCH takes one if given).

    The handler is ``def handler(c: Call, **path_params) -> Response``, called after
    the checks that come before validation. ``admin_only_fields`` turn the call into
    an admin-only one (an import's ``opened_at``): sending them with another role is
    a 403, checked with the other 403s, before idempotency or validity (``items[].x``
    names a field of each item). More than ``max_items`` items is a 413.
    """

    def decorate(handler: Callable[..., Response]) -> Callable[..., Any]:
        def run(request: Request, body: Body, **path: Any) -> Response:
            c = _checked_call(request, body, roles, idempotent, admin_only_fields, max_items)
            return handler(c, **path)

        return _endpoint(handler, run, reads_body=True)

    return decorate


class Query:
    """A read's query string; bad values are 422s located at ("query", name)."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params

    def text(self, name: str, max_length: int = 1000) -> str | None:
        value = self.params.get(name)
        if value is not None and len(value) > max_length:
            raise ValidationFailed.at(("query", name), f"at most {max_length} characters")
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValidationFailed.at(("query", name), f"must be an integer from {low} to {high}")
        return int(value)

    def min_position(self) -> int | None:
        return self.integer("min_position", None, 0, 2**63 - 1)

    def timestamp(self, name: str) -> datetime | None:
        """An RFC 3339 timestamp with its offset (``Z`` or ``+01:00``)."""
        value = self.params.get(name)
        if value is None or value == "":
            return None
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None or "T" not in value.upper():
                raise ValueError(value)
        except ValueError:
            raise ValidationFailed.at(
                ("query", name), "must be an RFC 3339 timestamp with an offset"
            ) from None
        return moment

    def date(self, name: str) -> date | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed.at(("query", name), "must be a date (YYYY-MM-DD)") from None


def reads(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A read: ``def handler(bank: Bank, **path_params[, query: Query]) -> JSON-ready``,
    after auth."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        wants_query = "query" in inspect.signature(handler).parameters

        def run(request: Request, **path: Any) -> Any:
            authenticate(request, roles)
            if wants_query:
                path["query"] = Query(request)
            return handler(bank_of(request), **path)

        return _endpoint(handler, run, reads_body=False)

    return decorate


def respond(outcome: Outcome, status: int) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.response(), status_code=status, headers=headers)


def path_id(value: str, kind: str) -> UUID:
    """An id in the path that is not even a UUID names nothing: 404, not 422."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(kind, value) from None
