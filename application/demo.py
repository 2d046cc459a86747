"""A realistic synthetic history for demonstrations (``backoffice demo seed``).

Two steps:

- :func:`plan_history` is pure. From (customers, days, seed, the first day, the
  business time zone) and one ``random.Random(seed)`` it draws the customers, their
  accounts and every transaction with its amount and ``booked_at``, in the order they
  will be booked, and the planted AML/report patterns. Ids in the plan are uuid5 of
  those inputs, so the same inputs give the same plan, byte for byte
  (:meth:`DemoPlan.digest`).
- :func:`apply_plan` writes it with the Bank's use cases, as an import of history:
  ``register_customer``, ``open_account`` with ``opened_at`` in the past, and
  ``post_batch`` with ``booked_at`` items (batches of up to 1,000, non-decreasing
  ``booked_at``). It reads nothing back but the batches' answers.

The background is built to stay quiet for every alert rule and report of
docs/reports.md: amounts always carry cents (never a whole multiple of 1,000.00);
each account draws its outgoing amounts within ±13% of a typical amount of its own
(so no outgoing exceeds 1.5 x an earlier one); at most 9,000.00 comes in on an account
in any 48 hours (no pass-through); background cash stays below 6,000.00 per person,
day and side (no CTR, nothing near the structuring band, even through an exchange
rate); every account is active at least every 14 days (no dormancy); no customer
resides in, and no counterparty is in, a designated territory (no DMO). The plan is
settled in booking order against a running balance per account, so nothing it
posts is refused: a background outgoing that would overdraw, or a deposit or transfer
that would break one of those limits, is left out of the plan.

Then each pattern is planted (about one per 500 customers, at least one) on customers
and accounts of its own, away from the edges of the period, and built so that it
trips its own rule or report only.
"""

from __future__ import annotations

import hashlib
import math
import random
import time as clock
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from application.bank import Bank
from application.compliance.rules import DESIGNATED_TERRITORIES
from domain.cause import Cause

NAMESPACE = uuid5(UUID("8c1f3a52-0f4e-4d7b-9c4f-2f7d5b1e6a90"), "backoffice-demo-seed")
# Who the seeded events say caused them (post_batch turns `via` into "import").
DEMO_CAUSE = Cause(actor_key_id="demo-seed", actor_role="admin", request_id="demo-seed", via="cli")

BATCH_ITEMS = 1000
MIN_DAYS = 60
PER_PATTERN = 500  # one instance of each pattern per this many customers (at least one)
MARGIN_DAYS = 7  # planted windows stay this far from the start of the period

# Background limits (minor units: cents).
CASH_CAP = 6_000_00  # cash per person, business day and side
INCOMING_CAP = 9_000_00  # incoming per account in any 48 hours
INCOMING_WINDOW = 48 * 3600
MAX_GAP_DAYS = 14  # longest quiet spell of a background account
SALARY_CAP = 6_500_00
BAND = 0.13  # outgoing amounts: typical x (1 ± BAND)
BUSINESS_SECONDS = 10 * 3600  # activity from 08:00 to 18:00, business time

DESIGNATED = frozenset(DESIGNATED_TERRITORIES)
SAFE_COUNTRIES = ("US", "ES", "GB", "DE", "FR", "MX", "PT", "IT", "CA", "NL", "IE", "CH", "CO", "AR")
assert not DESIGNATED & set(SAFE_COUNTRIES)

# ----------------------------------------------------------------------- names

US_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Christopher", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony",
    "Betty", "Mark", "Sandra", "Steven", "Ashley", "Andrew", "Emily", "Kevin", "Michelle",
    "Brian", "Amanda", "Jason", "Melissa", "Ryan", "Stephanie", "Maria", "Carlos", "Luis",
    "Sofia", "Wei", "Priya", "Aisha", "Omar",
)
US_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Chen", "Patel",
)
ES_FIRST = (
    "Antonio", "María", "Manuel", "Carmen", "José", "Ana", "Francisco", "Laura", "David",
    "Isabel", "Juan", "Lucía", "Javier", "Cristina", "Daniel", "Marta", "Carlos", "Elena",
    "Alejandro", "Pilar", "Miguel", "Raquel", "Rafael", "Paula", "Pablo", "Sara", "Sergio",
    "Rosa", "Fernando", "Beatriz", "Jorge", "Nuria", "Alberto", "Silvia", "Álvaro", "Irene",
    "Diego", "Alicia", "Adrián", "Teresa", "Iñaki", "Montserrat", "Jordi", "Ainhoa",
)
ES_LAST = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
    "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos",
    "Gil", "Ramírez", "Serrano", "Blanco", "Molina", "Morales", "Suárez", "Ortega",
    "Delgado", "Castro", "Ortiz", "Rubio", "Marín", "Sanz", "Iglesias", "Núñez", "Medina",
    "Garrido", "Cortés", "Castillo", "Lozano", "Guerrero", "Cano", "Prieto", "Méndez",
)
OTHER_FIRST = (
    "Oliver", "Emma", "Lukas", "Hannah", "Louis", "Chloé", "João", "Beatriz", "Giulia",
    "Marco", "Sophie", "Daan", "Liam", "Aoife", "Noah", "Valentina", "Mateo", "Camila",
    "Ethan", "Charlotte", "Felix", "Amélie", "Tiago", "Francesca",
)
OTHER_LAST = (
    "Müller", "Schmidt", "Dubois", "Moreau", "Silva", "Santos", "Rossi", "Bianchi",
    "de Vries", "Jansen", "Murphy", "Kelly", "Wilson", "Evans", "Tremblay", "Roy",
    "Hernández", "Castro", "Weber", "Lefebvre", "Ferreira", "Ricci", "Bakker", "Walsh",
)
US_ORG_WORDS = (
    "Summit", "Harbor", "Pioneer", "Keystone", "Redwood", "Liberty", "Evergreen", "Granite",
    "Lakeside", "Frontier", "Blue Ridge", "Silverline", "Northstar", "Cedar", "Atlas",
    "Beacon", "Prairie", "Riverside", "Sterling", "Copperfield",
)
US_ORG_TRADES = (
    "Logistics", "Dental Group", "Construction", "Foods", "Auto Repair", "Consulting",
    "Realty", "Medical Supply", "Landscaping", "Bakery", "Printing", "Electric", "Plumbing",
    "Software", "Fitness", "Coffee Roasters", "Hardware", "Cleaning Services",
)
US_ORG_SUFFIX = ("LLC", "Inc.", "Corp.", "LLC", "Co.")
ES_ORG_TRADES = (
    "Construcciones", "Transportes", "Distribuciones", "Talleres", "Inversiones",
    "Hostelería", "Panadería", "Asesoría", "Reformas", "Suministros", "Inmobiliaria",
    "Farmacia", "Gestoría", "Comercial", "Climatización", "Frutas",
)
ES_ORG_SUFFIX = ("S.L.", "S.A.", "S.L.", "S.L.U.", "S.Coop.")
OTHER_ORG = ("Trading", "Holdings", "Services", "Partners", "Imports", "Studio", "Design", "Foods")
OTHER_ORG_SUFFIX = {
    "GB": "Ltd", "DE": "GmbH", "FR": "SARL", "PT": "Lda.", "IT": "S.r.l.", "MX": "S.A. de C.V.",
    "CA": "Inc.", "NL": "B.V.",
}
OCCUPATIONS = (
    "teacher", "nurse", "software engineer", "accountant", "electrician", "retail manager",
    "chef", "truck driver", "physician", "lawyer", "architect", "pharmacist", "student",
    "retired", "sales representative", "mechanic", "graphic designer", "police officer",
    "civil servant", "dentist", "real estate agent", "farmer", "journalist", "waiter",
    "small business owner", "consultant", "hairdresser", "engineer", "musician", "plumber",
)
ORG_ACTIVITIES = (
    "wholesale trade", "construction", "restaurants", "retail", "transport", "consulting",
    "real estate", "health care", "manufacturing", "software", "agriculture", "education",
)

US_CITIES = (
    ("New York", "NY", "100"), ("Brooklyn", "NY", "112"), ("Miami", "FL", "331"),
    ("Houston", "TX", "770"), ("Chicago", "IL", "606"), ("Los Angeles", "CA", "900"),
    ("Phoenix", "AZ", "850"), ("Seattle", "WA", "981"), ("Boston", "MA", "021"),
    ("Atlanta", "GA", "303"), ("Denver", "CO", "802"), ("San Antonio", "TX", "782"),
    ("Newark", "NJ", "071"), ("Orlando", "FL", "328"), ("Portland", "OR", "972"),
)
US_STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Washington Blvd", "Park Ave", "Elm St", "Lake Rd",
    "Sunset Blvd", "Broadway", "Pine St", "Cedar Ln", "Highland Ave", "Church St", "2nd Ave",
)
ES_CITIES = (
    ("Madrid", "Madrid", "280"), ("Barcelona", "Barcelona", "080"), ("Valencia", "Valencia", "460"),
    ("Sevilla", "Sevilla", "410"), ("Málaga", "Málaga", "290"), ("Bilbao", "Bizkaia", "480"),
    ("Zaragoza", "Zaragoza", "500"), ("Alicante", "Alicante", "030"),
    ("Palma", "Illes Balears", "070"), ("Murcia", "Murcia", "300"), ("Vigo", "Pontevedra", "362"),
    ("Granada", "Granada", "180"),
)
ES_STREETS = (
    "Calle Mayor", "Calle de Alcalá", "Gran Vía", "Avenida de la Constitución", "Calle Real",
    "Paseo de Gracia", "Calle del Carmen", "Avenida de Andalucía", "Calle San Juan",
    "Calle de Serrano", "Rambla de Catalunya", "Calle Nueva", "Plaza de España",
)
OTHER_CITIES = {
    "GB": ("London", "Baker Street", "NW1 6XE"), "DE": ("Berlin", "Torstraße", "10119"),
    "FR": ("Paris", "Rue de Rivoli", "75001"), "PT": ("Lisboa", "Rua Augusta", "1100-053"),
    "IT": ("Milano", "Via Torino", "20123"), "MX": ("Ciudad de México", "Avenida Reforma", "06600"),
    "CA": ("Toronto", "Queen Street West", "M5H 2M9"), "NL": ("Amsterdam", "Prinsengracht", "1015 DV"),
}
# Where planted customers resident in a designated territory live.
DESIGNATED_PLACES = {
    "GI": ("Gibraltar", "Main Street", "GX11 1AA"), "JE": ("St Helier", "King Street", "JE2 4WE"),
    "KY": ("George Town", "Harbour Drive", "KY1-1102"), "BM": ("Hamilton", "Front Street", "HM 11"),
    "IM": ("Douglas", "Victoria Street", "IM1 2LD"), "GG": ("St Peter Port", "High Street", "GY1 2JT"),
}
assert set(DESIGNATED_PLACES) <= DESIGNATED
# Residence of background customers: (country, weight, account currency).
RESIDENCES = (
    ("US", 55, "USD"), ("ES", 35, "EUR"), ("GB", 2, "EUR"), ("DE", 2, "EUR"), ("FR", 1.5, "EUR"),
    ("MX", 1.5, "USD"), ("PT", 1, "EUR"), ("IT", 1, "EUR"), ("CA", 0.5, "USD"), ("NL", 0.5, "EUR"),
)
CURRENCY_OF = {country: currency for country, _, currency in RESIDENCES}
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

# References, shared strings (a million transactions must not each carry their own).
REFERENCES = {
    ("deposit", "wire"): ("Payroll", "Salary", "Invoice payment", "Customer payment", "Transfer in"),
    ("deposit", "cheque"): ("Cheque deposit", "Refund cheque", "Rent received"),
    ("deposit", "cash"): ("Cash deposit", "Till takings", None),
    ("withdrawal", "wire"): ("Rent", "Supplier invoice", "Utilities", "Insurance premium", "Tax payment"),
    ("withdrawal", "cheque"): ("Cheque", "Contractor", "School fees"),
    ("withdrawal", "cash"): ("ATM withdrawal", "Cash withdrawal", None),
    ("transfer", "internal"): ("Shared expenses", "Loan repayment", "Gift", "Dinner", "Savings", None),
}


# ------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class PlannedCustomer:
    index: int
    ref: UUID
    details: dict[str, Any]  # register_customer's fields (date_of_birth a date)
    pattern: str | None = None  # the planted pattern it belongs to, None: background


@dataclass(frozen=True)
class PlannedAccount:
    index: int
    ref: UUID
    customer: int  # index into DemoPlan.customers
    currency: str
    product: str
    overdraft_limit: int  # minor units
    opened_at: int  # epoch seconds, UTC
    pattern: str | None = None


@dataclass(slots=True)
class PlannedTransaction:
    """One batch item. ``account`` is the deposit's or withdrawal's account, or the
    transfer's source; indexes into DemoPlan.accounts / .customers, -1 for none."""

    seq: int  # position in the plan (booking order)
    at: int  # booked_at, epoch seconds UTC
    type: str  # deposit | withdrawal | transfer
    amount: int  # minor units
    currency: str
    channel: str
    account: int
    to_account: int = -1
    conducted_by: int = -1
    counterparty: dict[str, Any] | None = None
    reference: str | None = None
    pattern: str | None = None

    @property
    def booked_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def row(self) -> list[Any]:
        return [
            self.seq, self.at, self.type, self.amount, self.currency, self.channel,
            self.account, self.to_account, self.conducted_by, self.counterparty,
            self.reference, self.pattern,
        ]


@dataclass(frozen=True)
class PlantedCase:
    """One planted pattern: who and what should show up where.

    ``customers[0]`` is the customer the rule or report names (for a CTR by a
    conductor, the account holder; the conductor follows). ``transactions`` are plan
    seqs, ``trigger`` the one completing an alert's pattern. ``period`` is the
    business date of a CTR or alert trigger, or the month of a DMO entry.
    """

    pattern: str
    report: str  # alerts | ctr | dmo
    rule: str  # the alert rule, or ctr / dmo_operation / dmo_split
    period: str
    customers: tuple[int, ...]
    accounts: tuple[int, ...]
    transactions: tuple[int, ...]
    trigger: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoPlan:
    customers_requested: int  # background customers; planted ones come on top
    days: int
    seed: int
    first_day: date
    last_day: date
    business_tz: str
    customers: list[PlannedCustomer]
    accounts: list[PlannedAccount]
    transactions: list[PlannedTransaction]
    planted: list[PlantedCase]
    left_out: int  # background candidates the settlement left out
    final_balances: list[int]  # per account, minor units, after the whole plan

    def as_dict(self, *, with_transactions: bool = True) -> dict[str, Any]:
        """Everything, JSON-ready (compare two plans with it; big for big plans)."""
        body = {
            "inputs": self._inputs(),
            "customers": [
                {"ref": str(c.ref), "pattern": c.pattern, "details": _jsonable(c.details)}
                for c in self.customers
            ],
            "accounts": [
                {"ref": str(a.ref), "customer": a.customer, "currency": a.currency,
                 "product": a.product, "overdraft_limit": a.overdraft_limit,
                 "opened_at": a.opened_at, "pattern": a.pattern}
                for a in self.accounts
            ],
            "transactions": len(self.transactions),
            "planted": [
                {"pattern": p.pattern, "report": p.report, "rule": p.rule, "period": p.period,
                 "customers": list(p.customers), "accounts": list(p.accounts),
                 "transactions": list(p.transactions), "trigger": p.trigger,
                 "details": p.details}
                for p in self.planted
            ],
            "left_out": self.left_out,
        }
        if with_transactions:
            body["transactions"] = [t.row() for t in self.transactions]
        return body

    def digest(self) -> str:
        """sha256 over the whole plan: equal inputs, equal digests."""
        h = hashlib.sha256()
        h.update(repr(self.as_dict(with_transactions=False)).encode())
        for start in range(0, len(self.transactions), 10_000):
            rows = self.transactions[start:start + 10_000]
            h.update("".join(
                f"{t.seq},{t.at},{t.type},{t.amount},{t.currency},{t.channel},{t.account},"
                f"{t.to_account},{t.conducted_by},{t.counterparty},{t.reference},{t.pattern}\n"
                for t in rows
            ).encode())
        return h.hexdigest()

    def _inputs(self) -> dict[str, Any]:
        return {
            "customers": self.customers_requested, "days": self.days, "seed": self.seed,
            "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
            "business_tz": self.business_tz,
        }

    def summary(self) -> dict[str, Any]:
        planted_customers = sum(1 for c in self.customers if c.pattern is not None)
        return {
            **self._inputs(),
            "customers": len(self.customers),
            "background_customers": len(self.customers) - planted_customers,
            "planted_customers": planted_customers,
            "accounts": len(self.accounts),
            "transactions": len(self.transactions),
            "batches": math.ceil(len(self.transactions) / BATCH_ITEMS),
        }

    def describe(self) -> list[dict[str, Any]]:
        """The planted cases with plan refs (what apply_plan reports with real ids)."""
        return [
            _case_body(
                case, [str(self.customers[i].ref) for i in case.customers],
                [str(self.accounts[i].ref) for i in case.accounts],
                [f"plan:{seq}" for seq in case.transactions],
                self.transactions,
            )
            for case in self.planted
        ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _case_body(
    case: PlantedCase,
    customer_ids: list[str],
    account_ids: list[str],
    transaction_ids: list[str],
    transactions: list[PlannedTransaction],
) -> dict[str, Any]:
    by_seq = dict(zip(case.transactions, transaction_ids, strict=True))
    planned = [transactions[seq] for seq in case.transactions]
    return {
        "pattern": case.pattern,
        "report": case.report,
        "rule": case.rule,
        "period": case.period,
        "customer_ids": customer_ids,
        "account_ids": account_ids,
        "transaction_ids": transaction_ids,
        "trigger_transaction_id": by_seq[case.trigger] if case.trigger is not None else None,
        "booked_at": [_rfc3339(t.at) for t in planned],
        "amounts": [_money(t.amount) for t in planned],
        "details": case.details,
    }


def _rfc3339(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def period_for(today: date, days: int) -> tuple[date, date]:
    """The D business days ending yesterday."""
    return today - timedelta(days=days), today - timedelta(days=1)


def plan_history(
    customers: int,
    days: int,
    seed: int,
    *,
    first_day: date,
    business_tz: str = "UTC",
) -> DemoPlan:
    """The whole history, drawn from ``random.Random(seed)``: a pure function of its
    arguments. ``customers`` background customers (planted ones come on top) over
    ``days`` business days from ``first_day``."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS} (the planted windows need room)")
    return _Planner(customers, days, seed, first_day, ZoneInfo(business_tz)).plan()


class _Planner:
    def __init__(self, customers: int, days: int, seed: int, first_day: date, tz: ZoneInfo) -> None:
        self.n = customers
        self.days = days
        self.seed = seed
        self.first_day = first_day
        self.tz = tz
        self.rng = random.Random(seed)
        self.customers: list[PlannedCustomer] = []
        self.accounts: list[PlannedAccount] = []
        self.candidates: list[PlannedTransaction] = []
        self.cases: list[PlantedCase] = []
        self._day_start: dict[int, int] = {}
        self._namespace = uuid5(
            NAMESPACE, f"{customers}/{days}/{seed}/{first_day.isoformat()}/{tz.key}"
        )

    # ---------------------------------------------------------------- helpers

    def start_of(self, day: int) -> int:
        """Epoch seconds of 08:00, business time, on the plan's day ``day``."""
        found = self._day_start.get(day)
        if found is None:
            moment = datetime.combine(self.first_day + timedelta(days=day), time(8), tzinfo=self.tz)
            found = self._day_start[day] = int(moment.timestamp())
        return found

    def at(self, day: int, lo: int = 0, hi: int = BUSINESS_SECONDS - 1) -> int:
        return self.start_of(day) + self.rng.randint(lo, hi)

    def day_of(self, at: int) -> int:
        """The plan's day of a moment in business hours (08:00-18:00)."""
        day = (at - self.start_of(0)) // 86400
        while self.start_of(day + 1) <= at:
            day += 1
        while self.start_of(day) > at:
            day -= 1
        return day

    def cents(self, lo: float, hi: float) -> int:
        """An amount in [lo, hi) major units, never a whole number (cents 01-99)."""
        return self.rng.randint(int(lo), int(hi) - 1) * 100 + self.rng.randint(1, 99)

    def ref(self, kind: str, index: int) -> UUID:
        return uuid5(self._namespace, f"{kind}/{index}")

    def add_customer(self, details: dict[str, Any], pattern: str | None = None) -> int:
        index = len(self.customers)
        self.customers.append(PlannedCustomer(index, self.ref("customer", index), details, pattern))
        return index

    def add_account(
        self,
        customer: int,
        currency: str,
        opened_at: int,
        pattern: str | None = None,
        product: str = "current",
        limit: int = 0,
    ) -> int:
        index = len(self.accounts)
        self.accounts.append(
            PlannedAccount(index, self.ref("account", index), customer, currency, product,
                           limit, opened_at, pattern)
        )
        return index

    def add(self, type_: str, at: int, amount: int, account: int, channel: str = "internal",
            **extra: Any) -> int:
        seq = len(self.candidates)
        self.candidates.append(
            PlannedTransaction(seq, at, type_, amount, self.accounts[account].currency, channel,
                               account, **extra)
        )
        return seq

    # ----------------------------------------------------------------- people

    def person(self, country: str, *, group_id: str | None = None) -> dict[str, Any]:
        rng = self.rng
        if country == "ES":
            name = f"{rng.choice(ES_FIRST)} {rng.choice(ES_LAST)} {rng.choice(ES_LAST)}"
        elif country == "US":
            name = f"{rng.choice(US_FIRST)} {rng.choice(US_LAST)}"
        else:
            name = f"{rng.choice(OTHER_FIRST)} {rng.choice(OTHER_LAST)}"
        youngest = self.first_day.year - 18
        born = date(rng.randint(1938, youngest), rng.randint(1, 12), rng.randint(1, 28))
        details: dict[str, Any] = {
            "name": name, "kind": "person", "country": country, "date_of_birth": born,
            "identification": self.identification(country, "person"),
            "address": self.address(country), "occupation": rng.choice(OCCUPATIONS),
        }
        if group_id:
            details["group_id"] = group_id
        return details

    def organization(self, country: str, *, group_id: str | None = None) -> dict[str, Any]:
        rng = self.rng
        if country == "US":
            name = f"{rng.choice(US_ORG_WORDS)} {rng.choice(US_ORG_TRADES)} {rng.choice(US_ORG_SUFFIX)}"
        elif country == "ES":
            name = f"{rng.choice(ES_ORG_TRADES)} {rng.choice(ES_LAST)} {rng.choice(ES_ORG_SUFFIX)}"
        else:
            suffix = OTHER_ORG_SUFFIX.get(country, "Ltd")
            name = f"{rng.choice(OTHER_LAST)} {rng.choice(OTHER_ORG)} {suffix}"
        details: dict[str, Any] = {
            "name": name, "kind": "organization", "country": country,
            "identification": self.identification(country, "organization"),
            "address": self.address(country), "occupation": rng.choice(ORG_ACTIVITIES),
        }
        if group_id:
            details["group_id"] = group_id
        return details

    def identification(self, country: str, kind: str) -> dict[str, str]:
        rng = self.rng
        if kind == "organization":
            if country == "US":
                number = f"{rng.randint(10, 98)}-{rng.randint(1000000, 9999999)}"
                return {"type": "ein", "number": number, "issuing_country": "US"}
            if country == "ES":
                number = f"{rng.choice('ABB')}{rng.randint(10000000, 99999999)}"
                return {"type": "other", "number": number, "issuing_country": "ES"}
            return {"type": "other", "number": f"REG{rng.randint(100000, 9999999)}",
                    "issuing_country": country}
        if country == "US":
            if rng.random() < 0.8:
                number = f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
                return {"type": "ssn", "number": number, "issuing_country": "US"}
            return {"type": "drivers_license", "number": f"D{rng.randint(1000000, 9999999)}",
                    "issuing_country": "US"}
        if country == "ES":
            digits = rng.randint(10000000, 99999999)
            return {"type": "national_id", "number": f"{digits}{DNI_LETTERS[digits % 23]}",
                    "issuing_country": "ES"}
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        return {"type": "passport", "number": f"{letters}{rng.randint(1000000, 9999999)}",
                "issuing_country": country}

    def address(self, country: str) -> dict[str, str]:
        rng = self.rng
        if country == "US":
            city, region, zip_prefix = rng.choice(US_CITIES)
            return {"street": f"{rng.randint(1, 9999)} {rng.choice(US_STREETS)}", "city": city,
                    "region": region, "postal_code": f"{zip_prefix}{rng.randint(1, 99):02d}",
                    "country": "US"}
        if country == "ES":
            city, region, prefix = rng.choice(ES_CITIES)
            return {"street": f"{rng.choice(ES_STREETS)}, {rng.randint(1, 180)}", "city": city,
                    "region": region, "postal_code": f"{prefix}{rng.randint(1, 99):02d}",
                    "country": "ES"}
        city, street, postal = (OTHER_CITIES | DESIGNATED_PLACES)[country]
        return {"street": f"{rng.randint(1, 250)} {street}", "city": city,
                "postal_code": postal, "country": country}

    # ------------------------------------------------------------- background

    def plan(self) -> DemoPlan:
        self.background()
        self.plant()
        kept, left_out, balances = self.settle()
        last_day = self.first_day + timedelta(days=self.days - 1)
        return DemoPlan(
            customers_requested=self.n, days=self.days, seed=self.seed,
            first_day=self.first_day, last_day=last_day, business_tz=self.tz.key,
            customers=self.customers, accounts=self.accounts, transactions=kept,
            planted=self.cases, left_out=left_out, final_balances=balances,
        )

    def background(self) -> None:
        rng = self.rng
        countries = [c for c, _, _ in RESIDENCES]
        weights = [w for _, w, _ in RESIDENCES]
        # A few connected-client groups: an organization and one to three people.
        group_count = max(1, self.n // 400)
        grouped: dict[int, str] = {}
        for g in range(group_count):
            head = rng.randrange(self.n)
            group_id = f"GRP-{g + 1:04d}"
            for member in range(head, min(self.n, head + rng.randint(2, 4))):
                grouped.setdefault(member, group_id)
        profiles: list[tuple[int, float, bool, bool]] = []  # account, rate, drifts, is_org
        for i in range(self.n):
            group_id = grouped.get(i)
            country = rng.choices(countries, weights)[0]
            is_org = rng.random() < 0.12 or (group_id is not None and i == min(
                k for k, v in grouped.items() if v == group_id))
            details = (self.organization if is_org else self.person)(country, group_id=group_id)
            customer = self.add_customer(details)
            currency = CURRENCY_OF[country]
            # Transactions per 30 days for the customer: mostly 3-5 (and about one
            # transfer in from others), a few busy ones up to 30.
            rate = rng.uniform(3, 5) if rng.random() < 0.92 else 7 + 23 * rng.random() ** 2
            open_day = 0 if rng.random() < 0.8 else rng.randint(1, int(self.days * 0.8))
            opened = self.at(open_day, 0, 1800)
            second = rng.random() < 0.3
            for n_account in range(2 if second else 1):
                product = "savings" if n_account == 1 and not is_org and rng.random() < 0.6 else "current"
                limit, drifts = 0, False
                if product == "current" and (rng.random() < 0.07 or (group_id and rng.random() < 0.5)):
                    limit = (rng.randint(5, 50) * 1000 if is_org else rng.randint(5, 30) * 100) * 100
                    drifts = rng.random() < 0.6
                account = self.add_account(customer, currency, opened + 60 * n_account,
                                           product=product, limit=limit)
                share = rate * 0.7 if second and n_account == 0 else (
                    max(2.5, rate * 0.3) if second else rate)
                profiles.append((account, share, drifts, is_org))
        # Recipients of transfers: background accounts by currency.
        self.pool: dict[str, list[int]] = {}
        for account, *_ in profiles:
            self.pool.setdefault(self.accounts[account].currency, []).append(account)
        self.own: dict[int, list[int]] = {}
        for account, *_ in profiles:
            self.own.setdefault(self.accounts[account].customer, []).append(account)
        for account, rate, drifts, is_org in profiles:
            self.account_history(account, rate, drifts, is_org)

    def account_history(self, account: int, rate: float, drifts: bool, is_org: bool) -> None:
        rng = self.rng
        random = rng.random
        start_of = self.start_of
        add = self.add
        acct = self.accounts[account]
        country = self.customers[acct.customer].details["country"]
        end = start_of(self.days - 1) + BUSINESS_SECONDS - 1
        # Deposits every `period` days; the rest of the rate is outgoing.
        period = 30 if rate < 5.5 else (15 if rate < 9 else 7)
        outgoing_rate = max(1.0, rate - 30 / period)
        typical = math.exp(rng.uniform(math.log(200), math.log(2500))) if is_org else \
            math.exp(rng.uniform(math.log(25), math.log(600)))
        # Most earn a little more than they spend; those that drift spend more and
        # run into their overdraft.
        income_factor = rng.uniform(0.5, 0.75) if drifts else rng.uniform(1.0, 1.12)
        salary = outgoing_rate * typical * income_factor * period / 30
        if salary > SALARY_CAP / 100:
            typical *= SALARY_CAP / 100 / salary
            salary = SALARY_CAP / 100
        typical_cents = max(500, int(typical * 100))
        salary_channel = rng.choices(("wire", "cheque", "cash"), (55, 25, 20))[0]
        payer = {"name": self.payer_name(country), "country": country if random() < 0.8
                 else rng.choice(SAFE_COUNTRIES)}
        payees = [{"name": self.payer_name(rng.choice(SAFE_COUNTRIES)),
                   "country": rng.choice(SAFE_COUNTRIES)} for _ in range(2)]
        times: list[int] = []
        # Opening deposit, just after opening.
        first_at = acct.opened_at + rng.randint(300, 3600)
        opening = min(int(typical_cents * rng.uniform(1.5, 3.0)), 5_800_00)
        if drifts:
            opening = min(opening, typical_cents)
        add("deposit", first_at, _cents_not_round(opening), account,
            rng.choice(("cash", "cheque")), reference="Opening deposit")
        times.append(first_at)
        open_day = self.day_of(acct.opened_at)
        # Salaries / revenue.
        day = open_day + rng.randint(1, period)
        salary_cents = salary * 100
        while day < self.days:
            amount = _cents_not_round(int(salary_cents * (0.95 + 0.1 * random())))
            channel = salary_channel if (salary_channel != "cash" or amount < 5_500_00) else "wire"
            at = start_of(day) + int(random() * BUSINESS_SECONDS)
            references = REFERENCES[("deposit", channel)]
            add("deposit", at, amount, account, channel,
                counterparty=payer if channel != "cash" else None,
                reference=references[int(random() * len(references))])
            times.append(at)
            day += period if period < 15 else period - 1 + int(random() * 3)
        # Outgoings at random moments, each within the account's band.
        active_days = self.days - open_day
        count = int(outgoing_rate * active_days / 30 + random())
        siblings = [a for a in self.own[acct.customer] if a != account]
        currency_pool = self.pool[acct.currency]
        low, spread = typical_cents * (1 - BAND), typical_cents * 2 * BAND
        transfer_refs = REFERENCES[("transfer", "internal")]
        for _ in range(count):
            at = start_of(open_day + int(random() * active_days)) + int(random() * BUSINESS_SECONDS)
            if at <= first_at:
                at = first_at + rng.randint(60, 3600)
            amount = _cents_not_round(int(low + spread * random()))
            draw = random()
            kind = "cash" if draw < 0.3 else "cheque" if draw < 0.45 else "wire" if draw < 0.6 \
                else "transfer"
            if kind == "cash" and amount >= 5_500_00:
                kind = "cheque"
            if kind == "transfer":
                if siblings and random() < 0.3:
                    target = siblings[int(random() * len(siblings))]
                else:
                    target = currency_pool[int(random() * len(currency_pool))]
                if target == account:
                    continue
                add("transfer", at, amount, account, to_account=target,
                    reference=transfer_refs[int(random() * len(transfer_refs))])
            else:
                references = REFERENCES[("withdrawal", kind)]
                add("withdrawal", at, amount, account, kind,
                    counterparty=payees[int(random() * 2)] if kind == "wire" else None,
                    reference=references[int(random() * len(references))])
            times.append(at)
        # Never quiet for more than two weeks: fill long gaps with a small deposit.
        times.sort()
        times.append(end)
        gap = MAX_GAP_DAYS * 86400
        previous = times[0]
        for moment in times[1:]:
            while moment - previous > gap:
                previous = self.at(self.day_of(previous) + MAX_GAP_DAYS - 3)
                amount = _cents_not_round(int(typical_cents * rng.uniform(0.4, 0.9)))
                channel = rng.choice(("cash", "cheque"))
                add("deposit", previous, amount, account, channel,
                    reference=rng.choice(REFERENCES[("deposit", channel)]))
            previous = moment

    def payer_name(self, country: str) -> str:
        rng = self.rng
        if country == "ES":
            return f"{rng.choice(ES_ORG_TRADES)} {rng.choice(ES_LAST)} {rng.choice(ES_ORG_SUFFIX)}"
        if country == "US":
            return f"{rng.choice(US_ORG_WORDS)} {rng.choice(US_ORG_TRADES)} {rng.choice(US_ORG_SUFFIX)}"
        return f"{rng.choice(OTHER_LAST)} {rng.choice(OTHER_ORG)}"

    # ---------------------------------------------------------------- planted

    def plant(self) -> None:
        instances = max(1, self.n // PER_PATTERN)
        for planter in (
            self.structuring, self.round_amounts, self.pass_through, self.dormant,
            self.large_outgoing, self.dmo_operation, self.dmo_split, self.dmo_resident,
            self.ctr_cash_in, self.ctr_cash_out, self.ctr_conductor,
        ):
            for _ in range(instances):
                planter()

    def pick_day(self, lo: int, hi: int) -> int:
        """A day in [lo, hi] clamped into the period's inner part."""
        lo, hi = max(lo, MARGIN_DAYS), min(hi, self.days - 3)
        return self.rng.randint(lo, max(lo, hi))

    def planted_customer(self, pattern: str, country: str = "US", kind: str = "person") -> int:
        details = (self.person if kind == "person" else self.organization)(country)
        return self.add_customer(details, pattern)

    def planted_account(self, pattern: str, customer: int, currency: str, first_day: int) -> int:
        opened_day = max(0, first_day - self.rng.randint(1, 5)) if first_day >= 0 else first_day
        return self.add_account(customer, currency, self.at(opened_day, 0, 1800), pattern)

    def case(self, pattern: str, report: str, rule: str, period: str, customers: list[int],
             accounts: list[int], transactions: list[int], trigger: int | None = None,
             **details: Any) -> None:
        self.cases.append(PlantedCase(pattern, report, rule, period, tuple(customers),
                                      tuple(accounts), tuple(transactions), trigger, details))

    def date_of(self, day: int) -> str:
        return (self.first_day + timedelta(days=day)).isoformat()

    def structuring(self) -> None:
        """Three cash deposits of 8,000-10,000 USD within 7 days, each on its own day."""
        name = "structuring"
        trigger_day = self.pick_day(MARGIN_DAYS + 7, self.days - 3)
        span = self.rng.randint(4, 6)
        days = [trigger_day - span, trigger_day - self.rng.randint(1, span - 1), trigger_day]
        customer = self.planted_customer(name)
        account = self.planted_account(name, customer, "USD", days[0])
        txns = [self.add("deposit", self.at(d), self.cents(8_050, 9_950), account, "cash",
                         pattern=name, reference="Cash deposit") for d in days]
        self.case(name, "alerts", "structuring", self.date_of(trigger_day), [customer],
                  [account], txns, txns[-1])

    def round_amounts(self) -> None:
        """Deposit, withdrawal, deposit of whole thousands within 30 days."""
        name = "round_amounts"
        rng = self.rng
        trigger_day = self.pick_day(MARGIN_DAYS + 30, self.days - 3)
        first = trigger_day - rng.randint(15, 27)
        middle = rng.randint(first + 1, trigger_day - 1)
        customer = self.planted_customer(name)
        account = self.planted_account(name, customer, "USD", first)
        txns = [
            self.add("deposit", self.at(first), rng.choice((4, 5)) * 1000_00, account, "cash",
                     pattern=name, reference="Cash deposit"),
            self.add("withdrawal", self.at(middle), rng.choice((2, 3)) * 1000_00, account, "cash",
                     pattern=name, reference="Cash withdrawal"),
            self.add("deposit", self.at(trigger_day), rng.choice((2, 3, 4, 5)) * 1000_00, account,
                     "cheque", pattern=name, reference="Cheque deposit"),
        ]
        self.case(name, "alerts", "round_amounts", self.date_of(trigger_day), [customer],
                  [account], txns, txns[-1])

    def pass_through(self) -> None:
        """A wire in of 12,000-24,000, then within 48 hours a wire out of 92-98% of it."""
        name = "pass_through"
        rng = self.rng
        in_day = self.pick_day(MARGIN_DAYS + 2, self.days - 4)
        customer = self.planted_customer(name, "US", rng.choice(("person", "organization")))
        account = self.planted_account(name, customer, "USD", in_day)
        incoming = self.cents(12_000, 24_000)
        outgoing = _cents_not_round(int(incoming * rng.uniform(0.92, 0.98)))
        in_at = self.at(in_day, 0, 4 * 3600)
        out_at = self.at(in_day + 1, 0, 6 * 3600)
        txns = [
            self.add("deposit", in_at, incoming, account, "wire", pattern=name,
                     counterparty={"name": self.payer_name("MX"), "country": "MX"},
                     reference="Invoice payment"),
            self.add("withdrawal", out_at, outgoing, account, "wire", pattern=name,
                     counterparty={"name": self.payer_name("GB"), "country": "GB"},
                     reference="Supplier invoice"),
        ]
        self.case(name, "alerts", "pass_through", self.date_of(in_day + 1), [customer],
                  [account], txns, txns[-1], incoming=_money(incoming), outgoing=_money(outgoing))

    def dormant(self) -> None:
        """Opened and funded 400-520 days before an outgoing wire, silent in between."""
        name = "dormant_reactivation"
        rng = self.rng
        trigger_day = self.pick_day(MARGIN_DAYS, self.days - 3)
        opened_day = trigger_day - rng.randint(400, 520)
        customer = self.planted_customer(name)
        account = self.add_account(customer, "USD", self.at(opened_day, 0, 1800), name)
        funded = self.cents(3_000, 9_000)
        txns = [
            self.add("deposit", self.accounts[account].opened_at + rng.randint(600, 3600), funded,
                     account, "cheque", pattern=name, reference="Opening deposit"),
            self.add("withdrawal", self.at(trigger_day), self.cents(500, funded // 100 * 0.8),
                     account, "wire", pattern=name, reference="Transfer abroad",
                     counterparty={"name": self.payer_name("CA"), "country": "CA"}),
        ]
        self.case(name, "alerts", "dormant_reactivation", self.date_of(trigger_day), [customer],
                  [account], txns, txns[-1], opened_on=self.date_of(opened_day))

    def large_outgoing(self) -> None:
        """Six regular outgoings within ±8%, then one of 2.2-3 times the largest."""
        name = "large_outgoing"
        rng = self.rng
        country = rng.choice(("US", "ES"))
        currency = CURRENCY_OF[country]
        trigger_day = self.pick_day(min(MARGIN_DAYS + 90, self.days - 3), self.days - 3)
        start = max(MARGIN_DAYS, trigger_day - 80)
        customer = self.planted_customer(name, country)
        account = self.planted_account(name, customer, currency, start)
        typical = rng.randint(400, 900)
        regular_days = sorted(rng.sample(range(start + 1, trigger_day - 1), 6))
        regulars = [_cents_not_round(int(typical * 100 * rng.uniform(0.92, 1.08))) for _ in regular_days]
        trigger_amount = _cents_not_round(int(max(regulars) * rng.uniform(2.2, 3.0)))
        txns = [self.add("deposit", self.at(start), self.cents(7_000, 8_500), account, "cheque",
                         pattern=name, reference="Opening deposit")]
        for d in (start + 30, start + 60):
            if d < trigger_day:
                txns.append(self.add("deposit", self.at(d), self.cents(2_500, 3_500), account,
                                     "wire", pattern=name, reference="Salary",
                                     counterparty={"name": self.payer_name(country),
                                                   "country": country}))
        for d, amount in zip(regular_days, regulars, strict=True):
            txns.append(self.add("withdrawal", self.at(d), amount, account, "cheque",
                                 pattern=name, reference="Rent"))
        trigger = self.add("withdrawal", self.at(trigger_day), trigger_amount, account, "wire",
                           pattern=name, reference="Car purchase",
                           counterparty={"name": self.payer_name(country), "country": country})
        txns.append(trigger)
        txns.sort(key=lambda seq: self.candidates[seq].at)
        self.case(name, "alerts", "large_outgoing", self.date_of(trigger_day), [customer],
                  [account], txns, trigger, largest_before=_money(max(regulars)),
                  amount=_money(trigger_amount))

    def dmo_operation(self) -> None:
        """A wire of more than 30,000.00 EUR from a designated territory."""
        name = "dmo_operation"
        rng = self.rng
        day = self.pick_day(MARGIN_DAYS, self.days - 3)
        territory = rng.choice(DESIGNATED_TERRITORIES)
        customer = self.planted_customer(name, "ES", rng.choice(("person", "organization")))
        account = self.planted_account(name, customer, "EUR", day)
        txn = self.add("deposit", self.at(day), self.cents(30_500, 75_000), account, "wire",
                       pattern=name, reference="Investment",
                       counterparty={"name": f"{rng.choice(OTHER_LAST)} Holdings Ltd",
                                     "country": territory})
        self.case(name, "dmo", "dmo_operation", self.date_of(day)[:7], [customer], [account],
                  [txn], txn, territory=territory)

    def dmo_split(self) -> None:
        """Two or three wires of at most 30,000.00 EUR from one territory in one month,
        together above 30,000.00."""
        name = "dmo_split"
        rng = self.rng
        territory = rng.choice(DESIGNATED_TERRITORIES)
        months: dict[tuple[int, int], list[int]] = {}
        for d in range(MARGIN_DAYS, self.days - 2):
            moment = self.first_day + timedelta(days=d)
            months.setdefault((moment.year, moment.month), []).append(d)
        choices = [ds for ds in months.values() if len(ds) >= 10]
        days = sorted(rng.sample(rng.choice(choices), 3))
        parts = rng.choice((2, 3))
        days = days[:parts] if parts == 3 else [days[0], days[2]]
        amounts = [self.cents(10_500, 16_000) if parts == 3 else self.cents(15_500, 28_000)
                   for _ in days]
        customer = self.planted_customer(name, "ES", rng.choice(("person", "organization")))
        account = self.planted_account(name, customer, "EUR", days[0])
        payer = {"name": f"{rng.choice(OTHER_LAST)} Trust Company", "country": territory}
        txns = [self.add("deposit", self.at(d), amount, account, "wire", pattern=name,
                         counterparty=payer, reference="Consulting fees")
                for d, amount in zip(days, amounts, strict=True)]
        self.case(name, "dmo", "dmo_split", self.date_of(days[0])[:7], [customer], [account],
                  txns, txns[-1], territory=territory, total=_money(sum(amounts)))

    def dmo_resident(self) -> None:
        """A customer resident in a designated territory transfers more than 30,000.00
        EUR; funded by two deposits of at most 30,000.00 in two different months."""
        name = "dmo_resident"
        rng = self.rng
        boundaries = [d for d in range(MARGIN_DAYS + 3, self.days - 12)
                      if (self.first_day + timedelta(days=d)).day == 1]
        boundary = rng.choice(boundaries)
        d1 = boundary - rng.randint(1, 3)
        d2 = boundary + rng.randint(0, 3)
        d3 = d2 + rng.randint(3, 6)
        territory = rng.choice(sorted(DESIGNATED_PLACES))
        customer = self.planted_customer(name, territory, rng.choice(("person", "organization")))
        account = self.planted_account(name, customer, "EUR", d1)
        recipient = self.planted_customer(name, "ES", "organization")
        destination = self.planted_account(name, recipient, "EUR", d1)
        first, second = self.cents(20_000, 29_500), self.cents(20_000, 29_500)
        txns = [
            self.add("deposit", self.at(d1), first, account, "cheque", pattern=name,
                     reference="Cheque deposit"),
            self.add("deposit", self.at(d2), second, account, "cheque", pattern=name,
                     reference="Cheque deposit"),
        ]
        transfer = self.add("transfer", self.at(d3), self.cents(30_500, 40_000), account,
                            to_account=destination, pattern=name, reference="Property purchase")
        txns.append(transfer)
        self.case(name, "dmo", "dmo_operation", self.date_of(d3)[:7], [customer, recipient],
                  [account, destination], txns, transfer, territory=territory)

    def ctr_cash_in(self) -> None:
        """Two cash deposits on one day, together above 10,000.00 USD."""
        name = "ctr_cash_in"
        day = self.pick_day(MARGIN_DAYS, self.days - 3)
        customer = self.planted_customer(name)
        account = self.planted_account(name, customer, "USD", day)
        first = self.cents(5_600, 6_400)
        second = self.cents(max(4_300, 10_100 - first // 100), 4_900)
        txns = [
            self.add("deposit", self.at(day, 0, 4 * 3600), first, account, "cash", pattern=name,
                     reference="Cash deposit"),
            self.add("deposit", self.at(day, 5 * 3600), second, account, "cash", pattern=name,
                     reference="Cash deposit"),
        ]
        self.case(name, "ctr", "ctr", self.date_of(day), [customer], [account], txns,
                  cash_in=_money(first + second), multiple_transactions=True)

    def ctr_cash_out(self) -> None:
        """One cash withdrawal above 10,000.00 USD, funded by a cheque days before."""
        name = "ctr_cash_out"
        rng = self.rng
        day = self.pick_day(MARGIN_DAYS + 12, self.days - 3)
        funded_day = day - rng.randint(5, 12)
        customer = self.planted_customer(name)
        account = self.planted_account(name, customer, "USD", funded_day)
        withdrawn = self.cents(10_200, 12_800)
        txns = [
            self.add("deposit", self.at(funded_day), self.cents(13_000, 16_000), account, "cheque",
                     pattern=name, reference="Cheque deposit"),
            self.add("withdrawal", self.at(day), withdrawn, account, "cash", pattern=name,
                     reference="Cash withdrawal"),
        ]
        self.case(name, "ctr", "ctr", self.date_of(day), [customer], [account], txns,
                  cash_out=_money(withdrawn), multiple_transactions=False)

    def ctr_conductor(self) -> None:
        """X deposits cash into Y's account (conducted_by X), Y deposits cash too: Y's
        cash in is above 10,000.00 USD (a CTR for Y), X's is not (no CTR for X)."""
        name = "ctr_conductor"
        day = self.pick_day(MARGIN_DAYS, self.days - 3)
        holder = self.planted_customer(name)
        conductor = self.planted_customer(name)
        account = self.planted_account(name, holder, "USD", day)
        by_conductor = self.cents(5_600, 6_900)
        by_holder = self.cents(max(3_600, 10_100 - by_conductor // 100), 4_900)
        txns = [
            self.add("deposit", self.at(day, 0, 4 * 3600), by_conductor, account, "cash",
                     conducted_by=conductor, pattern=name, reference="Cash deposit"),
            self.add("deposit", self.at(day, 5 * 3600), by_holder, account, "cash",
                     pattern=name, reference="Cash deposit"),
        ]
        self.case(name, "ctr", "ctr", self.date_of(day), [holder, conductor], [account], txns,
                  cash_in=_money(by_conductor + by_holder), multiple_transactions=True,
                  conductor_cash_in=_money(by_conductor))

    # ----------------------------------------------------------------- settle

    def settle(self) -> tuple[list[PlannedTransaction], int, list[int]]:
        """Book the candidates in order against running balances; leave out the
        background ones that would overdraw or break a quiet limit; number the rest."""
        candidates = sorted(self.candidates, key=attrgetter("at", "seq"))
        balance = [0] * len(self.accounts)
        floor = [-a.overdraft_limit for a in self.accounts]
        opened = [a.opened_at for a in self.accounts]
        owner = [a.customer for a in self.accounts]
        incoming: list[deque[tuple[int, int]] | None] = [None] * len(self.accounts)
        incoming_sum = [0] * len(self.accounts)
        cash: dict[tuple[int, str], int] = {}
        cash_day = None
        kept: list[PlannedTransaction] = []
        planted_by_seq = {t.seq: t for t in candidates if t.pattern is not None}
        # What each background account did (and took in), for the quiet spells below.
        acted: list[list[int]] = [[] for _ in self.accounts]
        took: list[list[tuple[int, int]]] = [[] for _ in self.accounts]
        left_out = 0

        def room_in(account: int, at: int, amount: int) -> bool:
            window = incoming[account]
            if window is None:
                window = incoming[account] = deque()
            while window and window[0][0] < at - INCOMING_WINDOW:
                incoming_sum[account] -= window.popleft()[1]
            return incoming_sum[account] + amount <= INCOMING_CAP

        def take_in(account: int, at: int, amount: int) -> None:
            window = incoming[account]
            assert window is not None
            window.append((at, amount))
            incoming_sum[account] += amount

        day_of = self.day_of
        for t in candidates:
            planted = t.pattern is not None
            if t.channel == "cash":
                day = day_of(t.at)
                if day != cash_day:
                    cash, cash_day = {}, day
            account, amount = t.account, t.amount
            ok = True
            if t.type == "deposit":
                ok = planted or room_in(account, t.at, amount)
                if ok and t.channel == "cash" and not planted:
                    ok = cash.get((owner[account], "in"), 0) + amount <= CASH_CAP
            else:
                ok = balance[account] - amount >= floor[account]
                if ok and t.type == "transfer":
                    target = t.to_account
                    ok = t.at >= opened[target] and (planted or room_in(target, t.at, amount))
                if ok and t.channel == "cash" and not planted:
                    ok = cash.get((owner[account], "out"), 0) + amount <= CASH_CAP
            if not ok:
                if planted:
                    raise AssertionError(f"planted {t.pattern} transaction cannot be booked: {t}")
                left_out += 1
                continue
            if not planted:
                acted[account].append(t.at)
            if t.type == "deposit":
                balance[account] += amount
                if not planted:
                    take_in(account, t.at, amount)
                    took[account].append((t.at, amount))
                if t.channel == "cash":
                    cash[(owner[account], "in")] = cash.get((owner[account], "in"), 0) + amount
            else:
                balance[account] -= amount
                if t.type == "transfer":
                    balance[t.to_account] += amount
                    if not planted:
                        take_in(t.to_account, t.at, amount)
                        took[t.to_account].append((t.at, amount))
                if t.channel == "cash":
                    cash[(owner[account], "out")] = cash.get((owner[account], "out"), 0) + amount
            kept.append(t)
        fillers = self.fill_quiet_spells(acted, took)
        for t in fillers:
            balance[t.account] += t.amount
        if fillers:
            kept = sorted(kept + fillers, key=attrgetter("at"))  # stable: fillers after
        for seq, t in enumerate(kept):
            t.seq = seq
        renumbered = {original: t.seq for original, t in planted_by_seq.items()}
        self.cases = [
            PlantedCase(
                c.pattern, c.report, c.rule, c.period, c.customers, c.accounts,
                tuple(sorted(renumbered[s] for s in c.transactions)),
                renumbered[c.trigger] if c.trigger is not None else None, c.details,
            )
            for c in self.cases
        ]
        return kept, left_out, balance

    def fill_quiet_spells(
        self, acted: list[list[int]], took: list[list[tuple[int, int]]]
    ) -> list[PlannedTransaction]:
        """A small cheque deposit wherever what was left out leaves a background
        account quiet for more than MAX_GAP_DAYS; never more than the 48-hour cap in."""
        end = self.start_of(self.days - 1) + BUSINESS_SECONDS - 1
        gap = MAX_GAP_DAYS * 86400
        fillers: list[PlannedTransaction] = []
        for account in self.accounts:
            if account.pattern is not None:
                continue
            moments = [account.opened_at, *acted[account.index], end]
            previous = moments[0]
            for moment in moments[1:]:
                while moment - previous > gap:
                    day = self.day_of(previous) + MAX_GAP_DAYS - 3
                    at, amount = self.at(day), self.cents(20, 300)
                    near = sum(a for when, a in took[account.index]
                               if at - INCOMING_WINDOW <= when <= at + INCOMING_WINDOW)
                    while near + amount > INCOMING_CAP and day < self.days - 1:
                        day += 1
                        at = self.at(day)
                        near = sum(a for when, a in took[account.index]
                                   if at - INCOMING_WINDOW <= when <= at + INCOMING_WINDOW)
                    if near + amount > INCOMING_CAP:
                        break
                    took[account.index].append((at, amount))
                    fillers.append(PlannedTransaction(
                        -1, at, "deposit", amount, account.currency, "cheque", account.index,
                        reference="Cheque deposit",
                    ))
                    previous = at
                previous = moment
        return fillers


def _cents_not_round(cents: int) -> int:
    """The amount with cents, so never a whole multiple of 1,000.00."""
    return cents + 1 if cents % 100 == 0 else cents


# ----------------------------------------------------------------------- apply

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def apply_plan(
    bank: Bank,
    plan: DemoPlan,
    *,
    on_progress: Progress | None = None,
    cause: Cause = DEMO_CAUSE,
    batch_items: int = BATCH_ITEMS,
) -> dict[str, Any]:
    """Write the plan with the Bank's use cases; the report of what was planted,
    with the ids the bank gave (and ``errors``: every refused item, none expected)."""
    progress = on_progress or (lambda phase, done, total: None)
    started = clock.monotonic()
    customer_ids: list[str] = []
    total = len(plan.customers)
    for customer in plan.customers:
        outcome = bank.register_customer(dict(customer.details), cause, claim=None)
        customer_ids.append(outcome.body["customer_id"])
        if len(customer_ids) % 100 == 0 or len(customer_ids) == total:
            progress("customers", len(customer_ids), total)
    account_ids: list[str] = []
    total = len(plan.accounts)
    for account in plan.accounts:
        outcome = bank.open_account(
            UUID(customer_ids[account.customer]), account.currency, cause,
            product=account.product, overdraft_limit=_money(account.overdraft_limit),
            opened_at=datetime.fromtimestamp(account.opened_at, UTC), claim=None,
        )
        account_ids.append(outcome.body["account_id"])
        if len(account_ids) % 100 == 0 or len(account_ids) == total:
            progress("accounts", len(account_ids), total)
    customer_uuids = [UUID(i) for i in customer_ids]
    account_uuids = [UUID(i) for i in account_ids]
    wanted = {seq for case in plan.planted for seq in case.transactions}
    transaction_ids: dict[int, str] = {}
    errors: list[dict[str, Any]] = []
    batches = 0
    total = len(plan.transactions)
    started_postings = clock.monotonic()
    cache = getattr(bank.repository, "cache", None)
    for start in range(0, total, batch_items):
        chunk = plan.transactions[start:start + batch_items]
        items = [_item(t, account_uuids, customer_uuids) for t in chunk]
        outcome = bank.post_batch(False, items, cause, claim=None)
        batches += 1
        for result in outcome.body["results"]:
            planned = chunk[result["index"]]
            if result["status"] != "posted":
                errors.append({"seq": planned.seq, "booked_at": _rfc3339(planned.at),
                               "type": planned.type, **result["error"]})
                continue
            if cache is not None:
                # Nothing reads these records again here: keep the cache for accounts.
                _forget(cache, UUID(result["transaction"]["transaction_id"]))
            if planned.seq in wanted:
                transaction_ids[planned.seq] = result["transaction"]["transaction_id"]
        if cache is not None:
            _forget(cache, UUID(outcome.body["batch_id"]))
        progress("transactions", min(start + batch_items, total), total)
    finished = clock.monotonic()
    posting_seconds = finished - started_postings
    planted = [
        _case_body(
            case, [customer_ids[i] for i in case.customers], [account_ids[i] for i in case.accounts],
            [transaction_ids.get(seq, f"rejected:{seq}") for seq in case.transactions],
            plan.transactions,
        )
        for case in plan.planted
    ]
    return {
        **plan.summary(),
        "batches": batches,
        "rejected": len(errors),
        "errors": errors[:100],
        "left_out_of_plan": plan.left_out,
        "seconds": round(finished - started, 2),
        "posting_seconds": round(posting_seconds, 2),
        "transactions_per_second": round(total / posting_seconds) if posting_seconds > 0 else None,
        "planted": planted,
    }


def _forget(cache: Any, aggregate_id: UUID) -> None:
    try:
        cache.get(aggregate_id, evict=True)
    except KeyError:
        pass


def _item(t: PlannedTransaction, accounts: list[UUID], customers: list[UUID]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": t.type, "amount": _money(t.amount), "currency": t.currency,
        "booked_at": datetime.fromtimestamp(t.at, UTC), "reference": t.reference,
    }
    if t.type == "transfer":
        item["from_account_id"] = accounts[t.account]
        item["to_account_id"] = accounts[t.to_account]
    else:
        item["account_id"] = accounts[t.account]
        item["channel"] = t.channel
        item["conducted_by"] = customers[t.conducted_by] if t.conducted_by >= 0 else None
        item["counterparty"] = dict(t.counterparty) if t.counterparty else None
    return item


def seed_demo(
    bank: Bank,
    customers: int,
    days: int,
    seed: int = 1,
    *,
    today: date | None = None,
    on_progress: Progress | None = None,
    on_planned: Callable[[DemoPlan], None] | None = None,
) -> dict[str, Any]:
    """Plan ``days`` business days ending yesterday (in the bank's business time zone)
    and apply the plan; the report of :func:`apply_plan` with the plan's digest.

    Refuses (ValueError) when a day the plan books on is already closed.
    """
    today = today or bank.clock().astimezone(bank.business_tz).date()
    first_day, _ = period_for(today, days)
    plan = plan_history(customers, days, seed, first_day=first_day, business_tz=bank.business_tz.key)
    earliest = (
        datetime.fromtimestamp(plan.transactions[0].at, bank.business_tz).date()
        if plan.transactions else first_day
    )
    closed = bank.closed_through()
    if closed is not None and closed >= earliest:
        raise ValueError(
            f"business days through {closed.isoformat()} are closed; the plan books from "
            f"{earliest.isoformat()}: seed a fresh store"
        )
    if on_planned is not None:
        on_planned(plan)
    report = apply_plan(bank, plan, on_progress=on_progress)
    report["plan_digest"] = plan.digest()
    return report
