"""The versioned settings of reports and alert rules (docs/reports.md).

The defaults are the contract's. A deployment overrides any of them with a JSON file
(``BACKOFFICE_RULES_FILE``); ``rules_version`` is derived from the effective values,
so changing any threshold, list or rate changes the version every report carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Spain's non-cooperative jurisdictions (Orden HFP/115/2023).
DESIGNATED_TERRITORIES = (
    "AI", "AS", "BB", "BH", "BM", "DM", "FJ", "FK", "GG", "GI", "GU", "IM", "JE", "KY",
    "MP", "PW", "SB", "SC", "TC", "TT", "VG", "VI", "VU", "WS",
)


@dataclass(frozen=True)
class Institution:
    """The filing institution, as FinCEN's CTR batch names it."""

    name: str = "Backoffice Demo Bank"
    ein: str = "123456789"  # TIN of the filer, 9 digits
    rssd: str = "1234567"  # Federal Reserve RSSD id
    regulator_code: str = "4"  # primary federal regulator (the schema's list: 4 = OCC)
    street: str = "1 Main Street"
    city: str = "New York"
    state: str = "NY"
    zip_code: str = "10001"
    country: str = "US"
    contact_name: str = "Compliance Office"
    contact_phone: str = "2125550100"
    # FinCEN CTR XML (infrastructure/reports/fincen_ctr.py):
    tcc: str = "PDEMO000"  # Transmitter Control Code FinCEN assigned (placeholder)
    institution_type: str = "2"  # OrganizationTypeID: 2 = depository institution
    contact_office_name: str = ""  # party 8 "contact for assistance"; "" = contact_name
    contact_office_phone: str = ""  # its phone; "" = contact_phone
    contact_office_phone_ext: str = ""


@dataclass(frozen=True)
class Rules:
    # CTR (US)
    ctr_currency: str = "USD"
    ctr_threshold: Decimal = Decimal("10000.00")
    ctr_due_days: int = 15
    # DMO (Spain)
    dmo_currency: str = "EUR"
    dmo_threshold: Decimal = Decimal("30000.00")
    designated_territories: tuple[str, ...] = DESIGNATED_TERRITORIES
    # AML alert rules
    structuring_days: int = 7
    structuring_count: int = 3
    structuring_low: Decimal = Decimal("0.80")  # of the CTR threshold
    round_amount_days: int = 30
    round_amount_count: int = 3
    round_amount_unit: Decimal = Decimal("1000.00")
    dormant_days: int = 365
    large_outgoing_days: int = 90
    large_outgoing_factor: Decimal = Decimal("1.5")
    pass_through_hours: int = 48
    pass_through_incoming: Decimal = Decimal("10000.00")
    pass_through_ratio: Decimal = Decimal("0.90")
    # Risk views
    risk_currency: str = "EUR"
    tier1_capital: Decimal = Decimal("25000000.00")
    undrawn_ccf: Decimal = Decimal("0.10")
    large_exposure_ratio: Decimal = Decimal("0.10")
    breach_ratio: Decimal = Decimal("0.25")
    # Conversions: {"EUR": {"USD": "1.08"}} = 1 EUR is 1.08 USD. A pair not given
    # converts through its inverse; otherwise the amount is "unconverted".
    fx_rates: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    institution: Institution = field(default_factory=Institution)

    @property
    def version(self) -> str:
        """A digest of every effective value: equal settings, equal versions."""
        text = json.dumps(_plain(self), sort_keys=True, separators=(",", ":"))
        return "r-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def rate(self, source: str, target: str) -> Decimal | None:
        """How many ``target`` one ``source`` is worth, or None when not configured."""
        if source == target:
            return Decimal(1)
        direct = self.fx_rates.get(source, {}).get(target)
        if direct is not None:
            return Decimal(direct)
        inverse = self.fx_rates.get(target, {}).get(source)
        if inverse is not None:
            return Decimal(1) / Decimal(inverse)
        return None

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal | None:
        rate = self.rate(source, target)
        return None if rate is None else amount * rate

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Rules:
        """Settings from a JSON object; unknown names are refused."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown rule setting(s): {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        defaults = cls()
        for name, value in values.items():
            current = getattr(defaults, name)
            if name == "institution":
                converted[name] = Institution(**value)
            elif name == "fx_rates":
                converted[name] = {
                    s: {t: Decimal(str(r)) for t, r in targets.items()}
                    for s, targets in value.items()
                }
            elif isinstance(current, Decimal):
                converted[name] = Decimal(str(value))
            elif isinstance(current, tuple):
                converted[name] = tuple(value)
            else:
                converted[name] = type(current)(value)
        return dataclasses.replace(defaults, **converted)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    return value
