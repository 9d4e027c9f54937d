"""Firm, its staff and its client users."""

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from loaders import relations as r
from models.enums import BillingMode as BillingModeEnum
from schema.context import Info
from schema.types.base import FromModel
from schema.types.billing import BillingDetails, InvoicePreview, upcoming_invoice
from schema.types.common import Connection, FirmRole, Node, archived_filter, connection, page_args

if TYPE_CHECKING:
    from schema.types.agreements import Agreement
    from schema.types.audit import AuditEvent
    from schema.types.billing import Invoice
    from schema.types.companies import Company
    from schema.types.subscriptions import LicenseSubscription
    from schema.types.transfers import AgreementTransfer
    from schema.types.users import User
    from schema.types.webhooks import WebhookEndpoint

AgreementT = Annotated["Agreement", strawberry.lazy("schema.types.agreements")]
CompanyT = Annotated["Company", strawberry.lazy("schema.types.companies")]
UserT = Annotated["User", strawberry.lazy("schema.types.users")]
SubscriptionT = Annotated["LicenseSubscription", strawberry.lazy("schema.types.subscriptions")]
InvoiceT = Annotated["Invoice", strawberry.lazy("schema.types.billing")]
AuditEventT = Annotated["AuditEvent", strawberry.lazy("schema.types.audit")]
AgreementTransferT = Annotated["AgreementTransfer", strawberry.lazy("schema.types.transfers")]
WebhookEndpointT = Annotated["WebhookEndpoint", strawberry.lazy("schema.types.webhooks")]


@strawberry.type(description="An accounting or administration firm (partner) that manages client companies.")
class Firm(Node, FromModel):
    model: strawberry.Private[models.Firm]
    name: str
    organization_number: str | None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")
    currency: str
    has_reseller_agreement: bool = strawberry.field(
        description="A signed reseller agreement lets the firm take its clients' invoices on one consolidated "
        "invoice at reseller prices."
    )
    is_certified: bool = strawberry.field(
        description="The firm has completed the training required to issue client-user licences."
    )
    reseller_discount_percent: Decimal = strawberry.field(
        description="Discount off list prices on the consolidated invoice.")

    @strawberry.field(description="The firm's own master licence: its concurrent seats and the client-user "
                      "licences it may hand out.")
    async def master_subscription(self, info: Info) -> SubscriptionT | None:
        from schema.types.subscriptions import LicenseSubscription

        row = await info.context.loaders.get(r.MasterSubscriptionByFirmLoader).load(self.model.id)
        return LicenseSubscription.maybe(row)

    @strawberry.field
    async def agreements(
        self, info: Info, first: int | None = None, after: str | None = None, search: str | None = None,
        include_archived: bool = False,
    ) -> Connection[AgreementT]:
        from schema.types.agreements import Agreement

        args = page_args(first, after, search, filters=archived_filter(include_archived))
        return await connection(info, r.AgreementsByFirmLoader, self.model.id, args, Agreement.from_model)

    @strawberry.field
    async def companies(
        self, info: Info, first: int | None = None, after: str | None = None, search: str | None = None,
        include_archived: bool = False,
    ) -> Connection[CompanyT]:
        from schema.types.companies import Company

        args = page_args(first, after, search, filters=archived_filter(include_archived))
        return await connection(info, r.CompaniesByFirmLoader, self.model.id, args, Company.from_model)

    @strawberry.field(description="Agreements other firms offered this firm that it may still accept, or that "
                      "wait for their date.")
    async def incoming_transfers(self, info: Info) -> list[AgreementTransferT]:
        from schema.types.transfers import AgreementTransfer

        rows = await info.context.loaders.get(r.OpenTransfersByFirmLoader).load(self.model.id)
        return [AgreementTransfer.from_model(row) for row in rows]

    @strawberry.field
    async def staff(self, info: Info, first: int | None = None, after: str | None = None) -> Connection["FirmMember"]:
        return await connection(info, r.StaffByFirmLoader, self.model.id, page_args(first, after),
                                FirmMember.from_model)

    @strawberry.field
    async def client_users(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection["ClientUser"]:
        return await connection(info, r.ClientUsersByFirmLoader, self.model.id, page_args(first, after),
                                ClientUser.from_model)

    @strawberry.field(description="The firm's webhook endpoints (its FIRM_ADMINs only).")
    async def webhook_endpoints(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[WebhookEndpointT]:
        from schema.types.webhooks import WebhookEndpoint

        return await connection(info, r.WebhookEndpointsByFirmLoader, self.model.id, page_args(first, after),
                                WebhookEndpoint.from_model)

    @strawberry.field
    def billing_details(self) -> BillingDetails | None:
        return BillingDetails.of(self.model)

    @strawberry.field
    async def invoices(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[InvoiceT]:
        """The firm's consolidated invoices; direct ones are on their agreements."""
        from schema.types.billing import Invoice

        consolidated = (("billing_mode", BillingModeEnum.FIRM),)
        return await connection(info, r.InvoicesByFirmLoader, self.model.id,
                                page_args(first, after, filters=consolidated), Invoice.from_model)

    @strawberry.field(description="What the consolidated invoice of the current month would hold if it were "
                      "issued now.")
    async def upcoming_invoice(self, info: Info) -> InvoicePreview | None:
        from licensing.invoicing import Account

        return await upcoming_invoice(info, self.model.id, Account(BillingModeEnum.FIRM), self.model)

    @strawberry.field
    async def audit_log(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEventT]:
        from schema.types.audit import AuditEvent

        return await connection(info, r.AuditEventsByFirmLoader, self.model.id, page_args(first, after),
                                AuditEvent.from_model)


async def load_firm(info: Info, pk: int) -> Firm:
    row = await info.context.loaders.get(r.FirmByIdLoader).load(pk)
    if row is None:  # the parent was visible, so its firm is: a broken invariant
        raise LookupError(f"firm {pk} not visible")
    return Firm.from_model(row)


async def load_user(info: Info, pk: int) -> UserT:
    from schema.types.users import User

    row = await info.context.loaders.get(r.UserByIdLoader).load(pk)
    if row is None:
        raise LookupError(f"user {pk} not visible")
    return User.from_model(row)


@strawberry.type
class FirmMember(Node, FromModel):
    model: strawberry.Private[models.FirmMember]
    role: FirmRole  # type: ignore[valid-type]

    @strawberry.field
    async def firm(self, info: Info) -> Firm:
        return await load_firm(info, self.model.firm_id)

    @strawberry.field
    async def user(self, info: Info) -> UserT:
        return await load_user(info, self.model.user_id)


@strawberry.type(
    description="A client-user licence of a firm: one named person who may work in at most five of the firm's "
    "client companies."
)
class ClientUser(Node, FromModel):
    model: strawberry.Private[models.ClientUser]

    @strawberry.field
    async def firm(self, info: Info) -> Firm:
        return await load_firm(info, self.model.firm_id)

    @strawberry.field
    async def user(self, info: Info) -> UserT:
        return await load_user(info, self.model.user_id)

    @strawberry.field
    async def companies(self, info: Info) -> list[CompanyT]:
        from schema.types.companies import Company

        links = await info.context.loaders.get(r.CompanyLinksByClientUserLoader).load(self.model.id)
        rows = await info.context.loaders.get(r.CompanyByIdLoader).load_many([link.company_id for link in links])
        return [Company.from_model(row) for row in rows if row is not None]

    @strawberry.field
    def max_companies(self) -> int:
        from licensing.client_users import MAX_COMPANIES

        return MAX_COMPANIES
