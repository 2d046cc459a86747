"""API keys: one role each; only a hash of the secret is ever recorded."""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause
from domain.errors import ValidationFailed

ROLES = ("teller", "auditor", "compliance", "admin")

_NAMESPACE = UUID("0b8e7d2c-5a41-4f6e-8c3d-7e9a1b2c4d5f")
REGISTRY_ID = uuid5(_NAMESPACE, "api-key-registry")


class ApiKey(Aggregate):
    class Created(Aggregate.Created):
        name: str
        role: str
        secret_hash: str
        cause: Cause

    class Revoked(Aggregate.Event):
        cause: Cause

    @staticmethod
    def create_id(secret_hash: str) -> UUID:
        # Derived from the hash, so authenticating is one lookup by id.
        return uuid5(_NAMESPACE, secret_hash)

    @event(Created)
    def __init__(self, name: str, role: str, secret_hash: str, cause: Cause) -> None:
        self.name = name
        self.role = role
        self.secret_hash = secret_hash
        self.revoked_at = None

    @classmethod
    def issue(cls, name: str, role: str, secret_hash: str, cause: Cause) -> ApiKey:
        if role not in ROLES:
            raise ValidationFailed.at(("role",), f"role must be one of {ROLES}")
        if not name or len(name) > 100:
            raise ValidationFailed.at(("name",), "name must be 1 to 100 characters")
        return cls(name=name, role=role, secret_hash=secret_hash, cause=cause)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self, cause: Cause) -> bool:
        if self.is_revoked:
            return False
        self._revoke(cause=cause)
        return True

    @event(Revoked)
    def _revoke(self, cause: Cause) -> None:
        self.revoked_at = self.modified_on


class ApiKeyRegistry(Aggregate):
    """The list of key ids, so listing keys never scans the log."""

    class Started(Aggregate.Created):
        cause: Cause

    class KeyListed(Aggregate.Event):
        key_id: UUID
        cause: Cause

    @staticmethod
    def create_id() -> UUID:
        return REGISTRY_ID

    @event(Started)
    def __init__(self, cause: Cause) -> None:
        self.key_ids: list[UUID] = []

    def list_key(self, key_id: UUID, cause: Cause) -> None:
        self._list_key(key_id=key_id, cause=cause)

    @event(KeyListed)
    def _list_key(self, key_id: UUID, cause: Cause) -> None:
        self.key_ids = [*self.key_ids, key_id]
