"""The auditors' use cases: the event feed, account histories, balances as booked at
any moment, verification of the hash chain, seals, reconciliation and export."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from application.audit.chain import GENESIS, Seal, chain_hash, content_hash
from application.audit.events import event_body, event_topics, type_of
from application.audit.ports import AuditStore, BookedBalance, Reconciliation
from application.audit.verify import StoredRow, Verification, verify
from application.views import account_view, timestamp
from domain.account import Account
from domain.errors import NotFound, ValidationFailed
from domain.money import format_amount

if TYPE_CHECKING:
    from application.bank import Bank

FEED_MAX_LIMIT = 1000
EXPORT_FORMAT = "backoffice-audit-export/1"
_ACCOUNT_TOPIC_PREFIX = f"{Account.__module__}:{Account.__qualname__}."


class Audit:
    def __init__(self, bank: Bank, store: AuditStore) -> None:
        self.bank = bank
        self.store = store

    # --------------------------------------------------------------------- feed

    def events(
        self,
        after: int = 0,
        limit: int = 500,
        originator_id: UUID | None = None,
        type_name: str | None = None,
        min_position: int | None = None,
    ) -> dict[str, Any]:
        """The log in order, each event with its hash in the chain (null for an event
        the chain has not reached yet: ``min_position`` waits for it)."""
        topics: tuple[str, ...] = ()
        if type_name is not None:
            topics = event_topics().get(type_name, ())
            if not topics:
                raise ValidationFailed.at(
                    ("query", "type"), f"unknown event type {type_name!r}; see the README's list"
                )
        self.bank._await_views(("chain",), min_position)
        with self.store.snapshot() as log:
            rows = log.page(after, limit, originator_id.hex if originator_id else None, topics)
            hashes = log.hashes([row[0] for row in rows])
            decoded = [self._decode(row) for row in rows]
            # Amounts print with their currency's minor units. Account and hold events
            # after the first do not carry the currency: their creation event does, and
            # the log (unlike a view that may lag) always has it.
            uncurrenced = sorted({
                e.originator_id.hex for e in decoded if getattr(e, "currency", None) is None
            })
            currencies = {
                UUID(row[1]): currency
                for row in log.first_events(uncurrenced)
                if (currency := getattr(self._decode(row), "currency", None)) is not None
            }
        events = []
        for row, event in zip(rows, decoded, strict=True):
            body = event_body(row[0], event, row[3], currencies.get(event.originator_id))
            body["hash"] = hashes.get(row[0])
            events.append(body)
        return {"events": events, "next_after": rows[-1][0] if rows else after}

    def account_history(self, account_id: UUID) -> dict[str, Any]:
        """Every event of the account, each with the account as it stood after it."""
        with self.store.snapshot() as log:
            rows = log.originator_events(account_id.hex)
        if not rows or not rows[0][3].startswith(_ACCOUNT_TOPIC_PREFIX):
            raise NotFound("account", account_id)
        account: Account | None = None
        events = []
        for row in rows:
            event = self._decode(row)
            account = event.mutate(account)
            assert account is not None
            body = event_body(row[0], event, row[3], account.currency)
            del body["originator_id"]
            body["state"] = {**account_view(account, event.timestamp), "position": row[0]}
            events.append(body)
        return {"account_id": str(account_id), "events": events}

    def _decode(self, row: StoredRow) -> Any:
        _position, originator_id, version, topic, state = row
        return self.bank.mapper.to_domain_event(
            StoredEvent(UUID(originator_id), version, topic, state)
        )

    # ---------------------------------------------------------------- balances

    def balances(self, as_of: datetime, min_position: int | None = None) -> dict[str, Any]:
        """Every account's ledger balance as booked at ``as_of``, with totals."""
        if as_of > self.bank.clock():
            raise ValidationFailed.at(("query", "as_of"), "as_of may not be in the future")
        self.bank._await_views(("accounts", "statements"), min_position)
        position, rows = self.store.balances_as_of(as_of)
        totals: dict[str, list[Decimal]] = {}
        for row in rows:
            credit_debit = totals.setdefault(row.currency, [Decimal(0), Decimal(0)])
            if row.ledger_balance >= 0:
                credit_debit[0] += row.ledger_balance
            else:
                credit_debit[1] -= row.ledger_balance
        return {
            "as_of": timestamp(as_of),
            "as_of_position": position,
            "accounts": [_balance_row(row) for row in rows],
            "totals": [
                {
                    "currency": currency,
                    "credit_balances": format_amount(credit, currency),
                    "debit_balances": format_amount(debit, currency),
                }
                for currency, (credit, debit) in sorted(totals.items())
            ],
        }

    # ------------------------------------------------------------ tamper checks

    def verify(
        self,
        expect_root: tuple[int, str] | None = None,
        on_progress: Callable[[int, int], None] = lambda checked, position: None,
    ) -> Verification:
        """Recompute the chain from the stored events; compare with the chain's table,
        its seals and ``expect_root`` (a root kept outside the bank)."""
        with self.store.snapshot() as log:
            return verify(log, expect_root, on_progress)

    def seal(self) -> Seal:
        """The log's position and root as they stand now (to be kept outside the bank),
        also recorded as a seal. The chain's table is trusted up to its head and
        extended over events it has not reached yet (``verify`` checks the table)."""
        with self.store.snapshot() as log:
            position = log.head()
            root = _hash_through(log, position)
            events = log.count_events(position)
        seal = Seal(position, root.hex(), self.bank.clock(), events)
        if position:
            self.store.record_seal(seal)
        return seal

    def reconcile(
        self, on_progress: Callable[[int, int], None] = lambda done, total: None
    ) -> Reconciliation:
        return self.store.reconcile(on_progress)

    # ------------------------------------------------------------------ export

    def export(
        self,
        write: Callable[[str], None],
        start: int | None = None,
        end: int | None = None,
        on_progress: Callable[[int, int], None] = lambda done, position: None,
    ) -> dict[str, Any]:
        """Write the log from ``start`` to ``end`` (positions, inclusive) as JSON Lines:
        a header with the hash before the first event, one line per event with its
        stored content and hashes (the chain's, where it has reached), and a trailer
        with the root. docs/audit/verify_export.py checks such a file."""
        with self.store.snapshot() as log:
            first = max(start or 1, 1)
            previous = _hash_through(log, first - 1)
            head = log.head()
            last = min(end, head) if end is not None else head
            write(_line({
                "kind": "header", "format": EXPORT_FORMAT, "from_position": first,
                "to_position": last, "previous_hash": previous.hex(),
                "exported_at": timestamp(self.bank.clock()),
            }))
            links = iter(log.links(after=first - 1, until=last))
            link = next(links, None)
            count = 0
            position = 0
            rows = log.events(first - 1, last) if start else log.events(until=last)
            for position, originator_id, version, topic, state in rows:
                content = content_hash(originator_id, version, topic, state)
                recomputed = chain_hash(previous, position, content)
                while link is not None and link[0] < position:
                    link = next(links, None)
                chained = link is not None and link[0] == position
                recorded = link[4] if chained and link is not None else recomputed
                write(_line({
                    "position": position,
                    "originator_id": str(UUID(originator_id)),
                    "originator_version": version,
                    "topic": topic,
                    "type": type_of(topic),
                    **_state_fields(state),
                    "content_hash": (link[3] if chained and link is not None else content).hex(),
                    "hash": recorded.hex(),
                    "chained": chained,
                }))
                previous = recorded
                count += 1
                if count % 50_000 == 0:
                    on_progress(count, position)
            trailer = {"kind": "end", "events": count, "last_position": position, "root": previous.hex()}
            write(_line(trailer))
            on_progress(count, position)
            return trailer


def _hash_through(log: Any, position: int) -> bytes:
    """The chain's hash at ``position`` (or at the last event before it): from the
    chain's table where it has got to, recomputed from the log beyond that."""
    if position <= 0:
        return GENESIS
    link = log.link_at_or_before(position)
    previous = link[1] if link else GENESIS
    rows = log.events(after=link[0], until=position) if link else log.events(until=position)
    for at, originator_id, version, topic, state in rows:
        previous = chain_hash(previous, at, content_hash(originator_id, version, topic, state))
    return previous


def _balance_row(row: BookedBalance) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "customer_id": row.customer_id,
        "currency": row.currency,
        "ledger_balance": format_amount(row.ledger_balance, row.currency),
    }


def _state_fields(state: bytes) -> dict[str, str]:
    """The stored bytes exactly: as text when they are UTF-8 (the JSON transcoder's
    output always is), else base64."""
    try:
        return {"state": state.decode("utf-8")}
    except UnicodeDecodeError:
        import base64

        return {"state_base64": base64.b64encode(state).decode("ascii")}


_line = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
