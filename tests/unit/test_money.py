"""Money as the contract writes it: parsing, precision, formatting, positivity."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.currencies import MINOR_UNITS
from domain.errors import BankError, ValidationFailed
from domain.money import Money, format_amount, is_currency, minor_units, parse_amount


def contract_pattern(currency: str) -> re.Pattern[str]:
    """The contract's regex, verbatim, for a currency with m minor units."""
    m = MINOR_UNITS[currency]
    fraction = "" if m == 0 else rf"(\.[0-9]{{1,{m}}})?"
    return re.compile(rf"^(0|[1-9][0-9]{{0,14}}){fraction}$")


def matches_contract(text: str, currency: str) -> bool:
    # fullmatch: the contract's ^...$ anchors the whole JSON string (no trailing newline).
    return contract_pattern(currency).fullmatch(text) is not None


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "value",
    [
        10,  # a JSON number, not a string
        10.5,
        Decimal(10),
        None,
        True,
        ["10"],
        "10.005",  # three places in EUR
        ".5",
        "+5",
        "-5",
        "1e3",
        "1E3",
        "007",
        "00",
        "01.50",
        "NaN",
        "nan",
        "Infinity",
        "-0",
        "",
        " ",
        " 10",
        "10 ",
        "10.",
        "10.5.0",
        "1,000",
        "1_000",
        "0x10",
        "10\n",  # the contract's $ means end of string, not "before a final newline"
        "\n10",
        "\u0661\u0660",  # Arabic-Indic digits
        "\uff11\uff10",  # full-width digits
        "1234567890123456",  # 16 integer digits
        "1234567890123456.00",
    ],
)
def test_eur_amounts_outside_the_contract_are_refused(value: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount(value, "EUR")
    assert refused.value.code == "validation_error"
    assert refused.value.errors[0][0] == ("amount",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("10", Decimal(10)),
        ("10.5", Decimal("10.5")),
        ("10.50", Decimal("10.50")),
        ("0.01", Decimal("0.01")),
        ("0.5", Decimal("0.5")),
        ("999999999999999.99", Decimal("999999999999999.99")),
        ("123456789012345", Decimal(123456789012345)),
    ],
)
def test_eur_amounts_in_the_contract_parse_exactly(text: str, expected: Decimal) -> None:
    parsed = parse_amount(text, "EUR")
    assert isinstance(parsed, Decimal)
    assert parsed == expected
    assert Money.parse(text, "EUR") == Money(expected, "EUR")


@pytest.mark.parametrize("text", ["1000.0", "10.5", "1000.", "1e3", "0.1"])
def test_jpy_has_no_fraction(text: str) -> None:
    assert minor_units("JPY") == 0
    with pytest.raises(ValidationFailed):
        parse_amount(text, "JPY")


def test_jpy_whole_amounts_parse() -> None:
    assert parse_amount("1000", "JPY") == Decimal(1000)
    assert parse_amount("0", "JPY") == 0


def test_kwd_has_three_places() -> None:
    assert minor_units("KWD") == 3
    assert parse_amount("1.234", "KWD") == Decimal("1.234")
    assert parse_amount("1.2", "KWD") == Decimal("1.2")
    with pytest.raises(ValidationFailed):
        parse_amount("1.2345", "KWD")


def test_minor_units_of_the_contract_currencies() -> None:
    assert {c: MINOR_UNITS[c] for c in ("EUR", "USD", "JPY", "KWD")} == {
        "EUR": 2, "USD": 2, "JPY": 0, "KWD": 3,
    }


@pytest.mark.parametrize("currency", ["eur", "XXX", "EURO", "", "E U"])
def test_unknown_or_lower_case_currencies_are_refused(currency: str) -> None:
    assert not is_currency(currency)
    with pytest.raises(ValidationFailed) as refused:
        parse_amount("10", currency)
    assert refused.value.errors[0][0] == ("currency",)


def test_validation_error_names_the_location_given() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount("1.001", "EUR", ("items", 3, "amount"))
    assert refused.value.extra()["errors"][0]["loc"] == ["items", 3, "amount"]
    assert isinstance(refused.value, BankError)


# --------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("10.5"), "EUR", "10.50"),
        (Decimal(10), "EUR", "10.00"),
        (Decimal(0), "EUR", "0.00"),
        (Decimal("-0"), "EUR", "0.00"),
        (Decimal("-0.00"), "EUR", "0.00"),
        (Decimal("-5.1"), "EUR", "-5.10"),
        (Decimal(1000), "JPY", "1000"),
        (Decimal("1E+3"), "JPY", "1000"),
        (Decimal(0), "JPY", "0"),
        (Decimal("1.2"), "KWD", "1.200"),
        (Decimal("0.001"), "KWD", "0.001"),
        (Decimal("999999999999999.99"), "EUR", "999999999999999.99"),
        (Decimal("1E+2"), "EUR", "100.00"),
    ],
)
def test_format_prints_exactly_the_minor_units(amount: Decimal, currency: str, text: str) -> None:
    assert format_amount(amount, currency) == text


def test_money_str_names_the_currency() -> None:
    assert str(Money(Decimal("10.5"), "EUR")) == "10.50 EUR"
    assert str(Money(Decimal(1000), "JPY")) == "1000 JPY"


# ----------------------------------------------------------------- Money


def test_money_refuses_floats_and_excess_precision() -> None:
    with pytest.raises(TypeError):
        Money(10.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        Money(Decimal("10.005"), "EUR")
    with pytest.raises(ValidationFailed):
        Money(Decimal("1.5"), "JPY")
    with pytest.raises(ValidationFailed):
        Money(Decimal(1), "XXX")


@pytest.mark.parametrize("amount", ["0", "-0.01", "-10"])
def test_amount_moved_must_be_greater_than_zero(amount: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        Money(Decimal(amount), "EUR").check_positive()
    assert refused.value.errors[0][0] == ("amount",)


def test_smallest_positive_amount_is_accepted() -> None:
    Money(Decimal("0.01"), "EUR").check_positive()
    Money(Decimal(1), "JPY").check_positive()
    Money(Decimal("0.001"), "KWD").check_positive()


def test_money_arithmetic_stays_in_one_currency() -> None:
    a = Money(Decimal("10.50"), "EUR")
    b = Money(Decimal("0.50"), "EUR")
    assert a + b == Money(Decimal("11.00"), "EUR")
    assert a - b == Money(Decimal("10.00"), "EUR")
    assert -a == Money(Decimal("-10.50"), "EUR")
    assert Money.zero("JPY") == Money(Decimal(0), "JPY")
    with pytest.raises(ValueError, match="EUR"):
        a + Money(Decimal(1), "USD")
    with pytest.raises(ValueError, match="EUR"):
        a - Money(Decimal(1), "USD")


# ---------------------------------------------------------------- properties

ALL_CURRENCIES = sorted(MINOR_UNITS)


@st.composite
def amounts_in_some_currency(draw: st.DrawFn) -> tuple[Decimal, str]:
    currency = draw(st.sampled_from(ALL_CURRENCIES))
    m = MINOR_UNITS[currency]
    minor = draw(st.integers(min_value=0, max_value=10 ** (15 + m) - 1))
    return Decimal(minor).scaleb(-m), currency


@given(amounts_in_some_currency())
@example((Decimal("999999999999999.99"), "EUR"))
@example((Decimal("0.001"), "KWD"))
@example((Decimal(0), "JPY"))
def test_parse_of_format_round_trips_for_every_currency(case: tuple[Decimal, str]) -> None:
    amount, currency = case
    m = MINOR_UNITS[currency]
    text = format_amount(amount, currency)
    integer, _, fraction = text.partition(".")
    assert len(fraction) == m
    assert matches_contract(text, currency)
    parsed = parse_amount(text, currency)
    assert parsed == amount
    assert format_amount(parsed, currency) == text


money_like_text = st.text(alphabet="0123456789.+-eE \n", max_size=20)


@given(
    text=st.one_of(money_like_text, st.from_regex(r"\A[0-9]{1,17}(\.[0-9]{0,5})?\n?\Z")),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "CLF"]),
)
@example(text="10\n", currency="EUR")
@example(text="0", currency="JPY")
def test_parse_accepts_exactly_what_the_contract_regex_accepts(text: str, currency: str) -> None:
    if matches_contract(text, currency):
        assert parse_amount(text, currency) == Decimal(text)
    else:
        with pytest.raises(ValidationFailed):
            parse_amount(text, currency)
