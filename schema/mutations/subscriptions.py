"""Subscription mutations."""

from datetime import date

import strawberry

from auth.policy import Action
from models import Agreement as AgreementRow
from models import Firm as FirmRow
from models import ids
from resolvers import subscriptions
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, run, user_errors
from schema.types.common import BillingInterval, LicenseType, SalesChannel
from schema.types.subscriptions import ChangePreview, LicenseSubscription


@strawberry.input
class SeatCountInput:
    license_type: LicenseType  # type: ignore[valid-type]
    count: int


@strawberry.input
class CreateSubscriptionInput:
    owner_id: strawberry.ID = strawberry.field(description="A customer agreement, or a firm for its master licence.")
    edition_code: str
    billing_interval: BillingInterval  # type: ignore[valid-type]
    seats: list[SeatCountInput]
    starts_on: date | None = strawberry.field(
        default=None, description="The first day of the first period; today when absent.")
    channel: SalesChannel | None = strawberry.field(  # type: ignore[valid-type]
        default=SalesChannel.DIRECT,  # type: ignore[attr-defined]
        description="Vendor only (platform:admin): a MARKETPLACE subscription is then changed in the marketplace, "
        "never here.",
    )
    idempotency_key: str | None = None


@strawberry.type
class SubscriptionPayload:
    subscription: LicenseSubscription | None = None
    preview: ChangePreview | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SubscriptionMutations:
    @strawberry.mutation
    async def create_subscription(self, info: Info, input: CreateSubscriptionInput) -> SubscriptionPayload:
        is_firm = ids.decode_as(input.owner_id, "Firm") is not None
        target = Target(FirmRow if is_firm else AgreementRow, input.owner_id, "ownerId", Action.MANAGE_AGREEMENTS)
        outcome = await run(info, target, lambda uow, owner: subscriptions.create_subscription(
            uow, owner, edition_code=input.edition_code, billing_interval=input.billing_interval,
            seat_counts=[(s.license_type, s.count) for s in input.seats], starts_on=input.starts_on,
            channel=input.channel or SalesChannel.DIRECT), input=input)  # type: ignore[attr-defined]
        return SubscriptionPayload(subscription=LicenseSubscription.maybe(outcome.value),
                                   user_errors=user_errors(outcome))
