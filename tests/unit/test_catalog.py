"""Catalog prices in force by date, and the checks of the vendor's catalog edits."""

from datetime import date
from decimal import Decimal

import pytest

from licensing.catalog import PriceBook, require_code, require_prices
from licensing.errors import RuleViolation
from licensing.validation import require_amount
from models import Edition, EditionPrice


def book() -> PriceBook:
    editions = [Edition(code="A", name="A", included_file_storage_gb=1),
                Edition(code="B", name="B", included_file_storage_gb=1)]
    prices = [
        EditionPrice(edition_code="A", currency="SEK", monthly_price=Decimal("100.00"), valid_from=date(2026, 1, 1)),
        EditionPrice(edition_code="A", currency="SEK", monthly_price=Decimal("300.00"), valid_from=date(2026, 12, 1)),
        EditionPrice(edition_code="A", currency="SEK", monthly_price=Decimal("120.00"), valid_from=date(2026, 6, 1)),
        EditionPrice(edition_code="B", currency="SEK", monthly_price=Decimal("200.00"), valid_from=date(2026, 1, 1)),
    ]
    return PriceBook.of(editions, prices, [], [])


@pytest.mark.parametrize(("on", "price"), [
    (date(2025, 12, 31), "0.00"),  # before the first price: none in force
    (date(2026, 1, 1), "100.00"),
    (date(2026, 5, 31), "100.00"),
    (date(2026, 6, 1), "120.00"),
    (date(2026, 11, 30), "120.00"),
    (date(2026, 12, 1), "300.00"),
])
def test_the_price_in_force_is_the_latest_that_started_on_or_before_the_day(on: date, price: str) -> None:
    assert book().seat_price("A", "SEK", on) == Decimal(price)


def test_catalog_order_follows_the_prices_in_force() -> None:
    assert [e.code for e in book().editions_in_order("SEK", date(2026, 11, 1))] == ["A", "B"]
    assert [e.code for e in book().editions_in_order("SEK", date(2026, 12, 1))] == ["B", "A"]


@pytest.mark.parametrize("value", ["0", "0.00", "12.5", "12.50", "12.500", "100000.00"])
def test_amounts_with_at_most_two_decimals_pass(value: str) -> None:
    assert require_amount(Decimal(value), ["x"]) == Decimal(value).quantize(Decimal("0.01"))


@pytest.mark.parametrize("value", ["-0.01", "0.001", "12.345", "NaN", "Infinity", "1E+12", "1E-30"])
def test_other_amounts_are_refused(value: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        require_amount(Decimal(value), ["input", "amount"])
    assert refused.value.field == ["input", "amount"]


@pytest.mark.parametrize("code", ["", " ", "lower", "A-B", "A B", "Ä", "X" * 51])
def test_codes_are_upper_case_letters_digits_and_underscores(code: str) -> None:
    with pytest.raises(RuleViolation):
        require_code(code, ["input", "code"])


def test_prices_one_per_currency() -> None:
    assert require_prices([(Decimal("1"), "sek"), (Decimal("2.5"), " EUR ")], ["p"]) == {
        "SEK": Decimal("1.00"), "EUR": Decimal("2.50")}
    with pytest.raises(RuleViolation) as twice:
        require_prices([(Decimal("1"), "SEK"), (Decimal("2"), "EUR"), (Decimal("3"), "sek")], ["p"])
    assert twice.value.field == ["p", "2", "currency"]
    with pytest.raises(RuleViolation) as none:
        require_prices([], ["p"])
    assert none.value.field == ["p"]
