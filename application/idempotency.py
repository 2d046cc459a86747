"""Idempotency claims and outcomes, in simple types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


def fingerprint(method: str, path: str, body: Any) -> str:
    """The same request = the same method, path and parsed JSON body."""
    canonical = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    scope: str  # the calling API key's id: keys are scoped to their caller
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Outcome:
    body: dict[str, Any]
    position: int | None
    replayed: bool = False
    # The log position of each aggregate's last event written (not part of the answer).
    positions: dict[UUID, int] = field(default_factory=dict, compare=False, repr=False)

    def response(self) -> dict[str, Any]:
        return {**self.body, "position": self.position}


@dataclass(frozen=True)
class ResourceRef:
    """A decision's answer that the idempotency record names rather than copies (a
    batch's answer can be large): a replay reads the resource again."""

    kind: str
    id: UUID
    body: dict[str, Any]
