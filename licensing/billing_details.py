"""Billing details (R23) as a plain function: the checked column values of a firm's or an
agreement's billing details. Company name and VAT number are not edited here."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from licensing.errors import Problems, RuleViolation
from licensing.identity import blank, normalize_email
from licensing.validation import optional_text, require_country, require_text
from models.enums import UserErrorCode


@dataclass(frozen=True)
class AddressValues:
    street: str
    postal_code: str
    city: str
    country: str


@dataclass(frozen=True)
class EInvoiceValues:
    enabled: bool
    address: str | None
    operator_code: str | None


def check_invoice_address(address: AddressValues, field: Sequence[str]) -> dict[str, str]:
    """A physical invoice address is always required, also with e-invoicing; every wrong part
    of it is reported (R53)."""
    problems = Problems()
    for name, value in (("street", address.street), ("postalCode", address.postal_code), ("city", address.city)):
        if blank(value):
            problems.found.append(RuleViolation(
                UserErrorCode.INVOICE_ADDRESS_REQUIRED,
                "A physical invoice address (street, postal code and city) is required, also with e-invoicing.",
                [*field, name],
            ))
    values = {
        "invoice_street": problems.check(require_text, address.street, [*field, "street"], "Street", 200)
        if not blank(address.street) else "",
        "invoice_postal_code": problems.check(require_text, address.postal_code, [*field, "postalCode"],
                                              "Postal code", 20) if not blank(address.postal_code) else "",
        "invoice_city": problems.check(require_text, address.city, [*field, "city"], "City", 100)
        if not blank(address.city) else "",
        "invoice_country": problems.check(require_country, address.country, [*field, "country"]),
    }
    problems.done()
    return values


def check_e_invoice(e_invoice: EInvoiceValues, field: Sequence[str]) -> dict[str, Any]:
    """Enabling e-invoicing needs an e-invoice address and an operator code."""
    if e_invoice.enabled:
        for name, value in (("address", e_invoice.address), ("operatorCode", e_invoice.operator_code)):
            if blank(value):
                raise RuleViolation(
                    UserErrorCode.E_INVOICE_DETAILS_REQUIRED,
                    "E-invoicing needs an e-invoice address and an operator code.",
                    [*field, name],
                )
    return {
        "e_invoice_enabled": e_invoice.enabled,
        "e_invoice_address": optional_text(e_invoice.address, [*field, "address"], "E-invoice address", 100),
        "e_invoice_operator_code": optional_text(e_invoice.operator_code, [*field, "operatorCode"],
                                                 "Operator code", 50),
    }


def check_billing_email(value: str, field: Sequence[str]) -> str | None:
    """Blank clears it; otherwise it must look like an email (stored as given, trimmed)."""
    if blank(value):
        return None
    normalize_email(value, field)
    return value.strip()


def billing_details_values(
    *,
    billing_contact_name: str | None,
    billing_email: str | None,
    invoice_address: AddressValues,
    e_invoice: EInvoiceValues | None,
    field: Sequence[str] = ("input",),
) -> dict[str, Any]:
    """The column values to store. None for the contact, the email or e-invoicing leaves
    what is stored; a blank contact or email clears it. The address is always replaced."""
    problems = Problems()
    values: dict[str, Any] = problems.check(check_invoice_address, invoice_address, [*field, "invoiceAddress"]) or {}
    if billing_contact_name is not None:
        values["billing_contact_name"] = problems.check(
            optional_text, billing_contact_name, [*field, "billingContactName"], "Billing contact name", 200
        )
    if billing_email is not None:
        values["billing_email"] = problems.check(check_billing_email, billing_email, [*field, "billingEmail"])
    if e_invoice is not None:
        values.update(problems.check(check_e_invoice, e_invoice, [*field, "eInvoice"]) or {})
    problems.done()
    return values
