"""Webhook mutations (R67, R69, R71): a firm's admins only; another firm's endpoint is NOT_FOUND."""

import strawberry

from auth.policy import Action
from licensing.webhooks import EventType
from models import Firm as FirmRow
from models import WebhookDelivery as WebhookDeliveryRow
from models import WebhookEndpoint as WebhookEndpointRow
from resolvers import webhooks
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.webhooks import WebhookDelivery, WebhookEndpoint

SECRET_NOTE = "The signing secret (whsec_...): shown here once, never again; keep it in the receiver."  # noqa: S105 - words


@strawberry.input
class CreateWebhookEndpointInput:
    firm_id: strawberry.ID
    url: str = strawberry.field(description="https://...; plain http only to a loopback host in development.")
    event_types: list[EventType]


@strawberry.input
class UpdateWebhookEndpointInput:
    webhook_endpoint_id: strawberry.ID
    url: str | None = None
    event_types: list[EventType] | None = None
    enabled: bool | None = strawberry.field(default=None, description="A disabled endpoint gets nothing new; "
                                            "what waits for it goes once it is enabled again.")


@strawberry.input
class DeleteWebhookEndpointInput:
    webhook_endpoint_id: strawberry.ID


@strawberry.input
class RollWebhookSecretInput:
    webhook_endpoint_id: strawberry.ID
    overlap_seconds: int | None = strawberry.field(
        default=None, description="How long the current secret keeps signing beside the new one (a second v1=): "
        "0 to 604800, 86400 when absent.")


@strawberry.input
class RedeliverWebhookInput:
    delivery_id: strawberry.ID


@strawberry.type
class CreateWebhookEndpointPayload:
    webhook_endpoint: WebhookEndpoint | None = None
    secret: str | None = strawberry.field(default=None, description=SECRET_NOTE)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookEndpointPayload:
    webhook_endpoint: WebhookEndpoint | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteWebhookEndpointPayload:
    deleted_webhook_endpoint_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RollWebhookSecretPayload:
    webhook_endpoint: WebhookEndpoint | None = None
    secret: str | None = strawberry.field(default=None, description=SECRET_NOTE)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _endpoint(global_id: strawberry.ID, lock: bool = False) -> Target:
    return Target(WebhookEndpointRow, global_id, "webhookEndpointId", lock=lock)


@strawberry.type
class WebhookMutations:
    @mutation(Action.MANAGE_WEBHOOKS, description="Registers an endpoint for the firm's events; answers its signing "
              "secret, once.")
    async def create_webhook_endpoint(self, info: Info,
                                      input: CreateWebhookEndpointInput) -> CreateWebhookEndpointPayload:
        outcome = await run(info, Target(FirmRow, input.firm_id, "firmId"), lambda uow, firm: webhooks.create_endpoint(
            uow, firm, url=input.url, event_types=input.event_types), input=input)
        endpoint, secret = outcome.value if outcome.value is not None else (None, None)
        return CreateWebhookEndpointPayload(webhook_endpoint=WebhookEndpoint.maybe(endpoint), secret=secret,
                                            user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_WEBHOOKS)
    async def update_webhook_endpoint(self, info: Info, input: UpdateWebhookEndpointInput) -> WebhookEndpointPayload:
        outcome = await run(info, _endpoint(input.webhook_endpoint_id, lock=True),
                            lambda uow, endpoint: webhooks.update_endpoint(
                                uow, endpoint, url=input.url, event_types=input.event_types, enabled=input.enabled),
                            input=input)
        return WebhookEndpointPayload(webhook_endpoint=WebhookEndpoint.maybe(outcome.value),
                                      user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_WEBHOOKS, description="Removes an endpoint with its delivery history.")
    async def delete_webhook_endpoint(self, info: Info,
                                      input: DeleteWebhookEndpointInput) -> DeleteWebhookEndpointPayload:
        outcome = await run(info, _endpoint(input.webhook_endpoint_id, lock=True), webhooks.delete_endpoint,
                            input=input)
        return DeleteWebhookEndpointPayload(
            deleted_webhook_endpoint_id=strawberry.ID(outcome.value) if outcome.value else None,
            user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_WEBHOOKS, description="Makes a new signing secret and answers it, once; the current "
              "one keeps signing beside it for the overlap.")
    async def roll_webhook_secret(self, info: Info, input: RollWebhookSecretInput) -> RollWebhookSecretPayload:
        outcome = await run(info, _endpoint(input.webhook_endpoint_id, lock=True),
                            lambda uow, endpoint: webhooks.roll_secret(uow, endpoint,
                                                                       overlap_seconds=input.overlap_seconds),
                            input=input)
        endpoint, secret = outcome.value if outcome.value is not None else (None, None)
        return RollWebhookSecretPayload(webhook_endpoint=WebhookEndpoint.maybe(endpoint), secret=secret,
                                        user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_WEBHOOKS, description="Sends a delivery's event again (same id and sequence), as a new "
              "delivery with its own retries.")
    async def redeliver_webhook(self, info: Info, input: RedeliverWebhookInput) -> RedeliverWebhookPayload:
        outcome = await run(info, Target(WebhookDeliveryRow, input.delivery_id, "deliveryId"), webhooks.redeliver,
                            input=input)
        return RedeliverWebhookPayload(delivery=WebhookDelivery.maybe(outcome.value), user_errors=user_errors(outcome))
