"""Billing details, orders and invoices."""

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from auth.policy import sees_reseller_prices
from loaders import relations as r
from models.billing_details import BillingDetailsColumns
from models.enums import BillingMode as BillingModeEnum
from models.enums import PriceBasis as PriceBasisEnum
from schema.context import Info
from schema.types.base import FromModel
from schema.types.common import BillingMode, InvoiceKind, Money, Node

if TYPE_CHECKING:
    from licensing.invoicing import Account, Line
    from schema.types.agreements import Agreement

AgreementT = Annotated["Agreement", strawberry.lazy("schema.types.agreements")]


@strawberry.type
class Address:
    street: str
    postal_code: str
    city: str
    country: str


@strawberry.type
class EInvoiceSettings:
    enabled: bool
    address: str | None
    operator_code: str | None


@strawberry.type
class BillingDetails:
    billing_contact_name: str | None
    billing_email: str | None
    invoice_address: Address | None
    e_invoice: EInvoiceSettings | None

    @classmethod
    def of(cls, owner: BillingDetailsColumns) -> "BillingDetails | None":
        address = None
        if owner.invoice_street is not None:
            address = Address(
                street=owner.invoice_street,
                postal_code=owner.invoice_postal_code or "",
                city=owner.invoice_city or "",
                country=owner.invoice_country or "",
            )
        if address is None and owner.billing_contact_name is None and owner.billing_email is None:
            return None
        return cls(
            billing_contact_name=owner.billing_contact_name,
            billing_email=owner.billing_email,
            invoice_address=address,
            e_invoice=EInvoiceSettings(
                enabled=owner.e_invoice_enabled,
                address=owner.e_invoice_address,
                operator_code=owner.e_invoice_operator_code,
            ),
        )


@strawberry.type
class BillingPeriod:
    start: date
    end: date = strawberry.field(description="Exclusive.")


def basis_of(info: Info, billing_mode: BillingModeEnum, firm_id: int) -> PriceBasisEnum:
    """FIRM prices are reseller prices, which only the firm's staff (and the vendor) may see."""
    if billing_mode is BillingModeEnum.FIRM and sees_reseller_prices(info.context.principal, firm_id):
        return PriceBasisEnum.RESELLER
    return PriceBasisEnum.LIST


def invoice_line(row: "models.InvoiceLine | Line", currency: str, basis: PriceBasisEnum,
                 credited: int | None = None) -> "InvoiceLine":
    """An issued line (its own row holds all it shows) or a preview's, alike."""
    position = row.position if isinstance(row, models.InvoiceLine) else 0
    return InvoiceLine(agreement_pk=row.agreement_id, position=position, credited_line_position=credited,
                       agreement_name=row.agreement_name,
                       customer_number=row.customer_number, description=row.description, quantity=row.quantity,
                       list_unit_price=Money(amount=row.list_unit_price, currency=currency),
                       discount_percent=row.discount_percent,
                       unit_price=Money(amount=row.unit_price, currency=currency, basis=basis),
                       amount=Money(amount=row.amount, currency=currency, basis=basis))


@strawberry.type
class OrderLine:
    description: str
    quantity: int
    unit_price: Money
    amount: Money


@strawberry.type(description="An order confirmation: created at once when seats or paid add-ons are added.")
class Order(Node, FromModel):
    model: strawberry.Private[models.Order]
    number: str
    created_at: datetime

    def _basis(self, info: Info) -> PriceBasisEnum:
        return basis_of(info, self.model.billing_mode, self.model.firm_id)

    @strawberry.field(description="At the price the viewer may see: a FIRM agreement's company members see list "
                      "prices (Money.basis says which).")
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await info.context.loaders.get(r.OrderLinesByOrderLoader).load(self.model.id)
        basis, currency = self._basis(info), self.model.currency
        listed = basis is PriceBasisEnum.LIST
        return [OrderLine(description=row.description, quantity=row.quantity,
                          unit_price=Money(amount=row.list_unit_price if listed else row.unit_price,
                                           currency=currency, basis=basis),
                          amount=Money(amount=row.list_amount if listed else row.amount, currency=currency,
                                       basis=basis))
                for row in sorted(rows, key=lambda line: line.position)]

    @strawberry.field
    def total(self, info: Info) -> Money:
        basis = self._basis(info)
        amount = self.model.list_total if basis is PriceBasisEnum.LIST else self.model.total
        return Money(amount=amount, currency=self.model.currency, basis=basis)


@strawberry.type
class InvoiceLine:
    agreement_pk: strawberry.Private[int | None]
    position: int = strawberry.field(description="The line's number on its invoice (a credit note names it).")
    credited_line_position: int | None = strawberry.field(
        description="On a credit note: the position of the credited invoice's line it corrects.")
    agreement_name: str = strawberry.field(description="The agreement's name when the invoice was issued (the firm's "
                                           "own name for its master licence): an issued invoice never changes.")
    customer_number: str | None
    description: str
    quantity: int
    list_unit_price: Money = strawberry.field(description="The unit's list price, before any reseller discount.")
    discount_percent: Decimal = strawberry.field(description="The reseller discount in force for the charge (0 on "
                                                 "a direct invoice).")
    unit_price: Money
    amount: Money

    @strawberry.field
    async def agreement(self, info: Info) -> AgreementT | None:
        from schema.types.agreements import Agreement

        if self.agreement_pk is None:
            return None
        return Agreement.maybe(await info.context.loaders.get(r.AgreementByIdLoader).load(self.agreement_pk))


@strawberry.type
class Invoice(Node, FromModel):
    model: strawberry.Private[models.Invoice]
    number: str
    billing_mode: BillingMode = strawberry.field(  # type: ignore[valid-type]
        description="FIRM for a consolidated invoice to the firm, CUSTOMER for a direct invoice."
    )
    issued_at: datetime

    @strawberry.field
    def period(self) -> BillingPeriod:
        return BillingPeriod(start=self.model.period_start, end=self.model.period_end)

    def _basis(self) -> PriceBasisEnum:
        # Only the firm's staff see a consolidated (FIRM) invoice at all (auth.visibility).
        return PriceBasisEnum.RESELLER if self.model.billing_mode is BillingModeEnum.FIRM else PriceBasisEnum.LIST

    kind: InvoiceKind = strawberry.field(  # type: ignore[valid-type]
        description="INVOICE, or CREDIT_NOTE: a correction with negative lines against an issued invoice.")
    reason: str | None = strawberry.field(description="Why a credit note was issued.")

    @strawberry.field
    async def lines(self, info: Info) -> list[InvoiceLine]:
        loader = info.context.loaders.get(r.InvoiceLinesByInvoiceLoader)
        rows = await loader.load(self.model.id)
        positions: dict[int, int] = {}
        if self.model.credited_invoice_id is not None:
            positions = {row.id: row.position for row in await loader.load(self.model.credited_invoice_id)}
        return [invoice_line(row, self.model.currency, self._basis(), positions.get(row.credited_line_id or 0))
                for row in sorted(rows, key=lambda line: line.position)]

    @strawberry.field(description="On a credit note: the invoice it corrects.")
    async def credited_invoice(self, info: Info) -> "Invoice | None":
        if self.model.credited_invoice_id is None:
            return None
        return Invoice.maybe(await info.context.loaders.get(r.InvoiceByIdLoader).load(self.model.credited_invoice_id))

    @strawberry.field
    def total(self) -> Money:
        return Money(amount=self.model.total, currency=self.model.currency, basis=self._basis())


__all__ = ["Address", "BillingDetails", "BillingPeriod", "Decimal", "EInvoiceSettings", "Invoice", "InvoiceLine",
           "Order", "OrderLine"]


@strawberry.type(description="An invoice not yet issued: no number, nothing stored.")
class InvoicePreview:
    period: BillingPeriod
    billing_mode: BillingMode  # type: ignore[valid-type]
    lines: list[InvoiceLine]
    total: Money


async def upcoming_invoice(info: Info, firm_id: int, account: "Account", owner: object) -> InvoicePreview | None:
    """The account's invoice for the current month as it would be issued now (a rolled-back
    read of the same builder the rollover uses), for callers who may read invoices."""
    from auth.policy import Action, is_allowed, tenancy_of
    from licensing.periods import month_of
    from resolvers.base import run_in_transaction
    from resolvers.invoicing import preview

    context = info.context
    if not is_allowed(context.principal, Action.READ_SUBSCRIPTION, tenancy_of(owner)):
        return None
    month = month_of(context.db.now.date())
    outcome = await run_in_transaction(context.runtime, context.principal,
                                       lambda uow: preview(uow, firm_id, account, month), dry_run=True)
    result = outcome.value
    if result is None:
        return None
    basis = PriceBasisEnum.RESELLER if result.mode is BillingModeEnum.FIRM else PriceBasisEnum.LIST
    lines = [invoice_line(line, result.currency, basis) for line in result.lines]
    return InvoicePreview(period=BillingPeriod(start=result.period.start, end=result.period.end),
                          billing_mode=result.mode, lines=lines,
                          total=Money(amount=sum((line.amount for line in result.lines), Decimal("0.00")),
                                      currency=result.currency, basis=basis))
