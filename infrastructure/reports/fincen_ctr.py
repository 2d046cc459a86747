"""The CTR report as a FinCEN CTRX batch: ``EFilingBatchXML``, one ``Activity`` per CTR.

Written for FinCEN's schema ``EFL_CTRXBatchSchema.xsd`` v1.2 of 2021-12-17 (the copy in
infrastructure/reports/fincen/), namespace ``www.fincen.gov/base``. ``ctr_batch_xml`` is a pure
function: the same report, institution and filing date give the same bytes (SeqNum
values count up in document order; no clock, no randomness).

Each Activity holds, in this order:

- ``FilingDateText`` (the filing date) and ``ActivityAssociation`` (an initial report);
- party 35 transmitter (the institution: name, address, phone, TIN as type 4 and the
  Transmitter Control Code as type 28), 37 transmitter contact (``contact_name``),
  30 reporting financial institution (regulator, name, address, EIN as type 2, RSSD as
  type 14, organization type), 8 contact office (``contact_office_name`` or
  ``contact_name``, with its phone), 34 the institution as the place of the
  transactions (as 30, plus its cash in/out amounts);
- the CTR's subject: a person whose roles are both ``conductor`` and ``on_behalf`` is
  party 50, ``conductor`` alone 17, ``on_behalf`` alone 23. An organization is always
  party 23 with ``PartyAsEntityOrganizationIndicator``: FinCEN accepts that indicator
  on 23 (and 58, common carrier) only, an entity never conducts a transaction itself;
- ``CurrencyTransactionActivity``: the totals, the report's date and one detail per
  reported side, 55 (deposits) for cash in and 56 (withdrawals) for cash out.

Amounts are whole dollars rounded up (10000.01 -> 10001); the side a CTR leaves out
(``null``) is left out of the parties and the details, and its total is empty. What
the report does not know is written with FinCEN's "unknown" indicators (name parts,
date of birth, gender, address parts, TIN, form of identification), never guessed.
Texts are trimmed to the schema's lengths, with runs of white space made one space.
The subject's accounts (``account_ids``) are listed with association 8 (cash in) when
the CTR reports cash in and again with 9 (cash out) when it reports cash out: the report
does not say which account took which side.

The batch attributes: ``ActivityCount`` the Activity elements, ``PartyCount`` all Party
elements, ``TotalAmount`` the sum of every ``DetailTransactionAmountText`` (FinCEN's
definitions). The schema needs at least one Activity, so a report without CTRs is
refused with ``ValueError`` (there is nothing to file); so is a report not in USD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from application.compliance.rules import Institution

NS = "www.fincen.gov/base"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = "www.fincen.gov/base https://www.fincen.gov/base/EFL_CTRXBatchSchema.xsd"
# The schema itself, shipped as package data.
SCHEMA_PATH = Path(__file__).resolve().parent / "fincen" / "EFL_CTRXBatchSchema.xsd"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

TRANSMITTER = "35"
TRANSMITTER_CONTACT = "37"
REPORTING_INSTITUTION = "30"
CONTACT_OFFICE = "8"
TRANSACTION_LOCATION = "34"
CONDUCTED_ON_OWN_BEHALF = "50"
CONDUCTED_FOR_ANOTHER = "17"
ON_WHOSE_BEHALF = "23"

DEPOSITS = "55"
WITHDRAWALS = "56"
ACCOUNT_CASH_IN = "8"
ACCOUNT_CASH_OUT = "9"
LEGAL_NAME = ("PartyNameTypeCode", "L")

# PartyIdentificationTypeCode
_TIN_CODES = {"ssn": "1", "itin": "1", "ein": "2"}
_ID_CODES = {"drivers_license": "5", "passport": "6", "national_id": "999", "other": "999"}
_ID_OTHER_TEXT = {"national_id": "National identity card", "other": "Other identification"}
_STATE_COUNTRIES = {"US", "CA", "MX"}  # where FinCEN wants a state code
_ROLES = {"conductor", "on_behalf"}
_MAX_ACCOUNTS = 198  # Account maxOccurs per Party


def ctr_batch_xml(report: Mapping[str, Any], institution: Institution, filing_date: date) -> bytes:
    """The FinCEN CTRX batch of ``report`` (the CTR report's JSON), filed by
    ``institution`` on ``filing_date``: UTF-8 XML with its declaration, indented.

    Raises ValueError when the report has no CTR (the schema needs one Activity at
    least), is not in USD, or holds a CTR this writer cannot express.
    """
    if report.get("currency") != "USD":
        raise ValueError(f"a FinCEN CTR reports USD, not {report.get('currency')!r}")
    ctrs = list(report.get("ctrs") or [])
    if not ctrs:
        raise ValueError(
            "the report has no CTR: FinCEN's CTRX batch needs at least one Activity, "
            "so there is nothing to file"
        )
    writer = _Writer(institution, _yyyymmdd(filing_date),
                     _yyyymmdd(date.fromisoformat(str(report["date"]))))
    for ctr in ctrs:
        writer.activity(ctr)
    return writer.finish()


class _Writer:
    def __init__(self, institution: Institution, filing: str, transaction: str) -> None:
        self.inst = institution
        self.filing = filing
        self.transaction = transaction
        self.seq = 0
        self.total = 0
        self.activities = 0
        self.parties = 0
        self.root = etree.Element(_q("EFilingBatchXML"), nsmap={None: NS, "xsi": XSI})
        for name in ("TotalAmount", "PartyCount", "ActivityCount"):
            self.root.set(name, "0")  # set here for their order, filled in by finish()
        self.root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
        self.leaf(self.root, "FormTypeCode", "CTRX")

    # -- elements --------------------------------------------------------------------

    def node(self, parent: etree._Element, tag: str) -> etree._Element:
        self.seq += 1
        return etree.SubElement(parent, _q(tag), SeqNum=str(self.seq))

    @staticmethod
    def leaf(parent: etree._Element, tag: str, text: str) -> None:
        etree.SubElement(parent, _q(tag)).text = text

    def leaves(self, parent: etree._Element, items: Iterable[tuple[str, str | None]]) -> None:
        """The children in the schema's order; a None value is left out."""
        for tag, text in items:
            if text is not None:
                self.leaf(parent, tag, text)

    def party(self, activity: etree._Element, code: str,
              fields: Iterable[tuple[str, str | None]] = ()) -> etree._Element:
        self.parties += 1
        party = self.node(activity, "Party")
        self.leaves(party, [("ActivityPartyTypeCode", code), *fields])
        return party

    def name(self, party: etree._Element, items: Iterable[tuple[str, str | None]]) -> None:
        self.leaves(self.node(party, "PartyName"), items)

    def full_name(self, party: etree._Element, text: str) -> None:
        self.name(party, [LEGAL_NAME, ("RawPartyFullName", _text(text, 150))])

    def phone(self, party: etree._Element, number: str, extension: str = "") -> None:
        self.leaves(self.node(party, "PhoneNumber"), [
            ("PhoneNumberExtensionText", _digits(extension, 6) or None),
            ("PhoneNumberText", _digits(number, 16)),
        ])

    def identification(self, party: etree._Element,
                       items: Iterable[tuple[str, str | None]]) -> None:
        self.leaves(self.node(party, "PartyIdentification"), items)

    def institution_address(self, party: etree._Element) -> None:
        inst = self.inst
        self.leaves(self.node(party, "Address"), [
            ("RawCityText", _text(inst.city, 50)),
            ("RawCountryCodeText", _text(inst.country, 2)),
            ("RawStateCodeText", _text(inst.state, 3)),
            ("RawStreetAddress1Text", _text(inst.street, 100)),
            ("RawZIPCode", _postal(inst.zip_code)),
        ])

    # -- one CTR -----------------------------------------------------------------------

    def activity(self, ctr: Mapping[str, Any]) -> None:
        cash_in = _whole_dollars(ctr.get("cash_in"), "cash_in")
        cash_out = _whole_dollars(ctr.get("cash_out"), "cash_out")
        if cash_in is None and cash_out is None:
            raise ValueError(f"CTR of {ctr.get('customer_id')} reports neither cash in nor out")
        self.activities += 1
        activity = self.node(self.root, "Activity")
        self.leaf(activity, "FilingDateText", self.filing)
        self.leaves(self.node(activity, "ActivityAssociation"), [
            ("CorrectsAmendsPriorReportIndicator", ""),
            ("FinCENDirectBackFileIndicator", ""),
            ("InitialReportIndicator", "Y"),
        ])
        self.transmitter(activity)
        self.full_name(self.party(activity, TRANSMITTER_CONTACT), self.inst.contact_name)
        self.institution(activity, REPORTING_INSTITUTION, [])
        contact = self.party(activity, CONTACT_OFFICE)
        self.full_name(contact, self.inst.contact_office_name or self.inst.contact_name)
        self.phone(contact, self.inst.contact_office_phone or self.inst.contact_phone,
                   self.inst.contact_office_phone_ext)
        self.institution(activity, TRANSACTION_LOCATION, _amounts(cash_in, cash_out))
        self.subject(activity, ctr, cash_in, cash_out)
        self.cash(activity, cash_in, cash_out)

    def transmitter(self, activity: etree._Element) -> None:
        party = self.party(activity, TRANSMITTER)
        self.full_name(party, self.inst.name)
        self.institution_address(party)
        self.phone(party, self.inst.contact_phone)
        self.identification(party, [
            ("PartyIdentificationNumberText", _alnum(self.inst.ein, 25)),
            ("PartyIdentificationTypeCode", "4"),  # TIN
        ])
        self.identification(party, [
            ("PartyIdentificationNumberText", _text(self.inst.tcc, 25)),
            ("PartyIdentificationTypeCode", "28"),  # Transmitter Control Code
        ])

    def institution(self, activity: etree._Element, code: str,
                    amounts: list[tuple[str, str | None]]) -> None:
        """Party 30 (the filer) or 34 (where the transactions took place)."""
        party = self.party(activity, code, [
            *amounts, ("PrimaryRegulatorTypeCode", _text(self.inst.regulator_code, 2)),
        ])
        self.full_name(party, self.inst.name)
        self.institution_address(party)
        self.identification(party, [
            ("PartyIdentificationNumberText", _alnum(self.inst.ein, 25)),
            ("PartyIdentificationTypeCode", "2"),  # EIN
        ])
        if self.inst.rssd.strip():
            self.identification(party, [
                ("PartyIdentificationNumberText", _alnum(self.inst.rssd, 25)),
                ("PartyIdentificationTypeCode", "14"),  # RSSD
            ])
        self.leaves(self.node(party, "OrganizationClassificationTypeSubtype"), [
            ("OrganizationTypeID", _text(self.inst.institution_type, 4)),
        ])

    def subject(self, activity: etree._Element, ctr: Mapping[str, Any],
                cash_in: int | None, cash_out: int | None) -> None:
        kind = ctr.get("kind")
        if kind not in ("person", "organization"):
            raise ValueError(f"CTR of {ctr.get('customer_id')}: unknown kind {kind!r}")
        person = kind == "person"
        code = _party_type(ctr) if person else ON_WHOSE_BEHALF
        birth = _birth_date(ctr.get("date_of_birth")) if person else None
        party = self.party(activity, code, [
            ("BirthDateUnknownIndicator", "Y" if person and birth is None else None),
            ("IndividualBirthDateText", birth),
            *_amounts(cash_in, cash_out),
            ("MultipleTransactionsPersonsIndividualsIndicator",
             "Y" if ctr.get("multiple_transactions") else None),
            ("PartyAsEntityOrganizationIndicator", None if person else "Y"),
            ("UnknownGenderIndicator", "Y" if person else None),  # the report has none
        ])
        self.name(party, _person_name(ctr.get("name")) if person
                  else _entity_name(ctr.get("name")))
        self.subject_address(party, ctr.get("address"), ctr.get("country"))
        self.subject_identification(party, ctr.get("identification"), person)
        occupation = _text(ctr.get("occupation") or "", 50)
        if occupation:
            self.leaves(self.node(party, "PartyOccupationBusiness"),
                        [("OccupationBusinessText", occupation)])
        accounts = list(dict.fromkeys(str(a) for a in ctr.get("account_ids") or []))
        sides = [c for c, amount in ((ACCOUNT_CASH_IN, cash_in), (ACCOUNT_CASH_OUT, cash_out))
                 if amount is not None]
        if len(accounts) * len(sides) > _MAX_ACCOUNTS:
            raise ValueError(f"CTR of {ctr.get('customer_id')}: more accounts than the "
                             f"schema's {_MAX_ACCOUNTS} per party")
        for association in sides:
            for account_id in accounts:
                account = self.node(party, "Account")
                self.leaf(account, "AccountNumberText", _text(account_id, 40))
                self.leaf(self.node(account, "PartyAccountAssociation"),
                          "PartyAccountAssociationTypeCode", association)

    def subject_address(self, party: etree._Element, address: Mapping[str, Any] | None,
                        residence: str | None) -> None:
        address = address or {}
        country = _country(address.get("country")) or _country(residence)
        city = _text(address.get("city") or "", 50)
        street = _text(address.get("street") or "", 100)
        postal = _postal(address.get("postal_code") or "")
        region = _text(address.get("region") or "", 3).upper()
        state = region if country in _STATE_COUNTRIES and region else None
        state_unknown = country in _STATE_COUNTRIES and state is None
        self.leaves(self.node(party, "Address"), [
            ("CityUnknownIndicator", None if city else "Y"),
            ("CountryCodeUnknownIndicator", None if country else "Y"),
            ("RawCityText", city or None),
            ("RawCountryCodeText", country),
            ("RawStateCodeText", state),
            ("RawStreetAddress1Text", street or None),
            ("RawZIPCode", postal or None),
            ("StateCodeUnknownIndicator", "Y" if state_unknown else None),
            ("StreetAddressUnknownIndicator", None if street else "Y"),
            ("ZIPCodeUnknownIndicator", None if postal else "Y"),
        ])

    def subject_identification(self, party: etree._Element,
                               identification: Mapping[str, Any] | None, person: bool) -> None:
        """The TIN (or TINUnknownIndicator), then the form of identification (or, for a
        person, IdentificationPresentUnknownIndicator)."""
        identification = identification or {}
        kind = identification.get("type")
        number = str(identification.get("number") or "")
        if kind in _TIN_CODES and _alnum(number, 25):
            self.identification(party, [
                ("PartyIdentificationNumberText", _alnum(number, 25)),
                ("PartyIdentificationTypeCode", _TIN_CODES[kind]),
            ])
        else:
            self.identification(party, [("TINUnknownIndicator", "Y")])
        if kind in _ID_CODES and _text(number, 25):
            self.identification(party, [
                ("OtherIssuerCountryText", _country(identification.get("issuing_country"))),
                ("OtherPartyIdentificationTypeText", _ID_OTHER_TEXT.get(kind)),
                ("PartyIdentificationNumberText", _text(number, 25)),
                ("PartyIdentificationTypeCode", _ID_CODES[kind]),
            ])
        elif person:
            self.identification(party, [("IdentificationPresentUnknownIndicator", "Y")])

    def cash(self, activity: etree._Element, cash_in: int | None, cash_out: int | None) -> None:
        node = self.node(activity, "CurrencyTransactionActivity")
        self.leaves(node, [
            ("AggregateTransactionIndicator", ""),
            ("ArmoredCarServiceIndicator", ""),
            ("ATMIndicator", ""),
            ("MailDepositShipmentIndicator", ""),
            ("NightDepositIndicator", ""),
            ("SharedBranchingIndicator", ""),
            ("TotalCashInReceiveAmountText", "" if cash_in is None else str(cash_in)),
            ("TotalCashOutAmountText", "" if cash_out is None else str(cash_out)),
            ("TransactionDateText", self.transaction),
        ])
        for code, amount in ((DEPOSITS, cash_in), (WITHDRAWALS, cash_out)):
            if amount is None:
                continue
            self.total += amount
            self.leaves(self.node(node, "CurrencyTransactionActivityDetail"), [
                ("CurrencyTransactionActivityDetailTypeCode", code),
                ("DetailTransactionAmountText", str(amount)),
                ("OtherCurrencyTransactionActivityDetailText", ""),
                ("OtherForeignCurrencyCountryText", ""),
            ])

    def finish(self) -> bytes:
        self.root.set("TotalAmount", str(self.total))
        self.root.set("PartyCount", str(self.parties))
        self.root.set("ActivityCount", str(self.activities))
        etree.indent(self.root, space="  ")
        body = etree.tostring(self.root, encoding="UTF-8", xml_declaration=False,
                              pretty_print=True)
        return XML_DECLARATION + body


# -- values ----------------------------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _yyyymmdd(day: date) -> str:
    return day.strftime("%Y%m%d")


def _text(value: Any, limit: int) -> str:
    """One line, single spaces, at most ``limit`` characters (the schema's pattern
    refuses leading, trailing or repeated spaces, tabs and line breaks)."""
    return " ".join(str(value).split())[:limit].rstrip()


def _digits(value: Any, limit: int) -> str:
    return "".join(c for c in str(value) if c.isdigit())[:limit]


def _alnum(value: Any, limit: int) -> str:
    """An identifying number without punctuation or spaces (TINs, RSSD)."""
    return "".join(c for c in str(value) if c.isalnum())[:limit]


def _postal(value: Any) -> str:
    return _alnum(value, 9).upper()


def _country(value: Any) -> str | None:
    code = str(value or "").strip().upper()
    return code if len(code) == 2 and code.isascii() and code.isalpha() else None


def _whole_dollars(value: Any, field: str) -> int | None:
    """Whole dollars, rounded up: "10000.01" -> 10001."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{field} is not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{field} is not an amount: {value!r}")
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def _amounts(cash_in: int | None, cash_out: int | None) -> list[tuple[str, str | None]]:
    return [
        ("IndividualEntityCashInAmountText", None if cash_in is None else str(cash_in)),
        ("IndividualEntityCashOutAmountText", None if cash_out is None else str(cash_out)),
    ]


def _party_type(ctr: Mapping[str, Any]) -> str:
    roles = set(ctr.get("roles") or ())
    if not roles or roles - _ROLES:
        raise ValueError(f"CTR of {ctr.get('customer_id')}: roles {sorted(roles)} are not "
                         "one or both of conductor, on_behalf")
    if roles == _ROLES:
        return CONDUCTED_ON_OWN_BEHALF
    return CONDUCTED_FOR_ANOTHER if roles == {"conductor"} else ON_WHOSE_BEHALF


def _birth_date(value: Any) -> str | None:
    if not value:
        return None
    born = date.fromisoformat(str(value))
    return _yyyymmdd(born) if 1900 <= born.year <= 2099 else None  # the schema's range


def _person_name(value: Any) -> list[tuple[str, str | None]]:
    """The last word is the last name, the first the first name, any between the
    middle name; a missing part gets its unknown indicator."""
    words = str(value or "").split()
    last = _text(words[-1], 150) if words else ""
    first = _text(words[0], 35) if len(words) > 1 else ""
    middle = _text(" ".join(words[1:-1]), 35)
    return [
        ("EntityLastNameUnknownIndicator", None if last else "Y"),
        ("FirstNameUnknownIndicator", None if first else "Y"),
        LEGAL_NAME,
        ("RawEntityIndividualLastName", last or None),
        ("RawIndividualFirstName", first or None),
        ("RawIndividualMiddleName", middle or None),
    ]


def _entity_name(value: Any) -> list[tuple[str, str | None]]:
    name = _text(value or "", 150)
    return [
        ("EntityLastNameUnknownIndicator", None if name else "Y"),
        LEGAL_NAME,
        ("RawEntityIndividualLastName", name or None),
    ]
