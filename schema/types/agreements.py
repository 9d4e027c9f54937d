"""Customer agreements."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from loaders import relations as r
from schema.context import Info
from schema.types.base import FromModel
from schema.types.billing import BillingDetails, Invoice, InvoicePreview, upcoming_invoice
from schema.types.charges import ChargeableAccess, ChargeLine, charge_breakdown, chargeable_accesses
from schema.types.common import BillingMode, Connection, Node, archived_filter, connection, page_args
from schema.types.firms import Firm, load_firm
from schema.types.transfers import AgreementTransfer

if TYPE_CHECKING:
    from schema.types.companies import Company
    from schema.types.subscriptions import LicenseSubscription
    from schema.types.users import User

CompanyT = Annotated["Company", strawberry.lazy("schema.types.companies")]
UserT = Annotated["User", strawberry.lazy("schema.types.users")]
SubscriptionT = Annotated["LicenseSubscription", strawberry.lazy("schema.types.subscriptions")]


@strawberry.type(description="A customer agreement: groups a customer's companies for licensing and invoicing.")
class Agreement(Node, FromModel):
    model: strawberry.Private[models.Agreement]
    name: str
    customer_number: str | None = strawberry.field(
        description="The customer's number in the firm's own sales ledger, used to re-invoice licence and "
        "transaction costs."
    )
    billing_mode: BillingMode  # type: ignore[valid-type]
    created_at: datetime
    archived_at: datetime | None = strawberry.field(description="Archived: left out of lists unless asked for; "
                                                    "its history stays readable.")

    @strawberry.field
    async def firm(self, info: Info) -> Firm:
        return await load_firm(info, self.model.firm_id)

    @strawberry.field
    async def primary_contact(self, info: Info) -> UserT | None:
        from schema.types.users import User

        if self.model.primary_contact_id is None:
            return None
        return User.maybe(await info.context.loaders.get(r.UserByIdLoader).load(self.model.primary_contact_id))

    @strawberry.field
    async def subscription(self, info: Info) -> SubscriptionT | None:
        from schema.types.subscriptions import LicenseSubscription

        row = await info.context.loaders.get(r.SubscriptionByAgreementLoader).load(self.model.id)
        return LicenseSubscription.maybe(row)

    @strawberry.field
    async def companies(
        self, info: Info, first: int | None = None, after: str | None = None, include_archived: bool = False
    ) -> Connection[CompanyT]:
        from schema.types.companies import Company

        return await connection(info, r.CompaniesByAgreementLoader, self.model.id,
                                page_args(first, after, filters=archived_filter(include_archived)), Company.from_model)

    @strawberry.field(description="Companies that are not archived.")
    async def company_count(self, info: Info) -> int:
        return int(await info.context.loaders.get(r.CompanyCountByAgreementLoader).load(self.model.id))

    @strawberry.field(description="The open transfer offer of the agreement, if any (offered, or accepted and "
                      "waiting for its date).")
    async def transfer(self, info: Info) -> AgreementTransfer | None:
        return AgreementTransfer.maybe(await info.context.loaders.get(r.OpenTransferByAgreementLoader)
                                       .load(self.model.id))

    @strawberry.field
    def billing_details(self) -> BillingDetails | None:
        return BillingDetails.of(self.model)

    @strawberry.field(description="Distinct users needing a seat, per licence type: a user with access to several "
                      "companies of this agreement counts once.")
    async def chargeable_accesses(self, info: Info) -> list[ChargeableAccess]:
        return await chargeable_accesses(info, self.model.id)

    @strawberry.field(description="Why each user needs a seat: one line per user and licence type, with the "
                      "companies that access covers.")
    async def charge_breakdown(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ChargeLine]:
        return await charge_breakdown(info, self.model.id, page_args(first, after))

    @strawberry.field(description="Direct invoices of a CUSTOMER agreement (consolidated ones are on the firm).")
    async def invoices(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Invoice]:
        return await connection(info, r.InvoicesByAgreementLoader, self.model.id, page_args(first, after),
                                Invoice.from_model)

    @strawberry.field(description="What the direct invoice of the current month would hold if it were issued "
                      "now; null for FIRM agreements.")
    async def upcoming_invoice(self, info: Info) -> InvoicePreview | None:
        from licensing.invoicing import Account
        from models.enums import BillingMode as Mode

        if self.model.billing_mode is Mode.FIRM:
            return None
        return await upcoming_invoice(info, self.model.firm_id, Account(Mode.CUSTOMER, self.model.id), self.model)
