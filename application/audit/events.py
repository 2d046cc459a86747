"""The log's event types by name, and events as the audit feed shows them."""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from application.views import timestamp
from domain import (
    account,
    api_key,
    batch,
    calendar,
    customer,
    hold,
    idempotency,
    transaction,
)
from domain.cause import Cause
from domain.money import format_amount

AGGREGATE_MODULES = (account, api_key, batch, calendar, customer, hold, idempotency, transaction)
# Attributes every event has, shown in their own fields rather than in ``data``.
_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "cause"})


@functools.cache
def event_topics() -> dict[str, tuple[str, ...]]:
    """Topics by class name (``FundsCredited``) and by qualified name
    (``Account.FundsCredited``); a plain name may cover several aggregates' events
    (``Recorded``)."""
    found: dict[str, list[str]] = {}
    for module in AGGREGATE_MODULES:
        for aggregate in vars(module).values():
            if not (isinstance(aggregate, type) and issubclass(aggregate, Aggregate)):
                continue
            if aggregate.__module__ != module.__name__:
                continue
            events = [
                e for e in vars(aggregate).values()
                if isinstance(e, type) and issubclass(e, CanMutateAggregate)
            ]
            for event in events:
                if any(other is not event and issubclass(other, event) for other in events):
                    continue  # a base class of the aggregate's events (Event)
                if event.__name__ == "Created" and any(
                    other is not event and issubclass(other, Aggregate.Created) for other in events
                ):
                    continue  # the library's default, unused where the aggregate names its own
                topic = f"{event.__module__}:{event.__qualname__}"
                for name in (event.__name__, event.__qualname__):
                    found.setdefault(name, []).append(topic)
    return {name: tuple(sorted(set(topics))) for name, topics in found.items()}


def type_of(topic: str) -> str:
    """``domain.account:Account.FundsCredited`` -> ``FundsCredited``."""
    return topic.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def aggregate_of(topic: str) -> str:
    qualname = topic.rsplit(":", 1)[-1]
    return qualname.rsplit(".", 1)[0] if "." in qualname else qualname


def plain(value: Any, currency: str | None = None) -> Any:
    """A decoded attribute as JSON: RFC 3339 times, decimals as strings, money with its
    currency's minor units (``"7.50"``) when the currency is known."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format_amount(value, currency) if currency else str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value, currency)
    if isinstance(value, dict):
        return {str(k): plain(v, currency) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, currency) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v, currency) for k, v in vars(value).items()}
    return str(value)


def event_body(
    position: int, event: Any, topic: str, currency: str | None = None
) -> dict[str, Any]:
    """The feed's shape of one event; ``currency`` is the one its amounts are in when
    the event does not say (an account's or a hold's)."""
    cause: Cause | None = getattr(event, "cause", None)
    currency = getattr(event, "currency", None) or currency
    return {
        "position": position,
        "recorded_at": timestamp(event.timestamp),
        "originator_id": str(event.originator_id),
        "originator_version": event.originator_version,
        "type": type_of(topic),
        "aggregate": aggregate_of(topic),
        "data": {k: plain(v, currency) for k, v in vars(event).items() if k not in _ENVELOPE},
        "actor": cause.actor if cause else None,
        "request_id": cause.request_id if cause else None,
        "via": cause.via if cause else None,
    }
