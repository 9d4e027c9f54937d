"""Monthly invoices in arrears (R24) and the rollover that issues them (R15).

Every charge (a period as it began, an order line) lands on exactly one invoice: its
billing account's invoice of its month, or, when that was issued already, the account's
next one (`licensing.invoicing.place`). Placing a charge settles it, so it is never looked
at again. An invoice is unique per firm, billing account and month, and is written under
the firm row's lock together with the settling of its charges; a second runner waits for
the lock, then finds nothing left. Numbers come from the firm's one gapless series. An
issued invoice keeps in its own rows everything it shows, so no later change alters it.
MARKETPLACE subscriptions are billed by the marketplace, never here (R11)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update

from licensing import invoicing
from licensing.catalog import PriceBook, load_price_book
from licensing.invoicing import Account, Customer, Line, Month, OrderLineCharge, PeriodCharge
from models import Agreement, Firm, Invoice, InvoiceLine, Order, OrderLine, Subscription, SubscriptionPeriod
from models.enums import BillingMode, InvoiceKind, LicenseType, SalesChannel
from resolvers.base import UnitOfWork


@dataclass
class Charges:
    periods: list[tuple[SubscriptionPeriod, PeriodCharge]] = field(default_factory=list)
    orders: list[tuple[Order, list[OrderLineCharge]]] = field(default_factory=list)


async def _customers(uow: UnitOfWork, firm: Firm, agreement_ids: set[int]) -> dict[int | None, Customer]:
    customers: dict[int | None, Customer] = {None: Customer(None, None, firm.name)}
    if agreement_ids:
        for row in (await uow.session.scalars(select(Agreement).where(Agreement.id.in_(agreement_ids)))).all():
            customers[row.id] = Customer(row.id, row.customer_number, row.name)
    return customers


def _feature_prices(text: str) -> tuple[tuple[str, Decimal], ...]:
    pairs = (item.partition("=") for item in text.split())
    return tuple((code, Decimal(price)) for code, _, price in pairs)


def period_charge(row: SubscriptionPeriod, customer: Customer) -> PeriodCharge:
    seats = ((LicenseType.NAMED, row.named_seats), (LicenseType.CONCURRENT, row.concurrent_seats),
             (LicenseType.CLIENT_USER, row.client_user_seats))
    return PeriodCharge(customer, row.start, row.end, row.edition_code, row.billing_interval, row.billing_mode,
                        seats, row.seat_price, _feature_prices(row.feature_prices), row.discount_percent, row.cut_on)


async def gather(uow: UnitOfWork, firm: Firm, *, unsettled_until: date | None = None,
                 month: Month | None = None) -> list[tuple[Account, Month, Charges]]:
    """A firm's charges by billing account and natural month: every charge not yet settled
    whose month ended by `unsettled_until`, or one month's charges (the preview)."""
    billable = Subscription.channel != SalesChannel.MARKETPLACE
    ends = func.coalesce(SubscriptionPeriod.cut_on, SubscriptionPeriod.end)  # a period cut short ends early
    period_query = (select(SubscriptionPeriod).join(Subscription, Subscription.id == SubscriptionPeriod.subscription_id)
                    .where(SubscriptionPeriod.firm_id == firm.id, billable))
    order_query = (select(Order, Subscription.agreement_id).join(Subscription, Subscription.id == Order.subscription_id)
                   .where(Order.firm_id == firm.id, billable))
    if unsettled_until is not None:
        period_query = period_query.where(SubscriptionPeriod.settled_at.is_(None), ends <= unsettled_until)
        order_query = order_query.where(Order.settled_at.is_(None), Order.order_date < unsettled_until)
    if month is not None:
        span = invoicing.month_period(month)
        period_query = period_query.where(ends > span.start, ends <= span.end)
        order_query = order_query.where(Order.order_date >= span.start, Order.order_date < span.end)
    periods = (await uow.session.scalars(period_query)).all()
    orders = (await uow.session.execute(order_query)).all()
    lines = defaultdict(list)
    if orders:
        for line in (await uow.session.scalars(select(OrderLine).where(
                OrderLine.order_id.in_([order.id for order, _ in orders])))).all():
            lines[line.order_id].append(line)
    customers = await _customers(uow, firm, {p.agreement_id for p in periods if p.agreement_id is not None}
                                 | {a for _, a in orders if a is not None})
    grouped: dict[tuple[str, Month], tuple[Account, Month, Charges]] = {}

    def bucket(account: Account, key_month: Month) -> Charges:
        key = (account.key, key_month)
        if key not in grouped:
            grouped[key] = (account, key_month, Charges())
        return grouped[key][2]

    for row in periods:
        charge = period_charge(row, customers.get(row.agreement_id, customers[None]))
        bucket(invoicing.account_of(row.billing_mode, charge.customer), charge.month).periods.append((row, charge))
    for order, agreement_id in orders:
        customer = customers.get(agreement_id, customers[None])
        charges = [OrderLineCharge(customer, order.number, order.order_date, order.billing_mode, line.position,
                                   line.description, line.license_type, line.quantity, line.list_unit_price,
                                   line.discount_percent, line.unit_price, line.amount, line.id)
                   for line in lines[order.id]]
        bucket(invoicing.account_of(order.billing_mode, customer), invoicing.month_of(order.order_date)
               ).orders.append((order, charges))
    return [grouped[key] for key in sorted(grouped, key=lambda k: (k[1], k[0]))]


def lines_of(charges: Charges, book: PriceBook) -> list[Line]:
    return invoicing.build_lines([c for _, c in charges.periods], [c for _, lines in charges.orders for c in lines],
                                 book)


async def issue_for_firm(uow: UnitOfWork, firm_id: int, until: date) -> int:
    """Issues every invoice of the firm whose month ended on or before `until`, with every
    charge not yet settled placed on its invoice."""
    firm = await uow.session.scalar(select(Firm).where(Firm.id == firm_id).with_for_update())
    if firm is None:
        return 0
    book = await load_price_book(uow.session)
    invoiced: dict[str, set[Month]] = defaultdict(set)
    for key, start in (await uow.session.execute(
            select(Invoice.billing_account, Invoice.period_start).where(
                Invoice.firm_id == firm_id, Invoice.kind == InvoiceKind.INVOICE))).all():  # credit notes aside
        invoiced[key].add((start.year, start.month))
    placed: dict[tuple[str, Month], tuple[Account, Charges]] = {}
    for account, natural, charges in await gather(uow, firm, unsettled_until=until):
        target = invoicing.place(natural, invoiced[account.key], until)
        if target is None:
            continue  # its account's next invoice is not due yet
        into = placed.setdefault((account.key, target), (account, Charges()))[1]
        into.periods += charges.periods
        into.orders += charges.orders
    now = uow.runtime.now()
    issued = 0
    for (_, month), (account, charges) in sorted(placed.items(), key=lambda item: (item[0][1], item[0][0])):
        lines = lines_of(charges, book)
        invoice_id = None
        if lines:  # nothing to charge, no invoice; the charges are settled all the same
            invoice_id = await _write_invoice(uow, firm, account, invoicing.month_period(month), lines)
            issued += 1
        for row, _ in charges.periods:
            row.invoice_id, row.settled_at = invoice_id, now
        for order, _ in charges.orders:
            order.invoice_id, order.settled_at = invoice_id, now
    await uow.session.flush()
    return issued


async def _write_invoice(uow: UnitOfWork, firm: Firm, account: Account, span: invoicing.Period,
                         lines: list[Line]) -> int:
    number = await uow.session.scalar(
        update(Firm).where(Firm.id == firm.id).values(last_invoice_number=Firm.last_invoice_number + 1)
        .returning(Firm.last_invoice_number))
    invoice = Invoice(
        firm_id=firm.id, agreement_id=account.agreement_id, billing_account=account.key, billing_mode=account.mode,
        number=f"I{number:06d}", period_start=span.start, period_end=span.end, currency=firm.currency,
        total=invoicing.total(lines), issued_at=uow.runtime.now())
    uow.session.add(invoice)
    await uow.session.flush()
    for position, line in enumerate(lines, 1):
        uow.session.add(InvoiceLine(
            firm_id=firm.id, invoice_id=invoice.id, position=position, agreement_id=line.agreement_id,
            agreement_name=line.agreement_name, customer_number=line.customer_number, description=line.description,
            license_type=line.license_type, quantity=line.quantity, list_unit_price=line.list_unit_price,
            discount_percent=line.discount_percent, unit_price=line.unit_price, amount=line.amount,
            order_line_id=line.order_line_id))
    uow.audit("invoice.issued", invoice, f"Invoice {invoice.number} for {span.start:%Y-%m} issued",
              after={"number": invoice.number, "account": account.key, "total": str(invoice.total)})
    return invoice.id


@dataclass(frozen=True)
class PreviewResult:
    period: invoicing.Period
    mode: BillingMode
    currency: str
    lines: list[Line]


async def preview(uow: UnitOfWork, firm_id: int, account: Account, month: Month) -> PreviewResult:
    """What the account's invoice for `month` would hold if it were issued now (the charges
    of that month; a late charge of an earlier month shows on the invoice it lands on)."""
    firm = await uow.session.get_one(Firm, firm_id)
    found = [charges for acc, _, charges in await gather(uow, firm, month=month) if acc.key == account.key]
    lines = lines_of(found[0], await load_price_book(uow.session)) if found else []
    return PreviewResult(invoicing.month_period(month), account.mode, firm.currency, lines)
