"""The hash chain's table and its seals, written by the chain's live runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking

from application.audit.chain import ChainView, Link, Seal
from infrastructure.views.store import Cursor, parse_time, time_text
from infrastructure.views.writers import SqlView

LINK_COLUMNS = "position, originator_id, originator_version, content, hash"


class SqlChainView(SqlView, ChainView):
    projection_name = "chain"

    def last_link(self) -> Link | None:
        with self.store.read() as cur:
            row = cur.run(
                f"SELECT {LINK_COLUMNS} FROM {self.t('audit_chain')} ORDER BY position DESC LIMIT 1"
            ).one()
        return None if row is None else link_from_row(row)

    def last_seal(self) -> Seal | None:
        with self.store.read() as cur:
            row = cur.run(
                f"SELECT * FROM {self.t('audit_seals')} ORDER BY position DESC LIMIT 1"
            ).one()
        return None if row is None else seal_from_row(row)

    def links_after(self, position: int) -> int:
        with self.store.read() as cur:
            row = cur.run(
                f"SELECT COUNT(*) AS n FROM {self.t('audit_chain')} WHERE position > %s", (position,)
            ).one()
        return int(row["n"])

    def save_links(self, links: Sequence[Link], seal: Seal | None, tracking: Tracking) -> None:
        rows = [
            (link.position, link.originator_id, link.originator_version, link.content, link.hash)
            for link in links
        ]

        def write(cur: Cursor) -> None:
            self.insert(cur, "audit_chain", LINK_COLUMNS, rows)
            if seal is not None:
                save_seal(cur, self.t("audit_seals"), seal)

        self.commit(tracking, write)


def save_seal(cur: Cursor, table: str, seal: Seal) -> None:
    cur.run(
        f"INSERT INTO {table} (position, root, sealed_at, events) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (position) DO NOTHING",
        (seal.position, seal.root, time_text(seal.sealed_at), seal.events),
    )


def link_from_row(row: Any) -> Link:
    return Link(
        int(row["position"]), row["originator_id"], int(row["originator_version"]),
        bytes(row["content"]), bytes(row["hash"]),
    )


def seal_from_row(row: Any) -> Seal:
    return Seal(int(row["position"]), row["root"], parse_time(row["sealed_at"]), int(row["events"]))
