"""What a subscription costs per month and per period: at list prices, or at the reseller
price a firm pays (list less its discount, half-up to cents per unit, R24)."""

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from licensing.catalog import PriceBook
from licensing.money import line_amount, reseller_price, round_cents
from licensing.periods import interval_months
from models.enums import BillingInterval


def monthly_price(
    book: PriceBook,
    edition_code: str,
    currency: str,
    on: date,
    seats: Iterable[int],
    enabled_features: Iterable[str],
    *,
    discount_percent: Decimal = Decimal(0),
) -> Decimal:
    """Seats of every pool at the edition's seat price (the same for every role) plus add-ons;
    with a discount, each unit price is the reseller price first."""
    seat_price = reseller_price(book.seat_price(edition_code, currency, on), discount_percent)
    total = sum((line_amount(count, seat_price) for count in seats), Decimal("0.00"))
    total += sum((reseller_price(book.feature_price(code, currency, on), discount_percent)
                  for code in enabled_features), Decimal("0.00"))
    return round_cents(total)


def period_total(monthly: Decimal, interval: BillingInterval) -> Decimal:
    return round_cents(monthly * interval_months(interval))
