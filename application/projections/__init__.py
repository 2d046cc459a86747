"""Read models of the event log: what tellers and auditors read, rebuildable at any time.

Each projection turns events into rows of its view. The logic lives here; the SQL that
stores the rows (and the tracking record written in the same transaction) lives in
``infrastructure.views``.
"""

from application.projections.accounts import (
    AccountChanges,
    AccountRow,
    AccountsProjection,
    AccountsView,
    HoldChange,
    HoldRow,
)
from application.projections.base import BatchProjection, Item, topic_of
from application.projections.compliance import ComplianceProjection, ComplianceView
from application.projections.ledger import LedgerBalance, LedgerProjection, LedgerView
from application.projections.statements import (
    StatementEntry,
    StatementHead,
    StatementsProjection,
    StatementsView,
)
from application.projections.transactions import (
    TransactionRow,
    TransactionsProjection,
    TransactionsView,
)

PROJECTIONS: dict[str, type[BatchProjection]] = {  # type: ignore[type-arg]
    cls.name: cls
    for cls in (
        AccountsProjection, StatementsProjection, LedgerProjection, TransactionsProjection,
        ComplianceProjection,
    )
}

__all__ = [
    "PROJECTIONS",
    "AccountChanges",
    "AccountRow",
    "AccountsProjection",
    "AccountsView",
    "BatchProjection",
    "ComplianceProjection",
    "ComplianceView",
    "HoldChange",
    "HoldRow",
    "Item",
    "LedgerBalance",
    "LedgerProjection",
    "LedgerView",
    "StatementEntry",
    "StatementHead",
    "StatementsProjection",
    "StatementsView",
    "TransactionRow",
    "TransactionsProjection",
    "TransactionsView",
    "topic_of",
]
