"""Invoice lines (R24) from what each period and order held, as pure functions.

Where a charge goes (`account_of` and `place`) and what its lines are (`build_lines`) depend
only on the charge and on which invoices exist, never on when the rollover ran or in which
order requests came. The same functions build an issued invoice and the preview of the
month in progress, and their output never depends on the order in which charges are given."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from licensing.catalog import PriceBook
from licensing.money import line_amount, prorate
from licensing.periods import Period, add_months, calendar_month, month_of
from licensing.subscriptions import unit_period_price
from models.enums import BillingInterval, BillingMode, LicenseType

Month = tuple[int, int]

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
    """A period as it began: its seats and add-ons at the prices and discount then in force."""

    customer: Customer
    start: date
    end: date
    edition_code: str
    interval: BillingInterval
    mode: BillingMode
    seats: tuple[tuple[LicenseType, int], ...]
    seat_price: Decimal  # monthly list price of a seat
    features: tuple[tuple[str, Decimal], ...]  # (code, monthly list price)
    discount_percent: Decimal  # the firm's, for a FIRM period; 0 otherwise
    cut_on: date | None = None  # cut short (an immediate cancellation): charged for the days before it

    @property
    def last_day(self) -> date:
        return (self.cut_on if self.cut_on is not None else self.end) - timedelta(days=1)

    @property
    def month(self) -> tuple[int, int]:
        """A period belongs to the month of its last day (of the days charged, when cut short)."""
        return month_of(self.last_day)

    def charge(self, quantity: int, unit: Decimal) -> Decimal:
        """quantity x unit, or when cut short its share for the days charged (R7's proration)."""
        if self.cut_on is None:
            return line_amount(quantity, unit)
        return prorate(unit, quantity, (self.cut_on - self.start).days, (self.end - self.start).days)


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
    list_unit_price: Decimal
    discount_percent: Decimal
    unit_price: Decimal
    amount: Decimal
    order_line_id: int | None = None


@dataclass(frozen=True)
class Line:
    """An invoice line with everything it shows, so that an issued invoice needs nothing else."""

    agreement_id: int | None
    agreement_name: str
    customer_number: str | None
    description: str
    license_type: LicenseType | None
    quantity: int
    list_unit_price: Decimal
    discount_percent: Decimal
    unit_price: Decimal
    amount: Decimal
    order_line_id: int | None = None  # the order line it bills, if any


def account_of(mode: BillingMode, customer: Customer) -> Account:
    """Who pays a charge: a FIRM one goes on the firm's consolidated invoice, a CUSTOMER one on
    its agreement's direct invoice. The mode is the charge's own (the period's at its start,
    the order's when placed), so a later change of mode never moves it."""
    return Account(mode) if mode is BillingMode.FIRM else Account(mode, customer.agreement_id)


def place(natural: Month, invoiced: set[Month], until: date) -> Month | None:
    """The month whose invoice a charge of one account goes on: its own month (R24); when
    that month's invoice of the account was issued already, the account's next invoice, the
    first later month that has ended by `until` and has no invoice yet. None: the charge
    waits for a later rollover. `invoiced` is the account's months with an issued invoice."""
    month = natural
    while month in invoiced:
        month = month_of(add_months(date(*month, 1), 1))
    return month if month_period(month).end <= until else None


def _group_key(customer: Customer) -> tuple[int, str, str, int]:
    # The firm's own licence first, then customers by number (none last), name and id.
    if customer.agreement_id is None:
        return (0, "", "", 0)
    return (1, customer.customer_number or "\uffff", customer.name, customer.agreement_id)


def build_lines(periods: Iterable[PeriodCharge], orders: Iterable[OrderLineCharge], book: PriceBook) -> list[Line]:
    """Lines of one account's invoice: per period one line per licence type (seats bought at
    its start x the seat's period price) and one per paid add-on enabled at its start, at
    the prices and discount in force at the period's start; orders as they were priced. FIRM
    periods pay reseller prices (list x (1 - discount), half-up to cents per unit). `book`
    gives only add-on names."""
    keyed: list[tuple[tuple[object, ...], Line]] = []
    for p in periods:
        if p.cut_on is not None and p.cut_on <= p.start:
            continue  # cut before it began: nothing to charge
        unit = unit_period_price(p.seat_price, p.interval, p.mode, p.discount_percent)
        list_unit = unit_period_price(p.seat_price, p.interval, BillingMode.CUSTOMER, Decimal(0))
        span = f"{p.start.isoformat()} to {p.last_day.isoformat()}"
        if p.cut_on is not None:
            span += f" ({(p.cut_on - p.start).days} of {(p.end - p.start).days} days)"
        for license_type, quantity in sorted(p.seats, key=lambda s: LICENSE_ORDER[s[0]]):
            if quantity <= 0:
                continue
            line = Line(p.customer.agreement_id, p.customer.name, p.customer.customer_number,
                        f"{license_type.value} licences, {p.edition_code}, {span}", license_type, quantity,
                        list_unit, p.discount_percent, unit, p.charge(quantity, unit))
            keyed.append(((_group_key(p.customer), 0, p.start, LICENSE_ORDER[license_type], ""), line))
        for code, monthly in sorted(p.features):
            if monthly == 0:
                continue
            unit = unit_period_price(monthly, p.interval, p.mode, p.discount_percent)
            list_unit = unit_period_price(monthly, p.interval, BillingMode.CUSTOMER, Decimal(0))
            name = book.features[code].name if code in book.features else code
            line = Line(p.customer.agreement_id, p.customer.name, p.customer.customer_number, f"{name}, {span}", None,
                        1, list_unit, p.discount_percent, unit, p.charge(1, unit))
            keyed.append(((_group_key(p.customer), 0, p.start, 9, code), line))
    for o in orders:
        line = Line(o.customer.agreement_id, o.customer.name, o.customer.customer_number,
                    f"Order {o.order_number} ({o.order_date.isoformat()}): {o.description}", o.license_type,
                    o.quantity, o.list_unit_price, o.discount_percent, o.unit_price, o.amount, o.order_line_id)
        keyed.append(((_group_key(o.customer), 1, o.order_date, o.order_number, o.position), line))
    # The full line breaks ties, so that equal keys never leave the order to the input's.
    keyed.sort(key=lambda item: (item[0], item[1].description, item[1].quantity, item[1].list_unit_price,
                                 item[1].discount_percent, item[1].unit_price, item[1].amount,
                                 item[1].customer_number or "", item[1].agreement_name))
    return [line for _, line in keyed]


def total(lines: Iterable[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal("0.00"))


def month_period(month: tuple[int, int]) -> Period:
    return calendar_month(*month)


def months_ended(months: Iterable[tuple[int, int]], until: date) -> list[tuple[int, int]]:
    """The months whose (exclusive) end is on or before `until`, as periods end (R15)."""
    return sorted(m for m in set(months) if month_period(m).end <= until)
