"""Invoice lines (R24) from what each period and order held, as a pure function.

The same function builds an issued invoice and the preview of the month in progress, and
its output never depends on the order in which periods and orders are given."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from licensing.catalog import PriceBook
from licensing.money import line_amount
from licensing.periods import Period, calendar_month, month_of
from licensing.subscriptions import unit_period_price
from models.enums import BillingInterval, BillingMode, LicenseType

LICENSE_ORDER = {LicenseType.NAMED: 0, LicenseType.CONCURRENT: 1, LicenseType.CLIENT_USER: 2}


@dataclass(frozen=True)
class Account:
    """Who pays: the firm (consolidated, mode FIRM) or one agreement (direct, CUSTOMER)."""

    mode: BillingMode
    agreement_id: int | None = None

    @property
    def key(self) -> str:
        return "firm" if self.mode is BillingMode.FIRM else f"agreement:{self.agreement_id}"


@dataclass(frozen=True)
class Customer:
    agreement_id: int | None  # None for the firm's own master licence
    customer_number: str | None
    name: str


@dataclass(frozen=True)
class PeriodCharge:
    customer: Customer
    start: date
    end: date
    edition_code: str
    interval: BillingInterval
    mode: BillingMode
    seats: tuple[tuple[LicenseType, int], ...]
    features: tuple[str, ...]

    @property
    def month(self) -> tuple[int, int]:
        """A period belongs to the month of its last day."""
        return month_of(self.end - timedelta(days=1))


@dataclass(frozen=True)
class OrderLineCharge:
    customer: Customer
    order_number: str
    order_date: date
    mode: BillingMode
    position: int
    description: str
    license_type: LicenseType | None
    quantity: int
    unit_price: Decimal
    amount: Decimal

    @property
    def month(self) -> tuple[int, int]:
        return month_of(self.order_date)


@dataclass(frozen=True)
class Line:
    agreement_id: int | None
    customer_number: str | None
    description: str
    license_type: LicenseType | None
    quantity: int
    unit_price: Decimal
    amount: Decimal


def account_of(mode: BillingMode, customer: Customer) -> Account:
    return Account(mode) if mode is BillingMode.FIRM else Account(mode, customer.agreement_id)


def _group_key(customer: Customer) -> tuple[int, str, str, int]:
    # The firm's own licence first, then customers by number (none last), name and id.
    if customer.agreement_id is None:
        return (0, "", "", 0)
    return (1, customer.customer_number or "\uffff", customer.name, customer.agreement_id)


def build_lines(
    periods: Iterable[PeriodCharge],
    orders: Iterable[OrderLineCharge],
    book: PriceBook,
    currency: str,
    discount_percent: Decimal,
) -> list[Line]:
    """Lines of one account's invoice: per period one line per licence type (seats bought
    at its start x the seat's period price) and one per add-on enabled at its start;
    orders as they were priced. FIRM accounts pay reseller prices (list x (1 - discount))."""
    keyed: list[tuple[tuple[object, ...], Line]] = []
    for p in periods:
        seat_price = book.seat_price(p.edition_code, currency, p.start)
        unit = unit_period_price(seat_price, p.interval, p.mode, discount_percent)
        span = f"{p.start.isoformat()} to {(p.end - timedelta(days=1)).isoformat()}"
        for license_type, quantity in sorted(p.seats, key=lambda s: LICENSE_ORDER[s[0]]):
            if quantity <= 0:
                continue
            line = Line(p.customer.agreement_id, p.customer.customer_number,
                        f"{license_type.value} licences, {p.edition_code}, {span}", license_type, quantity, unit,
                        line_amount(quantity, unit))
            keyed.append(((_group_key(p.customer), 0, p.start, LICENSE_ORDER[license_type], ""), line))
        for code in sorted(p.features):
            monthly = book.feature_price(code, currency, p.start)
            if monthly == 0:
                continue
            unit = unit_period_price(monthly, p.interval, p.mode, discount_percent)
            name = book.features[code].name if code in book.features else code
            line = Line(p.customer.agreement_id, p.customer.customer_number, f"{name}, {span}", None, 1, unit,
                        line_amount(1, unit))
            keyed.append(((_group_key(p.customer), 0, p.start, 9, code), line))
    for o in orders:
        line = Line(o.customer.agreement_id, o.customer.customer_number,
                    f"Order {o.order_number} ({o.order_date.isoformat()}): {o.description}", o.license_type,
                    o.quantity, o.unit_price, o.amount)
        keyed.append(((_group_key(o.customer), 1, o.order_date, o.order_number, o.position), line))
    # The full line breaks ties, so that equal keys never leave the order to the input's.
    keyed.sort(key=lambda item: (item[0], item[1].description, item[1].quantity, item[1].unit_price,
                                 item[1].amount, item[1].customer_number or ""))
    return [line for _, line in keyed]


def total(lines: Iterable[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal("0.00"))


def month_period(month: tuple[int, int]) -> Period:
    return calendar_month(*month)


def months_ended(months: Iterable[tuple[int, int]], until: date) -> list[tuple[int, int]]:
    """The months whose (exclusive) end is on or before `until`, as periods end (R15)."""
    return sorted(m for m in set(months) if month_period(m).end <= until)
