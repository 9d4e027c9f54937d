"""Pure form of the billing-details rule (R23)."""

from typing import Any

import pytest

from licensing.billing_details import AddressValues, EInvoiceValues, billing_details_values
from licensing.errors import RuleViolation
from models.enums import UserErrorCode

ADDRESS = AddressValues("Storgatan 1", "111 22", "Stockholm", "se")
E_INVOICE = EInvoiceValues(True, "0007:5567321707", "PEPPOL")


def values(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"billing_contact_name": "Anna", "billing_email": "billing@x.example",
                            "invoice_address": ADDRESS, "e_invoice": None}
    args.update(overrides)
    return billing_details_values(**args)


def refusal(**overrides: Any) -> tuple[UserErrorCode, list[str]]:
    with pytest.raises(RuleViolation) as caught:
        values(**overrides)
    return caught.value.code, caught.value.field


def test_a_complete_address_is_stored_with_the_country_upper_cased() -> None:
    stored = values()
    assert stored == {"invoice_street": "Storgatan 1", "invoice_postal_code": "111 22", "invoice_city": "Stockholm",
                      "invoice_country": "SE", "billing_contact_name": "Anna", "billing_email": "billing@x.example"}


@pytest.mark.parametrize(("blank", "name"), [("street", "street"), ("postal_code", "postalCode"), ("city", "city")])
def test_physical_address_is_required(blank: str, name: str) -> None:
    address = AddressValues(**{**ADDRESS.__dict__, blank: "  "})
    assert refusal(invoice_address=address) == (UserErrorCode.INVOICE_ADDRESS_REQUIRED,
                                                ["input", "invoiceAddress", name])


def test_physical_address_is_required_with_e_invoicing() -> None:
    address = AddressValues("", "111 22", "Stockholm", "SE")
    assert refusal(invoice_address=address, e_invoice=E_INVOICE) == (
        UserErrorCode.INVOICE_ADDRESS_REQUIRED, ["input", "invoiceAddress", "street"])


def test_e_invoicing_needs_address_and_operator_code() -> None:
    assert refusal(e_invoice=EInvoiceValues(True, None, "PEPPOL")) == (
        UserErrorCode.E_INVOICE_DETAILS_REQUIRED, ["input", "eInvoice", "address"])
    assert refusal(e_invoice=EInvoiceValues(True, "0007:5567321707", " ")) == (
        UserErrorCode.E_INVOICE_DETAILS_REQUIRED, ["input", "eInvoice", "operatorCode"])
    assert values(e_invoice=E_INVOICE)["e_invoice_enabled"] is True
    # switched off, nothing more is needed
    off = values(e_invoice=EInvoiceValues(False, None, None))
    assert (off["e_invoice_enabled"], off["e_invoice_address"], off["e_invoice_operator_code"]) == (False, None, None)


def test_country_is_an_iso_alpha_2_code() -> None:
    address = AddressValues("Storgatan 1", "111 22", "Stockholm", "Sweden")
    assert refusal(invoice_address=address) == (UserErrorCode.INVALID_INPUT, ["input", "invoiceAddress", "country"])


def test_billing_email_must_be_an_email_and_blank_clears_it() -> None:
    assert refusal(billing_email="not an email") == (UserErrorCode.INVALID_INPUT, ["input", "billingEmail"])
    assert values(billing_email=" ")["billing_email"] is None
    assert values(billing_email=" Billing@X.example ")["billing_email"] == "Billing@X.example"


def test_absent_contact_email_and_e_invoice_leave_what_is_stored() -> None:
    stored = values(billing_contact_name=None, billing_email=None, e_invoice=None)
    assert set(stored) == {"invoice_street", "invoice_postal_code", "invoice_city", "invoice_country"}


def test_overlong_values_are_refused_not_truncated() -> None:
    address = AddressValues("Storgatan 1", "1" * 21, "Stockholm", "SE")
    assert refusal(invoice_address=address) == (UserErrorCode.INVALID_INPUT,
                                                ["input", "invoiceAddress", "postalCode"])
