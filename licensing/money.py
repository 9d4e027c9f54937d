"""Money arithmetic for orders and invoices (R7, R24).

Everything is ``Decimal``; intermediate results are kept exact (as fractions) and
rounded half-up to cents exactly once, so that the charge does not depend on the
order of operations or on the decimal context's precision.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from licensing.periods import interval_months
from models.enums import BillingInterval

CENT = Decimal("0.01")
_HUNDRED = Decimal(100)


def round_cents(x: Decimal) -> Decimal:
    """``x`` rounded half-up (away from zero on a tie) to two decimals."""
    rounded = x.quantize(CENT, rounding=ROUND_HALF_UP)
    # A tiny negative amount rounds to -0.00; show it as 0.00 on orders and invoices.
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _round_fraction_cents(value: Fraction) -> Decimal:
    """An exact rational rounded half-up to cents, without going through a context."""
    cents = abs(value) * 100
    whole = int(cents)  # floor, cents is not negative
    if cents - whole >= Fraction(1, 2):
        whole += 1
    if value < 0 and whole != 0:
        whole = -whole
    return Decimal(whole).scaleb(-2)


def period_price(monthly_price: Decimal, interval: BillingInterval) -> Decimal:
    """Price of one seat (or add-on) for one whole period: monthly x 1 or x 12.

    Not rounded: the monthly price already is in cents, and proration must round
    only once, at the end.
    """
    return monthly_price * interval_months(interval)


def prorate(
    unit_period_price: Decimal, quantity: int, remaining_days: int, days_in_period: int
) -> Decimal:
    """R7: price x quantity x remaining / days, rounded half-up to cents once."""
    if days_in_period <= 0:
        raise ValueError("days_in_period must be positive")
    if not 0 <= remaining_days <= days_in_period:
        raise ValueError("remaining_days must be between 0 and days_in_period")
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    exact = Fraction(unit_period_price) * quantity * remaining_days / days_in_period
    return _round_fraction_cents(exact)


def reseller_price(list_price: Decimal, discount_percent: Decimal) -> Decimal:
    """R24: list x (1 - discount/100), rounded half-up to cents."""
    if not 0 <= discount_percent <= _HUNDRED:
        raise ValueError("discount_percent must be between 0 and 100")
    exact = Fraction(list_price) * (1 - Fraction(discount_percent) / 100)
    return _round_fraction_cents(exact)


def line_amount(quantity: int, unit_price: Decimal) -> Decimal:
    """R24: an invoice line's amount, quantity x unit price, rounded to cents."""
    return _round_fraction_cents(Fraction(unit_price) * quantity)
