"""Client companies."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from loaders import relations as r
from schema.context import Info
from schema.types.audit import AuditEvent
from schema.types.base import FromModel
from schema.types.common import Connection, Node, Role, connection, page_args
from schema.types.firms import Firm, load_firm

if TYPE_CHECKING:
    from schema.types.agreements import Agreement
    from schema.types.users import Membership

AgreementT = Annotated["Agreement", strawberry.lazy("schema.types.agreements")]
MembershipT = Annotated["Membership", strawberry.lazy("schema.types.users")]


@strawberry.type(description="A client company (administration) inside an agreement.")
class Company(Node, FromModel):
    model: strawberry.Private[models.Company]
    name: str
    organization_number: str | None
    vat_number: str | None
    country: str
    created_at: datetime
    archived_at: datetime | None = strawberry.field(description="Archived: every access ended; left out of lists "
                                                    "unless asked for; its history stays readable.")

    @strawberry.field
    async def firm(self, info: Info) -> Firm:
        return await load_firm(info, self.model.firm_id)

    @strawberry.field
    async def agreement(self, info: Info) -> AgreementT:
        from schema.types.agreements import Agreement

        row = await info.context.loaders.get(r.AgreementByIdLoader).load(self.model.agreement_id)
        if row is None:  # whoever reads a company reads its agreement (section 3)
            raise LookupError(f"agreement {self.model.agreement_id} not visible")
        return Agreement.from_model(row)

    @strawberry.field
    async def members(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        role: Role | None = None,  # type: ignore[valid-type]
    ) -> Connection[MembershipT]:
        from schema.types.users import Membership

        filters = (("role", role),) if role is not None else ()
        return await connection(info, r.MembershipsByCompanyLoader, self.model.id,
                                page_args(first, after, filters=filters), Membership.from_model)

    @strawberry.field
    async def audit_log(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]:
        return await connection(info, r.AuditEventsByCompanyLoader, self.model.id, page_args(first, after),
                                AuditEvent.from_model)
