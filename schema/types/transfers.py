"""A transfer offer of an agreement to another firm."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from loaders import relations as r
from schema.context import Info
from schema.types.base import FromModel
from schema.types.common import Node, TransferStatus

if TYPE_CHECKING:
    from schema.types.agreements import Agreement

AgreementT = Annotated["Agreement", strawberry.lazy("schema.types.agreements")]


@strawberry.type(description="An agreement offered by its firm (or the vendor) to another firm. Accepted, it moves "
                 "with its companies, memberships and subscription at the start of its next period.")
class AgreementTransfer(Node, FromModel):
    model: strawberry.Private[models.AgreementTransfer]
    status: TransferStatus  # type: ignore[valid-type]
    offered_at: datetime
    expires_at: datetime = strawberry.field(description="An offer not accepted by then lapses.")
    effective_on: date | None = strawberry.field(description="When an accepted transfer moves the agreement.")
    customer_number: str | None = strawberry.field(description="The receiving firm's number for the customer.")

    async def _names(self, info: Info) -> tuple[str, str, str]:
        names: tuple[str, str, str] = await info.context.loaders.get(r.TransferNamesLoader).load(self.model.id)
        return names

    @strawberry.field(description="What the receiving firm needs to decide, before it may read the agreement.")
    async def agreement_name(self, info: Info) -> str:
        return (await self._names(info))[0]

    @strawberry.field
    async def from_firm_name(self, info: Info) -> str:
        return (await self._names(info))[1]

    @strawberry.field
    async def to_firm_name(self, info: Info) -> str:
        return (await self._names(info))[2]

    @strawberry.field(description="The agreement, for whoever may read it (the receiving firm once it has moved).")
    async def agreement(self, info: Info) -> AgreementT | None:
        from schema.types.agreements import Agreement

        return Agreement.maybe(await info.context.loaders.get(r.AgreementByIdLoader).load(self.model.agreement_id))
