"""The Query root."""

import asyncio
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError

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
from schema.types.webhooks import WebhookEndpoint

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
    "WebhookEndpoint": (r.WebhookEndpointByIdLoader, WebhookEndpoint.from_model, "firms:read"),
}


def _lookup(info: Info, global_id: str, expected: tuple[str, ...] = ()) -> tuple[Any, int, Callable[[Any], Any]] | None:
    """The loader, key and conversion of an ID the caller may read; None for any other ID."""
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
    return info.context.loaders.get(loader), pk, convert


async def load_node(info: Info, global_id: str, *expected: str) -> Any:
    found = _lookup(info, global_id, expected)
    if found is None:
        return None
    loader, pk, convert = found
    row = await loader.load(pk)
    return None if row is None else convert(row)


async def load_nodes(info: Info, global_ids: list[strawberry.ID]) -> list[Any]:
    """R59: at most BUREAU_MAX_NODE_IDS, and one query per type however many are asked for."""
    limit = info.context.runtime.settings.limits.max_node_ids
    if len(global_ids) > limit:
        raise GraphQLError(f"`nodes` takes at most {limit} IDs.", extensions={"code": "TOO_MANY_IDS"})
    found = [_lookup(info, global_id) for global_id in global_ids]
    by_loader: dict[Any, list[int]] = {}
    for item in found:
        if item is not None:
            by_loader.setdefault(item[0], []).append(item[1])
    batches = await asyncio.gather(*(loader.load_many(pks) for loader, pks in by_loader.items()))
    rows = {(loader, pk): row for (loader, pks), batch in zip(by_loader.items(), batches, strict=True)
            for pk, row in zip(pks, batch, strict=True)}
    answers: list[Any] = []
    for item in found:
        row = None if item is None else rows[(item[0], item[1])]
        answers.append(None if item is None or row is None else item[2](row))
    return answers


@strawberry.type
class Query:
    @strawberry.field(description="Fetch any entity by its global ID; null when it does not exist or the caller "
                      "may not see it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await load_node(info, id)  # type: ignore[no-any-return]

    @strawberry.field
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return await load_nodes(info, ids)

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
