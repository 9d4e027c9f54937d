"""Billing details of a firm or a customer agreement (R23)."""

from licensing.billing_details import AddressValues, EInvoiceValues, billing_details_values
from models import Agreement, Firm
from resolvers.base import UnitOfWork, changes

_API_NAMES = {
    "billing_contact_name": "billingContactName",
    "billing_email": "billingEmail",
    "invoice_street": "invoiceAddress.street",
    "invoice_postal_code": "invoiceAddress.postalCode",
    "invoice_city": "invoiceAddress.city",
    "invoice_country": "invoiceAddress.country",
    "e_invoice_enabled": "eInvoice.enabled",
    "e_invoice_address": "eInvoice.address",
    "e_invoice_operator_code": "eInvoice.operatorCode",
}


async def update_billing_details(
    uow: UnitOfWork,
    owner: Agreement | Firm,
    *,
    billing_contact_name: str | None,
    billing_email: str | None,
    invoice_address: AddressValues,
    e_invoice: EInvoiceValues | None,
) -> Agreement | Firm:
    """The address is always replaced; None for the contact, the email or e-invoicing
    leaves what is stored. Company name and VAT number are not edited here."""
    values = billing_details_values(billing_contact_name=billing_contact_name, billing_email=billing_email,
                                    invoice_address=invoice_address, e_invoice=e_invoice)
    before, after = changes(owner, values)
    if after:
        kind = "Firm" if isinstance(owner, Firm) else "Agreement"
        uow.audit(
            "billing_details.updated", owner, f"{kind} {owner.name}: billing details updated",
            before={_API_NAMES[k]: v for k, v in before.items()},
            after={_API_NAMES[k]: v for k, v in after.items()},
            firm_id=owner.id if isinstance(owner, Firm) else owner.firm_id,
        )
    return owner
