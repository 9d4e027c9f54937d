"""Subscription mutations."""

from datetime import date

import strawberry

from auth.policy import Action
from loaders import relations as r
from models import Subscription as SubscriptionRow
from models.enums import PriceBasis
from resolvers import cancellations, subscriptions
from resolvers.base import UnitOfWork
from resolvers.subscriptions import ChangeResult
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, owner_target, run, user_errors
from schema.types.billing import Order, basis_of
from schema.types.common import BillingInterval, LicenseType, Money, SalesChannel, ScheduledChangeKind
from schema.types.subscriptions import ChangePreview, LicenseSubscription, ScheduledChange


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
    # Only the vendor records marketplace purchases (R11).
    @mutation(Action.MANAGE_AGREEMENTS, vendor_when=lambda input: input.channel is SalesChannel.MARKETPLACE)
    async def create_subscription(self, info: Info, input: CreateSubscriptionInput) -> SubscriptionPayload:
        target = owner_target(input.owner_id)
        outcome = await run(info, target, lambda uow, owner: subscriptions.create_subscription(
            uow, owner, edition_code=input.edition_code, billing_interval=input.billing_interval,
            seat_counts=[(s.license_type, s.count) for s in input.seats], starts_on=input.starts_on,
            channel=input.channel or SalesChannel.DIRECT), input=input)  # type: ignore[attr-defined]
        return SubscriptionPayload(subscription=LicenseSubscription.maybe(outcome.value),
                                   user_errors=user_errors(outcome))


def preview_of(info: Info, result: ChangeResult | None) -> ChangePreview | None:
    if result is None:
        return None
    p = result.preview
    # One basis for the whole preview: the payer's price for those who may see it, else list.
    basis = basis_of(info, p.billing_mode, p.firm_id)
    payer = basis is PriceBasis.RESELLER
    return ChangePreview(effective_on=p.effective_on,
                         amount_due_now=Money(amount=p.amount_due_now if payer else p.list_amount_due_now,
                                              currency=p.currency, basis=basis),
                         next_monthly_price=Money(amount=p.next_monthly_price if payer else p.list_next_monthly_price,
                                                  currency=p.currency, basis=basis),
                         warnings=p.warnings)


async def load_subscription(info: Info, result: ChangeResult | None) -> LicenseSubscription | None:
    if result is None:
        return None
    return LicenseSubscription.maybe(await info.context.loaders.get(r.SubscriptionByIdLoader).load(
        result.subscription_id))


async def load_order(info: Info, result: ChangeResult | None) -> Order | None:
    if result is None or result.order_id is None:
        return None
    return Order.maybe(await info.context.loaders.get(r.OrderByIdLoader).load(result.order_id))


def scheduled_of(result: ChangeResult | None) -> ScheduledChange | None:
    if result is None or result.scheduled is None:
        return None
    c = result.scheduled
    return ScheduledChange(kind=c.kind, effective_on=c.effective_on, license_type=c.license_type,
                           from_value=c.from_value, to_value=c.to_value)


@strawberry.input
class ChangeSeatsInput:
    subscription_id: strawberry.ID
    license_type: LicenseType  # type: ignore[valid-type]
    seats: int = strawberry.field(description="The new number of seats.")
    dry_run: bool | None = strawberry.field(
        default=False, description="Only compute what the change would do and cost; store nothing.")
    idempotency_key: str | None = None


async def _order_of(root: "ChangeSeatsPayload", info: Info) -> Order | None:
    return await load_order(info, root.result)  # read only when asked for


@strawberry.type
class ChangeSeatsPayload:
    subscription: LicenseSubscription | None = None
    order: Order | None = strawberry.field(resolver=_order_of, description="The order created when seats were added.")
    scheduled_change: ScheduledChange | None = strawberry.field(
        default=None, description="The change scheduled when seats were removed.")
    preview: ChangePreview | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
    result: strawberry.Private[ChangeResult | None] = None


@strawberry.input
class ChangeEditionInput:
    subscription_id: strawberry.ID
    edition_code: str
    dry_run: bool | None = False


@strawberry.input
class CancelSubscriptionInput:
    subscription_id: strawberry.ID
    immediately: bool | None = strawberry.field(
        default=False, description="Vendor only (platform:admin): end it today, with the unused days given back. "
        "Otherwise it ends with the current period, as a scheduled change that can be cancelled until then.")
    dry_run: bool | None = False
    idempotency_key: str | None = None


@strawberry.input
class ChangeBillingIntervalInput:
    subscription_id: strawberry.ID
    billing_interval: BillingInterval  # type: ignore[valid-type]
    dry_run: bool | None = False
    idempotency_key: str | None = None


@strawberry.type
class CancelSubscriptionPayload:
    subscription: LicenseSubscription | None = None
    scheduled_change: ScheduledChange | None = strawberry.field(
        default=None, description="The cancellation, when it waits for the end of the period.")
    credit_order: Order | None = strawberry.field(
        default=None, description="An immediate cancellation's credit for unused days of orders not invoiced yet.")
    preview: ChangePreview | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CancelScheduledChangeInput:
    subscription_id: strawberry.ID
    kind: ScheduledChangeKind  # type: ignore[valid-type]
    license_type: LicenseType | None = None  # type: ignore[valid-type]


@strawberry.input
class SetFeatureInput:
    subscription_id: strawberry.ID
    feature_code: str
    enabled: bool
    dry_run: bool | None = False
    idempotency_key: str | None = None


@strawberry.type
class SetFeaturePayload:
    subscription: LicenseSubscription | None = None
    order: Order | None = None
    preview: ChangePreview | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _target(subscription_id: str) -> Target:
    # The row lock serialises changes to one subscription (seat counts, orders, schedules).
    return Target(SubscriptionRow, subscription_id, "subscriptionId", lock=True)


@strawberry.type
class SubscriptionChangeMutations:
    @mutation(Action.CHANGE_SUBSCRIPTION, description="Adding seats takes effect at once and creates an order; "
              "removing seats takes effect at the next period.")
    async def change_seats(self, info: Info, input: ChangeSeatsInput) -> ChangeSeatsPayload:
        changed: list[SubscriptionRow] = []

        async def work(uow: UnitOfWork, sub: SubscriptionRow) -> ChangeResult:
            changed.append(sub)
            return await subscriptions.change_seats(uow, sub, license_type=input.license_type, seats=input.seats)

        outcome = await run(info, _target(input.subscription_id), work, input=input)
        result = outcome.value
        if result is not None and changed and not input.dry_run and not outcome.errors:
            # The row as this transaction committed it, and seen by the caller (the target's
            # visibility was checked): the payload need not read it again. A seat change moves no
            # subscription between firms or agreements, so who may see it is unchanged.
            info.context.loaders.get(r.SubscriptionByIdLoader).prime(result.subscription_id, changed[-1])
        return ChangeSeatsPayload(subscription=await load_subscription(info, result),
                                  scheduled_change=scheduled_of(result), preview=preview_of(info, result),
                                  user_errors=user_errors(outcome), result=result)

    @mutation(Action.CHANGE_SUBSCRIPTION,
              description="Edition changes take effect at the start of the next billing period.")
    async def change_edition(self, info: Info, input: ChangeEditionInput) -> SubscriptionPayload:
        outcome = await run(info, _target(input.subscription_id), lambda uow, sub: subscriptions.change_edition(
            uow, sub, edition_code=input.edition_code), input=input)
        return SubscriptionPayload(subscription=await load_subscription(info, outcome.value),
                                   preview=preview_of(info, outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.CHANGE_SUBSCRIPTION)
    async def cancel_scheduled_change(self, info: Info, input: CancelScheduledChangeInput) -> SubscriptionPayload:
        outcome = await run(info, _target(input.subscription_id),
                            lambda uow, sub: subscriptions.cancel_scheduled_change(
                                uow, sub, kind=input.kind, license_type=input.license_type), input=input)
        return SubscriptionPayload(subscription=await load_subscription(info, outcome.value),
                                   preview=preview_of(info, outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.CHANGE_SUBSCRIPTION,
              description="Turns a feature or integration on or off for every user of the subscription.")
    async def set_feature(self, info: Info, input: SetFeatureInput) -> SetFeaturePayload:
        outcome = await run(info, _target(input.subscription_id), lambda uow, sub: subscriptions.set_feature(
            uow, sub, feature_code=input.feature_code, enabled=input.enabled), input=input)
        result = outcome.value
        return SetFeaturePayload(subscription=await load_subscription(info, result),
                                 order=await load_order(info, result), preview=preview_of(info, result),
                                 user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, vendor_when=lambda input: bool(input.immediately),
              description="Ends the subscription with its current period (a scheduled change, cancellable until "
              "then); the vendor may end it at once. Its memberships then grant no access; nothing more is "
              "charged.")
    async def cancel_subscription(self, info: Info, input: CancelSubscriptionInput) -> CancelSubscriptionPayload:
        outcome = await run(info, _target(input.subscription_id), lambda uow, sub: cancellations.cancel_subscription(
            uow, sub, immediately=bool(input.immediately)), input=input)
        result = outcome.value
        return CancelSubscriptionPayload(
            subscription=await load_subscription(info, result), credit_order=await load_order(info, result),
            scheduled_change=scheduled_of(result),
            preview=preview_of(info, result), user_errors=user_errors(outcome))

    @mutation(Action.CHANGE_SUBSCRIPTION, description="MONTHLY <-> YEARLY from the start of the next period, whose "
              "first day anchors the new periods; one pending at a time, cancellable with cancelScheduledChange.")
    async def change_billing_interval(self, info: Info, input: ChangeBillingIntervalInput) -> ChangeSeatsPayload:
        outcome = await run(info, _target(input.subscription_id), lambda uow, sub: cancellations.change_interval(
            uow, sub, interval=input.billing_interval), input=input)
        result = outcome.value
        return ChangeSeatsPayload(
            subscription=await load_subscription(info, result),
            scheduled_change=scheduled_of(result),
            preview=preview_of(info, result), user_errors=user_errors(outcome))
