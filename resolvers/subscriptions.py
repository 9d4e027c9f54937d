"""Licence subscriptions (R9, R11, R16 and the period rules)."""

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select

from auth.policy import Action
from licensing import periods, seats
from licensing.errors import RuleViolation
from models import Agreement, Edition, Firm, SeatPool, Subscription
from models import ids as global_ids
from models.enums import BillingInterval, LicenseType, SalesChannel, UserErrorCode
from resolvers.base import UnitOfWork


async def create_subscription(
    uow: UnitOfWork,
    owner: Agreement | Firm,
    *,
    edition_code: str,
    billing_interval: BillingInterval,
    seat_counts: Sequence[tuple[LicenseType, int]],
    starts_on: date | None,
    channel: SalesChannel,
) -> Subscription:
    """An agreement's licence, or a firm's master licence. Charges nothing now: the period
    is invoiced in arrears (R24)."""
    if channel is SalesChannel.MARKETPLACE:
        uow.authorize(Action.PLATFORM, owner)  # only the vendor records marketplace purchases
    edition = await uow.session.scalar(select(Edition).where(Edition.code == edition_code))
    if edition is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "No edition with that code.", ["input", "editionCode"])
    is_master = isinstance(owner, Firm)
    if is_master:
        existing = select(Subscription.id).where(Subscription.master_firm_id == owner.id)
    else:
        await seats.lock_agreement(uow.session, owner.id)
        existing = select(Subscription.id).where(Subscription.agreement_id == owner.id)
    if await uow.session.scalar(existing) is not None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "It already has a subscription; change that one instead.",
                            ["input", "ownerId"])
    counts: dict[LicenseType, int] = {}
    for index, (license_type, count) in enumerate(seat_counts):
        field = ["input", "seats", str(index), "count"]
        if count < 0:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "Seat counts cannot be negative.", field)
        if license_type in counts:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "Each licence type once.", field[:-1])
        if license_type is LicenseType.CLIENT_USER and not is_master:
            raise RuleViolation(UserErrorCode.INVALID_INPUT,
                                "CLIENT_USER seats belong to a firm's master subscription.", field[:-1])
        counts[license_type] = count
    if not is_master and LicenseType.NAMED in counts:
        in_use = await seats.count_named_in_use(uow.session, owner.id, uow.runtime.now())
        field = ["input", "seats", str(list(counts).index(LicenseType.NAMED)), "count"]
        seats.check_not_below_in_use(counts[LicenseType.NAMED], in_use, field)
    today = uow.runtime.today()
    anchor = starts_on or today
    period = periods.period_containing(anchor, billing_interval, max(today, anchor))
    subscription = Subscription(
        firm_id=owner.id if isinstance(owner, Firm) else owner.firm_id,
        agreement_id=None if is_master else owner.id,
        master_firm_id=owner.id if is_master else None,
        edition_code=edition.code,
        channel=channel,
        billing_interval=billing_interval,
        starts_on=anchor,
        current_period_start=period.start,
        current_period_end=period.end,
    )
    uow.session.add(subscription)
    await uow.session.flush()
    for license_type, count in counts.items():
        uow.session.add(SeatPool(firm_id=subscription.firm_id, subscription_id=subscription.id,
                                 license_type=license_type, purchased=count, purchased_at_period_start=count))
    uow.audit(
        "subscription.created", subscription, f"Subscription {edition.code} created",
        after={"owner": global_ids.of(owner), "edition": edition.code, "interval": billing_interval.value,
               "seats": {t.value: c for t, c in counts.items()}, "startsOn": anchor.isoformat(),
               "channel": channel.value},
        subscription_id=subscription.id,
    )
    return subscription
