"""Money rules: R7 proration, R24 reseller prices and invoice lines."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing.money import (
    CENT,
    line_amount,
    period_price,
    prorate,
    reseller_price,
    round_cents,
)
from models.enums import BillingInterval

D = Decimal


def test_round_cents_rounds_half_up_not_to_even() -> None:
    # Banker's rounding would give 0.12 and 0.02 here.
    assert round_cents(D("0.125")) == D("0.13")
    assert round_cents(D("0.015")) == D("0.02")
    assert round_cents(D("0.0149")) == D("0.01")
    assert round_cents(D("2.675")) == D("2.68")


def test_round_cents_rounds_negative_ties_away_from_zero() -> None:
    assert round_cents(D("-0.125")) == D("-0.13")


def test_round_cents_never_gives_negative_zero() -> None:
    assert str(round_cents(D("-0.001"))) == "0.00"


def test_period_price_monthly_is_the_monthly_price() -> None:
    assert period_price(D("100.00"), BillingInterval.MONTHLY) == D("100.00")


def test_period_price_yearly_is_twelve_months() -> None:
    assert period_price(D("100.00"), BillingInterval.YEARLY) == D("1200.00")
    assert period_price(D("8.33"), BillingInterval.YEARLY) == D("99.96")


def test_proration_two_seats_added_on_day_11_of_30_day_period() -> None:
    # 100.00 x 2 x 20 / 30 = 133.333... -> 133.33
    assert prorate(D("100.00"), 2, 20, 30) == D("133.33")


def test_proration_rounds_half_up_once_per_line() -> None:
    # 0.10 x 3 x 5 / 20 = 0.075 exactly -> 0.08 (half-up).
    # Rounding per seat first (0.025 -> 0.03, x3 = 0.09) would overcharge.
    assert prorate(D("0.10"), 3, 5, 20) == D("0.08")
    # 33.33 x 1 x 1 / 2 = 16.665 -> 16.67; x 2 seats = 33.33 exactly, not 2 x 16.67.
    assert prorate(D("33.33"), 1, 1, 2) == D("16.67")
    assert prorate(D("33.33"), 2, 1, 2) == D("33.33")


def test_proration_of_yearly_seat_uses_the_yearly_price_and_period_length() -> None:
    # 50.00/month x 12 = 600.00; 1 seat, 100 of 365 days left: 164.3835.. -> 164.38
    yearly = period_price(D("50.00"), BillingInterval.YEARLY)
    assert prorate(yearly, 1, 100, 365) == D("164.38")


def test_proration_on_first_day_charges_the_whole_period() -> None:
    assert prorate(D("99.99"), 4, 31, 31) == D("399.96")


def test_proration_with_no_seats_or_no_days_left_is_zero() -> None:
    assert prorate(D("100.00"), 0, 10, 30) == D("0.00")
    assert prorate(D("100.00"), 3, 0, 30) == D("0.00")


def test_proration_is_exact_beyond_decimal_context_precision() -> None:
    # Decimal arithmetic rounded to the context's 28 digits can create a spurious
    # .5 tie; the exact computation must not.
    assert prorate(D("0.045"), 1, 1, 3) == D("0.02")  # 0.015 exactly -> 0.02
    # 31 significant digits: in a 28-digit context this becomes 0.045 and rounds up.
    assert prorate(D("0.04499999999999999999999999999999"), 1, 1, 3) == D("0.01")


@pytest.mark.parametrize(
    ("price", "quantity", "remaining", "days"),
    [(D("1"), 1, 1, 0), (D("1"), 1, 31, 30), (D("1"), 1, -1, 30), (D("1"), -1, 1, 30)],
)
def test_proration_refuses_impossible_arguments(
    price: Decimal, quantity: int, remaining: int, days: int
) -> None:
    with pytest.raises(ValueError, match="must"):
        prorate(price, quantity, remaining, days)


def test_reseller_price_is_list_minus_discount_rounded_half_up() -> None:
    # 100.00 x (1 - 15/100) = 85.00
    assert reseller_price(D("100.00"), D("15")) == D("85.00")
    # 19.90 x 0.875 = 17.4125 -> 17.41
    assert reseller_price(D("19.90"), D("12.5")) == D("17.41")
    # 0.50 x 0.75 = 0.375 -> 0.38 (tie, half-up)
    assert reseller_price(D("0.50"), D("25")) == D("0.38")


def test_reseller_price_edges_of_discount() -> None:
    assert reseller_price(D("42.00"), D("0")) == D("42.00")
    assert reseller_price(D("42.00"), D("100")) == D("0.00")
    with pytest.raises(ValueError, match="discount"):
        reseller_price(D("42.00"), D("101"))
    with pytest.raises(ValueError, match="discount"):
        reseller_price(D("42.00"), D("-1"))


def test_line_amount_is_quantity_times_unit_price() -> None:
    assert line_amount(3, D("1200.00")) == D("3600.00")
    assert line_amount(3, D("0.335")) == D("1.01")  # 1.005 -> 1.01
    assert line_amount(0, D("5.00")) == D("0.00")


def test_money_results_are_decimals_not_floats() -> None:
    for value in (
        round_cents(D("1")),
        prorate(D("1"), 1, 1, 1),
        reseller_price(D("1"), D("1")),
        line_amount(1, D("1")),
    ):
        assert type(value) is Decimal
        assert value.as_tuple().exponent == -2


money = st.decimals(
    min_value=D("-1000000"),
    max_value=D("1000000"),
    allow_nan=False,
    allow_infinity=False,
)
prices = st.decimals(min_value=D("0"), max_value=D("100000"), places=2)


@given(money)
def test_round_cents_has_two_decimals_and_is_within_half_a_cent(x: Decimal) -> None:
    r = round_cents(x)
    assert r.as_tuple().exponent == -2
    assert abs(r - x) <= CENT / 2


@given(prices, st.integers(min_value=0, max_value=500), st.data())
def test_proration_never_exceeds_the_full_period_charge(
    price: Decimal, quantity: int, data: st.DataObject
) -> None:
    days = data.draw(st.integers(min_value=28, max_value=366))
    remaining = data.draw(st.integers(min_value=0, max_value=days))
    charge = prorate(price, quantity, remaining, days)
    assert D("0") <= charge <= line_amount(quantity, price)
    assert charge.as_tuple().exponent == -2
    # Within half a cent of the exact value.
    assert abs(charge * days - price * quantity * remaining) <= CENT / 2 * days


@given(prices, st.decimals(min_value=D("0"), max_value=D("100"), places=2))
def test_reseller_price_is_at_most_list_price(
    price: Decimal, discount: Decimal
) -> None:
    assert D("0") <= reseller_price(price, discount) <= price
