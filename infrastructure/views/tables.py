"""The tables of each projection's view, one set per generation.

Readers query stable SQL views (``accounts``, ...) that point at the current
generation's tables (``accounts_g3``, ...). A rebuild fills the next generation's
tables while the current one keeps serving, then re-points the views and the
generation record in one transaction.

Amounts are stored as decimal text and times as fixed-width UTC text
(``2026-11-23T10:00:00.000000Z``), so both stores keep them exact and in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    base: str  # the stable view's name
    columns: str
    primary_key: str
    indexes: tuple[tuple[str, str], ...] = ()  # (suffix, columns)
    clustered: bool = False  # SQLite: store rows in primary-key order (range scans)


TABLES: dict[str, tuple[Table, ...]] = {
    "accounts": (
        Table(
            "accounts",
            "account_id TEXT NOT NULL, customer_id TEXT NOT NULL, currency TEXT NOT NULL, "
            "product TEXT NOT NULL, status TEXT NOT NULL, ledger_balance TEXT NOT NULL, "
            "held_amount TEXT NOT NULL, overdraft_limit TEXT NOT NULL, "
            "opened_at TEXT NOT NULL, opened_position BIGINT NOT NULL, "
            "version BIGINT NOT NULL, position BIGINT NOT NULL",
            "account_id",
            (("customer", "customer_id, opened_position"),),
        ),
        # Each account's overdraft limit over time, for balances as of a past moment.
        Table(
            "account_limits",
            "account_id TEXT NOT NULL, effective_at TEXT NOT NULL, position BIGINT NOT NULL, "
            "overdraft_limit TEXT NOT NULL",
            "account_id, effective_at, position",
            clustered=True,
        ),
        Table(
            "holds",
            "hold_id TEXT NOT NULL, account_id TEXT NOT NULL, amount TEXT NOT NULL, "
            "captured_amount TEXT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, "
            "expires_at TEXT, reference TEXT, placed_at TEXT NOT NULL, ended_at TEXT, "
            "position BIGINT NOT NULL",
            "hold_id",
            (("account", "account_id, placed_at"), ("status", "status, expires_at")),
        ),
        # What each account holds over time (placements, captures and releases), for
        # available balances as of a past moment; expiries count by the hold's expires_at.
        Table(
            "hold_changes",
            "account_id TEXT NOT NULL, effective_at TEXT NOT NULL, position BIGINT NOT NULL, "
            "hold_id TEXT NOT NULL, delta TEXT NOT NULL",
            "account_id, effective_at, position",
            clustered=True,
        ),
    ),
    "statements": (
        Table(
            "statement_entries",
            "account_id TEXT NOT NULL, booked_at TEXT NOT NULL, position BIGINT NOT NULL, "
            "seq INTEGER NOT NULL, transaction_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "direction TEXT NOT NULL, amount TEXT NOT NULL, balance_after TEXT NOT NULL, "
            "reference TEXT",
            "account_id, booked_at, position, seq",
            # Entries recorded after a position: balances as of that position.
            (("position", "position"),),
            clustered=True,
        ),
    ),
    "ledger": (
        Table(
            "ledger_balances",
            "account TEXT NOT NULL, currency TEXT NOT NULL, debits TEXT NOT NULL, "
            "credits TEXT NOT NULL, position BIGINT NOT NULL",
            "account, currency",
        ),
    ),
    "transactions": (
        Table(
            "transactions",
            "transaction_id TEXT NOT NULL, position BIGINT NOT NULL, booked_at TEXT NOT NULL, "
            "kind TEXT NOT NULL, currency TEXT NOT NULL, body TEXT NOT NULL",
            "transaction_id",
        ),
    ),
    # What reports and alert rules read (application/projections/compliance.py). Each
    # row carries the position that recorded it: reports as of a position read up to it.
    "compliance": (
        Table(
            "cmp_movements",
            "transaction_id TEXT NOT NULL, seq INTEGER NOT NULL, position BIGINT NOT NULL, "
            "booked_at TEXT NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, "
            "currency TEXT NOT NULL, amount TEXT NOT NULL, account_id TEXT NOT NULL, "
            "customer_id TEXT NOT NULL, flow TEXT NOT NULL, conducted_by TEXT, "
            "counterparty_country TEXT, reverses TEXT",
            "transaction_id, seq",
            (
                ("booked", "booked_at, position"),
                ("customer", "customer_id, booked_at"),
                ("account", "account_id, booked_at"),
                ("conductor", "conducted_by, booked_at"),
                ("reverses", "reverses"),
                ("position", "position"),
            ),
        ),
        # Entries on the bank's own accounts, amounts also in minor units (exact sums).
        Table(
            "cmp_ledger",
            "account TEXT NOT NULL, currency TEXT NOT NULL, booked_at TEXT NOT NULL, "
            "position BIGINT NOT NULL, seq INTEGER NOT NULL, transaction_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, channel TEXT NOT NULL, direction TEXT NOT NULL, "
            "amount TEXT NOT NULL, minor BIGINT NOT NULL",
            "account, currency, booked_at, position, seq",
            (("booked", "booked_at"),),
            clustered=True,
        ),
        Table(
            "cmp_accounts",
            "account_id TEXT NOT NULL, customer_id TEXT NOT NULL, currency TEXT NOT NULL, "
            "opened_at TEXT NOT NULL, position BIGINT NOT NULL",
            "account_id",
            (("customer", "customer_id"),),
        ),
        # Every version of every customer (what was known when).
        Table(
            "cmp_customers",
            "customer_id TEXT NOT NULL, position BIGINT NOT NULL, recorded_at TEXT NOT NULL, "
            "details TEXT NOT NULL",
            "customer_id, position",
        ),
        # Customer-initiated activity per account, for dormancy; a transaction reversed
        # on its own day takes its activity with it.
        Table(
            "cmp_activity",
            "account_id TEXT NOT NULL, at TEXT NOT NULL, position BIGINT NOT NULL, "
            "what TEXT NOT NULL, transaction_id TEXT",
            "account_id, at, position, what",
            (("transaction", "transaction_id"),),
        ),
        # The rule settings' version the alerts were evaluated with.
        Table("cmp_meta", "name TEXT NOT NULL, value TEXT NOT NULL", "name"),
        # Alerts as raised, and the position that retracted them (if any).
        Table(
            "cmp_alerts",
            "alert_id TEXT NOT NULL, position BIGINT NOT NULL, retracted_position BIGINT, "
            "rule TEXT NOT NULL, customer_id TEXT NOT NULL, trigger_booked_at TEXT NOT NULL, "
            "body TEXT NOT NULL",
            "alert_id, position",
            (("trigger", "trigger_booked_at"), ("customer", "customer_id, trigger_booked_at")),
        ),
    ),
    # The audit hash chain: one link per stored event, and periodic seals. Appended to
    # and never rebuilt (a rebuild from the log would bless whatever the log now holds);
    # triggers refuse changes to both (infrastructure/audit/guards.py).
    "chain": (
        Table(
            "audit_chain",
            "position BIGINT NOT NULL, originator_id TEXT NOT NULL, "
            "originator_version BIGINT NOT NULL, content BYTEA NOT NULL, hash BYTEA NOT NULL",
            "position",
        ),
        Table(
            "audit_seals",
            "position BIGINT NOT NULL, root TEXT NOT NULL, sealed_at TEXT NOT NULL, "
            "events BIGINT NOT NULL",
            "position",
        ),
    ),
}


def generation_table(base: str, generation: int) -> str:
    return f"{base}_g{generation}"
