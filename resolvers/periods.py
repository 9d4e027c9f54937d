"""The period change (R15): subscriptions move into their next periods, scheduled changes
apply, and each new period is recorded as it stands for invoicing (R24).

Safe to run twice or from two processes at once: each subscription advances in its own
transaction under its row lock, and re-reads its period end after taking the lock, so a
second runner finds nothing left to do."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from licensing import periods, usage
from licensing.catalog import load_price_book
from models import Agreement, Firm, ScheduledChange, SeatPool, Subscription, SubscriptionFeature, SubscriptionPeriod
from models.enums import BillingInterval, BillingMode, LicenseType, ScheduledChangeKind, SubscriptionStatus
from resolvers import transfers
from resolvers.base import UnitOfWork


@dataclass
class Advanced:
    periods: int = 0
    changes: int = 0


async def record_period(uow: UnitOfWork, subscription: Subscription, period: periods.Period) -> SubscriptionPeriod:
    """What the period is invoiced for: seats and add-ons at its start, the billing mode then,
    and the catalog prices and the firm's discount in force on its first day (R24). Recorded
    again, in place, when a period that has not begun yet is changed (it is priced as
    changed). Add-ons enabled at the start are paid through the period's line, so enabling
    one again within the period costs nothing."""
    session = uow.session
    firm = await session.get_one(Firm, subscription.firm_id)
    mode = BillingMode.FIRM
    if subscription.agreement_id is not None:
        mode = (await session.get_one(Agreement, subscription.agreement_id)).billing_mode
    pools = {p.license_type: p.purchased for p in (await session.scalars(
        select(SeatPool).where(SeatPool.subscription_id == subscription.id))).all()}
    features = (await session.scalars(select(SubscriptionFeature).where(
        SubscriptionFeature.subscription_id == subscription.id, SubscriptionFeature.enabled.is_(True)))).all()
    book = await load_price_book(session)
    values = dict(
        agreement_id=subscription.agreement_id, end=period.end, edition_code=subscription.edition_code,
        billing_interval=subscription.billing_interval, billing_mode=mode,
        named_seats=pools.get(LicenseType.NAMED, 0), concurrent_seats=pools.get(LicenseType.CONCURRENT, 0),
        client_user_seats=pools.get(LicenseType.CLIENT_USER, 0),
        features=" ".join(sorted(f.feature_code for f in features)), currency=firm.currency,
        seat_price=book.seat_price(subscription.edition_code, firm.currency, period.start),
        feature_prices=" ".join(f"{f.feature_code}={book.feature_price(f.feature_code, firm.currency, period.start)}"
                                for f in sorted(features, key=lambda f: f.feature_code)),
        discount_percent=firm.reseller_discount_percent if mode is BillingMode.FIRM else Decimal("0.00"),
    )
    for feature in features:
        feature.paid_through_period_start = period.start
    row = await session.scalar(select(SubscriptionPeriod).where(
        SubscriptionPeriod.subscription_id == subscription.id, SubscriptionPeriod.start == period.start))
    if row is None:
        row = SubscriptionPeriod(firm_id=subscription.firm_id, subscription_id=subscription.id, start=period.start,
                                 created_at=uow.runtime.now(), **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    return row


async def advance(uow: UnitOfWork, subscription_id: int, until: date) -> Advanced:
    """Every period with end <= until ends; due scheduled changes apply (R8-R10, R15): seat
    decreases, edition, billing-mode and interval changes, and a cancellation, after which no
    period follows. An accepted transfer of the agreement completes at the boundary too, so the
    new period is the receiving firm's."""
    done = Advanced()
    subscription = await uow.session.scalar(
        select(Subscription).where(Subscription.id == subscription_id).with_for_update())
    if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
        return done
    while subscription.current_period_end <= until:
        ended = periods.Period(subscription.current_period_start, subscription.current_period_end)
        done.changes += await _apply_changes(uow, subscription, ended.end)
        if subscription.status is SubscriptionStatus.CANCELLED:
            break  # the ended period was the last one: nothing more is charged
        await transfers.complete_due(uow, subscription, ended.end)
        if subscription.starts_on == ended.end:  # a new anchor (an interval change) begins here
            following = periods.period_starting(subscription.starts_on, subscription.billing_interval, 0)
        else:
            following = periods.next_period(subscription.starts_on, subscription.billing_interval, ended)
        subscription.current_period_start, subscription.current_period_end = following.start, following.end
        for pool in (await uow.session.scalars(
                select(SeatPool).where(SeatPool.subscription_id == subscription.id))).all():
            pool.purchased_at_period_start = pool.purchased
        await record_period(uow, subscription, following)
        uow.audit("subscription.period_started", subscription,
                  f"Period {following.start.isoformat()} to {following.end.isoformat()} began",
                  before={"period": [ended.start.isoformat(), ended.end.isoformat()]},
                  after={"period": [following.start.isoformat(), following.end.isoformat()]},
                  subscription_id=subscription.id, affects=[subscription])
        done.periods += 1
    return done


async def advance_agreements(uow: UnitOfWork, agreement_ids: set[int]) -> None:
    """R38 for whatever counts an agreement's seats (a move, an invitation, a reactivation): its
    subscription's periods that are over end first, with their scheduled changes (a seat
    decrease, R8, R9), so the seats counted are those in force today, whether or not the
    rollover ran. Subscriptions are locked in id order, before the agreements are."""
    subscription_ids = (await uow.session.scalars(
        select(Subscription.id).where(Subscription.agreement_id.in_(agreement_ids)).order_by(Subscription.id))).all()
    for subscription_id in subscription_ids:
        await advance(uow, subscription_id, uow.runtime.today())


async def _apply_changes(uow: UnitOfWork, subscription: Subscription, on: date) -> int:
    due = (await uow.session.scalars(
        select(ScheduledChange).where(
            ScheduledChange.subscription_id == subscription.id, ScheduledChange.effective_on <= on,
            ScheduledChange.applied_at.is_(None), ScheduledChange.cancelled_at.is_(None))
        .order_by(ScheduledChange.effective_on, ScheduledChange.id))).all()
    for change in due:
        change.applied_at = uow.runtime.now()
        if change.kind is ScheduledChangeKind.CANCELLATION:
            subscription.status = SubscriptionStatus.CANCELLED
            uow.audit("subscription.cancelled", subscription, f"Cancelled at the end of the period, {on.isoformat()}",
                      before={"status": SubscriptionStatus.ACTIVE.value},
                      after={"status": SubscriptionStatus.CANCELLED.value, "endedOn": on.isoformat()},
                      subscription_id=subscription.id, affects=[subscription])
            continue
        if change.kind is ScheduledChangeKind.INTERVAL_CHANGE:
            before_interval = subscription.billing_interval
            # The new interval's periods are anchored on the first day of the period it begins.
            subscription.billing_interval, subscription.starts_on = BillingInterval(change.to_value), on
            uow.audit("subscription.interval_changed", subscription,
                      f"Billing interval {before_interval} -> {change.to_value} from {on.isoformat()}",
                      before={"billingInterval": before_interval.value},
                      after={"billingInterval": change.to_value, "anchor": on.isoformat()},
                      subscription_id=subscription.id)
            continue
        if change.kind is ScheduledChangeKind.BILLING_MODE_CHANGE:
            assert subscription.agreement_id is not None
            agreement = await uow.session.get_one(Agreement, subscription.agreement_id)
            before_mode, agreement.billing_mode = agreement.billing_mode, BillingMode(change.to_value)
            uow.audit("agreement.billing_mode_changed", agreement, f"Billing mode {before_mode} -> {change.to_value}",
                      before={"billingMode": before_mode.value}, after={"billingMode": change.to_value},
                      subscription_id=subscription.id)
            continue
        if change.kind is ScheduledChangeKind.EDITION_CHANGE:
            before, subscription.edition_code = subscription.edition_code, change.to_value
            uow.audit("subscription.edition_changed", subscription, f"Edition {before} -> {change.to_value}",
                      before={"edition": before}, after={"edition": change.to_value},
                      subscription_id=subscription.id)
            continue
        assert change.license_type is not None
        pool = await uow.session.scalar(select(SeatPool).where(
            SeatPool.subscription_id == subscription.id, SeatPool.license_type == change.license_type))
        if pool is None:
            continue
        in_use = await usage.in_use(uow.session, subscription, change.license_type, uow.runtime.now())
        # R9: never below the seats in use at the change; the audit log says when that held it up.
        seats = max(int(change.to_value), in_use)
        before_count, pool.purchased = pool.purchased, seats
        uow.audit("subscription.seats_decreased", subscription,
                  f"{change.license_type.value} seats {before_count} -> {seats}",
                  before={"purchased": before_count},
                  after={"purchased": seats, "scheduled": int(change.to_value), "inUse": in_use},
                  subscription_id=subscription.id, affects=[subscription])
    return len(due)


async def due_subscriptions(uow: UnitOfWork, until: date) -> list[tuple[int, int]]:
    """(subscription, firm) of every subscription whose period ends by `until`."""
    rows = await uow.session.execute(select(Subscription.id, Subscription.firm_id).where(
        Subscription.status == SubscriptionStatus.ACTIVE, Subscription.current_period_end <= until)
        .order_by(Subscription.id))
    return [(row[0], row[1]) for row in rows.all()]
