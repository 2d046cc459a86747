"""The hash chain and its verification, in memory: the documented bytes, every kind
of tampering, gaps in positions, seals and roots kept outside."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given
from hypothesis import strategies as st

from application.audit import chain as chain_module
from application.audit.chain import (
    GENESIS,
    ChainProjection,
    ChainView,
    Link,
    Seal,
    chain_hash,
    content_hash,
)
from application.audit.verify import verify

TOPIC = "domain.account:Account.FundsCredited"


def row(position: int, version: int = 1, state: bytes = b"{}", oid: str | None = None) -> tuple:
    return (position, oid or uuid.uuid4().hex, version, TOPIC, state + str(position).encode())


def chained(rows: Sequence[tuple]) -> list[tuple]:
    previous, links = GENESIS, []
    for position, oid, version, topic, state in rows:
        content = content_hash(oid, version, topic, state)
        previous = chain_hash(previous, position, content)
        links.append((position, oid, version, content, previous))
    return links


@dataclass
class Source:
    rows: list[tuple]
    chain: list[tuple]
    sealed: dict[int, str]

    def events(self):
        return iter(sorted(self.rows))

    def links(self):
        return iter(sorted(self.chain))

    def seals(self):
        return dict(self.sealed)

    def event_position(self, oid, version):
        return next((r[0] for r in self.rows if (r[1], r[2]) == (oid, version)), None)

    def link_position(self, oid, version):
        return next((l[0] for l in self.chain if (l[1], l[2]) == (oid, version)), None)


def honest(positions: Sequence[int]) -> Source:
    rows = [row(p) for p in positions]
    return Source(rows, chained(rows), {})


def reason(source: Source, **kwargs) -> tuple[int, str] | None:
    found = verify(source, **kwargs).first_mismatch
    return None if found is None else (found.position, found.reason)


def test_the_hashes_are_the_documented_bytes():
    oid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    state = b'{"amount":"10.00"}'
    expected = hashlib.sha256(
        b"12345678123456781234567812345678\x00" + b"7\x00" + TOPIC.encode() + b"\x00" + state
    ).digest()
    assert content_hash(oid.hex, 7, TOPIC, state) == expected
    assert chain_hash(GENESIS, 3, expected) == hashlib.sha256(
        bytes(32) + (3).to_bytes(8, "big") + expected
    ).digest()


def test_an_honest_log_with_gaps_verifies_and_reports_its_root():
    source = honest([1, 2, 5, 6, 9])
    result = verify(source)
    assert result.ok and result.events_checked == 5 and result.last_position == 9
    assert result.root == source.chain[-1][4].hex()
    assert verify(Source([], [], {})).as_dict() == {
        "ok": True, "events_checked": 0, "last_position": 0, "root": None, "first_mismatch": None,
    }


def test_events_the_chain_has_not_reached_extend_the_root():
    source = honest([1, 2, 3, 4])
    cut = Source(source.rows, source.chain[:2], {})
    assert verify(cut).ok and verify(cut).root == source.chain[-1][4].hex()


def test_a_changed_body_is_altered_at_its_position():
    source = honest([1, 2, 3, 4])
    position, oid, version, topic, _ = source.rows[2]
    source.rows[2] = (position, oid, version, topic, b'{"forged":1}')
    assert reason(source) == (3, "altered")


def test_a_changed_chain_record_is_altered():
    source = honest([1, 2, 3])
    link = source.chain[1]
    source.chain[1] = (*link[:4], bytes(32))
    assert reason(source) == (2, "altered")


def test_a_deleted_row_is_missing():
    source = honest([1, 2, 3, 4])
    del source.rows[1]
    assert reason(source) == (2, "missing")
    last = honest([1, 2, 3])
    del last.rows[2]
    assert reason(last) == (3, "missing")


def test_a_forged_row_among_chained_ones_is_inserted():
    source = honest([1, 2, 5, 6])
    source.rows.append(row(3))
    assert reason(source) == (3, "inserted")


def test_swapped_and_moved_rows_are_reordered():
    source = honest([1, 2, 3, 4])
    a, b = source.rows[1], source.rows[2]
    source.rows[1], source.rows[2] = (b[0] - 1, *b[1:]), (a[0] + 1, *a[1:])
    assert reason(source) == (2, "reordered")

    moved_later = honest([1, 2, 3, 4])
    moved_later.rows[1] = (9, *moved_later.rows[1][1:])
    assert reason(moved_later) == (2, "reordered")

    moved_earlier = honest([1, 3, 4])
    moved_earlier.rows[2] = (2, *moved_earlier.rows[2][1:])
    assert reason(moved_earlier) == (2, "reordered")


def test_a_root_kept_outside_catches_a_consistent_rewrite():
    source = honest([1, 2, 3])
    sealed_root = source.chain[-1][4].hex()
    forged_rows = [*source.rows[:2], row(3, state=b"forged")]
    forged = Source(forged_rows, chained(forged_rows), {})
    assert verify(forged).ok  # the chain alone was rewritten to match
    assert reason(forged, expect_root=(3, sealed_root)) == (3, "root_mismatch")
    assert verify(source, expect_root=(3, sealed_root.upper())).ok
    # and a seal inside the bank catches it too, unless it was rewritten as well
    forged.sealed = {3: sealed_root}
    assert reason(forged) == (3, "root_mismatch")


def test_an_expected_root_at_a_position_the_log_lacks_is_a_mismatch():
    source = honest([1, 2, 4])
    root = source.chain[-1][4].hex()
    assert reason(source, expect_root=(3, root)) == (3, "root_mismatch")
    assert reason(source, expect_root=(7, root)) == (7, "root_mismatch")


def test_the_first_mismatch_wins():
    source = honest([1, 2, 3, 4, 5])
    source.rows[3] = (*source.rows[3][:4], b"x")
    del source.rows[1]
    assert reason(source) == (2, "missing")


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=3), min_size=2, max_size=40),
    pick=st.integers(min_value=0),
)
def test_any_single_change_is_found_at_its_position(gaps, pick):
    positions, at = [], 0
    for gap in gaps:
        at += gap
        positions.append(at)
    source = honest(positions)
    index = pick % len(positions)
    target = source.rows[index]
    source.rows[index] = (*target[:4], target[4] + b" ")
    assert reason(source) == (target[0], "altered")


class MemoryChainView(ChainView):
    def __init__(self) -> None:
        self.links: list[Link] = []
        self.seals: list[Seal] = []
        self.tracked = 0

    def last_link(self):
        return self.links[-1] if self.links else None

    def last_seal(self):
        return self.seals[-1] if self.seals else None

    def links_after(self, position):
        return sum(1 for link in self.links if link.position > position)

    def save_links(self, links, seal, tracking):
        self.links.extend(links)
        if seal is not None:
            self.seals.append(seal)
        self.tracked = tracking.notification_id

    def insert_tracking(self, tracking):
        self.tracked = tracking.notification_id

    def max_tracking_id(self, application_name=""):
        return self.tracked


@dataclass
class Stored:
    id: int
    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: bytes


def test_the_projection_chains_batches_resumes_and_seals(monkeypatch):
    monkeypatch.setattr(chain_module, "SEAL_EVERY_EVENTS", 4)
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    view = MemoryChainView()
    notes = [Stored(p, uuid.uuid4(), 1, TOPIC, b"s%d" % p) for p in (1, 2, 4, 5, 7, 8, 9)]
    first = ChainProjection(view, clock=lambda: clock[0])
    first.process_batch([(n, n.id) for n in notes[:3]], Tracking("chain", 4))
    # a new runner (after a restart) picks up from the stored chain
    second = ChainProjection(view, clock=lambda: clock[0])
    second.process_batch([(n, n.id) for n in notes[3:]], Tracking("chain", 9))
    rows = [(n.id, n.originator_id.hex, 1, TOPIC, n.state) for n in notes]
    assert [(l.position, l.content, l.hash) for l in view.links] == [
        (l[0], l[3], l[4]) for l in chained(rows)
    ]
    assert [(s.position, s.events) for s in view.seals] == [(9, 7)]
    assert view.seals[0].root == view.links[-1].hash.hex()
    # an hour without a seal: the next batch seals, however small
    clock[0] += timedelta(hours=2)
    extra = Stored(10, uuid.uuid4(), 1, TOPIC, b"late")
    second.process_batch([(extra, 10)], Tracking("chain", 10))
    assert [(s.position, s.events) for s in view.seals] == [(9, 7), (10, 8)]


@pytest.mark.parametrize("bad", ["x" * 64, "12" * 31])
def test_a_root_must_be_hex_of_the_right_length_to_ever_match(bad):
    source = honest([1])
    assert reason(source, expect_root=(1, bad)) == (1, "root_mismatch")
