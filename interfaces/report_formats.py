"""Reports as files: CSV for the CTR and the DMO, FinCEN's XML for the CTR.

The digest stays the JSON report's: a file carries it beside itself (the HTTP header
``X-Report-Digest``, the CLI's standard error), and the same report gives the same file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from application.compliance.rules import Institution
from domain.errors import ValidationFailed
from infrastructure.reports.fincen_ctr import ctr_batch_xml

CTR_COLUMNS = (
    "customer_id", "name", "kind", "identification", "date_of_birth", "country", "cash_in",
    "cash_out", "multiple_transactions", "roles", "account_ids", "transaction_ids", "due_date",
)
DMO_COLUMNS = (
    "record", "transaction_id", "customer_id", "territory", "kind", "amount", "booked_at",
    "transaction_ids",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value)
    if isinstance(value, dict):  # an identification: type:number:issuing country
        return ":".join(_cell(value.get(k)) for k in ("type", "number", "issuing_country"))
    return str(value)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return out.getvalue()


def ctr_csv(report: dict[str, Any]) -> str:
    """One row per CTR, the JSON's fields; lists joined with ``;``."""
    return _csv(CTR_COLUMNS, [[ctr[c] for c in CTR_COLUMNS] for ctr in report["ctrs"]])


def dmo_csv(report: dict[str, Any]) -> str:
    """One row per operation reported on its own, then one per split group (``record``
    says which); a negative declaration is the header alone."""
    rows: list[list[Any]] = []
    for op in report["operations"]:
        rows.append(["operation", *(op[c] for c in DMO_COLUMNS[1:7]), None])
    for split in report["splits"]:
        rows.append(
            [
                "split", None, split["customer_id"], split["territory"], None, split["total"],
                None, split["transaction_ids"],
            ]
        )
    return _csv(DMO_COLUMNS, rows)


def ctr_xml(
    report: dict[str, Any], institution: Institution, filing_date: date, loc: tuple[str, ...]
) -> bytes:
    """The FinCEN batch; a day without CTRs has nothing to file (FinCEN's batch holds at
    least one activity), a 422 at ``loc`` rather than a document the schema refuses."""
    if not report["ctrs"]:
        raise ValidationFailed.at(loc, "no CTR is due for this date: there is no batch to file")
    return ctr_batch_xml(report, institution, filing_date)
