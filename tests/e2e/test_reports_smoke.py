"""A first pass over every compliance endpoint (the examples of reports.md are in
test_reports_examples.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from e2e_helpers import deposit, get, ok, open_account, post, transfer, withdraw


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_ctr_examples_on_one_day(client, teller, compliance, admin):
    a = open_account(client, teller, "USD")["account_id"]
    ok(deposit(client, teller, a, "6000.00", "USD"), 201)
    ok(deposit(client, teller, a, "4000.01", "USD"), 201)
    b = open_account(client, teller, "USD")["account_id"]
    ok(deposit(client, teller, b, "10000.00", "USD"), 201)
    c = open_account(client, teller, "USD")["account_id"]
    ok(deposit(client, teller, c, "12000.00", "USD"), 201)
    ok(withdraw(client, teller, c, "10500.00", "USD"), 201)
    d = open_account(client, teller, "USD")["account_id"]
    big = ok(deposit(client, teller, d, "12000.00", "USD"), 201)
    ok(post(client, f"/v1/transactions/{big['transaction_id']}/reverse", admin, {"reason": "error"}), 201)
    report = ok(get(client, f"/v1/reports/ctr?date={today()}", compliance), 200)
    by_account = {tuple(c["account_ids"]): c for c in report["ctrs"]}
    assert set(by_account) == {(a,), (c,)}, report
    assert by_account[(a,)]["cash_in"] == "10000.01"
    assert by_account[(a,)]["multiple_transactions"] is True
    assert by_account[(a,)]["cash_out"] is None
    assert by_account[(c,)]["cash_in"] == "12000.00"
    assert by_account[(c,)]["cash_out"] == "10500.00"
    again = ok(get(client, f"/v1/reports/ctr?date={today()}", compliance), 200)
    assert again == report
    xml = get(client, f"/v1/reports/ctr?date={today()}&format=xml", compliance)
    assert xml.status_code == 200, xml.text
    assert xml.headers["X-Report-Digest"] == report["digest"]
    csv = get(client, f"/v1/reports/ctr?date={today()}&format=csv", compliance)
    assert csv.status_code == 200 and csv.text.count("\r\n") == 3


def test_every_report_answers(client, teller, compliance):
    a = open_account(client, teller, "EUR", overdraft_limit="500.00")["account_id"]
    b = open_account(client, teller, "EUR")["account_id"]
    ok(deposit(client, teller, b, "100.00"), 201)
    ok(transfer(client, teller, a, b, "200.00"), 201)
    for path in (
        f"/v1/reports/trial-balance?date={today()}&currency=EUR",
        f"/v1/reports/trial-balance?date={today()}&currency=EUR&detail=accounts",
        f"/v1/reports/dmo?month={today()[:7]}",
        f"/v1/alerts?from={today()}",
        f"/v1/risk/exposures?date={today()}",
        f"/v1/risk/overdrafts?date={today()}",
        f"/v1/risk/liquidity?from={today()}&to={today()}",
    ):
        body = ok(get(client, path, compliance), 200)
        assert {"as_of_position", "rules_version", "final", "digest"} <= set(body), path
    tb = ok(get(client, f"/v1/reports/trial-balance?date={today()}&currency=EUR", compliance), 200)
    assert tb["exceptions"] == [], tb
    lines = {line["account"]: line for line in tb["lines"]}
    assert lines["customer_overdrafts"]["closing_debit"] == "200.00"
    assert lines["customer_deposits"]["closing_credit"] == "300.00"
    assert lines["cash"]["closing_debit"] == "100.00"
    od = ok(get(client, f"/v1/risk/overdrafts?date={today()}", compliance), 200)
    assert [x["account_id"] for x in od["accounts"]] == [a]
    assert od["accounts"][0]["days_overdrawn"] == 1 and od["accounts"][0]["usage"] == "0.4000"
