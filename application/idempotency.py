"""Idempotency claims and outcomes, in simple types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


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

    def response(self) -> dict[str, Any]:
        return {**self.body, "position": self.position}
