"""Billing details (R23), kept on the firm and on each agreement."""

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column


class BillingDetailsColumns:
    billing_contact_name: Mapped[str | None] = mapped_column(String(200))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    invoice_street: Mapped[str | None] = mapped_column(String(200))
    invoice_postal_code: Mapped[str | None] = mapped_column(String(20))
    invoice_city: Mapped[str | None] = mapped_column(String(100))
    invoice_country: Mapped[str | None] = mapped_column(String(2))
    e_invoice_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    e_invoice_address: Mapped[str | None] = mapped_column(String(100))
    e_invoice_operator_code: Mapped[str | None] = mapped_column(String(50))
