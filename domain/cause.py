"""Who and what caused an event: recorded on every event of every aggregate."""

from __future__ import annotations

from dataclasses import dataclass

VIA = frozenset({"api", "cli", "import", "system"})


@dataclass(frozen=True)
class Cause:
    actor_key_id: str | None
    actor_role: str
    request_id: str | None
    via: str

    def __post_init__(self) -> None:
        if self.via not in VIA:
            raise ValueError(f"via must be one of {sorted(VIA)}, not {self.via!r}")

    @property
    def actor(self) -> dict[str, str | None]:
        return {"key_id": self.actor_key_id, "role": self.actor_role}

    @classmethod
    def system(cls, request_id: str | None = None) -> Cause:
        return cls(actor_key_id=None, actor_role="system", request_id=request_id, via="system")

    @classmethod
    def cli(cls, request_id: str | None = None) -> Cause:
        # The operator at the console acts with admin power by virtue of database access.
        return cls(actor_key_id=None, actor_role="admin", request_id=request_id, via="cli")
