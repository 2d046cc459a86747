"""The compliance officers' use cases: reports, alerts and risk views, as of a position.

Every answer is a pure function of the facts recorded up to ``as_of_position`` (by
default the log's head, once the views have reached it), the business date or period
and the rule settings, so generating it again gives the same bytes and digest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from application.compliance.alerts import RULES
from application.compliance.calendar import business_day, month_days
from application.compliance.digest import finish
from application.compliance.ports import ComplianceSnapshot, ComplianceStore
from application.compliance.reports.ctr import ctr_report
from application.compliance.reports.dmo import dmo_report
from application.compliance.reports.risk import exposures, liquidity, overdrafts
from application.compliance.reports.trial_balance import trial_balance
from application.errors import RulesChanged
from application.views import timestamp
from domain.errors import ValidationFailed
from domain.money import is_currency

if TYPE_CHECKING:
    from application.bank import Bank

# The views a report reads: the facts, the statement index (balances) and accounts
# (overdraft limits over time).
VIEWS = ("compliance", "statements", "accounts")
MAX_DAYS = 366


class Compliance:
    def __init__(self, bank: Bank, store: ComplianceStore) -> None:
        self.bank = bank
        self.store = store

    @property
    def tz(self) -> Any:
        return self.bank.business_tz

    # ------------------------------------------------------------------ reports

    def trial_balance(
        self, day: date, currency: str, *, detail: bool = False, as_of_position: int | None = None
    ) -> dict[str, Any]:
        if not is_currency(currency):
            raise ValidationFailed.at(("query", "currency"), f"{currency!r} is not an ISO 4217 code")
        self._check_day(day, "date")
        return self._report(
            as_of_position, day,
            lambda snap: trial_balance(snap, day, currency, self.tz, detail=detail),
        )

    def ctr(self, day: date, *, as_of_position: int | None = None) -> dict[str, Any]:
        self._check_day(day, "date")
        return self._report(as_of_position, day, lambda snap: ctr_report(snap, day, self.bank.rules, self.tz))

    def dmo(self, month: date, *, as_of_position: int | None = None) -> dict[str, Any]:
        first, following = month_days(month)
        self._check_day(first, "month")
        last = following - timedelta(days=1)
        return self._report(
            as_of_position, last, lambda snap: dmo_report(snap, first, self.bank.rules, self.tz)
        )

    def alerts(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        rule: str | None = None,
        customer_id: str | None = None,
        *,
        as_of_position: int | None = None,
    ) -> dict[str, Any]:
        if rule is not None and rule not in RULES:
            raise ValidationFailed.at(("query", "rule"), f"rule must be one of {', '.join(RULES)}")
        if start is not None and end is not None and start > end:
            raise ValidationFailed.at(("query", "from"), "from must not be after to")

        def build(snap: ComplianceSnapshot) -> dict[str, Any]:
            return {
                "from": timestamp(start),
                "to": timestamp(end),
                "rule": rule,
                "customer_id": customer_id,
                "alerts": [_alert_view(a) for a in snap.alerts(start, end, rule, customer_id)],
            }

        last = business_day(end, self.tz) if end is not None else None
        return self._report(as_of_position, last, build)

    def exposures(self, day: date, top: int = 20, *, as_of_position: int | None = None) -> dict[str, Any]:
        self._check_day(day, "date")
        return self._report(
            as_of_position, day, lambda snap: exposures(snap, day, top, self.bank.rules, self.tz)
        )

    def overdrafts(self, day: date, *, as_of_position: int | None = None) -> dict[str, Any]:
        self._check_day(day, "date")
        return self._report(as_of_position, day, lambda snap: overdrafts(snap, day, self.tz))

    def liquidity(self, first: date, last: date, *, as_of_position: int | None = None) -> dict[str, Any]:
        if first > last:
            raise ValidationFailed.at(("query", "from"), "from must not be after to")
        if (last - first).days + 1 > MAX_DAYS:
            raise ValidationFailed.at(("query", "to"), f"at most {MAX_DAYS} days per request")
        self._check_day(last, "to")
        return self._report(as_of_position, last, lambda snap: liquidity(snap, first, last, self.tz))

    # ----------------------------------------------------------------- plumbing

    def position(self, requested: int | None) -> int:
        """The position a report answers as of: the one asked for, or the log's head."""
        head = self.store.head()
        if requested is None:
            return head
        if requested > head:
            raise ValidationFailed.at(
                ("query", "as_of_position"), f"the log's latest position is {head}"
            )
        return requested

    def _report(
        self,
        requested: int | None,
        last_day: date | None,
        build: Callable[[ComplianceSnapshot], dict[str, Any]],
    ) -> dict[str, Any]:
        position = self.position(requested)
        self.bank._await_views(VIEWS, position)
        with self.store.snapshot(position) as snap:
            built_with = snap.rules_version()
            if built_with is not None and built_with != self.bank.rules.version:
                raise RulesChanged(built_with, self.bank.rules.version)
            body = build(snap)
        closed = self.bank.closed_through()
        final = last_day is not None and closed is not None and last_day <= closed
        return finish(body, position=position, rules_version=self.bank.rules.version, final=final)

    def _check_day(self, day: date, name: str) -> None:
        today = self.bank.clock().astimezone(self.tz).date()
        if day > today:
            raise ValidationFailed.at(("query", name), "must not be in the future")


def _alert_view(alert: Any) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "customer_id": alert.customer_id,
        "account_ids": list(alert.account_ids),
        "transaction_ids": list(alert.transaction_ids),
        "trigger_transaction_id": alert.trigger_transaction_id,
        "trigger_booked_at": timestamp(alert.trigger_booked_at),
        "window_start": timestamp(alert.window_start),
        "window_end": timestamp(alert.window_end),
        "figures": alert.figures,
    }

