"""A reference model of what licences cost, read from DESIGN.md section 2 (R7..R10, R12, R13,
R15, R24, Periods) and docs/RULES.md (R38..R41), written without looking at `licensing/`.

It is deliberately naive: plain Python, Decimal money rounded half-up to cents per line, and
one state per agreement that it advances day by day as the rules say time passes. The
property test (`tests/property/test_billing_property.py`) replays random activity on both the
server and this model and compares the invoices to the cent.

Accounts: a CUSTOMER agreement is billed on its own direct invoice (account ("CUSTOMER",
agreement)), a FIRM agreement on its firm's consolidated invoice (account ("FIRM", firm)).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MONTHLY, YEARLY = "MONTHLY", "YEARLY"
FIRM, CUSTOMER = "FIRM", "CUSTOMER"

Account = tuple[str, str]  # ("FIRM", firm) or ("CUSTOMER", agreement)


def cents(value: Decimal) -> Decimal:
    """Half-up to cents: the rounding of R7 and R24, applied once per line."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(anchor: date, months: int) -> date:
    """The anchor's day `months` later, clamped to the month's last day (the anchor is kept:
    31 January, 29 February, 31 March)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return add_months(month, 1)


def period_number(anchor: date, interval: str, k: int) -> tuple[date, date]:
    """The k-th period (0 first) of a subscription anchored on `anchor`; ends are exclusive."""
    step = 1 if interval == MONTHLY else 12
    return add_months(anchor, k * step), add_months(anchor, (k + 1) * step)


def period_months(interval: str) -> int:
    """A period's price is the monthly price x 1 (MONTHLY) or x 12 (YEARLY)."""
    return 1 if interval == MONTHLY else 12


def reseller(list_price: Decimal, discount_percent: Decimal) -> Decimal:
    """R24: list x (1 - discount/100), half-up to cents."""
    return cents(list_price * (1 - discount_percent / 100))


def prorated(quantity: int, unit: Decimal, start: date, end: date, on: date) -> Decimal:
    """R7: quantity x unit x remaining days / days in period, the day of the change included."""
    remaining = (end - on).days
    days = (end - start).days
    assert 0 < remaining <= days, (start, end, on)
    return cents(quantity * unit * remaining / days)


@dataclass(frozen=True)
class Catalog:
    """Monthly list prices in the firm's currency."""

    seat_prices: dict[str, Decimal]  # edition code -> monthly seat price
    addon_prices: dict[str, Decimal]  # feature or integration code -> monthly price (0: free)


@dataclass(frozen=True)
class Charge:
    """One invoice line to be: a period's seats or add-on, or an order line."""

    account: Account
    month: date  # the month it belongs to (R24): a period's last day's, an order's date's
    agreement: str
    kind: str  # "period" or "order"
    item: str  # "seats", or an add-on's code
    quantity: int
    list_unit: Decimal
    unit: Decimal
    amount: Decimal
    on: date  # the period's first day, or the order's date
    serial: int  # tells apart two charges that are otherwise the same

    def line(self) -> tuple[str, int, Decimal, Decimal]:
        """What an invoice line shows of it, for comparing with the server."""
        return (self.agreement, self.quantity, self.unit, self.amount)


@dataclass
class Invoice:
    firm: str
    account: Account
    month: date
    number: int
    charges: list[Charge]

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.charges), Decimal("0.00"))


@dataclass
class Subscription:
    """One agreement's licence: its stored period, what holds now and what is scheduled."""

    agreement: str
    interval: str
    anchor: date
    index: int  # the number of the current period
    seats: int  # NAMED seats purchased
    edition: str
    mode: str  # the billing mode in force (of the current period)
    addons: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)  # add-ons already paid for in the current period
    pending_seats: int | None = None
    pending_edition: str | None = None
    pending_mode: str | None = None
    cut: bool = False  # the last period change lowered the seats (a scheduled decrease)

    @property
    def period(self) -> tuple[date, date]:
        return period_number(self.anchor, self.interval, self.index)


@dataclass(frozen=True)
class Outcome:
    """What a request should do: refused with `error`, or done, with an order's amount when
    it charged at once and a scheduled change's kind when it waits."""

    error: str | None = None
    order: Decimal | None = None
    scheduled: str | None = None


class Model:
    """Firms, agreements, companies with their seat holders, subscriptions and invoices."""

    def __init__(self, catalog: Catalog, today: date) -> None:
        self.catalog = catalog
        self.today = today
        self.discounts: dict[str, Decimal] = {}
        self.firm_of: dict[str, str] = {}  # agreement -> firm
        self.company_agreement: dict[str, str] = {}
        self.holders: dict[str, int] = {}  # company -> distinct NAMED seat holders (INVITED or ACTIVE)
        self.subscriptions: dict[str, Subscription] = {}
        self.charges: list[Charge] = []
        self.placed: dict[int, Invoice] = {}  # charge serial -> the one invoice it is on
        self.invoices: list[Invoice] = []
        self.invoiced_until: dict[str, date] = {}  # firm -> first month not invoiced yet
        self._numbers: dict[str, int] = {}

    # ------------------------------------------------------------------ the world

    def add_firm(self, firm: str, discount_percent: Decimal) -> None:
        self.discounts[firm] = discount_percent
        self._numbers[firm] = 0
        self.invoiced_until[firm] = month_of(self.today)  # nothing of the firm lies before

    def add_agreement(self, firm: str, agreement: str) -> None:
        self.firm_of[agreement] = firm

    def add_company(self, agreement: str, company: str, holders: int) -> None:
        self.company_agreement[company] = agreement
        self.holders[company] = holders

    def in_use(self, agreement: str) -> int:
        """R13: distinct NAMED seat holders over the agreement's companies (each holder here is
        in one company only, so the count is a sum)."""
        return sum(n for company, n in self.holders.items() if self.company_agreement[company] == agreement)

    def subscribe(self, agreement: str, *, interval: str, starts_on: date, edition: str, seats: int,
                  mode: str) -> None:
        """createSubscription: nothing charged at once; its first period is recorded as it
        begins (R24). `starts_on` must lie in the period containing today."""
        sub = Subscription(agreement, interval, starts_on, 0, seats, edition, mode)
        start, end = sub.period
        assert start <= self.today < end, "the model starts subscriptions in their first period"
        self.subscriptions[agreement] = sub
        self._begin_period(sub)

    # ------------------------------------------------------------------ time

    def set_today(self, day: date) -> None:
        """Days pass: every period that ended begins the next (R15, R38: one truth, whether or not
        the rollover ran). The model never goes back in time."""
        assert day >= self.today
        self.today = day
        for sub in self.subscriptions.values():
            while sub.period[1] <= day:
                self._change_period(sub)

    def _change_period(self, sub: Subscription) -> None:
        """The period change: scheduled changes apply (R8, R9: max(scheduled, in use); R10; R41),
        then the next period begins."""
        before = sub.seats
        if sub.pending_seats is not None:
            sub.seats = max(sub.pending_seats, self.in_use(sub.agreement))
        sub.cut = sub.seats < before
        if sub.pending_edition is not None:
            sub.edition = sub.pending_edition
        if sub.pending_mode is not None:
            sub.mode = sub.pending_mode
        sub.pending_seats = sub.pending_edition = sub.pending_mode = None
        sub.index += 1
        self._begin_period(sub)

    def _begin_period(self, sub: Subscription) -> None:
        """R24, R39: a period is charged at what held on its first day: seats, edition price,
        add-ons and billing mode; it belongs to the month of its last day."""
        start, end = sub.period
        month = month_of(end - timedelta(days=1))
        months = period_months(sub.interval)
        seat_list = self.catalog.seat_prices[sub.edition] * months
        self._charge(sub, month, "period", "seats", sub.seats, seat_list, start)
        for code in sorted(sub.addons):
            price = self.catalog.addon_prices[code] * months
            if price:
                self._charge(sub, month, "period", code, 1, price, start)
        sub.paid = set(sub.addons)

    def _unit(self, sub: Subscription, list_unit: Decimal) -> Decimal:
        firm = self.firm_of[sub.agreement]
        return reseller(list_unit, self.discounts[firm]) if sub.mode == FIRM else list_unit

    def _account(self, sub: Subscription) -> Account:
        return (FIRM, self.firm_of[sub.agreement]) if sub.mode == FIRM else (CUSTOMER, sub.agreement)

    def _charge(self, sub: Subscription, month: date, kind: str, item: str, quantity: int, list_unit: Decimal,
                on: date, amount: Decimal | None = None) -> Charge:
        unit = self._unit(sub, list_unit)
        charge = Charge(self._account(sub), month, sub.agreement, kind, item, quantity, list_unit, unit,
                        quantity * unit if amount is None else amount, on, len(self.charges))
        self.charges.append(charge)
        return charge

    def _order(self, sub: Subscription, item: str, quantity: int, monthly: Decimal) -> Decimal:
        """R7, R12, R24: an order for the rest of the current period, priced like the invoice it
        lands on, in the billing mode of the current period (R41), on its date's month."""
        start, end = sub.period
        list_unit = monthly * period_months(sub.interval)
        amount = prorated(quantity, self._unit(sub, list_unit), start, end, self.today)
        self._charge(sub, month_of(self.today), "order", item, quantity, list_unit, self.today, amount)
        return amount

    # ------------------------------------------------------------------ changes

    def change_seats(self, agreement: str, seats: int) -> Outcome:
        sub = self.subscriptions[agreement]
        if seats < self.in_use(agreement):
            return Outcome(error="SEATS_BELOW_ACTIVE_USERS")  # R9
        if seats > sub.seats:  # R7: at once, for the rest of the period; a pending decrease ends
            amount = self._order(sub, "seats", seats - sub.seats, self.catalog.seat_prices[sub.edition])
            sub.seats, sub.pending_seats = seats, None
            return Outcome(order=amount)
        if seats == sub.seats:  # what is paid for already: a pending decrease is dropped (R7)
            sub.pending_seats = None
            return Outcome()
        sub.pending_seats = seats  # R8: at the next period, replacing any pending decrease
        return Outcome(scheduled="SEAT_DECREASE")

    def change_edition(self, agreement: str, edition: str) -> Outcome:
        sub = self.subscriptions[agreement]
        if sub.pending_edition is not None:
            return Outcome(error="EDITION_CHANGE_PENDING")  # R10, whatever edition it names
        assert edition != sub.edition, "the model only asks for another edition"
        sub.pending_edition = edition
        return Outcome(scheduled="EDITION_CHANGE")

    def cancel_edition_change(self, agreement: str) -> Outcome:
        sub = self.subscriptions[agreement]
        if sub.pending_edition is None:
            return Outcome(error="NOT_FOUND")
        sub.pending_edition = None
        return Outcome()

    def set_addon(self, agreement: str, code: str, enabled: bool) -> Outcome:
        """R12, R24, R39: enabling a paid add-on is prorated like R7, unless it is paid for in this
        period already (on the period's line or by an earlier order); disabling is immediate,
        with no credit."""
        sub = self.subscriptions[agreement]
        if not enabled:
            sub.addons.discard(code)
            return Outcome()
        if code in sub.addons:
            return Outcome()
        sub.addons.add(code)
        price = self.catalog.addon_prices[code]
        if not price or code in sub.paid:
            return Outcome()
        sub.paid.add(code)
        return Outcome(order=self._order(sub, code, 1, price))

    def change_billing_mode(self, agreement: str, mode: str) -> Outcome:
        """R24, R41: the new mode holds from the next period; asking for the mode in force drops a
        pending change."""
        sub = self.subscriptions[agreement]
        if mode == sub.mode:
            sub.pending_mode = None
            return Outcome()
        sub.pending_mode = mode
        return Outcome(scheduled="BILLING_MODE_CHANGE")

    def billing_mode(self, agreement: str) -> str:
        return self.subscriptions[agreement].mode

    def move_company(self, company: str, to_agreement: str) -> Outcome:
        """R5: the company's seat holders move with it; refused when the target's NAMED seats
        would not hold them."""
        assert self.firm_of[to_agreement] == self.firm_of[self.company_agreement[company]]
        target = self.subscriptions.get(to_agreement)
        purchased = target.seats if target else 0
        if self.in_use(to_agreement) + self.holders[company] > purchased and self.holders[company]:
            return Outcome(error="SEAT_LIMIT_REACHED")
        self.company_agreement[company] = to_agreement
        return Outcome()

    # ------------------------------------------------------------------ invoicing

    def rollover(self, until: date) -> list[Invoice]:
        """R15, R24, R40: every calendar month ended on or before `until` is invoiced, once; each
        account gets one invoice a month with everything of that month or earlier that no invoice
        holds yet (a charge of a month already invoiced goes on the account's next invoice);
        nothing to charge, no invoice; one gapless number series per firm. Returns the new ones."""
        assert until <= self.today, "the model runs the rollover on time or late, never ahead"
        issued: list[Invoice] = []
        for firm in sorted(self.discounts):
            month = self.invoiced_until[firm]
            while next_month(month) <= until:
                issued.extend(self._invoice_month(firm, month))
                month = next_month(month)
            self.invoiced_until[firm] = month
        return issued

    def _firm_of_account(self, account: Account) -> str:
        kind, owner = account
        return owner if kind == FIRM else self.firm_of[owner]

    def _invoice_month(self, firm: str, month: date) -> Iterable[Invoice]:
        waiting: dict[Account, list[Charge]] = {}
        for charge in self.charges:
            if charge.serial not in self.placed and charge.month <= month \
                    and self._firm_of_account(charge.account) == firm:
                waiting.setdefault(charge.account, []).append(charge)
        for account in sorted(waiting):
            self._numbers[firm] += 1
            invoice = Invoice(firm, account, month, self._numbers[firm], waiting[account])
            for charge in invoice.charges:
                self.placed[charge.serial] = invoice
            self.invoices.append(invoice)
            yield invoice

    def unplaced(self) -> list[Charge]:
        return [c for c in self.charges if c.serial not in self.placed]
