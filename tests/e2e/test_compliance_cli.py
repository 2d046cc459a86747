"""`backoffice report|alerts|risk`: the same documents as the HTTP endpoints, with the
views caught up by the command itself (no server running)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from lxml import etree
from typer.testing import CliRunner

from application.demo import seed_demo
from infrastructure.bootstrap import bootstrap
from infrastructure.reports.fincen_ctr import SCHEMA_PATH


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[str, dict]:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli')}/cli.sqlite"
    with bootstrap(database_url=url) as bank:
        planted = seed_demo(bank, 40, 60, 3)
    return url, planted


def run(monkeypatch, url: str, *args: str):
    from interfaces.cli import app

    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", url)
    return CliRunner().invoke(app, list(args))


def ctr_day(planted: dict) -> str:
    return next(c["period"] for c in planted["planted"] if c["pattern"] == "ctr_cash_in")


def test_the_ctr_command_catches_up_and_prints_the_report(seeded, monkeypatch):
    url, planted = seeded
    day = ctr_day(planted)
    result = run(monkeypatch, url, "report", "ctr", "--date", day)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {c["customer_id"] for c in body["ctrs"]} == {
        c["customer_ids"][0] for c in planted["planted"]
        if c["report"] == "ctr" and c["period"] == day
    }
    assert f"digest {body['digest']}" in result.stderr
    again = run(monkeypatch, url, "report", "ctr", "--date", day)
    assert again.stdout == result.stdout  # byte for byte
    with bootstrap(database_url=url) as bank:
        assert bank.compliance.ctr(date.fromisoformat(day))["digest"] == body["digest"]


def test_the_ctr_as_fincen_xml_to_a_file(seeded, monkeypatch, tmp_path):
    url, planted = seeded
    out = tmp_path / "ctr.xml"
    result = run(monkeypatch, url, "report", "ctr", "--date", ctr_day(planted), "--format", "xml", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    schema.assertValid(etree.parse(str(out)))


def test_alerts_dmo_trial_balance_and_risk_commands(seeded, monkeypatch):
    url, planted = seeded
    alerts = json.loads(run(monkeypatch, url, "alerts").stdout)
    assert {a["rule"] for a in alerts["alerts"]} == {
        "structuring", "round_amounts", "pass_through", "dormant_reactivation", "large_outgoing",
    }
    month = next(c["period"] for c in planted["planted"] if c["pattern"] == "dmo_operation")
    csv = run(monkeypatch, url, "report", "dmo", "--month", month, "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.startswith("record,transaction_id")
    last = planted["last_day"]
    tb = json.loads(run(monkeypatch, url, "report", "trial-balance", "--date", last, "--currency", "USD").stdout)
    assert tb["exceptions"] == []
    first = (date.fromisoformat(last) - timedelta(days=6)).isoformat()
    for args in (
        ("risk", "exposures", "--date", last),
        ("risk", "overdrafts", "--date", last),
        ("risk", "liquidity", "--from", first, "--to", last),
    ):
        result = run(monkeypatch, url, *args)
        assert result.exit_code == 0, (args, result.output)
        assert json.loads(result.stdout)["digest"]


def test_bad_input_exits_2_with_the_reason(seeded, monkeypatch):
    url, _ = seeded
    result = run(monkeypatch, url, "report", "trial-balance", "--date", "2999-01-01", "--currency", "USD")
    assert result.exit_code == 2
    assert "must not be in the future" in result.stderr
    assert run(monkeypatch, url, "report", "ctr", "--date", "yesterday").exit_code == 2
