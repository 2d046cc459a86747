"""What the application needs from infrastructure, as protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder


class PositionLookup(Protocol):
    def __call__(self, originator_id: UUID, version: int) -> int | None:
        """The global log position of one stored event, or None if absent."""


PositionLookupFactory = Callable[[ApplicationRecorder], PositionLookup]
