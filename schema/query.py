"""The Query root."""

from collections.abc import Callable
from typing import Any

import strawberry

from loaders import relations as r
from loaders.base import ByIdLoader
from models import ids
from schema.context import Info
from schema.types.agreements import Agreement
from schema.types.audit import AuditEvent
from schema.types.billing import Invoice, Order
from schema.types.catalog import Catalog, callers_prices
from schema.types.common import Node
from schema.types.companies import Company
from schema.types.firms import ClientUser, Firm, FirmMember
from schema.types.subscriptions import LicenseSession, LicenseSubscription
from schema.types.transfers import AgreementTransfer
from schema.types.users import Membership, User
from schema.types.viewer import Viewer

# Global ID type -> (loader, GraphQL type, scope needed to read it). `node` answers null
# for a type whose read scope the token lacks, as for any object the caller may not see.
NODE_TYPES: dict[str, tuple[type[ByIdLoader[Any]], Callable[[Any], Any], str]] = {
    "Firm": (r.FirmByIdLoader, Firm.from_model, "firms:read"),
    "FirmMember": (r.FirmMemberByIdLoader, FirmMember.from_model, "firms:read"),
    "ClientUser": (r.ClientUserByIdLoader, ClientUser.from_model, "firms:read"),
    "Agreement": (r.AgreementByIdLoader, Agreement.from_model, "agreements:read"),
    "Company": (r.CompanyByIdLoader, Company.from_model, "companies:read"),
    "User": (r.UserByIdLoader, User.from_model, "users:read"),
    "Membership": (r.MembershipByIdLoader, Membership.from_model, "users:read"),
    "LicenseSubscription": (r.SubscriptionByIdLoader, LicenseSubscription.from_model, "subscriptions:read"),
    "LicenseSession": (r.LicenseSessionByIdLoader, LicenseSession.from_model, "subscriptions:read"),
    "Order": (r.OrderByIdLoader, Order.from_model, "billing:read"),
    "Invoice": (r.InvoiceByIdLoader, Invoice.from_model, "billing:read"),
    "AuditEvent": (r.AuditEventByIdLoader, AuditEvent.from_model, "audit:read"),
    "AgreementTransfer": (r.AgreementTransferByIdLoader, AgreementTransfer.from_model, "agreements:read"),
}


async def load_node(info: Info, global_id: str, *expected: str) -> Any:
    try:
        type_name, pk = ids.decode(global_id)
    except ids.InvalidId:
        return None
    if expected and type_name not in expected:
        return None
    spec = NODE_TYPES.get(type_name)
    if spec is None:
        return None
    loader, convert, scope = spec
    if not info.context.principal.has_scope(scope):
        return None
    row = await info.context.loaders.get(loader).load(pk)
    return None if row is None else convert(row)


@strawberry.type
class Query:
    @strawberry.field(description="Fetch any entity by its global ID; null when it does not exist or the caller "
                      "may not see it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await load_node(info, id)  # type: ignore[no-any-return]

    @strawberry.field
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return [await load_node(info, global_id) for global_id in ids]

    @strawberry.field(description="Who is calling: the user (absent for client-credentials tokens), the OAuth "
                      "client and its granted scopes.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(client_id=principal.client_id, scopes=sorted(principal.scopes))

    @strawberry.field
    async def firm(self, info: Info, id: strawberry.ID) -> Firm | None:
        return await load_node(info, id, "Firm")  # type: ignore[no-any-return]

    @strawberry.field
    async def agreement(self, info: Info, id: strawberry.ID) -> Agreement | None:
        return await load_node(info, id, "Agreement")  # type: ignore[no-any-return]

    @strawberry.field
    async def company(self, info: Info, id: strawberry.ID) -> Company | None:
        return await load_node(info, id, "Company")  # type: ignore[no-any-return]

    @strawberry.field(description="Editions, add-ons and prices that can be subscribed to.")
    async def catalog(self, info: Info) -> Catalog:
        return Catalog.of(*await callers_prices(info))
