"""Webhook endpoints, their deliveries and attempts (R67-R71). Never a secret."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from licensing.webhooks import EventType, decode_types
from loaders import relations as r
from models import ids
from schema.context import Info
from schema.types.base import FromModel
from schema.types.common import Connection, Node, connection, page_args

if TYPE_CHECKING:
    from schema.types.firms import Firm

FirmT = Annotated["Firm", strawberry.lazy("schema.types.firms")]

WebhookEventType = strawberry.enum(EventType, name="WebhookEventType",
                                   description="What a webhook endpoint may subscribe to; the event's `type` in the "
                                   "body is the lower-case dotted name (e.g. seat_usage.changed).")


@strawberry.enum(description="Where a delivery stands: waiting (for its first or next try), delivered, or given "
                 "up after about a day of failures.")
class WebhookDeliveryStatus(Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"


@strawberry.type(description="An HTTPS endpoint of a partner integration that receives a firm's events, signed "
                 "with its secret (header Bureau-Signature: t=<unix>,v1=<HMAC-SHA256 hex of \"t.body\">).")
class WebhookEndpoint(Node, FromModel):
    model: strawberry.Private[models.WebhookEndpoint]
    url: str
    enabled: bool
    created_at: datetime
    secret_rolled_at: datetime | None
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="Until then the secret replaced by the last roll signs too (a second v1=).")

    @strawberry.field
    def event_types(self) -> list[EventType]:
        return decode_types(self.model.event_types)

    @strawberry.field
    async def firm(self, info: Info) -> FirmT:
        from schema.types.firms import load_firm

        return await load_firm(info, self.model.firm_id)

    @strawberry.field(description="Deliveries to this endpoint, newest first, with their attempts.")
    async def deliveries(self, info: Info, first: int | None = None,
                         after: str | None = None) -> Connection["WebhookDelivery"]:
        return await connection(info, r.WebhookDeliveriesByEndpointLoader, self.model.id, page_args(first, after),
                                WebhookDelivery.from_model)


@strawberry.type(description="One try of a delivery.")
class WebhookAttempt(FromModel):
    model: strawberry.Private[models.WebhookAttempt]
    attempted_at: datetime
    status_code: int | None = strawberry.field(description="The endpoint's HTTP status; null when none came.")
    error: str | None = strawberry.field(description="Why it failed (e.g. HTTP 500, timed out); null when it "
                                         "succeeded.")
    duration_ms: int


@strawberry.type(description="One event for one endpoint: retried with exponential backoff until the endpoint "
                 "answers 2xx, or given up (DEAD) after about a day.")
class WebhookDelivery(FromModel):
    model: strawberry.Private[models.WebhookDelivery]
    id: strawberry.ID
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    dead_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @strawberry.field(description="Attempts made so far.")
    def attempt_count(self) -> int:
        return int(self.model.attempts or 0)

    @strawberry.field
    def status(self) -> WebhookDeliveryStatus:
        if self.model.delivered_at is not None:
            return WebhookDeliveryStatus.DELIVERED
        if self.model.dead_at is not None:
            return WebhookDeliveryStatus.DEAD
        return WebhookDeliveryStatus.PENDING

    @strawberry.field(description="The delivery this one sends again (redeliverWebhook), if any.")
    def redelivery_of_id(self) -> strawberry.ID | None:
        pk = self.model.redelivery_of_id
        return None if pk is None else strawberry.ID(ids.encode("WebhookDelivery", pk))

    @strawberry.field(description="The event's unique id (evt_...): receivers drop one they have seen.")
    async def event_id(self, info: Info) -> str:
        return (await self._event(info)).event_key

    @strawberry.field
    async def event_type(self, info: Info) -> EventType:
        return EventType[(await self._event(info)).event_type]

    @strawberry.field(description="Increases with each event about the same subject: receivers drop an event "
                      "older than the newest they hold.")
    async def sequence(self, info: Info) -> int:
        return int((await self._event(info)).sequence)

    @strawberry.field(description="The global ID of what the event is about.")
    async def subject_id(self, info: Info) -> strawberry.ID:
        return strawberry.ID((await self._event(info)).subject_id)

    @strawberry.field(description="The tries so far, oldest first.")
    async def attempts(self, info: Info) -> list[WebhookAttempt]:
        rows = await info.context.loaders.get(r.WebhookAttemptsByDeliveryLoader).load(self.model.id)
        return [WebhookAttempt.from_model(row) for row in rows]

    async def _event(self, info: Info) -> models.WebhookEvent:
        row = await info.context.loaders.get(r.WebhookEventByIdLoader).load(self.model.event_id)
        assert row is not None  # the delivery is visible, so is its event (the same firm)
        return row  # type: ignore[no-any-return]
