"""Audit events (R29)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from loaders import relations as r
from schema.context import Info
from schema.types.base import FromModel
from schema.types.common import Node

if TYPE_CHECKING:
    from schema.types.users import User

UserT = Annotated["User", strawberry.lazy("schema.types.users")]


@strawberry.type
class AuditEvent(Node, FromModel):
    model: strawberry.Private[models.AuditEvent]
    occurred_at: datetime
    action: str = strawberry.field(description="e.g. subscription.seats_added, feature.enabled, company.moved")
    client_id: str | None
    summary: str
    subject_id: strawberry.ID | None = strawberry.field(description="The global ID of the entity changed.")
    before: str | None = strawberry.field(description="JSON of the changed values before and after.")
    after: str | None

    @strawberry.field
    async def actor(self, info: Info) -> UserT | None:
        from schema.types.users import User

        if self.model.actor_user_id is None:
            return None
        # The actor may be vendor staff the reader cannot otherwise see: then null.
        return User.maybe(await info.context.loaders.get(r.UserByIdLoader).load(self.model.actor_user_id))
