"""How domain value types travel through the event store's JSON transcoder."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import Transcoding

from domain.cause import Cause


class CauseAsDict(Transcoding):
    type = Cause
    name = "cause"

    def encode(self, obj: Cause) -> dict[str, Any]:
        return {
            "key_id": obj.actor_key_id,
            "role": obj.actor_role,
            "request_id": obj.request_id,
            "via": obj.via,
        }

    def decode(self, data: dict[str, Any]) -> Cause:
        return Cause(
            actor_key_id=data["key_id"],
            actor_role=data["role"],
            request_id=data["request_id"],
            via=data["via"],
        )


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)
