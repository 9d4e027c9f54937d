"""What a subscription costs per month and per period, at list prices."""

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from licensing.catalog import PriceBook
from licensing.money import line_amount, round_cents
from licensing.periods import interval_months
from models.enums import BillingInterval


def monthly_price(
    book: PriceBook,
    edition_code: str,
    currency: str,
    on: date,
    seats: Iterable[int],
    enabled_features: Iterable[str],
) -> Decimal:
    """Seats of every pool at the edition's seat price (the same for every role) plus add-ons."""
    seat_price = book.seat_price(edition_code, currency, on)
    total = sum((line_amount(count, seat_price) for count in seats), Decimal("0.00"))
    total += sum((book.feature_price(code, currency, on) for code in enabled_features), Decimal("0.00"))
    return round_cents(total)


def period_total(monthly: Decimal, interval: BillingInterval) -> Decimal:
    return round_cents(monthly * interval_months(interval))
