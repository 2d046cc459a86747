"""The hash chain over the event log: each event's hash covers its stored content and
the hash before it, so a change to any stored event changes every hash after it.

The exact bytes (documented for outside auditors in docs/audit.md):

    content = SHA-256( originator_id as 32 lower-case hex digits ‖ 0x00 ‖
                       originator_version in decimal ‖ 0x00 ‖ topic (UTF-8) ‖ 0x00 ‖
                       state (the stored bytes) )
    hash    = SHA-256( previous hash (32 bytes) ‖ position (8 bytes, big-endian) ‖ content )

The first event's previous hash is 32 zero bytes. The chain's *root* at a position is
the hash of the event there, written as 64 hex digits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.projections.base import BatchProjection

GENESIS = bytes(32)

# A seal records (position, root, time) every this many events, or at the first batch
# after this many seconds: checkpoints that verification compares with and that an
# operator can copy out of the bank.
SEAL_EVERY_EVENTS = 10_000
SEAL_EVERY_SECONDS = 3600.0


def content_hash(originator_hex: str, version: int, topic: str, state: bytes) -> bytes:
    return sha256(b"%s\x00%d\x00%s\x00%s" % (originator_hex.encode(), version, topic.encode(), state)).digest()


def chain_hash(previous: bytes, position: int, content: bytes) -> bytes:
    return sha256(previous + position.to_bytes(8, "big") + content).digest()


def originator_hex(originator_id: UUID | str) -> str:
    """The originator id as the hash covers it: 32 lower-case hex digits (SQLite stores
    it so; PostgreSQL as a uuid)."""
    if isinstance(originator_id, UUID):
        return originator_id.hex
    return UUID(originator_id).hex


@dataclass(frozen=True)
class Link:
    """One event's place in the chain, as the chain's table keeps it."""

    position: int
    originator_id: str  # 32 hex digits
    originator_version: int
    content: bytes
    hash: bytes


@dataclass(frozen=True)
class Seal:
    position: int
    root: str  # hex
    sealed_at: datetime
    events: int  # chained events up to and including ``position``


class ChainView(TrackingRecorder, ABC):
    @abstractmethod
    def last_link(self) -> Link | None:
        """The chain's last link (None before the first event)."""

    @abstractmethod
    def last_seal(self) -> Seal | None: ...

    @abstractmethod
    def links_after(self, position: int) -> int:
        """How many links there are after ``position``."""

    @abstractmethod
    def save_links(self, links: Sequence[Link], seal: Seal | None, tracking: Tracking) -> None:
        """Append the links (and the seal), with the tracking record, in one transaction."""


class ChainProjection(BatchProjection[ChainView]):
    """Follows the whole log and appends each event's link; it reads the stored events
    as they are (``raw``), since the hash covers the stored bytes, not a decoding."""

    name = "chain"
    topics = ()  # every event
    raw = True

    def __init__(self, view: ChainView, clock: Any = None) -> None:
        super().__init__(view)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last: Link | None = None
        self._seal: Seal | None = None
        self._since_seal: int | None = None
        self._chained = 0

    def process_batch(self, items: Sequence[Any], tracking: Tracking) -> None:
        if self._since_seal is None:
            self._last = self.view.last_link()
            self._seal = self.view.last_seal()
            self._since_seal = self.view.links_after(self._seal.position if self._seal else 0)
            self._chained = (self._seal.events if self._seal else 0) + self._since_seal
        previous = self._last.hash if self._last else GENESIS
        links = []
        for notification, position in items:
            oid = originator_hex(notification.originator_id)
            content = content_hash(oid, notification.originator_version, notification.topic, notification.state)
            previous = chain_hash(previous, position, content)
            links.append(Link(position, oid, notification.originator_version, content, previous))
        if not links:
            self.view.insert_tracking(tracking)
            return
        since = self._since_seal + len(links)
        chained = self._chained + len(links)
        seal = None
        now = self._clock()
        age = (now - self._seal.sealed_at).total_seconds() if self._seal else None
        if since >= SEAL_EVERY_EVENTS or (age is not None and age >= SEAL_EVERY_SECONDS):
            seal = Seal(links[-1].position, links[-1].hash.hex(), now, chained)
        with self.forgetting():
            self.view.save_links(links, seal, tracking)
        self._last = links[-1]
        self._chained = chained
        if seal is not None:
            self._seal, self._since_seal = seal, 0
        else:
            self._since_seal = since

    def forget(self) -> None:
        self._since_seal = None
