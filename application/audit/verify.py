"""Verification: recompute the hash chain from the stored events and compare it with
the chain's own table, its seals and any root kept outside the bank.

Both sides are walked in position order. Positions may have gaps (PostgreSQL leaves
one for every rolled-back insert), so the two sides are compared as sets of positions,
never by counting. The first difference is reported, with why:

- ``altered``: the event at that position is not what was chained there (same event,
  other content), or the chain's own record of it was changed;
- ``missing``: the chain recorded an event there and the log no longer has it;
- ``inserted``: the log has an event the chain never recorded, among chained ones;
- ``reordered``: the event there was chained at another position (rows moved);
- ``root_mismatch``: the recomputed root differs from a seal's or an expected root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from application.audit.chain import GENESIS, chain_hash, content_hash

# (position, originator id as 32 hex digits, version, topic, state): a stored event
StoredRow = tuple[int, str, int, str, bytes]
# (position, originator id, version, content hash, chain hash): a link of the chain
LinkRow = tuple[int, str, int, bytes, bytes]

PROGRESS_EVERY = 50_000


@dataclass(frozen=True)
class Mismatch:
    position: int
    reason: str  # altered | missing | inserted | reordered | root_mismatch

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "reason": self.reason}


@dataclass(frozen=True)
class Verification:
    events_checked: int
    last_position: int  # of the last event verified (0 for an empty log)
    root: str | None  # the recomputed root there
    first_mismatch: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "last_position": self.last_position,
            "root": self.root,
            "first_mismatch": self.first_mismatch.as_dict() if self.first_mismatch else None,
        }


class VerifySource(Protocol):
    """One consistent snapshot of the log and the chain (infrastructure.audit)."""

    def events(self) -> Iterable[StoredRow]:
        """Every stored event, in position order."""

    def links(self) -> Iterable[LinkRow]:
        """Every link of the chain, in position order."""

    def seals(self) -> dict[int, str]:
        """The seals' roots by position."""

    def event_position(self, originator_id: str, version: int) -> int | None:
        """Where the log holds this event now."""

    def link_position(self, originator_id: str, version: int) -> int | None:
        """Where the chain recorded this event."""


def verify(
    source: VerifySource,
    expect_root: tuple[int, str] | None = None,
    on_progress: Callable[[int, int], None] = lambda checked, position: None,
) -> Verification:
    # position -> roots the recomputed chain must have there: the seals', and one
    # kept outside the bank (a seal that disagrees with it is itself a mismatch).
    checkpoints: dict[int, set[str]] = {p: {r.lower()} for p, r in source.seals().items()}
    if expect_root is not None:
        checkpoints.setdefault(expect_root[0], set()).add(expect_root[1].lower())
    pending = sorted(checkpoints)
    next_checkpoint = pending[0] if pending else None
    checkpoint_index = 0

    links: Iterator[LinkRow] = iter(source.links())
    link = next(links, None)
    previous = GENESIS
    checked = 0
    last_position = 0

    def result(mismatch: Mismatch | None) -> Verification:
        return Verification(checked, last_position, previous.hex() if checked else None, mismatch)

    for position, originator_id, version, topic, state in source.events():
        # The chain recorded events before this one that the log no longer has there.
        if link is not None and link[0] < position:
            return result(_gone(source, link))
        if next_checkpoint is not None and next_checkpoint < position:
            return result(Mismatch(next_checkpoint, "root_mismatch"))
        content = content_hash(originator_id, version, topic, state)
        if link is not None and link[0] == position:
            if content != link[3]:
                moved = (originator_id, version) != (link[1], link[2]) and source.link_position(
                    originator_id, version
                ) not in (None, position)
                return result(Mismatch(position, "reordered" if moved else "altered"))
            current = chain_hash(previous, position, content)
            if current != link[4]:
                return result(Mismatch(position, "altered"))  # the chain's record was changed
            link = next(links, None)
        else:
            if link is not None:  # among chained events: the chain never saw this one here
                elsewhere = source.link_position(originator_id, version)
                return result(Mismatch(position, "reordered" if elsewhere is not None else "inserted"))
            current = chain_hash(previous, position, content)  # not chained yet: extend
        previous = current
        checked += 1
        last_position = position
        if position == next_checkpoint:
            if checkpoints[position] != {current.hex()}:
                return result(Mismatch(position, "root_mismatch"))
            checkpoint_index += 1
            next_checkpoint = pending[checkpoint_index] if checkpoint_index < len(pending) else None
        if checked % PROGRESS_EVERY == 0:
            on_progress(checked, position)
    if link is not None:
        return result(_gone(source, link))
    if next_checkpoint is not None:
        return result(Mismatch(next_checkpoint, "root_mismatch"))
    on_progress(checked, last_position)
    return result(None)


def _gone(source: VerifySource, link: LinkRow) -> Mismatch:
    """A chained event is not at its position: moved elsewhere, or deleted."""
    elsewhere = source.event_position(link[1], link[2])
    return Mismatch(link[0], "reordered" if elsewhere is not None else "missing")
