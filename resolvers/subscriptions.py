"""Licence subscriptions (R7-R12, R15, R24): creation and changes.

One truth for periods: the period a subscription stores is its current period, for
changes, previews, proration and invoices alike. A change made on or after the stored
period's end first advances the subscription, in the same transaction, with the very code
the rollover runs (`resolvers.periods.advance`), so no price depends on when the rollover
job ran. A stored period that lies ahead (a subscription that has not begun, or a rollover
run ahead of the clock) is changed in place: nothing is due now, and the period is priced
as changed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update

from auth.policy import Action
from licensing import periods, pricing, seats, usage
from licensing import subscriptions as rules
from licensing.catalog import PriceBook, catalog_statements, load_price_book, require_priced
from licensing.errors import RuleViolation
from licensing.validation import MAX_SEATS
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
    SubscriptionStatus,
    UserErrorCode,
)
from models.side_by_side import side_by_side
from resolvers import webhook_events
from resolvers.base import UnitOfWork
from resolvers.periods import advance, record_period


def check_seat_count(count: int, field: Sequence[str]) -> None:
    if count < 0:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Seat counts cannot be negative.", field)
    if count > MAX_SEATS:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, f"At most {MAX_SEATS} seats per licence type.", field)


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
    is invoiced in arrears (R24). Only the vendor records marketplace purchases (the
    mutation's declared Action)."""
    if len(seat_counts) > len(LicenseType):  # R59: refused before anything is read or locked
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Each licence type once.", ["input", "seats"])
    edition = await uow.session.scalar(select(Edition).where(Edition.code == edition_code))
    if edition is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "No edition with that code.", ["input", "editionCode"])
    is_master = isinstance(owner, Firm)
    firm = owner if isinstance(owner, Firm) else await uow.session.get_one(Firm, owner.firm_id)
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
        check_seat_count(count, field)
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
    require_priced(await load_price_book(uow.session), firm.currency, period.start, ["input", "editionCode"],
                   edition_code=edition.code)
    subscription = Subscription(
        firm_id=firm.id,
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
        subscription_id=subscription.id, affects=[subscription],
    )
    return subscription


# ------------------------------------------------------------------ changes (R7-R12)


@dataclass(frozen=True)
class Preview:
    """A ChangePreview in plain values (it survives the rollback of a dry run), at the
    payer's price and at list price: the schema shows each caller the one it may see."""

    effective_on: date
    amount_due_now: Decimal
    next_monthly_price: Decimal
    currency: str
    warnings: list[str]
    list_amount_due_now: Decimal
    list_next_monthly_price: Decimal
    billing_mode: BillingMode
    firm_id: int


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
    discount_percent: Decimal


@dataclass
class Situation:
    """Everything a change decides on, loaded once under the subscription's row lock, after
    the subscription was brought to today's period."""

    subscription: Subscription
    firm: Firm
    billing_mode: BillingMode
    book: PriceBook
    period: periods.Period
    today: date
    pools: dict[LicenseType, SeatPool]
    pending: list[ScheduledChange]
    features: dict[str, SubscriptionFeature]

    @property
    def not_started(self) -> bool:
        """The stored period lies ahead (a first period not begun yet, or a rollover run ahead of
        the clock): changes apply to it as it will begin, and cost nothing now."""
        return self.today < self.period.start

    @property
    def discount(self) -> Decimal:
        """The firm's reseller discount on the day of the change, for a FIRM-mode order."""
        return self.firm.reseller_discount_percent if self.billing_mode is BillingMode.FIRM else Decimal("0.00")

    def pending_change(self, kind: ScheduledChangeKind, license_type: LicenseType | None = None
                       ) -> ScheduledChange | None:
        for change in self.pending:
            if change.kind is kind and change.license_type == license_type:
                return change
        return None

    def require_priced(self, field: Sequence[str], *, edition_code: str | None = None,
                       feature_code: str | None = None) -> None:
        require_priced(self.book, self.firm.currency, max(self.today, self.period.start), field,
                       edition_code=edition_code, feature_code=feature_code)

    def order_line(self, description: str, monthly_list: Decimal, quantity: int, *,
                   license_type: LicenseType | None = None, feature_code: str | None = None) -> OrderLineSpec:
        """A line charged for the rest of the current period (R7), at the payer's price (with
        today's discount) and at list."""
        interval = self.subscription.billing_interval
        unit = rules.unit_period_price(monthly_list, interval, self.billing_mode, self.discount)
        list_unit = rules.unit_period_price(monthly_list, interval, BillingMode.CUSTOMER, Decimal(0))
        return OrderLineSpec(description, license_type, feature_code, quantity, unit,
                             rules.prorated_charge(unit, quantity, self.period, self.today), list_unit,
                             rules.prorated_charge(list_unit, quantity, self.period, self.today), self.discount)

    def next_monthly_prices(self) -> tuple[Decimal, Decimal]:
        """(payer, list) price per month from the next period on: pending seat decreases and
        edition and billing-mode changes applied, at the prices in force when it begins; nothing
        when a cancellation ends the subscription first."""
        if self.pending_change(ScheduledChangeKind.CANCELLATION) is not None:
            return Decimal("0.00"), Decimal("0.00")
        edition = self.subscription.edition_code
        change = self.pending_change(ScheduledChangeKind.EDITION_CHANGE)
        if change is not None:
            edition = change.to_value
        mode = self.billing_mode
        mode_change = self.pending_change(ScheduledChangeKind.BILLING_MODE_CHANGE)
        if mode_change is not None:
            mode = BillingMode(mode_change.to_value)
        counts = []
        for license_type, pool in self.pools.items():
            decrease = self.pending_change(ScheduledChangeKind.SEAT_DECREASE, license_type)
            counts.append(int(decrease.to_value) if decrease else pool.purchased)
        enabled = [code for code, state in self.features.items() if state.enabled]
        on = self.period.start if self.not_started else self.period.end
        discount = self.firm.reseller_discount_percent if mode is BillingMode.FIRM else Decimal("0.00")
        args = (self.book, edition, self.firm.currency, on, counts, enabled)
        return pricing.monthly_price(*args, discount_percent=discount), pricing.monthly_price(*args)

    def preview(self, effective_on: date, order: Order | None, warnings: list[str]) -> Preview:
        zero = Decimal("0.00")
        payer, listed = self.next_monthly_prices()
        return Preview(effective_on, order.total if order else zero, payer, self.firm.currency, warnings,
                       order.list_total if order else zero, listed, self.billing_mode, self.firm.id)


async def situation(uow: UnitOfWork, subscription: Subscription) -> Situation:
    session = uow.session
    today = uow.runtime.today()
    if subscription.status is SubscriptionStatus.CANCELLED:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The subscription is cancelled: it cannot be changed.",
                            ["input", "subscriptionId"])
    # The same step as the rollover: a period that has ended ends now, its changes apply.
    await advance(uow, subscription.id, today)
    # The firm, the agreement (its billing mode), the pools, the pending changes, the features, the
    # catalog and the firm's webhook endpoints (for the commit's, resolvers.webhook_events): one
    # statement (models.side_by_side).
    firms, agreements, pools, pending, features, endpoints, editions, edition_prices, catalog_features, \
        feature_prices = await side_by_side(
            session, select(Firm).where(Firm.id == subscription.firm_id),
            select(Agreement).where(Agreement.id == subscription.agreement_id),
            select(SeatPool).where(SeatPool.subscription_id == subscription.id),
            select(ScheduledChange).where(ScheduledChange.subscription_id == subscription.id,
                                          ScheduledChange.applied_at.is_(None), ScheduledChange.cancelled_at.is_(None)),
            select(SubscriptionFeature).where(SubscriptionFeature.subscription_id == subscription.id),
            webhook_events.endpoints_of(subscription.firm_id), *catalog_statements())
    webhook_events.note_endpoints(session.sync_session, subscription.firm_id, endpoints)
    firm = firms[0]
    mode = agreements[0].billing_mode if subscription.agreement_id is not None else BillingMode.FIRM
    return Situation(
        subscription=subscription, firm=firm, billing_mode=mode,
        book=PriceBook.of(editions, edition_prices, catalog_features, feature_prices),
        period=periods.Period(subscription.current_period_start, subscription.current_period_end),
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
                                  list_amount=line.list_amount, discount_percent=line.discount_percent))
    await uow.session.flush()
    return order


def snapshot(change: ScheduledChange) -> ScheduledSnapshot:
    return ScheduledSnapshot(change.kind, change.effective_on, change.license_type, change.from_value,
                             change.to_value)


async def change_seats(uow: UnitOfWork, subscription: Subscription, *, license_type: LicenseType,
                       seats: int) -> ChangeResult:
    field = ["input", "seats"]
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    check_seat_count(seats, field)
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
    in_use = await usage.in_use(uow.session, subscription, license_type, uow.runtime.now())
    before: dict[str, int | str | None] = {"purchased": pool.purchased,
                                           "pendingDecreaseTo": pending.to_value if pending else None}
    if s.not_started:
        return await _change_seats_ahead(uow, s, pool, pending, seats, in_use, before)
    plan = rules.plan_seats(
        purchased=pool.purchased, pending_decrease_to=int(pending.to_value) if pending else None,
        requested=seats, in_use=in_use, period=s.period, today=s.today, license_type=license_type, field=field,
    )
    now = uow.runtime.now()
    if pending is not None and plan.scheduled_to != int(pending.to_value):
        pending.cancelled_at = now
        s.pending.remove(pending)
    order = None
    if plan.charge_now:
        s.require_priced(["input", "subscriptionId"], edition_code=subscription.edition_code)
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
    if order is not None or after != before:  # asking for what is already so changes nothing (R29)
        uow.audit(action, subscription, f"{license_type.value} seats: asked for {seats}",
                  before=before, after={**after, **({"order": order.number} if order else {})},
                  subscription_id=subscription.id, affects=[subscription])
    return ChangeResult(subscription.id, s.preview(plan.effective_on, order, plan.warnings),
                        order.id if order else None, snapshot(scheduled) if scheduled else None)


async def _change_seats_ahead(uow: UnitOfWork, s: Situation, pool: SeatPool, pending: ScheduledChange | None,
                              seats: int, in_use: int, before: dict[str, int | str | None]) -> ChangeResult:
    """Before the stored period begins, its seats are simply what was asked for (R9 still
    holds): nothing was paid for it yet, so nothing is due, and it is priced as changed."""
    if seats < in_use:
        raise RuleViolation(UserErrorCode.SEATS_BELOW_ACTIVE_USERS,
                            f"{in_use} {pool.license_type.value} seats are in use; the count cannot go below that.",
                            ["input", "seats"])
    warnings = []
    if pending is not None:
        pending.cancelled_at = uow.runtime.now()
        s.pending.remove(pending)
        warnings.append(f"The pending decrease of {pool.license_type.value} seats is cancelled.")
    if seats == pool.purchased and pending is None:
        return ChangeResult(s.subscription.id, s.preview(s.period.start, None, warnings))
    pool.purchased = pool.purchased_at_period_start = seats
    await uow.session.flush()
    await record_period(uow, s.subscription, s.period)
    uow.audit("subscription.seats_changed", s.subscription,
              f"{pool.license_type.value} seats: {seats} from {s.period.start.isoformat()}",
              before=before, after={"purchased": seats, "pendingDecreaseTo": None}, subscription_id=s.subscription.id,
              affects=[s.subscription])
    return ChangeResult(s.subscription.id, s.preview(s.period.start, None, warnings))


async def change_edition(uow: UnitOfWork, subscription: Subscription, *, edition_code: str) -> ChangeResult:
    """R10: at the start of the next period; one pending change at a time. Before the stored
    period begins, the edition simply changes."""
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    pending = s.pending_change(ScheduledChangeKind.EDITION_CHANGE)
    rules.check_edition_change(subscription.edition_code, edition_code, pending.to_value if pending else None,
                               edition_code in s.book.editions, ["input", "editionCode"])
    require_priced(s.book, s.firm.currency, s.period.start if s.not_started else s.period.end,
                   ["input", "editionCode"], edition_code=edition_code)
    if s.not_started:
        before = subscription.edition_code
        subscription.edition_code = edition_code
        await uow.session.flush()
        await record_period(uow, subscription, s.period)
        uow.audit("subscription.edition_changed", subscription,
                  f"Edition {before} -> {edition_code} from {s.period.start.isoformat()}",
                  before={"edition": before}, after={"edition": edition_code}, subscription_id=subscription.id)
        return ChangeResult(subscription.id, s.preview(s.period.start, None, []))
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
    return ChangeResult(subscription.id, s.preview(s.period.end, None, []), None, snapshot(change))


async def schedule_billing_mode(uow: UnitOfWork, agreement: Agreement, mode: BillingMode) -> ScheduledChange | None:
    """R24: a change of billing mode applies from the next period, as a scheduled change that
    can be seen and cancelled; until then orders follow the old mode. With no subscription,
    or before its stored period begins, nothing is billed in the old mode yet and the mode
    changes at once (None)."""
    subscription = await uow.session.scalar(
        select(Subscription).where(Subscription.agreement_id == agreement.id).with_for_update())
    if subscription is None:
        agreement.billing_mode = mode
        return None
    s = await situation(uow, subscription)
    pending = s.pending_change(ScheduledChangeKind.BILLING_MODE_CHANGE)
    if pending is not None:
        pending.cancelled_at = uow.runtime.now()
        s.pending.remove(pending)
    if mode is agreement.billing_mode:
        return None  # back to the mode it has: the pending change is simply gone
    if s.not_started:
        agreement.billing_mode = mode
        await uow.session.flush()
        await record_period(uow, subscription, s.period)
        return None
    change = ScheduledChange(
        firm_id=subscription.firm_id, subscription_id=subscription.id, kind=ScheduledChangeKind.BILLING_MODE_CHANGE,
        license_type=None, from_value=agreement.billing_mode.value, to_value=mode.value, effective_on=s.period.end,
        created_at=uow.runtime.now())
    uow.session.add(change)
    await uow.session.flush()
    return change


async def cancel_scheduled_change(uow: UnitOfWork, subscription: Subscription, *, kind: ScheduledChangeKind,
                                  license_type: LicenseType | None) -> ChangeResult:
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    if kind in (ScheduledChangeKind.BILLING_MODE_CHANGE, ScheduledChangeKind.CANCELLATION):
        # The billing mode and the licence's end are the firm admin's to set, so are their undoing.
        uow.authorize(Action.MANAGE_AGREEMENTS, subscription)
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
              after=None, subscription_id=subscription.id, affects=[subscription])
    return ChangeResult(subscription.id, s.preview(s.today, None, []))


async def set_feature(uow: UnitOfWork, subscription: Subscription, *, feature_code: str,
                      enabled: bool) -> ChangeResult:
    """R12: for every user of the subscription; a paid add-on is ordered, prorated like R7,
    unless it was paid for this period already (by an order, or by the period's own line);
    before the stored period begins it is simply part of that period."""
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    s = await situation(uow, subscription)
    feature = s.book.features.get(feature_code)
    if feature is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "No feature or integration with that code.",
                            ["input", "featureCode"])
    if enabled:
        s.require_priced(["input", "featureCode"], feature_code=feature_code)
    state = s.features.get(feature_code)
    if state is None:
        state = SubscriptionFeature(firm_id=subscription.firm_id, subscription_id=subscription.id,
                                    feature_code=feature_code, enabled=False)
        uow.session.add(state)
        s.features[feature_code] = state
    was_enabled = state.enabled
    monthly = s.book.feature_price(feature_code, s.firm.currency, max(s.today, s.period.start))
    order = None
    warnings: list[str] = []
    if s.not_started:
        pass  # the period's own line will charge it
    elif enabled and rules.feature_needs_charge(was_enabled, state.paid_through_period_start, s.period, monthly):
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
    if s.not_started:
        await record_period(uow, subscription, s.period)
    if was_enabled != enabled:
        uow.audit("feature.enabled" if enabled else "feature.disabled", subscription,
                  f"{feature.name} {'enabled' if enabled else 'disabled'}",
                  before={"feature": feature_code, "enabled": was_enabled},
                  after={"feature": feature_code, "enabled": enabled, **({"order": order.number} if order else {})},
                  subscription_id=subscription.id)
    effective = s.period.start if s.not_started else s.today
    return ChangeResult(subscription.id, s.preview(effective, order, warnings), order.id if order else None)
