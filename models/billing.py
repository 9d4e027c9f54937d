"""Orders (charged at once) and invoices (monthly, in arrears)."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, MoneyType, UTCDateTime, enum_type
from models.enums import BillingMode, InvoiceKind, LicenseType


class Order(IdMixin, CreatedMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("firm_id", "number"), Index(None, "subscription_id", "id"),
                      Index(None, "invoice_id", "order_date"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    # Billing history is never deleted: a subscription with orders stays (R24, issued invoices never change).
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="RESTRICT"))
    number: Mapped[str] = mapped_column(String(30))
    order_date: Mapped[date] = mapped_column(Date)
    # How the order is priced: list (CUSTOMER) or reseller (FIRM), as the invoice it lands on (R24).
    billing_mode: Mapped[BillingMode] = mapped_column(enum_type(BillingMode))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(MoneyType())
    # The total at list price (see OrderLine.list_amount).
    list_total: Mapped[Decimal] = mapped_column(MoneyType())
    # The invoice the order is on (its month's, or the account's next when that was issued already).
    invoice_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoices.id", ondelete="SET NULL"))
    # When the order was placed on an invoice: it is never looked at again.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"
    __table_args__ = (Index(None, "order_id"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(300))
    license_type: Mapped[LicenseType | None] = mapped_column(enum_type(LicenseType))
    feature_code: Mapped[str | None] = mapped_column(String(50))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(MoneyType())
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    # The same line at list price. A FIRM agreement's order is at the reseller price, which
    # only the firm's staff may see; its company members are shown these instead.
    list_unit_price: Mapped[Decimal] = mapped_column(MoneyType())
    list_amount: Mapped[Decimal] = mapped_column(MoneyType())
    # The firm's reseller discount on the order's date (0 for a CUSTOMER order).
    discount_percent: Mapped[Decimal] = mapped_column(MoneyType())


class Invoice(IdMixin, Base):
    """Issued once per billing account and month; never changed afterwards (R24). A credit
    note is an invoice of its own (kind CREDIT_NOTE): negative lines against an issued one,
    numbered in the same series, in the month it was issued."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("firm_id", "number"),
        # "firm" for the consolidated invoice, "agreement:<id>" for a direct one: exactly once (R15).
        Index("uq_invoices_one_per_account_and_month", "firm_id", "billing_account", "period_start", unique=True,
              postgresql_where=text("kind = 'INVOICE'"), sqlite_where=text("kind = 'INVOICE'")),
        Index(None, "agreement_id", "id"),
        Index(None, "firm_id", "id"),
        Index(None, "credited_invoice_id"),
    )

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    agreement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("agreements.id", ondelete="RESTRICT"))
    billing_account: Mapped[str] = mapped_column(String(40))
    billing_mode: Mapped[BillingMode] = mapped_column(enum_type(BillingMode))
    number: Mapped[str] = mapped_column(String(30))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(MoneyType())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[InvoiceKind] = mapped_column(enum_type(InvoiceKind), default=InvoiceKind.INVOICE)
    credited_invoice_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoices.id", ondelete="RESTRICT"))
    reason: Mapped[str | None] = mapped_column(String(500))


class InvoiceLine(IdMixin, Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (Index(None, "invoice_id"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    # An issued invoice keeps everything it shows in its own rows: no later change alters it.
    agreement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("agreements.id", ondelete="RESTRICT"))
    agreement_name: Mapped[str] = mapped_column(String(200))
    customer_number: Mapped[str | None] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(String(300))
    license_type: Mapped[LicenseType | None] = mapped_column(enum_type(LicenseType))
    quantity: Mapped[int] = mapped_column(Integer)
    list_unit_price: Mapped[Decimal] = mapped_column(MoneyType())
    discount_percent: Mapped[Decimal] = mapped_column(MoneyType())
    unit_price: Mapped[Decimal] = mapped_column(MoneyType())
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    # On a credit note: the line of the credited invoice it corrects.
    credited_line_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoice_lines.id", ondelete="RESTRICT"))
    # The order line it bills, if it bills one (a cancellation credits what is left of it).
    order_line_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("order_lines.id", ondelete="RESTRICT"))
