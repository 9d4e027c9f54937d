"""Monthly invoices in arrears (R24) and the rollover that issues them (R15).

Exactly once: an invoice is unique per firm, billing account and month, and is written
under the firm row's lock together with the links that mark its periods and orders as
invoiced; a second runner waits for the lock, then finds the invoice and does nothing.
Numbers come from the firm's one gapless series, advanced in the same transaction."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, update

from licensing import invoicing
from licensing.catalog import PriceBook, load_price_book
from licensing.invoicing import Account, Customer, Line, OrderLineCharge, PeriodCharge
from models import Agreement, Firm, Invoice, InvoiceLine, Order, OrderLine, Subscription, SubscriptionPeriod
from models.enums import BillingMode, LicenseType
from resolvers.base import UnitOfWork

Month = tuple[int, int]


@dataclass
class Charges:
    periods: list[tuple[SubscriptionPeriod, PeriodCharge]] = field(default_factory=list)
    orders: list[tuple[Order, list[OrderLineCharge]]] = field(default_factory=list)


async def _customers(uow: UnitOfWork, agreement_ids: set[int]) -> dict[int | None, Customer]:
    customers: dict[int | None, Customer] = {None: Customer(None, None, "Firm licence")}
    if agreement_ids:
        for row in (await uow.session.scalars(select(Agreement).where(Agreement.id.in_(agreement_ids)))).all():
            customers[row.id] = Customer(row.id, row.customer_number, row.name)
    return customers


def period_charge(row: SubscriptionPeriod, customer: Customer) -> PeriodCharge:
    seats = ((LicenseType.NAMED, row.named_seats), (LicenseType.CONCURRENT, row.concurrent_seats),
             (LicenseType.CLIENT_USER, row.client_user_seats))
    return PeriodCharge(customer, row.start, row.end, row.edition_code, row.billing_interval, row.billing_mode,
                        seats, tuple(row.features.split()))


async def gather(uow: UnitOfWork, firm_id: int, *, uninvoiced_before: date | None = None,
                 month: Month | None = None) -> dict[tuple[str, Month], tuple[Account, Charges]]:
    """A firm's periods and orders grouped by billing account and month: either everything
    not yet invoiced whose month ended before `uninvoiced_before`, or one month's (preview)."""
    period_query = select(SubscriptionPeriod).where(SubscriptionPeriod.firm_id == firm_id)
    order_query = select(Order, Subscription.agreement_id).join(Subscription, Subscription.id == Order.subscription_id
                                                                ).where(Order.firm_id == firm_id)
    if uninvoiced_before is not None:
        period_query = period_query.where(SubscriptionPeriod.invoice_id.is_(None),
                                          SubscriptionPeriod.end <= uninvoiced_before)
        order_query = order_query.where(Order.invoice_id.is_(None), Order.order_date < uninvoiced_before)
    if month is not None:
        span = invoicing.month_period(month)
        period_query = period_query.where(SubscriptionPeriod.end > span.start, SubscriptionPeriod.end <= span.end)
        order_query = order_query.where(Order.order_date >= span.start, Order.order_date < span.end)
    periods = (await uow.session.scalars(period_query)).all()
    orders = (await uow.session.execute(order_query)).all()
    lines = defaultdict(list)
    if orders:
        for line in (await uow.session.scalars(select(OrderLine).where(
                OrderLine.order_id.in_([order.id for order, _ in orders])))).all():
            lines[line.order_id].append(line)
    customers = await _customers(uow, {p.agreement_id for p in periods if p.agreement_id is not None}
                                 | {a for _, a in orders if a is not None})
    grouped: dict[tuple[str, Month], tuple[Account, Charges]] = {}

    def bucket(account: Account, key_month: Month) -> Charges:
        key = (account.key, key_month)
        if key not in grouped:
            grouped[key] = (account, Charges())
        return grouped[key][1]

    for row in periods:
        charge = period_charge(row, customers.get(row.agreement_id, customers[None]))
        bucket(invoicing.account_of(row.billing_mode, charge.customer), charge.month).periods.append((row, charge))
    for order, agreement_id in orders:
        customer = customers.get(agreement_id, customers[None])
        charges = [OrderLineCharge(customer, order.number, order.order_date, order.billing_mode, line.position,
                                   line.description, line.license_type, line.quantity, line.unit_price, line.amount)
                   for line in lines[order.id]]
        bucket(invoicing.account_of(order.billing_mode, customer), invoicing.month_of(order.order_date)
               ).orders.append((order, charges))
    return grouped


def lines_of(charges: Charges, book: PriceBook, firm: Firm) -> list[Line]:
    # The discount applies only to FIRM-mode periods (see unit_period_price); orders were priced when placed.
    return invoicing.build_lines([c for _, c in charges.periods], [c for _, lines in charges.orders for c in lines],
                                 book, firm.currency, firm.reseller_discount_percent)


async def issue_for_firm(uow: UnitOfWork, firm_id: int, until: date) -> int:
    """Issues every invoice of the firm whose month ended on or before `until`."""
    firm = await uow.session.scalar(select(Firm).where(Firm.id == firm_id).with_for_update())
    if firm is None:
        return 0
    book = await load_price_book(uow.session)
    issued = 0
    grouped = await gather(uow, firm_id, uninvoiced_before=until)
    for (account_key, month), (account, charges) in sorted(grouped.items(), key=lambda item: (item[0][1],
                                                                                              item[0][0])):
        span = invoicing.month_period(month)
        if span.end > until:
            continue
        exists = await uow.session.scalar(select(Invoice.id).where(
            Invoice.firm_id == firm_id, Invoice.billing_account == account_key, Invoice.period_start == span.start))
        lines = lines_of(charges, book, firm)
        invoice_id = exists
        if exists is None and lines:
            invoice_id = await _write_invoice(uow, firm, account, span, lines)
            issued += 1
        # Link even when nothing was charged, so these rows are not looked at again.
        for row, _ in charges.periods:
            row.invoice_id = invoice_id
        for order, _ in charges.orders:
            order.invoice_id = invoice_id
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
            customer_number=line.customer_number, description=line.description, license_type=line.license_type,
            quantity=line.quantity, unit_price=line.unit_price, amount=line.amount))
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
    """What the account's invoice for `month` would hold if it were issued now."""
    firm = await uow.session.get_one(Firm, firm_id)
    grouped = await gather(uow, firm_id, month=month)
    found = grouped.get((account.key, month))
    lines = lines_of(found[1], await load_price_book(uow.session), firm) if found else []
    return PreviewResult(invoicing.month_period(month), account.mode, firm.currency, lines)
