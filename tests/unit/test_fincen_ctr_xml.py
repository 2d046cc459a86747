"""The FinCEN CTRX batch writer: every document validates against FinCEN's schema, and
the codes, amounts, dates and batch totals are the ones docs/reports.md asks for."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from lxml import etree

from application.compliance.rules import Institution
from infrastructure.reports.fincen_ctr import SCHEMA_PATH, ctr_batch_xml

XSD = SCHEMA_PATH
NS = {"f": "www.fincen.gov/base"}
FILED = date(2026, 3, 3)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def make_ctr(**changes: Any) -> dict[str, Any]:
    ctr: dict[str, Any] = {
        "customer_id": "0b7e1c1e-0000-4000-8000-000000000001",
        "name": "Jane Q Public",
        "kind": "person",
        "identification": {"type": "passport", "number": "X1234567", "issuing_country": "US"},
        "date_of_birth": "1980-01-31",
        "country": "US",
        "address": {"street": "5 Elm Street", "city": "Springfield", "region": "IL",
                    "postal_code": "62701", "country": "US"},
        "occupation": "Teacher",
        "cash_in": "10500.00",
        "cash_out": None,
        "multiple_transactions": False,
        "roles": ["conductor", "on_behalf"],
        "account_ids": ["9f1d0c62-0000-4000-8000-00000000000a"],
        "transaction_ids": ["5d3e0a11-0000-4000-8000-0000000000t1"],
        "due_date": "2026-03-17",
    }
    ctr.update(changes)
    return ctr


def make_report(*ctrs: dict[str, Any]) -> dict[str, Any]:
    return {"date": "2026-03-02", "currency": "USD", "ctrs": list(ctrs), "unconverted": [],
            "as_of_position": 123, "rules_version": "r-0123456789abcdef", "final": False,
            "digest": "d"}


def write(schema: etree.XMLSchema, report: dict[str, Any],
          institution: Institution | None = None) -> etree._Element:
    """The batch, parsed, after asserting that FinCEN's schema accepts it."""
    data = ctr_batch_xml(report, institution or Institution(), FILED)
    doc = etree.fromstring(data)
    schema.assertValid(doc)
    return doc


def texts(node: etree._Element, path: str) -> list[str]:
    return [(e.text or "") for e in node.xpath(path, namespaces=NS)]


def subject(doc: etree._Element, activity: int = 1) -> etree._Element:
    """The CTR's person: the sixth party of the activity."""
    return doc.xpath(f"f:Activity[{activity}]/f:Party[6]", namespaces=NS)[0]


def subject_code(doc: etree._Element, activity: int = 1) -> str:
    return texts(subject(doc, activity), "f:ActivityPartyTypeCode")[0]


def detail_codes(doc: etree._Element, activity: int = 1) -> list[str]:
    return texts(doc, f"f:Activity[{activity}]/f:CurrencyTransactionActivity/"
                      "f:CurrencyTransactionActivityDetail/"
                      "f:CurrencyTransactionActivityDetailTypeCode")


def totals(doc: etree._Element, activity: int = 1) -> tuple[str, str]:
    cta = f"f:Activity[{activity}]/f:CurrencyTransactionActivity/"
    return (texts(doc, cta + "f:TotalCashInReceiveAmountText")[0],
            texts(doc, cta + "f:TotalCashOutAmountText")[0])


# -- the cases of the brief, each validated against the schema -------------------------


def test_person_with_cash_in_only(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(cash_in="10000.01", cash_out=None)))
    assert detail_codes(doc) == ["55"]
    assert totals(doc) == ("10001", "")
    assert texts(doc, "//f:DetailTransactionAmountText") == ["10001"]
    person = subject(doc)
    assert subject_code(doc) == "50"
    assert texts(person, "f:IndividualEntityCashInAmountText") == ["10001"]
    assert texts(person, "f:IndividualEntityCashOutAmountText") == []
    assert texts(person, "f:Account/f:PartyAccountAssociation/"
                         "f:PartyAccountAssociationTypeCode") == ["8"]


def test_person_with_cash_out_only(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(cash_in=None, cash_out="12000.00")))
    assert detail_codes(doc) == ["56"]
    assert totals(doc) == ("", "12000")
    person = subject(doc)
    assert texts(person, "f:IndividualEntityCashInAmountText") == []
    assert texts(person, "f:IndividualEntityCashOutAmountText") == ["12000"]
    assert texts(person, "f:Account/f:PartyAccountAssociation/"
                         "f:PartyAccountAssociationTypeCode") == ["9"]


def test_person_with_both_sides(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(
        cash_in="10500.20", cash_out="12000.99", multiple_transactions=True,
        account_ids=["acct-1", "acct-2"])))
    assert detail_codes(doc) == ["55", "56"]
    assert texts(doc, "//f:DetailTransactionAmountText") == ["10501", "12001"]
    assert totals(doc) == ("10501", "12001")
    assert doc.get("TotalAmount") == "22502"
    person = subject(doc)
    assert texts(person, "f:MultipleTransactionsPersonsIndividualsIndicator") == ["Y"]
    accounts = [(a.xpath("string(f:AccountNumberText)", namespaces=NS),
                 a.xpath("string(.//f:PartyAccountAssociationTypeCode)", namespaces=NS))
                for a in person.xpath("f:Account", namespaces=NS)]
    assert accounts == [("acct-1", "8"), ("acct-2", "8"), ("acct-1", "9"), ("acct-2", "9")]
    location = doc.xpath("f:Activity/f:Party[f:ActivityPartyTypeCode='34']", namespaces=NS)[0]
    assert texts(location, "f:IndividualEntityCashInAmountText") == ["10501"]
    assert texts(location, "f:IndividualEntityCashOutAmountText") == ["12001"]


def test_organization(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(
        name="Acme Widgets  International LLC", kind="organization", date_of_birth=None,
        occupation="Wholesale trade", roles=["conductor", "on_behalf"],
        identification={"type": "ein", "number": "12-3456789", "issuing_country": "US"})))
    org = subject(doc)
    assert subject_code(doc) == "23"  # an entity is only ever "on whose behalf"
    assert texts(org, "f:PartyAsEntityOrganizationIndicator") == ["Y"]
    assert texts(org, "f:PartyName/f:RawEntityIndividualLastName") == [
        "Acme Widgets International LLC"]
    assert texts(org, "f:PartyName/f:RawIndividualFirstName") == []
    assert texts(org, "f:PartyName/f:FirstNameUnknownIndicator") == []
    assert texts(org, "f:UnknownGenderIndicator") == []
    assert texts(org, "f:BirthDateUnknownIndicator") == []
    assert texts(org, "f:PartyIdentification/f:PartyIdentificationTypeCode") == ["2"]
    assert texts(org, "f:PartyIdentification/f:PartyIdentificationNumberText") == [
        "123456789"]
    assert texts(org, "f:PartyIdentification/f:IdentificationPresentUnknownIndicator") == []
    assert texts(org, "f:PartyOccupationBusiness/f:OccupationBusinessText") == [
        "Wholesale trade"]


def test_person_with_nothing_known_uses_the_unknown_indicators(
        schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(
        identification=None, address=None, date_of_birth=None, occupation=None)))
    person = subject(doc)
    assert texts(person, "f:BirthDateUnknownIndicator") == ["Y"]
    assert texts(person, "f:IndividualBirthDateText") == []
    assert texts(person, "f:UnknownGenderIndicator") == ["Y"]
    assert texts(person, "f:PartyIdentification/f:TINUnknownIndicator") == ["Y"]
    assert texts(person, "f:PartyIdentification/f:IdentificationPresentUnknownIndicator") == [
        "Y"]
    assert texts(person, "f:PartyIdentification/f:PartyIdentificationNumberText") == []
    address = person.xpath("f:Address", namespaces=NS)[0]
    for indicator in ("CityUnknownIndicator", "StateCodeUnknownIndicator",
                      "StreetAddressUnknownIndicator", "ZIPCodeUnknownIndicator"):
        assert texts(address, f"f:{indicator}") == ["Y"], indicator
    assert texts(address, "f:RawCountryCodeText") == ["US"]  # the residence country
    assert texts(address, "f:RawCityText") == []
    assert person.xpath("f:PartyOccupationBusiness", namespaces=NS) == []


def test_person_with_a_full_record(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(
        identification={"type": "drivers_license", "number": "D 123-456", "issuing_country": "us"},
        address={"street": "5 Elm Street", "city": "Springfield", "region": "IL",
                 "postal_code": "62701-1234", "country": "US"})))
    person = subject(doc)
    assert texts(person, "f:IndividualBirthDateText") == ["19800131"]
    assert texts(person, "f:BirthDateUnknownIndicator") == []
    assert texts(person, "f:PartyName/f:RawIndividualFirstName") == ["Jane"]
    assert texts(person, "f:PartyName/f:RawIndividualMiddleName") == ["Q"]
    assert texts(person, "f:PartyName/f:RawEntityIndividualLastName") == ["Public"]
    assert texts(person, "f:Address/f:RawStateCodeText") == ["IL"]
    assert texts(person, "f:Address/f:RawZIPCode") == ["627011234"]
    ids = person.xpath("f:PartyIdentification", namespaces=NS)
    assert texts(ids[0], "f:TINUnknownIndicator") == ["Y"]
    assert texts(ids[1], "f:PartyIdentificationTypeCode") == ["5"]
    assert texts(ids[1], "f:PartyIdentificationNumberText") == ["D 123-456"]
    assert texts(ids[1], "f:OtherIssuerCountryText") == ["US"]


def test_person_with_an_ssn_and_a_one_word_name(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(
        name="Cher", identification={"type": "ssn", "number": "123-45-6789",
                                     "issuing_country": "US"})))
    person = subject(doc)
    assert texts(person, "f:PartyName/f:RawEntityIndividualLastName") == ["Cher"]
    assert texts(person, "f:PartyName/f:FirstNameUnknownIndicator") == ["Y"]
    ids = person.xpath("f:PartyIdentification", namespaces=NS)
    assert texts(ids[0], "f:PartyIdentificationTypeCode") == ["1"]
    assert texts(ids[0], "f:PartyIdentificationNumberText") == ["123456789"]
    assert texts(ids[1], "f:IdentificationPresentUnknownIndicator") == ["Y"]


def test_conductor_only_is_party_17(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(roles=["conductor"])))
    assert subject_code(doc) == "17"


def test_on_behalf_only_is_party_23(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(roles=["on_behalf"])))
    assert subject_code(doc) == "23"
    assert texts(subject(doc), "f:PartyAsEntityOrganizationIndicator") == []


def test_conductor_and_on_behalf_is_party_50(schema: etree.XMLSchema) -> None:
    doc = write(schema, make_report(make_ctr(roles=["conductor", "on_behalf"])))
    assert subject_code(doc) == "50"


def test_several_ctrs_in_one_batch(schema: etree.XMLSchema) -> None:
    ctrs = [
        make_ctr(customer_id="c-1", cash_in="10000.01", cash_out=None),
        make_ctr(customer_id="c-2", cash_in=None, cash_out="20000.50", roles=["conductor"]),
        make_ctr(customer_id="c-3", name="Globex Corp", kind="organization",
                 cash_in="15000.00", cash_out="11000.10", roles=["on_behalf"]),
    ]
    doc = write(schema, make_report(*ctrs))
    assert doc.get("ActivityCount") == "3"
    assert len(doc.xpath("f:Activity", namespaces=NS)) == 3
    assert doc.get("PartyCount") == "18"
    assert len(doc.xpath("//f:Party", namespaces=NS)) == 18
    assert doc.get("TotalAmount") == str(10001 + 20001 + 15000 + 11001)
    assert [subject_code(doc, i) for i in (1, 2, 3)] == ["50", "17", "23"]
    assert [detail_codes(doc, i) for i in (1, 2, 3)] == [["55"], ["56"], ["55", "56"]]
    assert texts(doc, "f:Activity/f:FilingDateText") == ["20260303"] * 3
    seqs = [int(e.get("SeqNum")) for e in doc.iter() if e.get("SeqNum") is not None]
    assert seqs == list(range(1, len(seqs) + 1))  # unique, in document order


def test_the_institution_fills_the_five_institution_parties(schema: etree.XMLSchema) -> None:
    institution = dataclasses.replace(
        Institution(), name="First Example Bank", ein="98-7654321", rssd="7654321",
        regulator_code="4", tcc="PTEST123", contact_name="Ann Smith",
        contact_office_name="BSA Office", contact_office_phone="(212) 555-0199",
        contact_office_phone_ext="42")
    doc = write(schema, make_report(make_ctr()), institution)
    codes = texts(doc, "f:Activity/f:Party/f:ActivityPartyTypeCode")
    assert codes == ["35", "37", "30", "8", "34", "50"]

    def party(code: str) -> etree._Element:
        path = f"f:Activity/f:Party[f:ActivityPartyTypeCode='{code}']"
        return doc.xpath(path, namespaces=NS)[0]

    transmitter = party("35")
    assert texts(transmitter, "f:PartyName/f:RawPartyFullName") == ["First Example Bank"]
    ids = [(texts(i, "f:PartyIdentificationTypeCode")[0],
            texts(i, "f:PartyIdentificationNumberText")[0])
           for i in transmitter.xpath("f:PartyIdentification", namespaces=NS)]
    assert ids == [("4", "987654321"), ("28", "PTEST123")]
    assert texts(party("37"), "f:PartyName/f:RawPartyFullName") == ["Ann Smith"]
    for code in ("30", "34"):
        assert texts(party(code), "f:PrimaryRegulatorTypeCode") == ["4"]
        assert texts(party(code), "f:PartyIdentification/f:PartyIdentificationTypeCode") == [
            "2", "14"]
        assert texts(party(code), "f:OrganizationClassificationTypeSubtype/"
                                  "f:OrganizationTypeID") == ["2"]
        assert texts(party(code), "f:Address/f:RawStateCodeText") == ["NY"]
    office = party("8")
    assert texts(office, "f:PartyName/f:RawPartyFullName") == ["BSA Office"]
    assert texts(office, "f:PhoneNumber/f:PhoneNumberText") == ["2125550199"]
    assert texts(office, "f:PhoneNumber/f:PhoneNumberExtensionText") == ["42"]


# -- amounts, dates, bytes --------------------------------------------------------------


@pytest.mark.parametrize(("amount", "dollars"), [
    ("10000.01", "10001"), ("10000.10", "10001"), ("10000.99", "10001"),
    ("10001.00", "10001"), ("10001", "10001"), ("123456.50", "123457"),
])
def test_amounts_are_whole_dollars_rounded_up(
        schema: etree.XMLSchema, amount: str, dollars: str) -> None:
    doc = write(schema, make_report(make_ctr(cash_in=amount, cash_out=amount)))
    assert totals(doc) == (dollars, dollars)
    assert texts(doc, "//f:DetailTransactionAmountText") == [dollars, dollars]
    assert doc.get("TotalAmount") == str(2 * int(dollars))


def test_filing_and_transaction_dates(schema: etree.XMLSchema) -> None:
    data = ctr_batch_xml(make_report(make_ctr()), Institution(), date(2026, 12, 31))
    doc = etree.fromstring(data)
    schema.assertValid(doc)
    assert texts(doc, "f:Activity/f:FilingDateText") == ["20261231"]
    assert texts(doc, "f:Activity/f:CurrencyTransactionActivity/f:TransactionDateText") == [
        "20260302"]


def test_the_same_report_gives_the_same_bytes() -> None:
    report = make_report(make_ctr(customer_id="c-1"),
                         make_ctr(customer_id="c-2", cash_out="13000.00"))
    first = ctr_batch_xml(report, Institution(), FILED)
    second = ctr_batch_xml(report, Institution(), FILED)
    assert first == second
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<EFilingBatchXML')
    assert first.endswith(b"</EFilingBatchXML>\n")
    assert b'\n  <Activity SeqNum="1">\n    <FilingDateText>' in first  # indented


def test_a_report_without_ctrs_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one Activity"):
        ctr_batch_xml(make_report(), Institution(), FILED)


def test_a_report_not_in_usd_is_refused() -> None:
    report = make_report(make_ctr()) | {"currency": "EUR"}
    with pytest.raises(ValueError, match="USD"):
        ctr_batch_xml(report, Institution(), FILED)


@pytest.mark.parametrize("changes", [
    {"cash_in": None, "cash_out": None},
    {"roles": []},
    {"roles": ["witness"]},
    {"kind": "trust"},
    {"cash_in": "-10500.00"},
])
def test_a_ctr_the_writer_cannot_express_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ctr_batch_xml(make_report(make_ctr(**changes)), Institution(), FILED)


def test_the_schema_check_catches_a_broken_batch(schema: etree.XMLSchema) -> None:
    """The validations above can fail: the schema refuses a batch missing a required
    element or repeating a SeqNum."""
    data = ctr_batch_xml(make_report(make_ctr()), Institution(), FILED)
    doc = etree.fromstring(data)
    filing = doc.xpath("f:Activity/f:FilingDateText", namespaces=NS)[0]
    filing.getparent().remove(filing)
    assert not schema.validate(doc)
    doc = etree.fromstring(data)
    doc.xpath("f:Activity/f:Party[2]", namespaces=NS)[0].set("SeqNum", "1")
    assert not schema.validate(doc)
