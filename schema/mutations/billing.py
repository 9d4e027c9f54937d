"""Billing details of a firm or a customer agreement (R23)."""

from decimal import Decimal

import strawberry

from auth.policy import Action
from licensing.billing_details import AddressValues, EInvoiceValues
from models import Invoice as InvoiceRow
from resolvers import billing_details, credit_notes
from resolvers.credit_notes import Credit
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, owner_target, run, user_errors
from schema.types.billing import BillingDetails, Invoice


@strawberry.input
class AddressInput:
    street: str
    postal_code: str
    city: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")

    def values(self) -> AddressValues:
        return AddressValues(self.street, self.postal_code, self.city, self.country)


@strawberry.input
class EInvoiceInput:
    enabled: bool
    address: str | None = None
    operator_code: str | None = None

    def values(self) -> EInvoiceValues:
        return EInvoiceValues(self.enabled, self.address, self.operator_code)


@strawberry.input
class UpdateBillingDetailsInput:
    owner_id: strawberry.ID = strawberry.field(description="A customer agreement or a firm.")
    billing_contact_name: str | None = strawberry.field(default=None, description="Blank clears it.")
    billing_email: str | None = strawberry.field(default=None, description="Blank clears it.")
    invoice_address: AddressInput = strawberry.field(
        description="A physical address is always required, also with e-invoicing."
    )
    e_invoice: EInvoiceInput | None = strawberry.field(
        default=None, description="Enabling e-invoicing needs an e-invoice address and operator code; "
        "absent leaves the e-invoice settings as they are."
    )


@strawberry.input
class CreditLineInput:
    position: int = strawberry.field(description="The line's position on the invoice.")
    amount: Decimal | None = strawberry.field(
        default=None, description="How much of it to credit; absent: all that is left of it.")


@strawberry.input
class IssueCreditNoteInput:
    invoice_id: strawberry.ID
    lines: list[CreditLineInput]
    reason: str
    idempotency_key: str | None = None


@strawberry.type
class CreditNotePayload:
    credit_note: Invoice | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BillingDetailsPayload:
    billing_details: BillingDetails | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BillingMutations:
    @mutation(Action.BILLING_DETAILS)
    async def update_billing_details(self, info: Info, input: UpdateBillingDetailsInput) -> BillingDetailsPayload:
        target = owner_target(input.owner_id)
        outcome = await run(info, target, lambda uow, owner: billing_details.update_billing_details(
            uow, owner, billing_contact_name=input.billing_contact_name, billing_email=input.billing_email,
            invoice_address=input.invoice_address.values(),
            e_invoice=input.e_invoice.values() if input.e_invoice is not None else None), input=input)
        owner = outcome.value
        return BillingDetailsPayload(billing_details=BillingDetails.of(owner) if owner is not None else None,
                                     user_errors=user_errors(outcome))

    @mutation(Action.PLATFORM, description="Vendor back office (platform:admin): a credit note against an issued "
              "invoice, with negative lines for the lines (or amounts) credited; the invoice itself never changes.")
    async def issue_credit_note(self, info: Info, input: IssueCreditNoteInput) -> CreditNotePayload:
        outcome = await run(info, Target(InvoiceRow, input.invoice_id, "invoiceId"), lambda uow, invoice:
                            credit_notes.issue_credit_note(uow, invoice, [
                                Credit(line.position, line.amount) for line in input.lines], input.reason),
                            input=input)
        return CreditNotePayload(credit_note=Invoice.maybe(outcome.value), user_errors=user_errors(outcome))
