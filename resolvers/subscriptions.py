"""Licence subscriptions (R9, R11, R16 and the period rules)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update

from auth.policy import Action
from licensing import periods, pricing, seats, usage
from licensing import subscriptions as rules
from licensing.catalog import PriceBook, load_price_book
from licensing.errors import RuleViolation
from models import (
    Agreement,
    Edition,
    Firm,
    Order,
    OrderLine,
    ScheduledChange,
    SeatPool,
    Subscription,
    SubscriptionFeature,
)
from models import ids as global_ids
from models.enums import (
    BillingInterval,
    BillingMode,
    LicenseType,
    SalesChannel,
    ScheduledChangeKind,
    UserErrorCode,
)
from resolvers.base import UnitOfWork
from resolvers.periods import record_period


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
    await uow.session.flush()
    await record_period(uow, subscription, period)
    uow.audit(
        "subscription.created", subscription, f"Subscription {edition.code} created",
        after={"owner": global_ids.of(owner), "edition": edition.code, "interval": billing_interval.value,
               "seats": {t.value: c for t, c in counts.items()}, "startsOn": anchor.isoformat(),
               "channel": channel.value},
        subscription_id=subscription.id,
    )
    return subscription


# ------------------------------------------------------------------ changes (R7-R12)


@dataclass(frozen=True)
class Preview:
    """A ChangePreview in plain values: it survives the rollback of a dry run."""

    effective_on: date
    amount_due_now: Decimal
    next_monthly_price: Decimal
    currency: str
    warnings: list[str]
    # What the change costs at list price: all a company member of a FIRM agreement is shown.
    list_amount_due_now: Decimal = Decimal("0.00")
    billing_mode: BillingMode = BillingMode.CUSTOMER
    firm_id: int = 0


@dataclass(frozen=True)
class ScheduledSnapshot:
    kind: ScheduledChangeKind
    effective_on: date
    license_type: LicenseType | None
    from_value: str
    to_value: str


@dataclass(frozen=True)
class ChangeResult:
    subscription_id: int
    preview: Preview
    order_id: int | None = None
    scheduled: ScheduledSnapshot | None = None


@dataclass
class Situation:
    """Everything a change decides on, loaded once under the subscription's row lock."""

    subscription: Subscription
    firm: Firm
    billing_mode: BillingMode
    book: PriceBook
    period: periods.Period
    today: date
    pools: dict[LicenseType, SeatPool]
    pending: list[ScheduledChange]
    features: dict[str, SubscriptionFeature]

    def pending_change(self, kind: ScheduledChangeKind, license_type: LicenseType | None = None
                       ) -> ScheduledChange | None:
        for change in self.pending:
            if change.kind is kind and change.license_type == license_type:
                return change
        return None

    def unit_price(self, monthly_list: Decimal) -> Decimal:
        return rules.unit_period_price(monthly_list, self.subscription.billing_interval, self.billing_mode,
                                       self.firm.reseller_discount_percent)

    def order_line(self, description: str, monthly_list: Decimal, quantity: int, *,
                   license_type: LicenseType | None = None, feature_code: str | None = None) -> "OrderLineSpec":
        """A line charged for the rest of the current period (R7), at the payer's price and at list."""
        unit = self.unit_price(monthly_list)
        list_unit = rules.unit_period_price(monthly_list, self.subscription.billing_interval, BillingMode.CUSTOMER,
                                            Decimal(0))
        return OrderLineSpec(description, license_type, feature_code, quantity, unit,
                             rules.prorated_charge(unit, quantity, self.period, self.today), list_unit,
                             rules.prorated_charge(list_unit, quantity, self.period, self.today))

    def next_monthly_price(self) -> Decimal:
        """From the next period on: pending seat decreases and edition change applied."""
        edition = self.subscription.edition_code
        change = self.pending_change(ScheduledChangeKind.EDITION_CHANGE)
        if change is not None:
            edition = change.to_value
        seats = []
        for license_type, pool in self.pools.items():
            decrease = self.pending_change(ScheduledChangeKind.SEAT_DECREASE, license_type)
            seats.append(int(decrease.to_value) if decrease else pool.purchased)
        enabled = [code for code, state in self.features.items() if state.enabled]
        return pricing.monthly_price(self.book, edition, self.firm.currency, self.period.end, seats, enabled)

    def preview(self, effective_on: date, order: "Order | None", warnings: list[str]) -> Preview:
        zero = Decimal("0.00")
        return Preview(effective_on, order.total if order else zero, self.next_monthly_price(), self.firm.currency,
                       warnings, order.list_total if order else zero, self.billing_mode, self.firm.id)


@dataclass(frozen=True)
class OrderLineSpec:
    description: str
    license_type: LicenseType | None
    feature_code: str | None
    quantity: int
    unit_price: Decimal
    amount: Decimal
    list_unit_price: Decimal
    list_amount: Decimal


async def situation(uow: UnitOfWork, subscription: Subscription) -> Situation:
    session = uow.session
    firm = await session.get_one(Firm, subscription.firm_id)
    mode = BillingMode.FIRM
    if subscription.agreement_id is not None:
        mode = (await session.get_one(Agreement, subscription.agreement_id)).billing_mode
    today = uow.runtime.today()
    pools = (await session.scalars(select(SeatPool).where(SeatPool.subscription_id == subscription.id))).all()
    pending = (await session.scalars(
        select(ScheduledChange).where(ScheduledChange.subscription_id == subscription.id,
                                      ScheduledChange.applied_at.is_(None), ScheduledChange.cancelled_at.is_(None))
    )).all()
    features = (await session.scalars(
        select(SubscriptionFeature).where(SubscriptionFeature.subscription_id == subscription.id))).all()
    return Situation(
        subscription=subscription, firm=firm, billing_mode=mode, book=await load_price_book(session),
        period=periods.period_containing(subscription.starts_on, subscription.billing_interval, today),
        today=today, pools={p.license_type: p for p in pools}, pending=list(pending),
        features={f.feature_code: f for f in features},
    )


async def next_order_number(uow: UnitOfWork, firm_id: int) -> str:
    """Gapless per firm: the increment takes the firm row's lock until commit."""
    number = await uow.session.scalar(
        update(Firm).where(Firm.id == firm_id).values(last_order_number=Firm.last_order_number + 1)
        .returning(Firm.last_order_number)
    )
    return f"O{number:06d}"


async def place_order(uow: UnitOfWork, s: Situation, lines: list[OrderLineSpec]) -> Order:
    order = Order(
        firm_id=s.subscription.firm_id, subscription_id=s.subscription.id,
        number=await next_order_number(uow, s.subscription.firm_id), order_date=s.today,
        billing_mode=s.billing_mode, currency=s.firm.currency,
        total=sum((line.amount for line in lines), Decimal("0.00")),
        list_total=sum((line.list_amount for line in lines), Decimal("0.00")), created_at=uow.runtime.now(),
    )
    uow.session.add(order)
    await uow.session.flush()
    for position, line in enumerate(lines, 1):
        uow.session.add(OrderLine(firm_id=order.firm_id, order_id=order.id, position=position,
                                  description=line.description, license_type=line.license_type,
                                  feature_code=line.feature_code, quantity=line.quantity, unit_price=line.unit_price,
                                  amount=line.amount, list_unit_price=line.list_unit_price,
                                  list_amount=line.list_amount))
    await uow.session.flush()
    return order


def _snapshot(change: ScheduledChange) -> ScheduledSnapshot:
    return ScheduledSnapshot(change.kind, change.effective_on, change.license_type, change.from_value,
                             change.to_value)


async def change_seats(uow: UnitOfWork, subscription: Subscription, *, license_type: LicenseType,
                       seats: int) -> ChangeResult:
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    pool = s.pools.get(license_type)
    if license_type is LicenseType.CLIENT_USER and subscription.master_firm_id is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "CLIENT_USER seats belong to a firm's master subscription.", ["input", "licenseType"])
    if pool is None:
        pool = SeatPool(firm_id=subscription.firm_id, subscription_id=subscription.id, license_type=license_type,
                        purchased=0, purchased_at_period_start=0)
        uow.session.add(pool)
        s.pools[license_type] = pool
    pending = s.pending_change(ScheduledChangeKind.SEAT_DECREASE, license_type)
    plan = rules.plan_seats(
        purchased=pool.purchased, pending_decrease_to=int(pending.to_value) if pending else None,
        requested=seats, in_use=await usage.in_use(uow.session, subscription, license_type, uow.runtime.now()),
        period=s.period, today=s.today, license_type=license_type, field=["input", "seats"],
    )
    before = {"purchased": pool.purchased, "pendingDecreaseTo": pending.to_value if pending else None}
    now = uow.runtime.now()
    if pending is not None and plan.scheduled_to != int(pending.to_value):
        pending.cancelled_at = now
        s.pending.remove(pending)
    order = None
    if plan.charge_now:
        seat_price = s.book.seat_price(subscription.edition_code, s.firm.currency, s.today)
        days = periods.remaining_days(s.period, s.today)
        description = (f"{plan.charge_now} {license_type.value} seat(s), {subscription.edition_code}, "
                       f"{s.today.isoformat()} to {s.period.end.isoformat()} ({days} of {s.period.days} days)")
        order = await place_order(uow, s, [s.order_line(description, seat_price, plan.charge_now,
                                                        license_type=license_type)])
    pool.purchased = plan.purchased_now
    scheduled = None
    if plan.scheduled_to is not None:
        if pending is not None and int(pending.to_value) == plan.scheduled_to:
            scheduled = pending
        else:
            scheduled = ScheduledChange(
                firm_id=subscription.firm_id, subscription_id=subscription.id,
                kind=ScheduledChangeKind.SEAT_DECREASE, license_type=license_type,
                from_value=str(pool.purchased), to_value=str(plan.scheduled_to), effective_on=s.period.end,
                created_at=now)
            uow.session.add(scheduled)
            s.pending.append(scheduled)
    await uow.session.flush()
    after = {"purchased": pool.purchased, "pendingDecreaseTo": str(plan.scheduled_to) if scheduled else None}
    action = ("subscription.seats_added" if plan.charge_now else
              "subscription.seats_decrease_scheduled" if scheduled else "subscription.seats_changed")
    uow.audit(action, subscription, f"{license_type.value} seats: asked for {seats}",
              before=before, after={**after, **({"order": order.number} if order else {})},
              subscription_id=subscription.id)
    return ChangeResult(subscription.id, s.preview(plan.effective_on, order, plan.warnings),
                        order.id if order else None, _snapshot(scheduled) if scheduled else None)


async def change_edition(uow: UnitOfWork, subscription: Subscription, *, edition_code: str) -> ChangeResult:
    """R10: at the start of the next period; one pending change at a time."""
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    pending = s.pending_change(ScheduledChangeKind.EDITION_CHANGE)
    rules.check_edition_change(subscription.edition_code, edition_code, pending.to_value if pending else None,
                               edition_code in s.book.editions, ["input", "editionCode"])
    change = ScheduledChange(
        firm_id=subscription.firm_id, subscription_id=subscription.id, kind=ScheduledChangeKind.EDITION_CHANGE,
        license_type=None, from_value=subscription.edition_code, to_value=edition_code,
        effective_on=s.period.end, created_at=uow.runtime.now())
    uow.session.add(change)
    s.pending.append(change)
    await uow.session.flush()
    uow.audit("subscription.edition_change_scheduled", subscription,
              f"Edition {subscription.edition_code} -> {edition_code} from {s.period.end.isoformat()}",
              before={"edition": subscription.edition_code}, after={"edition": edition_code,
                                                                    "effectiveOn": s.period.end.isoformat()},
              subscription_id=subscription.id)
    return ChangeResult(subscription.id, s.preview(s.period.end, None, []), None, _snapshot(change))


async def cancel_scheduled_change(uow: UnitOfWork, subscription: Subscription, *, kind: ScheduledChangeKind,
                                  license_type: LicenseType | None) -> ChangeResult:
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    change = s.pending_change(kind, license_type if kind is ScheduledChangeKind.SEAT_DECREASE else None)
    if change is None:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "No such change is scheduled.", ["input", "kind"])
    change.cancelled_at = uow.runtime.now()
    s.pending.remove(change)
    await uow.session.flush()
    uow.audit("subscription.scheduled_change_cancelled", subscription,
              f"Cancelled {kind.value} to {change.to_value}",
              before={"kind": kind.value, "to": change.to_value, "effectiveOn": change.effective_on.isoformat()},
              after=None, subscription_id=subscription.id)
    return ChangeResult(subscription.id, s.preview(s.today, None, []))


async def set_feature(uow: UnitOfWork, subscription: Subscription, *, feature_code: str,
                      enabled: bool) -> ChangeResult:
    """R12: for every user of the subscription; a paid add-on is ordered, prorated like R7."""
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    feature = s.book.features.get(feature_code)
    if feature is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "No feature or integration with that code.",
                            ["input", "featureCode"])
    state = s.features.get(feature_code)
    if state is None:
        state = SubscriptionFeature(firm_id=subscription.firm_id, subscription_id=subscription.id,
                                    feature_code=feature_code, enabled=False)
        uow.session.add(state)
        s.features[feature_code] = state
    was_enabled = state.enabled
    monthly = s.book.feature_price(feature_code, s.firm.currency, s.today)
    order = None
    warnings: list[str] = []
    if enabled and rules.feature_needs_charge(was_enabled, state.paid_through_period_start, s.period, monthly):
        description = (f"{feature.name} ({feature.kind.value.lower()}), {s.today.isoformat()} to "
                       f"{s.period.end.isoformat()}")
        order = await place_order(uow, s, [s.order_line(description, monthly, 1, feature_code=feature_code)])
        state.paid_through_period_start = s.period.start
    elif enabled and not was_enabled and monthly > 0:
        warnings.append("Already paid for this period: enabling it again costs nothing.")
    elif not enabled and was_enabled and monthly > 0:
        warnings.append("Disabled at once; there is no credit for the rest of the period.")
    state.enabled = enabled
    state.enabled_at = uow.runtime.now() if enabled else state.enabled_at
    await uow.session.flush()
    if was_enabled != enabled:
        uow.audit("feature.enabled" if enabled else "feature.disabled", subscription,
                  f"{feature.name} {'enabled' if enabled else 'disabled'}",
                  before={"feature": feature_code, "enabled": was_enabled},
                  after={"feature": feature_code, "enabled": enabled, **({"order": order.number} if order else {})},
                  subscription_id=subscription.id)
    return ChangeResult(subscription.id, s.preview(s.today, order, warnings), order.id if order else None)
