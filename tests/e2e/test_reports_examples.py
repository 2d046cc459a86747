"""Every example of docs/reports.md over HTTP, and the reports' shapes and rules.

History in the past is booked with imports (admin batches with ``booked_at``) into
accounts opened with ``opened_at``; what must happen "today" (same-day reversals,
reports as of a position) is posted live. Amounts are chosen so that each test's
expectations are exact: every number asserted here is worked out by hand from the
definitions in docs/reports.md, never read back from the implementation.

Interpretations where docs/reports.md is silent (and the implementation's docstrings
decide) are named where they are relied upon.
"""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from e2e_helpers import (
    ReadYourWritesClient,
    deposit,
    get,
    new_customer,
    ok,
    open_account,
    post,
    problem,
    transfer,
    withdraw,
)
from lxml import etree

from application.compliance.alerts import ALERT_NAMESPACE
from infrastructure.bootstrap import bootstrap
from infrastructure.reports.fincen_ctr import SCHEMA_PATH
from infrastructure.settings import Settings
from interfaces.http.app import create_app

XSD = SCHEMA_PATH
FINCEN = {"f": "www.fincen.gov/base"}
SIGNED = ("as_of_position", "rules_version", "final", "digest")
NULL = None


# --------------------------------------------------------------------------- helpers


def today() -> date:
    return datetime.now(UTC).date()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def ago(days: int) -> date:
    return today() - timedelta(days=days)


def previous_month() -> date:
    return (today().replace(day=1) - timedelta(days=1)).replace(day=1)


def customer(client, key, **fields: Any) -> str:
    return new_customer(client, key, **fields)["customer_id"]


def imported_account(client, admin, currency: str = "USD", customer_id: str | None = None,
                     opened: datetime | None = None, **fields: Any) -> str:
    """An account for imported history (opened 60 days ago unless told)."""
    opened = opened or at(ago(60), 8)
    return open_account(client, admin, currency, customer_id, opened_at=iso(opened),
                        **fields)["account_id"]


def item(kind: str, account_id: str, amount: str, booked: datetime | None,
         currency: str = "USD", channel: str = "cash", **fields: Any) -> dict:
    body = {"type": kind, "account_id": account_id, "amount": amount, "currency": currency,
            "channel": channel, **fields}
    if booked is not None:
        body["booked_at"] = iso(booked)
    return body


def dep(account_id: str, amount: str, booked: datetime | None, currency: str = "USD",
        channel: str = "cash", **fields: Any) -> dict:
    return item("deposit", account_id, amount, booked, currency, channel, **fields)


def wd(account_id: str, amount: str, booked: datetime | None, currency: str = "USD",
       channel: str = "cash", **fields: Any) -> dict:
    return item("withdrawal", account_id, amount, booked, currency, channel, **fields)


def xfer(source: str, destination: str, amount: str, booked: datetime | None,
         currency: str = "USD") -> dict:
    body = {"type": "transfer", "from_account_id": source, "to_account_id": destination,
            "amount": amount, "currency": currency}
    if booked is not None:
        body["booked_at"] = iso(booked)
    return body


def imported(client, admin, *items: dict) -> list[dict]:
    """Post the items as one atomic import; the posted transactions, in order."""
    body = ok(post(client, "/v1/batches", admin, {"atomic": True, "items": list(items)}), 201)
    return [r["transaction"] for r in body["results"]]


def tx_id(response) -> str:
    return ok(response, 201)["transaction_id"]


def reverse(client, admin, transaction_id: str) -> dict:
    return ok(post(client, f"/v1/transactions/{transaction_id}/reverse", admin,
                   {"reason": "entered in error"}), 201)


def report(client, key, path: str) -> dict:
    body = ok(get(client, path, key), 200)
    for name in SIGNED:
        assert name in body, (name, body)
    return body


def ctr(client, key, day: date, extra: str = "") -> dict:
    return report(client, key, f"/v1/reports/ctr?date={day}{extra}")


def unsigned(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "as_of_position"}


def alert_id(rule: str, customer_id: str, trigger: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, rule + customer_id + trigger))


def alerts(client, key, query: str = "") -> list[dict]:
    return report(client, key, f"/v1/alerts{query}")["alerts"]


def lines_of(tb: dict) -> dict[str, dict]:
    return {line["account"]: line for line in tb["lines"]}


def trial_balance(client, key, day: date, currency: str = "USD", extra: str = "") -> dict:
    return report(client, key, f"/v1/reports/trial-balance?date={day}&currency={currency}{extra}")


def money_sum(values) -> Decimal:
    return sum((Decimal(v) for v in values), Decimal(0))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


# =============================================================================== CTR

CTR_FIELDS = {
    "customer_id", "name", "kind", "identification", "date_of_birth", "country", "cash_in",
    "cash_out", "multiple_transactions", "roles", "account_ids", "transaction_ids", "due_date",
}


def test_ctr_6000_and_4000_01_cash_in_is_one_ctr_of_multiple_transactions(
        client, admin, compliance):
    day = ago(3)
    person = customer(client, admin, name="Ada Byron King", country="US",
                      date_of_birth="1980-12-10",
                      identification={"type": "passport", "number": "P1234567",
                                      "issuing_country": "US"})
    account = imported_account(client, admin, customer_id=person)
    first, second = imported(client, admin, dep(account, "6000.00", at(day, 10)),
                             dep(account, "4000.01", at(day, 15)))
    body = ctr(client, compliance, day)
    assert body["date"] == day.isoformat() and body["currency"] == "USD"
    assert body["unconverted"] == []
    assert len(body["ctrs"]) == 1, body
    (one,) = body["ctrs"]
    assert CTR_FIELDS <= set(one)
    assert one["customer_id"] == person
    assert (one["name"], one["kind"], one["country"]) == ("Ada Byron King", "person", "US")
    assert one["date_of_birth"] == "1980-12-10"
    assert one["identification"] == {"type": "passport", "number": "P1234567",
                                     "issuing_country": "US"}
    assert one["cash_in"] == "10000.01" and one["cash_out"] is None
    assert one["multiple_transactions"] is True
    assert sorted(one["roles"]) == ["conductor", "on_behalf"]
    assert one["account_ids"] == [account]
    assert sorted(one["transaction_ids"]) == sorted([first["transaction_id"],
                                                     second["transaction_id"]])
    assert one["due_date"] == (day + timedelta(days=15)).isoformat()


def test_ctr_exactly_10000_is_not_reported(client, admin, compliance):
    day = ago(2)
    account = imported_account(client, admin)
    imported(client, admin, dep(account, "10000.00", at(day)))
    assert ctr(client, compliance, day)["ctrs"] == []


def test_ctr_9000_in_and_9000_out_are_never_netted_and_neither_side_is_reported(
        client, admin, compliance):
    day = ago(2)
    account = imported_account(client, admin)
    imported(client, admin, dep(account, "9000.00", at(day, 9)),
             wd(account, "9000.00", at(day, 10)), dep(account, "9000.00", at(day, 11)),
             wd(account, "9000.00", at(day, 12)))  # 18,000 in and 18,000 out: both sides
    body = ctr(client, compliance, day)
    assert [(c["cash_in"], c["cash_out"]) for c in body["ctrs"]] == [("18000.00", "18000.00")]
    other_day = ago(1)
    other = imported_account(client, admin)
    imported(client, admin, dep(other, "9000.00", at(other_day, 9)),
             wd(other, "9000.00", at(other_day, 10)))
    assert ctr(client, compliance, other_day)["ctrs"] == []


def test_ctr_10500_in_and_2000_out_reports_cash_in_only(client, admin, compliance):
    day = ago(4)
    person = customer(client, admin)
    account = imported_account(client, admin, customer_id=person)
    cash_in, cash_out = imported(client, admin, dep(account, "10500.00", at(day, 9)),
                                 wd(account, "2000.00", at(day, 10)))
    (one,) = ctr(client, compliance, day)["ctrs"]
    assert one["customer_id"] == person
    assert (one["cash_in"], one["cash_out"]) == ("10500.00", None)
    assert one["multiple_transactions"] is False
    # The side that is not reportable is left out of the CTR, its transactions too.
    assert one["transaction_ids"] == [cash_in["transaction_id"]]
    assert cash_out["transaction_id"] not in one["transaction_ids"]


def test_ctr_cash_out_only(client, admin, compliance):
    day = ago(3)
    account = imported_account(client, admin)
    imported(client, admin, dep(account, "30000.00", at(day, 8), channel="wire"),
             wd(account, "5000.00", at(day, 9)), wd(account, "5000.01", at(day, 10)))
    (one,) = ctr(client, compliance, day)["ctrs"]
    assert (one["cash_in"], one["cash_out"]) == (None, "10000.01")
    assert one["multiple_transactions"] is True


def test_ctr_conductor_and_owner_each_count_once(client, admin, compliance):
    """X deposits 6,000 cash into Y's account and Y deposits 5,000: Y gets a CTR
    (11,000, multiple), X none."""
    day = ago(2)
    x = customer(client, admin, name="Xavier Conductor")
    y = customer(client, admin, name="Yolanda Owner")
    y_account = imported_account(client, admin, customer_id=y)
    by_x, by_y = imported(client, admin, dep(y_account, "6000.00", at(day, 9), conducted_by=x),
                          dep(y_account, "5000.00", at(day, 10)))
    body = ctr(client, compliance, day)
    assert [c["customer_id"] for c in body["ctrs"]] == [y], body
    (one,) = body["ctrs"]
    assert one["cash_in"] == "11000.00" and one["cash_out"] is None
    assert one["multiple_transactions"] is True
    assert sorted(one["roles"]) == ["conductor", "on_behalf"]
    assert sorted(one["transaction_ids"]) == sorted([by_x["transaction_id"],
                                                     by_y["transaction_id"]])


def test_ctr_a_conductor_over_the_threshold_gets_a_ctr_of_their_own(client, admin, compliance):
    day = ago(2)
    x = customer(client, admin, name="Xavier Conductor")
    y = customer(client, admin, name="Yolanda Owner")
    y_account = imported_account(client, admin, customer_id=y)
    (by_x,) = imported(client, admin,
                       dep(y_account, "11000.00", at(day, 9), conducted_by=x))
    body = ctr(client, compliance, day)
    found = {c["customer_id"]: c for c in body["ctrs"]}
    assert set(found) == {x, y}
    assert found[x]["roles"] == ["conductor"] and found[y]["roles"] == ["on_behalf"]
    for one in found.values():
        assert one["cash_in"] == "11000.00" and one["multiple_transactions"] is False
        assert one["transaction_ids"] == [by_x["transaction_id"]]
        assert one["account_ids"] == [y_account]
    # A conductor who is the account's own customer counts once, not twice.
    z = customer(client, admin)
    z_account = imported_account(client, admin, customer_id=z)
    other_day = ago(1)
    imported(client, admin, dep(z_account, "6000.00", at(other_day), conducted_by=z))
    assert ctr(client, compliance, other_day)["ctrs"] == []


def test_ctr_a_deposit_reversed_the_same_day_is_left_out(client, teller, admin, compliance):
    account = open_account(client, teller, "USD")["account_id"]
    big = tx_id(deposit(client, teller, account, "12000.00", "USD"))
    assert len(ctr(client, compliance, today())["ctrs"]) == 1
    reverse(client, admin, big)
    body = ctr(client, compliance, today())
    assert body["ctrs"] == [] and body["unconverted"] == []


def test_ctr_a_deposit_reversed_the_next_day_is_still_reported_for_its_day(
        client, admin, compliance):
    day = ago(1)
    account = imported_account(client, admin)
    (big,) = imported(client, admin, dep(account, "12000.00", at(day)))
    before = ctr(client, compliance, day)
    reversal = reverse(client, admin, big["transaction_id"])
    assert reversal["booked_at"][:10] == today().isoformat()
    after = ctr(client, compliance, day)
    assert [c["transaction_ids"] for c in after["ctrs"]] == [[big["transaction_id"]]]
    assert after["digest"] == before["digest"]
    # The reversal, a transaction of kind `reversal`, is not cash out on its own day.
    assert ctr(client, compliance, today())["ctrs"] == []


def test_ctr_non_cash_channels_do_not_count(client, admin, compliance):
    day = ago(2)
    a = imported_account(client, admin)
    b = imported_account(client, admin)
    imported(client, admin, dep(a, "20000.00", at(day, 9), channel="wire"),
             dep(a, "20000.00", at(day, 10), channel="cheque"),
             dep(a, "20000.00", at(day, 11), channel="internal"),
             xfer(a, b, "20000.00", at(day, 12)),
             wd(a, "15000.00", at(day, 13), channel="wire"))
    assert ctr(client, compliance, day)["ctrs"] == []


def test_ctr_eur_cash_without_a_rate_is_listed_as_unconverted(client, admin, compliance):
    day = ago(2)
    person = customer(client, admin)
    eur = imported_account(client, admin, "EUR", customer_id=person)
    usd = imported_account(client, admin, "USD", customer_id=person)
    euros, dollars = imported(client, admin, dep(eur, "20000.00", at(day, 9), currency="EUR"),
                              dep(usd, "9000.00", at(day, 10)))
    body = ctr(client, compliance, day)
    assert body["ctrs"] == []  # never silently counted at some rate
    assert body["unconverted"] == [{
        "transaction_id": euros["transaction_id"], "account_id": eur, "customer_id": person,
        "kind": "deposit", "amount": "20000.00", "currency": "EUR",
    }]
    assert dollars["transaction_id"] not in str(body["unconverted"])


def test_ctrs_are_ordered_by_customer_id_and_due_on_d_plus_15(client, admin, compliance):
    day = ago(5)
    people = [customer(client, admin, name=f"Person {n}") for n in range(4)]
    items = []
    for n, person in enumerate(people):
        account = imported_account(client, admin, customer_id=person)
        items.append(dep(account, f"1{n}001.00", at(day, 9 + n)))
    imported(client, admin, *items)
    body = ctr(client, compliance, day)
    assert [c["customer_id"] for c in body["ctrs"]] == sorted(people)
    assert {c["due_date"] for c in body["ctrs"]} == {(day + timedelta(days=15)).isoformat()}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_ctr_csv_one_row_per_ctr_lists_joined_with_semicolons(client, admin, compliance):
    day = ago(2)
    x = customer(client, admin, name="Xavier Conductor")
    y = customer(client, admin, name="Yolanda Owner")
    y1 = imported_account(client, admin, customer_id=y, overdraft_limit="5000.00")
    y2 = imported_account(client, admin, customer_id=y)
    imported(client, admin, dep(y1, "6000.00", at(day, 9), conducted_by=x),
             dep(y2, "6000.00", at(day, 10), conducted_by=x),
             wd(y1, "10000.50", at(day, 11)))
    body = ctr(client, compliance, day)
    response = get(client, f"/v1/reports/ctr?date={day}&format=csv", compliance)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["X-Report-Digest"] == body["digest"]
    header = next(csv.reader(io.StringIO(response.text)))
    assert CTR_FIELDS <= set(header)
    rows = _csv_rows(response.text)
    assert len(rows) == len(body["ctrs"]) == 2
    for row, one in zip(rows, body["ctrs"], strict=True):
        assert row["customer_id"] == one["customer_id"]
        assert row["cash_in"] == (one["cash_in"] or "")
        assert row["cash_out"] == (one["cash_out"] or "")
        assert row["due_date"] == one["due_date"]
        for name in ("roles", "account_ids", "transaction_ids"):
            assert row[name] == ";".join(one[name])
            assert row[name].split(";") == one[name]
    by_id = {row["customer_id"]: row for row in rows}
    assert by_id[y]["account_ids"] == ";".join(sorted([y1, y2]))
    assert by_id[y]["cash_in"] == "12000.00" and by_id[y]["cash_out"] == "10000.50"
    assert by_id[x]["cash_in"] == "12000.00" and by_id[x]["cash_out"] == ""
    again = get(client, f"/v1/reports/ctr?date={day}&format=csv", compliance)
    assert again.content == response.content


def test_ctr_csv_of_a_day_without_ctrs_is_the_header_alone(client, compliance):
    response = get(client, f"/v1/reports/ctr?date={ago(1)}&format=csv", compliance)
    assert response.status_code == 200, response.text
    assert _csv_rows(response.text) == []
    assert CTR_FIELDS <= set(next(csv.reader(io.StringIO(response.text))))


def _codes(element: etree._Element, path: str) -> list[str]:
    return [e.text for e in element.iterfind(path, FINCEN)]


def test_ctr_xml_validates_against_fincen_and_rounds_up(client, admin, compliance, schema):
    day = ago(3)
    x = customer(client, admin, name="Xavier Q Conductor", country="US")
    y = customer(client, admin, name="Yolanda Owner", country="US")
    z = customer(client, admin, name="Zed Both", country="US",
                 identification={"type": "ssn", "number": "123-45-6789",
                                 "issuing_country": "US"})
    y_account = imported_account(client, admin, customer_id=y)
    z_account = imported_account(client, admin, customer_id=z)
    imported(client, admin,
             dep(y_account, "10000.01", at(day, 9), conducted_by=x),  # x: 17, y: 23
             dep(z_account, "15000.00", at(day, 10)),
             wd(z_account, "12000.49", at(day, 11)))  # z: 50, both sides
    body = ctr(client, compliance, day)
    assert [c["customer_id"] for c in body["ctrs"]] == sorted([x, y, z])
    response = get(client, f"/v1/reports/ctr?date={day}&format=xml", compliance)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.headers["X-Report-Digest"] == body["digest"]
    document = etree.fromstring(response.content)
    schema.assertValid(document)
    activities = document.findall("f:Activity", FINCEN)
    assert len(activities) == 3 == int(document.get("ActivityCount"))
    # Default filing date: D + 1.
    assert _codes(document, "f:Activity/f:FilingDateText") == [
        (day + timedelta(days=1)).strftime("%Y%m%d")] * 3
    subjects = {}
    for activity, one in zip(activities, body["ctrs"], strict=True):
        cash = activity.find("f:CurrencyTransactionActivity", FINCEN)
        details = {
            d.findtext("f:CurrencyTransactionActivityDetailTypeCode", namespaces=FINCEN):
                d.findtext("f:DetailTransactionAmountText", namespaces=FINCEN)
            for d in cash.iterfind("f:CurrencyTransactionActivityDetail", FINCEN)
        }
        assert cash.findtext("f:TransactionDateText", namespaces=FINCEN) == day.strftime("%Y%m%d")
        codes = {p.findtext("f:ActivityPartyTypeCode", namespaces=FINCEN)
                 for p in activity.iterfind("f:Party", FINCEN)}
        subjects[one["customer_id"]] = (codes & {"50", "17", "23"}, details)
    assert subjects[x] == ({"17"}, {"55": "10001"})  # 10,000.01 -> 10001
    assert subjects[y] == ({"23"}, {"55": "10001"})
    assert subjects[z] == ({"50"}, {"55": "15000", "56": "12001"})  # 12,000.49 -> 12001
    assert int(document.get("TotalAmount")) == 10001 + 10001 + 15000 + 12001
    again = get(client, f"/v1/reports/ctr?date={day}&format=xml", compliance)
    assert again.content == response.content  # byte-identical
    filed = get(client, f"/v1/reports/ctr?date={day}&format=xml&filing_date={ago(1)}",
                compliance)
    assert filed.status_code == 200, filed.text
    document = etree.fromstring(filed.content)
    schema.assertValid(document)
    assert set(_codes(document, "f:Activity/f:FilingDateText")) == {ago(1).strftime("%Y%m%d")}


def test_ctr_xml_of_organizations_and_full_records_validates(client, admin, compliance, schema):
    day = ago(2)
    org = customer(client, admin, name="Acme   Widgets, S.L.", kind="organization",
                   country="ES", identification={"type": "ein", "number": "12-3456789",
                                                 "issuing_country": "US"})
    person = customer(client, admin, name="José  María   Núñez de Balboa", country="US",
                      date_of_birth="1975-02-28", occupation="Café owner",
                      identification={"type": "drivers_license", "number": "D123-456",
                                      "issuing_country": "US"},
                      address={"street": "10  Ocean Drive", "city": "Miami", "region": "FL",
                               "postal_code": "33139-1234", "country": "US"})
    org_account = imported_account(client, admin, customer_id=org)
    own = imported_account(client, admin, customer_id=person)
    imported(client, admin, dep(org_account, "25000.00", at(day, 9), conducted_by=person),
             dep(own, "10000.01", at(day, 10)), wd(own, "10000.01", at(day, 11)))
    body = ctr(client, compliance, day)
    found = {c["customer_id"]: c for c in body["ctrs"]}
    assert set(found) == {org, person}
    assert found[org]["kind"] == "organization" and found[org]["roles"] == ["on_behalf"]
    assert found[person]["cash_in"] == "35000.01" and found[person]["cash_out"] == "10000.01"
    assert found[person]["multiple_transactions"] is True
    response = get(client, f"/v1/reports/ctr?date={day}&format=xml", compliance)
    assert response.status_code == 200, response.text
    document = etree.fromstring(response.content)
    schema.assertValid(document)
    assert response.headers["X-Report-Digest"] == body["digest"]
    totals = sorted(
        (d.findtext("f:CurrencyTransactionActivityDetailTypeCode", namespaces=FINCEN),
         d.findtext("f:DetailTransactionAmountText", namespaces=FINCEN))
        for d in document.iterfind(".//f:CurrencyTransactionActivityDetail", FINCEN))
    assert totals == [("55", "25000"), ("55", "35001"), ("56", "10001")]
    # The CSV quotes what needs quoting: names with commas and runs of spaces survive.
    rows = _csv_rows(get(client, f"/v1/reports/ctr?date={day}&format=csv", compliance).text)
    assert {row["customer_id"]: row["name"] for row in rows} == {
        org: "Acme   Widgets, S.L.", person: "José  María   Núñez de Balboa"}


def test_ctr_xml_without_ctrs_is_refused(client, compliance):
    """Interpretation (routes/compliance.py): FinCEN's batch needs one Activity, so a
    day without CTRs has no XML to file: 422 rather than a document that fails the
    schema."""
    problem(get(client, f"/v1/reports/ctr?date={ago(1)}&format=xml", compliance), 422,
            "validation_error")


def test_ctr_is_byte_identical_when_generated_again(client, admin, compliance):
    day = ago(2)
    account = imported_account(client, admin)
    imported(client, admin, dep(account, "10500.00", at(day)))
    first = get(client, f"/v1/reports/ctr?date={day}", compliance)
    second = get(client, f"/v1/reports/ctr?date={day}", compliance)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content


def test_ctr_as_of_position_before_a_later_same_day_deposit(client, teller, compliance):
    account = open_account(client, teller, "USD")["account_id"]
    tx_id(deposit(client, teller, account, "11000.00", "USD"))
    then = ctr(client, compliance, today())
    assert [c["cash_in"] for c in then["ctrs"]] == ["11000.00"]
    tx_id(deposit(client, teller, account, "500.00", "USD"))
    latest = ctr(client, compliance, today())
    assert [c["cash_in"] for c in latest["ctrs"]] == ["11500.00"]
    assert latest["as_of_position"] > then["as_of_position"]
    assert latest["digest"] != then["digest"]
    replayed = ctr(client, compliance, today(), f"&as_of_position={then['as_of_position']}")
    assert replayed == then
    for form in ("csv", "xml"):
        path = f"/v1/reports/ctr?date={today()}&format={form}"
        old = get(client, path + f"&as_of_position={then['as_of_position']}", compliance)
        assert old.headers["X-Report-Digest"] == then["digest"]
        assert get(client, path, compliance).headers["X-Report-Digest"] == latest["digest"]


def test_ctr_business_days_are_in_the_business_time_zone(make_key, database_url):
    """Pacific/Kiritimati is UTC+14 (no DST): 10:00Z is midnight of the next business
    day there. Two cash deposits of one UTC day fall on two business days."""
    zone = "Pacific/Kiritimati"
    admin = make_key("admin", "tz-ops")[1]
    officer = make_key("compliance", "tz-aml")[1]
    zoned = bootstrap(database_url=database_url, business_tz=zone)
    try:
        app = create_app(Settings(database_url=database_url, business_tz=zone,
                                  hold_sweep_seconds=0), bank=zoned)
        with ReadYourWritesClient(app) as client:
            utc_day = ago(5)
            local_day, next_local_day = utc_day, utc_day + timedelta(days=1)
            person = customer(client, admin)
            account = imported_account(client, admin, customer_id=person)
            _, midnight, after = imported(
                client, admin,
                dep(account, "6000.00", at(utc_day, 9, 59)),  # 23:59 local, utc_day
                dep(account, "6000.00", at(utc_day, 10)),  # 00:00 local, the next day
                dep(account, "5000.00", at(utc_day, 11)))
            assert ctr(client, officer, local_day)["ctrs"] == []
            (one,) = ctr(client, officer, next_local_day)["ctrs"]
            assert one["cash_in"] == "11000.00"
            assert one["transaction_ids"] == sorted([midnight["transaction_id"],
                                                     after["transaction_id"]])
            assert one["due_date"] == (next_local_day + timedelta(days=15)).isoformat()
            # A bare date in the alerts' filters is the start of that business day there.
            structuring = imported(client, admin, *[
                dep(account, "9100.00", at(ago(3), h)) for h in (9, 10, 11)])
            found = alerts(client, officer, f"?rule=structuring&from={ago(3)}")
            assert [a["trigger_transaction_id"] for a in found] == [
                structuring[2]["transaction_id"]]  # 11:00Z: 01:00 local on day -2
            assert alerts(client, officer, f"?rule=structuring&to={ago(3)}") == []
            assert len(alerts(client, officer, f"?rule=structuring&to={ago(2)}")) == 1
    finally:
        zoned.close()


# ====================================================== a past period keeps its digest


def test_reports_for_a_past_date_are_unchanged_by_later_postings(
        client, teller, admin, compliance):
    day = ago(5)
    later = ago(3)
    person = customer(client, admin, group_id="G-1")
    usd = imported_account(client, admin, customer_id=person, overdraft_limit="5000.00")
    eur = imported_account(client, admin, "EUR", customer_id=person)
    other = imported_account(client, admin)
    imported(client, admin,
             dep(usd, "10500.00", at(day - timedelta(days=1), 9), channel="wire"),
             dep(usd, "10500.00", at(day, 9)), wd(usd, "2000.00", at(day, 10)),
             dep(eur, "31000.00", at(day, 11), currency="EUR",
                 counterparty={"country": "KY"}),
             xfer(usd, other, "20000.00", at(day, 12)))
    paths = [
        f"/v1/reports/ctr?date={day}",
        f"/v1/reports/trial-balance?date={day}&currency=USD",
        f"/v1/reports/trial-balance?date={day}&currency=USD&detail=accounts",
        f"/v1/reports/trial-balance?date={day}&currency=EUR",
        f"/v1/alerts?to={day}",
        f"/v1/risk/exposures?date={day}",
        f"/v1/risk/overdrafts?date={day}",
        f"/v1/risk/liquidity?from={day - timedelta(days=2)}&to={day}",
    ]
    before = {path: report(client, compliance, path) for path in paths}
    assert before[paths[0]]["ctrs"], before[paths[0]]
    # Later activity: an import booked on a later past day, postings today, a new
    # limit, a customer's new details.
    imported(client, admin, dep(usd, "12000.00", at(later, 9)),
             wd(other, "11000.00", at(later, 10)),
             dep(eur, "40000.00", at(later, 11), currency="EUR", counterparty={"country": "KY"}))
    tx_id(deposit(client, teller, usd, "15000.00", "USD"))
    tx_id(withdraw(client, teller, other, "9000.00", "USD"))
    tx_id(transfer(client, teller, usd, other, "100.00", "USD"))
    ok(post(client, f"/v1/accounts/{usd}/limits", admin, {"overdraft_limit": "100.00"}), 200)
    ok(client.patch(f"/v1/customers/{person}", json={"group_id": "G-2", "name": "Renamed"},
                    headers={"Authorization": f"Bearer {admin}"}), 200)
    for path in paths:
        after = report(client, compliance, path)
        assert after["as_of_position"] > before[path]["as_of_position"], path
        assert after["digest"] == before[path]["digest"], path
        assert unsigned(after) == unsigned(before[path]), path


def test_a_closed_day_makes_its_reports_final_without_changing_the_digest(
        client, admin, compliance):
    day = ago(4)
    account = imported_account(client, admin)
    imported(client, admin, dep(account, "10500.00", at(day)))
    open_report = ctr(client, compliance, day)
    assert open_report["final"] is False
    ok(post(client, f"/v1/business-days/{ago(3)}/close", admin), 200)
    closed = ctr(client, compliance, day)
    assert closed["final"] is True and closed["digest"] == open_report["digest"]
    assert report(client, compliance,
                  f"/v1/reports/trial-balance?date={day}&currency=USD")["final"] is True
    assert ctr(client, compliance, ago(2))["final"] is False
    assert ctr(client, compliance, today())["final"] is False
    for path, final in (
        (f"/v1/reports/dmo?month={previous_month():%Y-%m}",
         today().replace(day=1) - timedelta(days=1) <= ago(3)),
        (f"/v1/alerts?to={ago(3)}", True), (f"/v1/alerts?to={ago(2)}", False),
        ("/v1/alerts", False),
        (f"/v1/risk/overdrafts?date={ago(3)}", True), ("/v1/risk/overdrafts", False),
        (f"/v1/risk/exposures?date={ago(4)}", True),
        (f"/v1/risk/liquidity?from={ago(5)}&to={ago(3)}", True),
        (f"/v1/risk/liquidity?from={ago(5)}&to={ago(2)}", False),
    ):
        assert report(client, compliance, path)["final"] is final, path
    # Nothing more may be booked on a closed day: the final report stays as it is.
    refused = post(client, "/v1/batches", admin,
                   {"atomic": True, "items": [dep(account, "1.00", at(day, 13))]})
    problem(refused, 409, "batch_rejected")
    assert unsigned(ctr(client, compliance, day)) == unsigned(closed)


# =============================================================================== DMO


def month_day(n: int, hour: int = 12) -> datetime:
    return at(previous_month().replace(day=n), hour)


def dmo(client, key, month: date | str) -> dict:
    text = month if isinstance(month, str) else month.strftime("%Y-%m")
    return report(client, key, f"/v1/reports/dmo?month={text}")


def eur_account(client, admin, customer_id: str | None = None, **fields: Any) -> str:
    opened = at(previous_month() - timedelta(days=40), 8)
    return imported_account(client, admin, "EUR", customer_id, opened, **fields)


def test_dmo_an_operation_over_30000_with_a_designated_counterparty(client, admin, compliance):
    person = customer(client, admin, country="ES")
    account = eur_account(client, admin, person)
    big, _ = imported(
        client, admin,
        dep(account, "30000.01", month_day(3), "EUR", "wire", counterparty={"country": "KY"}),
        dep(account, "50000.00", month_day(4), "EUR", "wire", counterparty={"country": "FR"}),
    )
    body = dmo(client, compliance, previous_month())
    assert body["month"] == previous_month().strftime("%Y-%m")
    assert body["currency"] == "EUR"
    assert body["declaration"] == "positive"
    assert body["operations"] == [{
        "transaction_id": big["transaction_id"], "customer_id": person, "territory": "KY",
        "kind": "deposit", "amount": "30000.01", "booked_at": big["booked_at"],
    }]
    assert body["splits"] == [] and body["unconverted"] == []
    following = (previous_month() + timedelta(days=32)).replace(day=15)
    assert body["due_date"] == following.isoformat()


def test_dmo_exactly_30000_alone_is_not_reported(client, admin, compliance):
    account = eur_account(client, admin, customer(client, admin, country="ES"))
    imported(client, admin, dep(account, "30000.00", month_day(5), "EUR",
                                counterparty={"country": "BM"}))
    body = dmo(client, compliance, previous_month())
    assert body["declaration"] == "negative"
    assert body["operations"] == [] and body["splits"] == []


def test_dmo_split_operations_of_one_customer_and_territory(client, admin, compliance):
    person = customer(client, admin, country="ES")
    account = eur_account(client, admin, person)
    parts = imported(
        client, admin,
        dep(account, "12000.00", month_day(2), "EUR", "wire", counterparty={"country": "KY"}),
        dep(account, "10000.00", month_day(9), "EUR", "cash", counterparty={"country": "KY"}),
        wd(account, "8000.01", month_day(20), "EUR", "wire", counterparty={"country": "KY"}),
        # Another territory: a group of its own, 29,000 in all: not reported.
        dep(account, "29000.00", month_day(21), "EUR", "wire", counterparty={"country": "BM"}),
        # Not designated: out of scope.
        dep(account, "29000.00", month_day(22), "EUR", "wire", counterparty={"country": "FR"}),
    )
    body = dmo(client, compliance, previous_month())
    assert body["declaration"] == "positive"
    assert body["operations"] == []
    assert body["splits"] == [{
        "customer_id": person, "territory": "KY", "total": "30000.01",
        "transaction_ids": [p["transaction_id"] for p in parts[:3]],
    }]


def test_dmo_an_operation_reported_alone_is_not_part_of_a_split(client, admin, compliance):
    person = customer(client, admin, country="ES")
    account = eur_account(client, admin, person)
    big, *parts = imported(
        client, admin,
        dep(account, "31000.00", month_day(2), "EUR", "wire", counterparty={"country": "GG"}),
        dep(account, "15000.01", month_day(3), "EUR", "wire", counterparty={"country": "GG"}),
        wd(account, "15000.00", month_day(4), "EUR", "cash", counterparty={"country": "GG"}),
    )
    body = dmo(client, compliance, previous_month())
    assert [o["transaction_id"] for o in body["operations"]] == [big["transaction_id"]]
    assert body["operations"][0]["kind"] == "deposit"
    assert body["splits"] == [{
        "customer_id": person, "territory": "GG", "total": "30000.01",
        "transaction_ids": [p["transaction_id"] for p in parts],
    }]


def test_dmo_splits_need_more_than_30000_together(client, admin, compliance):
    account = eur_account(client, admin, customer(client, admin, country="ES"))
    imported(
        client, admin,
        dep(account, "15000.00", month_day(2), "EUR", "wire", counterparty={"country": "KY"}),
        dep(account, "15000.00", month_day(3), "EUR", "wire", counterparty={"country": "KY"}),
    )
    assert dmo(client, compliance, previous_month())["declaration"] == "negative"


def test_dmo_a_designated_residents_transfer(client, admin, compliance):
    resident = customer(client, admin, country="KY")
    payee = customer(client, admin, country="ES")
    source = eur_account(client, admin, resident)
    destination = eur_account(client, admin, payee)
    _, sent, *_ = imported(
        client, admin,
        dep(source, "100000.00", month_day(1), "EUR", "wire"),  # the resident's: in scope
        xfer(source, destination, "40000.00", month_day(6), "EUR"),
        # The payee is not designated: what it receives is not in scope.
        xfer(destination, source, "35000.00", month_day(7), "EUR"),
    )
    body = dmo(client, compliance, previous_month())
    assert [(o["customer_id"], o["kind"], o["amount"], o["territory"])
            for o in body["operations"]] == [
        (resident, "deposit", "100000.00", "KY"), (resident, "transfer", "40000.00", "KY")]
    assert body["operations"][1]["transaction_id"] == sent["transaction_id"]
    assert body["splits"] == []


def test_dmo_a_same_day_reversal_and_other_months(client, admin, compliance):
    account = eur_account(client, admin, customer(client, admin, country="ES"))
    this_month = today().replace(day=1)
    imported(client, admin, dep(account, "45000.00", month_day(27), "EUR", "wire",
                                counterparty={"country": "VG"}))
    assert dmo(client, compliance, previous_month())["declaration"] == "positive"
    if today() > this_month:  # this month, booked today: reversed the same day
        live = tx_id(deposit(client, admin, account, "45000.00", "EUR",
                             counterparty={"country": "VG"}))
        assert len(dmo(client, compliance, this_month)["operations"]) == 1
        reverse(client, admin, live)
        assert dmo(client, compliance, this_month)["declaration"] == "negative"
    two_ago = (previous_month() - timedelta(days=1)).replace(day=1)
    assert dmo(client, compliance, two_ago)["declaration"] == "negative"


def test_dmo_negative_declaration_with_empty_lists(client, compliance):
    body = dmo(client, compliance, previous_month())
    assert body["declaration"] == "negative"
    assert (body["operations"], body["splits"], body["unconverted"]) == ([], [], [])
    following = (previous_month() + timedelta(days=32)).replace(day=15)
    assert body["due_date"] == following.isoformat()
    december = dmo(client, compliance, "2025-12")
    assert december["due_date"] == "2026-01-15" and december["month"] == "2025-12"


def test_dmo_usd_without_a_rate_is_unconverted(client, admin, compliance):
    person = customer(client, admin, country="ES")
    usd = imported_account(client, admin, "USD", person,
                           at(previous_month() - timedelta(days=40), 8))
    (dollars,) = imported(client, admin, dep(usd, "50000.00", month_day(8), "USD", "wire",
                                             counterparty={"country": "KY"}))
    body = dmo(client, compliance, previous_month())
    assert body["operations"] == [] and body["splits"] == []
    assert [u["transaction_id"] for u in body["unconverted"]] == [dollars["transaction_id"]]
    assert body["unconverted"][0]["currency"] == "USD"


def test_dmo_csv(client, admin, compliance):
    person = customer(client, admin, country="ES")
    account = eur_account(client, admin, person)
    big, *parts = imported(
        client, admin,
        dep(account, "31000.00", month_day(2), "EUR", "wire", counterparty={"country": "KY"}),
        dep(account, "20000.00", month_day(3), "EUR", "wire", counterparty={"country": "JE"}),
        dep(account, "20000.00", month_day(4), "EUR", "wire", counterparty={"country": "JE"}),
    )
    body = dmo(client, compliance, previous_month())
    response = get(client, f"/v1/reports/dmo?month={previous_month():%Y-%m}&format=csv",
                   compliance)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["X-Report-Digest"] == body["digest"]
    rows = _csv_rows(response.text)
    assert len(rows) == len(body["operations"]) + len(body["splits"]) == 2
    texts = [",".join(row.values()) for row in rows]
    assert any(big["transaction_id"] in t and "31000.00" in t and "KY" in t for t in texts)
    joined = ";".join(p["transaction_id"] for p in parts)
    assert any(joined in t and "40000.00" in t and "JE" in t for t in texts)
    empty = get(client, "/v1/reports/dmo?month=2025-01&format=csv", compliance)
    assert empty.status_code == 200 and _csv_rows(empty.text) == []


# ===================================================================== trial balance

TB_COLUMNS = ("opening_debit", "opening_credit", "debits", "credits", "closing_debit",
              "closing_credit")


def assert_balanced(tb: dict) -> None:
    places = 0 if tb["currency"] == "JPY" else 2
    totals = {c: money_sum(line[c] for line in tb["lines"][:4]) for c in TB_COLUMNS}
    assert {c: f"{v:.{places}f}" for c, v in totals.items()} == tb["totals"]
    assert totals["closing_debit"] == totals["closing_credit"]
    assert totals["opening_debit"] == totals["opening_credit"]
    assert totals["debits"] == totals["credits"]
    assert tb["exceptions"] == []
    for line in tb["lines"]:
        opening = Decimal(line["opening_debit"]) - Decimal(line["opening_credit"])
        closing = Decimal(line["closing_debit"]) - Decimal(line["closing_credit"])
        assert opening + Decimal(line["debits"]) - Decimal(line["credits"]) == closing, line


def line(opening: tuple[str, str], moved: tuple[str, str], closing: tuple[str, str]) -> dict:
    return dict(zip(TB_COLUMNS, (*opening, *moved, *closing), strict=True))


def test_trial_balance_lines_of_a_past_day(client, admin, compliance):
    d = ago(3)
    a = imported_account(client, admin)
    b = imported_account(client, admin, overdraft_limit="1000.00")
    c = imported_account(client, admin)
    imported(
        client, admin,
        # D-1: a 500 cash in, b 300 wire in; cash 500 Dr, clearing 300 Dr.
        dep(a, "500.00", at(d - timedelta(days=1), 9)),
        dep(b, "300.00", at(d - timedelta(days=1), 10), channel="wire"),
        # D: a +200 cash, -50 cash; b transfers 700 to c (b overdrawn by 400);
        # c 100 out by wire.
        dep(a, "200.00", at(d, 9)), wd(a, "50.00", at(d, 10)),
        xfer(b, c, "700.00", at(d, 11)), wd(c, "100.00", at(d, 12), channel="wire"),
        # D+1: not in D's report.
        dep(a, "1000.00", at(d + timedelta(days=1), 9)),
    )
    tb = trial_balance(client, compliance, d)
    assert (tb["date"], tb["currency"]) == (d.isoformat(), "USD")
    assert [x["account"] for x in tb["lines"]] == [
        "cash", "clearing", "customer_deposits", "customer_overdrafts"]
    lines = lines_of(tb)

    def strip(x: dict) -> dict:
        return {k: x[k] for k in TB_COLUMNS}

    assert strip(lines["cash"]) == line(("500.00", "0.00"), ("200.00", "50.00"),
                                        ("650.00", "0.00"))
    # A wire withdrawal credits clearing (the money leaves through it).
    assert strip(lines["clearing"]) == line(("300.00", "0.00"), ("0.00", "100.00"),
                                            ("200.00", "0.00"))
    # Deposits close at a 650 + c 600; overdrafts b -400 (b opened the day at +300).
    deposits, overdrafts = strip(lines["customer_deposits"]), strip(lines["customer_overdrafts"])
    assert (deposits["closing_debit"], deposits["closing_credit"]) == ("0.00", "1250.00")
    assert (overdrafts["closing_debit"], overdrafts["closing_credit"]) == ("400.00", "0.00")
    assert money_sum([deposits["debits"], overdrafts["debits"]]) == Decimal("850.00")
    assert money_sum([deposits["credits"], overdrafts["credits"]]) == Decimal("900.00")
    assert tb["totals"] == {
        "opening_debit": "800.00", "opening_credit": "800.00", "debits": "1050.00",
        "credits": "1050.00", "closing_debit": "1250.00", "closing_credit": "1250.00",
    }
    assert_balanced(tb)
    # Closing balances are the balances as of the end of D.
    end = iso(at(d + timedelta(days=1), 0) - timedelta(microseconds=1))
    balances = [Decimal(ok(get(client, f"/v1/accounts/{x}/balance?as_of={end}", compliance),
                           200)["ledger_balance"]) for x in (a, b, c)]
    assert balances == [Decimal("650.00"), Decimal("-400.00"), Decimal("600.00")]
    assert Decimal(deposits["closing_credit"]) == sum(v for v in balances if v > 0)
    assert Decimal(overdrafts["closing_debit"]) == -sum(v for v in balances if v < 0)


def test_trial_balance_detail_accounts_follow_the_summary_lines(client, admin, compliance):
    d = ago(2)
    a = imported_account(client, admin)
    b = imported_account(client, admin, overdraft_limit="1000.00")
    idle = imported_account(client, admin)  # never moved: no line of its own
    imported(client, admin, dep(a, "500.00", at(d, 9)), xfer(b, a, "200.00", at(d, 10)))
    plain = trial_balance(client, compliance, d)
    detailed = trial_balance(client, compliance, d, extra="&detail=accounts")
    assert detailed["lines"][:4] == plain["lines"]
    assert detailed["totals"] == plain["totals"]  # per-account lines are not in the totals
    per_account = {x["account"]: x for x in detailed["lines"][4:]}
    assert set(per_account) == {a, b} and idle not in per_account
    assert (per_account[a]["closing_credit"], per_account[a]["credits"]) == ("700.00", "700.00")
    assert (per_account[b]["closing_debit"], per_account[b]["debits"]) == ("200.00", "200.00")
    summary = lines_of(plain)
    for name, members in (("customer_deposits", [a]), ("customer_overdrafts", [b])):
        for column in TB_COLUMNS:
            assert money_sum(per_account[m][column] for m in members) == Decimal(
                summary[name][column]), (name, column)
    assert_balanced(detailed)


def test_trial_balance_opening_of_d_is_the_closing_of_d_minus_1(client, admin, compliance):
    first = ago(6)
    a = imported_account(client, admin, overdraft_limit="100.00")
    b = imported_account(client, admin, overdraft_limit="5000.00")
    items = []
    for n in range(5):
        day = first + timedelta(days=n)
        items += [dep(a, f"{100 + n}.25", at(day, 9)),
                  dep(b, f"{n + 1}0.00", at(day, 10), channel="cheque"),
                  wd(a, f"{n + 1}.10", at(day, 11), channel="wire")]
        if n == 2:
            items.append(xfer(b, a, "500.00", at(day, 12)))  # b overdrawn from here on
    imported(client, admin, *items)
    reports = [trial_balance(client, compliance, first + timedelta(days=n),
                             extra="&detail=accounts") for n in range(-1, 6)]
    for previous, current in itertools.pairwise(reports):
        assert_balanced(current)
        before, now = lines_of(previous), lines_of(current)
        for name in ("cash", "clearing", a, b):
            if name not in now:
                continue
            was = before.get(name, {"closing_debit": "0.00", "closing_credit": "0.00"})
            assert (now[name]["opening_debit"], now[name]["opening_credit"]) == (
                was["closing_debit"], was["closing_credit"]), (current["date"], name)
        assert (current["totals"]["opening_debit"], current["totals"]["opening_credit"]) == (
            previous["totals"]["closing_debit"], previous["totals"]["closing_credit"])
        # Where no account changes sides, the customer lines roll over too.
        if current["date"] != (first + timedelta(days=2)).isoformat():
            for name in ("customer_deposits", "customer_overdrafts"):
                assert (now[name]["opening_debit"], now[name]["opening_credit"]) == (
                    before[name]["closing_debit"], before[name]["closing_credit"]), name


def test_trial_balance_closing_equals_the_balances_projection(client, teller, compliance):
    a = open_account(client, teller, "EUR", overdraft_limit="300.00")["account_id"]
    b = open_account(client, teller, "EUR")["account_id"]
    c = open_account(client, teller, "EUR")["account_id"]
    tx_id(deposit(client, teller, b, "1000.00"))
    tx_id(deposit(client, teller, c, "99.99", channel="wire"))
    tx_id(transfer(client, teller, a, b, "250.00"))
    tx_id(withdraw(client, teller, b, "75.50"))
    hold = ok(post(client, "/v1/holds", teller,
                   {"account_id": c, "amount": "20.00", "currency": "EUR"}), 201)
    tx_id(post(client, f"/v1/holds/{hold['hold_id']}/capture", teller, {}))  # to clearing
    tb = trial_balance(client, compliance, today(), "EUR")
    assert_balanced(tb)
    lines = lines_of(tb)
    balances = [Decimal(ok(get(client, f"/v1/accounts/{x}", teller), 200)["ledger_balance"])
                for x in (a, b, c)]
    assert Decimal(lines["customer_deposits"]["closing_credit"]) == sum(
        v for v in balances if v > 0)
    assert Decimal(lines["customer_overdrafts"]["closing_debit"]) == -sum(
        v for v in balances if v < 0)
    assert lines["cash"]["closing_debit"] == "924.50"  # 1000 in - 75.50 out
    assert lines["clearing"]["closing_debit"] == "79.99"  # 99.99 wire in - 20 captured
    assert tb["totals"]["closing_debit"] == tb["totals"]["closing_credit"] == "1254.49"


def test_trial_balance_prints_the_currencys_minor_units(client, teller, compliance):
    jpy = open_account(client, teller, "JPY")["account_id"]
    tx_id(deposit(client, teller, jpy, "1500", "JPY"))
    tb = trial_balance(client, compliance, today(), "JPY")
    assert lines_of(tb)["cash"]["closing_debit"] == "1500"
    assert tb["totals"]["closing_credit"] == "1500"
    assert_balanced(tb)
    empty = trial_balance(client, compliance, today(), "GBP")
    assert empty["totals"] == dict.fromkeys(TB_COLUMNS, "0.00")


# ============================================================================ alerts


def test_alert_structuring_from_imported_history(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, customer_id=person)
    deposits = imported(client, admin, dep(account, "9000.50", at(ago(9))),
                        dep(account, "8000.00", at(ago(5))), dep(account, "10000.00", at(ago(3))),
                        dep(account, "7999.99", at(ago(2))))  # below 80%: not counted
    found = alerts(client, compliance, "?rule=structuring")
    trigger = deposits[2]
    assert found == [{
        "alert_id": alert_id("structuring", person, trigger["transaction_id"]),
        "rule": "structuring", "customer_id": person, "account_ids": [account],
        "transaction_ids": [d["transaction_id"] for d in deposits[:3]],
        "trigger_transaction_id": trigger["transaction_id"],
        "trigger_booked_at": trigger["booked_at"],
        "window_start": iso(at(ago(10))), "window_end": trigger["booked_at"],
        "figures": {"count": 3, "total": "27000.50", "currency": "USD"},
    }]


def test_alert_structuring_counts_for_the_conductor(client, admin, compliance):
    x = customer(client, admin)
    owners = [customer(client, admin) for _ in range(3)]
    accounts = [imported_account(client, admin, customer_id=o) for o in owners]
    deposits = imported(client, admin, *[dep(a, "9500.00", at(ago(4 - n)), conducted_by=x)
                                        for n, a in enumerate(accounts)])
    found = alerts(client, compliance, "?rule=structuring")
    assert [(a["customer_id"], a["trigger_transaction_id"]) for a in found] == [
        (x, deposits[2]["transaction_id"])]
    assert found[0]["account_ids"] == sorted(accounts)


def test_alert_round_amounts(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, "EUR", person)
    moves = imported(client, admin,
                     dep(account, "2000.00", at(ago(60)), "EUR", "wire"),  # too early
                     dep(account, "3000.00", at(ago(29)), "EUR", "wire"),
                     wd(account, "1000.00", at(ago(20)), "EUR"),
                     dep(account, "1500.00", at(ago(10)), "EUR", "wire"),  # not round
                     dep(account, "5000.00", at(ago(1)), "EUR", "cheque"))
    found = alerts(client, compliance)
    assert [a["rule"] for a in found] == ["round_amounts"], found
    (alert,) = found
    trigger = moves[4]
    assert alert["alert_id"] == alert_id("round_amounts", person, trigger["transaction_id"])
    assert alert["trigger_transaction_id"] == trigger["transaction_id"]
    assert alert["transaction_ids"] == [moves[1]["transaction_id"], moves[2]["transaction_id"],
                                        trigger["transaction_id"]]
    assert alert["figures"] == {"count": 3, "total": "9000.00", "currency": "EUR"}
    assert alert["window_start"] == iso(at(ago(31)))


def test_alert_dormant_reactivation(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, "EUR", person, at(ago(500), 8))
    first, out = imported(client, admin, dep(account, "5000.50", at(ago(450)), "EUR", "wire"),
                          wd(account, "100.00", at(ago(2)), "EUR"))
    found = alerts(client, compliance)
    assert [a["rule"] for a in found] == ["dormant_reactivation"], found
    (alert,) = found
    assert alert["alert_id"] == alert_id("dormant_reactivation", person, out["transaction_id"])
    assert alert["transaction_ids"] == [out["transaction_id"]]
    assert alert["account_ids"] == [account]
    assert alert["figures"] == {"last_activity_at": first["booked_at"], "amount": "100.00",
                                "currency": "EUR"}
    # Activity within the year before it: no alert.
    other = imported_account(client, admin, "EUR", person, at(ago(500), 8))
    imported(client, admin, dep(other, "5000.50", at(ago(300)), "EUR", "wire"),
             wd(other, "100.00", at(ago(1)), "EUR"))
    assert len(alerts(client, compliance, "?rule=dormant_reactivation")) == 1


def test_alert_large_outgoing(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, "EUR", person)
    moves = imported(client, admin,
                     dep(account, "5000.50", at(ago(30)), "EUR", "wire"),
                     wd(account, "100.00", at(ago(20)), "EUR"),
                     wd(account, "140.00", at(ago(15)), "EUR"),  # not > 150
                     wd(account, "210.00", at(ago(10)), "EUR"),  # 1.5 x 140: not more
                     wd(account, "315.01", at(ago(5)), "EUR"))  # > 1.5 x 210
    found = alerts(client, compliance)
    assert [a["rule"] for a in found] == ["large_outgoing"], found
    (alert,) = found
    trigger = moves[4]
    assert alert["alert_id"] == alert_id("large_outgoing", person, trigger["transaction_id"])
    assert alert["figures"] == {"amount": "315.01", "largest_before": "210.00",
                                "currency": "EUR"}
    assert alert["window_start"] == iso(at(ago(95)))


def test_alert_pass_through(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, "EUR", person)
    elsewhere = imported_account(client, admin, "EUR")
    incoming, outgoing = imported(
        client, admin,
        dep(account, "10000.00", at(ago(3), 10), "EUR", "wire"),
        xfer(account, elsewhere, "9000.00", at(ago(1), 9), "EUR"),  # 47 hours later
    )
    found = alerts(client, compliance)
    assert [a["rule"] for a in found] == ["pass_through"], found
    (alert,) = found
    assert alert["customer_id"] == person
    assert alert["alert_id"] == alert_id("pass_through", person, outgoing["transaction_id"])
    assert alert["transaction_ids"] == [incoming["transaction_id"], outgoing["transaction_id"]]
    assert alert["figures"] == {"incoming": "10000.00", "outgoing": "9000.00", "currency": "EUR"}
    assert alert["window_start"] == iso(at(ago(3), 9))


def test_alert_pass_through_boundaries(client, admin, compliance):
    a = imported_account(client, admin, "EUR")
    b = imported_account(client, admin, "EUR")
    sink = imported_account(client, admin, "EUR")
    imported(client, admin,
             dep(a, "10000.00", at(ago(5), 10), "EUR", "wire"),
             xfer(a, sink, "8999.99", at(ago(4), 10), "EUR"))  # under 90%
    imported(client, admin,
             dep(b, "10000.00", at(ago(5), 10), "EUR", "wire"),
             xfer(b, sink, "9000.00", at(ago(3), 10) + timedelta(seconds=1), "EUR"))  # 48h+1s
    assert alerts(client, compliance) == []


def _three_alerts(client, admin) -> tuple[list[str], list[dict]]:
    """Structuring on day -6, round amounts on day -3, large outgoing on day -1."""
    people = [customer(client, admin) for _ in range(3)]
    s, r, g = (imported_account(client, admin, "USD", p) for p in people)
    moves = imported(
        client, admin,
        dep(s, "9000.50", at(ago(8))), dep(s, "9000.50", at(ago(7))),
        dep(s, "9000.50", at(ago(6))),
        dep(r, "1000.00", at(ago(5)), channel="wire"),
        dep(r, "2000.00", at(ago(4)), channel="wire"),
        dep(r, "3000.00", at(ago(3)), channel="wire"),
        dep(g, "5000.50", at(ago(3), 13), channel="wire"), wd(g, "100.00", at(ago(2))),
        wd(g, "150.01", at(ago(1))),
    )
    return people, [moves[2], moves[5], moves[8]]


def test_alert_filters(client, admin, compliance):
    people, triggers = _three_alerts(client, admin)
    every = alerts(client, compliance)
    assert [a["rule"] for a in every] == ["structuring", "round_amounts", "large_outgoing"]
    assert [a["trigger_transaction_id"] for a in every] == [t["transaction_id"] for t in triggers]
    assert [a["customer_id"] for a in every] == people

    def rules(query: str) -> list[str]:
        return [a["rule"] for a in alerts(client, compliance, query)]

    assert rules("?rule=round_amounts") == ["round_amounts"]
    assert rules(f"?customer_id={people[2]}") == ["large_outgoing"]
    assert rules(f"?customer_id={people[2]}&rule=structuring") == []
    # Bare dates: from = the start of that day, to = through the end of that day.
    assert rules(f"?from={ago(3)}") == ["round_amounts", "large_outgoing"]
    assert rules(f"?to={ago(3)}") == ["structuring", "round_amounts"]
    assert rules(f"?from={ago(3)}&to={ago(3)}") == ["round_amounts"]
    assert rules(f"?from={ago(5)}&to={ago(4)}") == []
    # Timestamps, inclusive at both ends, on the trigger's booked_at.
    exact = triggers[1]["booked_at"]
    assert rules(f"?from={exact}&to={exact}") == ["round_amounts"]
    just_after = iso(at(ago(3)) + timedelta(microseconds=1))
    assert rules(f"?from={just_after}&to={iso(at(ago(1)))}") == ["large_outgoing"]
    # 14:00 UTC on day -6 (after the structuring trigger), written at +05:00.
    offset = (at(ago(6)) + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5)))
    assert offset.isoformat().endswith("+05:00")
    assert rules(f"?from={offset.isoformat().replace('+', '%2B')}") == [
        "round_amounts", "large_outgoing"]
    assert rules(f"?to={offset.isoformat().replace('+', '%2B')}") == ["structuring"]
    body = report(client, compliance, f"/v1/alerts?from={ago(3)}&rule=round_amounts")
    assert body["rule"] == "round_amounts"


def test_a_same_day_reversal_removes_an_alert(client, teller, admin, compliance):
    person = customer(client, teller)
    account = open_account(client, teller, "USD", person)["account_id"]
    ids = [tx_id(deposit(client, teller, account, "9100.00", "USD")) for _ in range(3)]
    raised = report(client, compliance, "/v1/alerts?rule=structuring")
    assert [a["trigger_transaction_id"] for a in raised["alerts"]] == [ids[2]]
    reverse(client, admin, ids[2])
    assert alerts(client, compliance, "?rule=structuring") == []
    before = report(client, compliance,
                    f"/v1/alerts?rule=structuring&as_of_position={raised['as_of_position']}")
    assert before == raised


def test_a_reversal_on_a_later_day_keeps_the_alert(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, customer_id=person)
    moves = imported(client, admin, *[dep(account, "9100.00", at(ago(n))) for n in (3, 2, 1)])
    reverse(client, admin, moves[2]["transaction_id"])
    found = alerts(client, compliance, "?rule=structuring")
    assert [a["trigger_transaction_id"] for a in found] == [moves[2]["transaction_id"]]


def test_a_growing_pattern_raises_again_only_after_the_window(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, customer_id=person)
    moves = imported(client, admin, *[dep(account, "9100.00", at(ago(n))) for n in
                                      (20, 19, 18, 17, 16, 10, 9)])
    found = alerts(client, compliance, "?rule=structuring")
    # Triggers: day -18 (alert), -17 and -16 (within 7 days of it: none), -10 (needs 3
    # in [-17, -10]: -17, -16, -10), so -10 raises (-18 < -17); -9 is within 7 days of -10.
    assert [a["trigger_transaction_id"] for a in found] == [
        moves[2]["transaction_id"], moves[5]["transaction_id"]]


# ============================================================================== risk


def test_exposures_arithmetic_and_thresholds(client, teller, admin, compliance):
    small = customer(client, admin, name="Small")
    small_account = open_account(client, admin, "EUR", small, overdraft_limit="1000.00")
    tx_id(withdraw(client, teller, small_account["account_id"], "400.00"))
    large = customer(client, admin, name="Large")  # undrawn 30,000,000: 3,000,000 = 12%
    open_account(client, admin, "EUR", large, overdraft_limit="30000000.00")
    breach = customer(client, admin, name="Breach")
    b = open_account(client, admin, "EUR", breach, overdraft_limit="7000000.00")["account_id"]
    tx_id(withdraw(client, teller, b, "6300000.00", channel="wire"))
    body = report(client, compliance, f"/v1/risk/exposures?date={today()}")
    assert body["date"] == today().isoformat()
    assert body["tier1_capital"] == "25000000.00"
    rows = {r.get("customer_id"): r for r in body["exposures"]}
    assert [r["customer_id"] for r in body["exposures"]] == [breach, large, small]
    assert rows[small] | {} == {
        "customer_id": small, "drawn": "400.00", "undrawn": "600.00", "exposure": "460.00",
        "ratio": "0.0000", "large": False, "breach": False,
    }
    assert (rows[large]["drawn"], rows[large]["undrawn"], rows[large]["exposure"]) == (
        "0.00", "30000000.00", "3000000.00")
    assert (rows[large]["ratio"], rows[large]["large"], rows[large]["breach"]) == (
        "0.1200", True, False)
    # 6,300,000 + 700,000 x 10% = 6,370,000 = 25.48% of tier 1.
    assert (rows[breach]["exposure"], rows[breach]["ratio"]) == ("6370000.00", "0.2548")
    assert rows[breach]["large"] is True and rows[breach]["breach"] is True
    top1 = report(client, compliance, f"/v1/risk/exposures?date={today()}&top=1")
    # The top 1, and every large one.
    assert [r["customer_id"] for r in top1["exposures"]] == [breach, large]
    top0 = report(client, compliance, "/v1/risk/exposures?top=0")
    assert [r["customer_id"] for r in top0["exposures"]] == [breach, large]


def test_exposures_ratio_is_rounded_half_even_to_4_decimals(client, admin, compliance):
    # 2,500 / 25,000,000 = 0.0001; 1,250 -> 0.00005 -> 0.0000 (half even); 3,750 -> 0.0002.
    people = [customer(client, admin) for _ in range(3)]
    for person, limit in zip(people, ("25000.00", "12500.00", "37500.00"), strict=True):
        open_account(client, admin, "EUR", person, overdraft_limit=limit)
    rows = {r["customer_id"]: r for r in report(
        client, compliance, "/v1/risk/exposures")["exposures"]}
    assert [rows[p]["exposure"] for p in people] == ["2500.00", "1250.00", "3750.00"]
    assert [rows[p]["ratio"] for p in people] == ["0.0001", "0.0000", "0.0002"]


def test_exposures_of_a_connected_group(client, teller, admin, compliance):
    first = customer(client, admin, group_id="GRP-7")
    second = customer(client, admin, group_id="GRP-7")
    alone = customer(client, admin)
    a = open_account(client, admin, "EUR", first, overdraft_limit="1000.00")["account_id"]
    b = open_account(client, admin, "EUR", second, overdraft_limit="2000.00")["account_id"]
    open_account(client, admin, "EUR", alone, overdraft_limit="100.00")
    tx_id(withdraw(client, teller, a, "1000.00"))
    tx_id(withdraw(client, teller, b, "500.00"))
    body = report(client, compliance, "/v1/risk/exposures")
    groups = [r for r in body["exposures"] if "group_id" in r]
    assert len(groups) == 1
    (group,) = groups
    assert group["group_id"] == "GRP-7"
    # drawn 1,000 + 500; undrawn 0 + 1,500; exposure 1,500 + 150.
    assert (group["drawn"], group["undrawn"], group["exposure"]) == (
        "1500.00", "1500.00", "1650.00")
    assert not any(r.get("customer_id") in (first, second) for r in body["exposures"])
    assert [r.get("customer_id") for r in body["exposures"]] == [None, alone]


def test_exposures_in_another_currency_without_a_rate_are_unconverted(
        client, admin, compliance):
    person = customer(client, admin)
    open_account(client, admin, "USD", person, overdraft_limit="1000.00")
    body = report(client, compliance, "/v1/risk/exposures")
    assert body["exposures"] == []
    assert [u["customer_id"] for u in body["unconverted"]] == [person]


def test_overdrafts_usage_days_and_excess(client, admin, compliance):
    person = customer(client, admin)
    account = imported_account(client, admin, "EUR", person, overdraft_limit="1000.00")
    fine = imported_account(client, admin, "EUR", overdraft_limit="1000.00")
    imported(client, admin, wd(account, "300.00", at(ago(5)), "EUR"),
             dep(fine, "50.00", at(ago(5)), "EUR"), wd(fine, "50.00", at(ago(4)), "EUR"))
    body = report(client, compliance, f"/v1/risk/overdrafts?date={today()}")
    assert body["accounts"] == [{
        "account_id": account, "customer_id": person, "currency": "EUR", "drawn": "300.00",
        "limit": "1000.00", "usage": "0.3000", "days_overdrawn": 6, "bucket": "1-30",
        "excess": "0.00",
    }]
    past = report(client, compliance, f"/v1/risk/overdrafts?date={ago(3)}")
    assert [(a["account_id"], a["days_overdrawn"]) for a in past["accounts"]] == [(account, 3)]
    assert report(client, compliance, f"/v1/risk/overdrafts?date={ago(6)}")["accounts"] == []
    # A limit cut below what is drawn: the account is in excess.
    ok(post(client, f"/v1/accounts/{account}/limits", admin, {"overdraft_limit": "100.00"}), 200)
    (row,) = report(client, compliance, "/v1/risk/overdrafts")["accounts"]
    assert (row["limit"], row["usage"], row["excess"]) == ("100.00", "3.0000", "200.00")
    ok(post(client, f"/v1/accounts/{account}/limits", admin, {"overdraft_limit": "0.00"}), 200)
    (row,) = report(client, compliance, "/v1/risk/overdrafts")["accounts"]
    assert (row["limit"], row["usage"], row["excess"]) == ("0.00", None, "300.00")
    # The past keeps the limit of its day.
    (row,) = report(client, compliance, f"/v1/risk/overdrafts?date={ago(1)}")["accounts"]
    assert (row["limit"], row["excess"]) == ("1000.00", "0.00")


@pytest.mark.parametrize(("days", "bucket"), [(30, "1-30"), (31, "31-60"), (60, "31-60"),
                                               (61, "61-90"), (90, "61-90"), (91, ">90")])
def test_overdraft_buckets(client, admin, compliance, days, bucket):
    account = imported_account(client, admin, "EUR", opened=at(ago(120), 8),
                               overdraft_limit="500.00")
    imported(client, admin, wd(account, "10.00", at(ago(days - 1)), "EUR"))
    (row,) = report(client, compliance, "/v1/risk/overdrafts")["accounts"]
    assert (row["days_overdrawn"], row["bucket"]) == (days, bucket)


def test_overdraft_days_count_from_when_it_last_went_negative(client, admin, compliance):
    """Overdrawn on day -10, back in credit on day -7, overdrawn again on day -4 (and
    since): the days overdrawn continuously to today are -4..0, five of them."""
    account = imported_account(client, admin, "EUR", overdraft_limit="500.00")
    imported(client, admin, wd(account, "100.00", at(ago(10)), "EUR"),
             dep(account, "150.00", at(ago(7)), "EUR"),
             wd(account, "80.00", at(ago(4)), "EUR"))
    (row,) = report(client, compliance, "/v1/risk/overdrafts")["accounts"]
    assert row["drawn"] == "30.00"
    assert row["days_overdrawn"] == 5, row


def test_liquidity_per_day_and_currency(client, admin, compliance):
    d = ago(4)
    a = imported_account(client, admin, "EUR", overdraft_limit="1000.00")
    b = imported_account(client, admin, "EUR")
    u = imported_account(client, admin, "USD")
    imported(client, admin,
             dep(a, "1000.00", at(d, 9), "EUR"), wd(a, "200.00", at(d, 10), "EUR"),
             dep(u, "70.00", at(d, 11), "USD"))
    imported(client, admin,
             dep(b, "500.00", at(d + timedelta(days=1), 9), "EUR", "wire"),
             xfer(a, b, "1500.00", at(d + timedelta(days=2), 9), "EUR"),  # a: -700
             wd(b, "300.00", at(d + timedelta(days=2), 10), "EUR"))
    body = report(client, compliance, f"/v1/risk/liquidity?from={d - timedelta(days=1)}"
                                      f"&to={d + timedelta(days=3)}")
    rows = [(r["date"], r["currency"], r["cash_in"], r["cash_out"], r["net"],
             r["deposit_base"], r["deposit_base_change"]) for r in body["days"]]
    def day(n: int) -> str:
        return (d + timedelta(days=n)).isoformat()

    assert rows == [
        (day(0), "EUR", "1000.00", "200.00", "800.00", "800.00", "800.00"),
        (day(0), "USD", "70.00", "0.00", "70.00", "70.00", "70.00"),
        (day(1), "EUR", "0.00", "0.00", "0.00", "1300.00", "500.00"),
        (day(1), "USD", "0.00", "0.00", "0.00", "70.00", "0.00"),
        # a goes to -700 (no longer in the base), b to 1,700.
        (day(2), "EUR", "0.00", "300.00", "-300.00", "1700.00", "400.00"),
        (day(2), "USD", "0.00", "0.00", "0.00", "70.00", "0.00"),
        (day(3), "EUR", "0.00", "0.00", "0.00", "1700.00", "0.00"),
        (day(3), "USD", "0.00", "0.00", "0.00", "70.00", "0.00"),
    ]


# ============================================================ 422s, 401s and 403s

ENDPOINTS = [
    f"/v1/reports/trial-balance?date={ago(1)}&currency=EUR",
    f"/v1/reports/ctr?date={ago(1)}",
    f"/v1/reports/ctr?date={ago(1)}&format=csv",
    "/v1/reports/dmo?month=2025-06",
    "/v1/reports/dmo?month=2025-06&format=csv",
    "/v1/alerts",
    "/v1/risk/exposures",
    "/v1/risk/overdrafts",
    f"/v1/risk/liquidity?from={ago(2)}&to={ago(1)}",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_who_may_read_compliance_reports(client, keys, path):
    problem(get(client, path, None), 401, "unauthorized")
    problem(get(client, path, "bo_not-a-key"), 401, "unauthorized")
    problem(get(client, path, keys["teller"]), 403, "forbidden")
    for role in ("compliance", "auditor", "admin"):
        response = get(client, path, keys[role])
        assert response.status_code == 200, (role, response.text)


def test_a_teller_is_refused_before_the_query_is_looked_at(client, teller):
    for path in ("/v1/reports/ctr", "/v1/reports/dmo?month=bad", "/v1/alerts?rule=nope",
                 "/v1/reports/trial-balance", "/v1/risk/liquidity",
                 "/v1/risk/exposures?date=x"):
        problem(get(client, path, teller), 403, "forbidden")


def future() -> date:
    return today() + timedelta(days=1)


BAD_QUERIES = [
    ("/v1/reports/ctr", "date"),
    ("/v1/reports/ctr?date=", "date"),
    ("/v1/reports/ctr?date=2026-02-30", "date"),
    ("/v1/reports/ctr?date=yesterday", "date"),
    ("/v1/reports/ctr?date=2026-1-05", "date"),
    (f"/v1/reports/ctr?date={future()}", "date"),
    (f"/v1/reports/ctr?date={ago(1)}&format=pdf", "format"),
    (f"/v1/reports/ctr?date={ago(1)}&format=JSON", "format"),
    (f"/v1/reports/ctr?date={ago(1)}&as_of_position=abc", "as_of_position"),
    (f"/v1/reports/ctr?date={ago(1)}&as_of_position=-1", "as_of_position"),
    (f"/v1/reports/ctr?date={ago(1)}&filing_date=soon", "filing_date"),
    ("/v1/reports/trial-balance?currency=EUR", "date"),
    (f"/v1/reports/trial-balance?date={ago(1)}", "currency"),
    (f"/v1/reports/trial-balance?date={ago(1)}&currency=eur", "currency"),
    (f"/v1/reports/trial-balance?date={ago(1)}&currency=EURO", "currency"),
    (f"/v1/reports/trial-balance?date={ago(1)}&currency=XYZ", "currency"),
    (f"/v1/reports/trial-balance?date={future()}&currency=EUR", "date"),
    (f"/v1/reports/trial-balance?date={ago(1)}&currency=EUR&detail=everything", "detail"),
    ("/v1/reports/dmo", "month"),
    ("/v1/reports/dmo?month=2025-13", "month"),
    ("/v1/reports/dmo?month=2025-1", "month"),
    ("/v1/reports/dmo?month=2025-01-01", "month"),
    (f"/v1/reports/dmo?month={(today().replace(day=1) + timedelta(days=32)):%Y-%m}", "month"),
    ("/v1/reports/dmo?month=2025-06&format=xml", "format"),
    ("/v1/alerts?rule=smurfing", "rule"),
    ("/v1/alerts?from=last-week", "from"),
    ("/v1/alerts?to=2026-01-01T00:00:00", "to"),  # no offset
    (f"/v1/alerts?from={ago(1)}&to={ago(2)}", "from"),
    ("/v1/risk/exposures?date=2026-13-01", "date"),
    (f"/v1/risk/exposures?date={future()}", "date"),
    ("/v1/risk/exposures?top=-1", "top"),
    ("/v1/risk/exposures?top=many", "top"),
    ("/v1/risk/overdrafts?date=01-02-2026", "date"),
    (f"/v1/risk/overdrafts?date={future()}", "date"),
    (f"/v1/risk/liquidity?to={ago(1)}", "from"),
    (f"/v1/risk/liquidity?from={ago(1)}", "to"),
    (f"/v1/risk/liquidity?from={ago(1)}&to={ago(2)}", "from"),
    (f"/v1/risk/liquidity?from={ago(1)}&to={future()}", "to"),
]


@pytest.mark.parametrize(("path", "field"), BAD_QUERIES)
def test_bad_queries_are_422_naming_the_parameter(client, compliance, path, field):
    body = problem(get(client, path, compliance), 422, "validation_error")
    assert [e["loc"] for e in body["errors"]] == [["query", field]], body


@pytest.mark.parametrize("path", ENDPOINTS)
def test_as_of_position_beyond_the_head_is_422(client, teller, compliance, path):
    written = ok(post(client, "/v1/customers", teller,
                      {"name": "A", "kind": "person", "country": "US"}), 201)["position"]
    beyond = written + 1000
    joiner = "&" if "?" in path else "?"
    body = problem(get(client, f"{path}{joiner}as_of_position={beyond}", compliance), 422,
                   "validation_error")
    assert [e["loc"] for e in body["errors"]] == [["query", "as_of_position"]]
    fine = get(client, f"{path}{joiner}as_of_position={written}", compliance)
    assert fine.status_code == 200, fine.text
    assert fine.headers.get("X-Report-Digest") or fine.json()["as_of_position"] == written

