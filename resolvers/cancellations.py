"""Ending a subscription (R46) and changing its billing interval (R47).

A cancellation is a scheduled change at the end of the current period, visible and
cancellable until then: at the change the subscription is CANCELLED, no later period is
recorded or invoiced, and the memberships that used its seats keep their data but grant no
access (auth.authenticate.load_grants). R9 does not hold it up. A subscription whose stored
period has not begun is cancelled at once and costs nothing.

The vendor may cancel at once: the current period is cut at today, so its own lines are
charged for the days before today only (R7's proration), and what orders of the period
charged for the days from today is given back, by a credit note against the invoice that
billed them (R48), or, not invoiced yet, by a credit order that lands on the same invoice.
MARKETPLACE subscriptions refuse both (R11).
"""

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from licensing import subscriptions as rules
from licensing.errors import RuleViolation
from licensing.money import prorate
from models import Invoice, InvoiceLine, Order, OrderLine, ScheduledChange, Subscription, SubscriptionPeriod
from models.enums import BillingInterval, ScheduledChangeKind, SubscriptionStatus, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.credit_notes import Credit, issue_credit_note
from resolvers.subscriptions import ChangeResult, OrderLineSpec, Situation, place_order, situation, snapshot


def _check_active(subscription: Subscription) -> None:
    rules.refuse_marketplace(subscription.channel, ["input", "subscriptionId"])
    if subscription.status is SubscriptionStatus.CANCELLED:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The subscription is cancelled already.",
                            ["input", "subscriptionId"])


async def cancel_subscription(uow: UnitOfWork, subscription: Subscription, *, immediately: bool) -> ChangeResult:
    _check_active(subscription)
    s = await situation(uow, subscription)
    if immediately or s.not_started:
        return await _cancel_now(uow, s)
    if s.pending_change(ScheduledChangeKind.CANCELLATION) is not None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "A cancellation is scheduled already.",
                            ["input", "subscriptionId"])
    change = ScheduledChange(
        firm_id=subscription.firm_id, subscription_id=subscription.id, kind=ScheduledChangeKind.CANCELLATION,
        license_type=None, from_value=SubscriptionStatus.ACTIVE.value, to_value=SubscriptionStatus.CANCELLED.value,
        effective_on=s.period.end, created_at=uow.runtime.now())
    uow.session.add(change)
    s.pending.append(change)
    await uow.session.flush()
    uow.audit("subscription.cancellation_scheduled", subscription,
              f"Cancels at the end of the period, {s.period.end.isoformat()}",
              after={"effectiveOn": s.period.end.isoformat()}, subscription_id=subscription.id)
    preview = s.preview(s.period.end, None, ["Nothing is charged after the period ends."])
    return ChangeResult(subscription.id, preview, None, snapshot(change))


async def _cancel_now(uow: UnitOfWork, s: Situation) -> ChangeResult:
    subscription, today, now = s.subscription, s.today, uow.runtime.now()
    cut = max(today, s.period.start)
    row = await uow.session.scalar(select(SubscriptionPeriod).where(
        SubscriptionPeriod.subscription_id == subscription.id, SubscriptionPeriod.start == s.period.start))
    if row is not None:
        row.cut_on = cut
    warnings: list[str] = []
    credit_lines: list[OrderLineSpec] = []
    for order in (await uow.session.scalars(select(Order).where(
            Order.subscription_id == subscription.id, Order.order_date >= s.period.start,
            Order.order_date < s.period.end))).all():
        await _give_back(uow, s, order, cut, credit_lines, warnings)
    credit_order = None
    if credit_lines:
        credit_order = await place_order(uow, s, credit_lines)
    for change in s.pending:
        change.cancelled_at = now
    subscription.status = SubscriptionStatus.CANCELLED
    await uow.session.flush()
    uow.audit("subscription.cancelled", subscription, f"Cancelled at once, {today.isoformat()}",
              before={"status": SubscriptionStatus.ACTIVE.value},
              after={"status": SubscriptionStatus.CANCELLED.value, "endedOn": cut.isoformat(),
                     **({"creditOrder": credit_order.number} if credit_order else {})},
              subscription_id=subscription.id, affects=[subscription])  # its pending seat decreases go
    return ChangeResult(subscription.id, s.preview(cut, credit_order, warnings),
                        credit_order.id if credit_order else None)


async def _give_back(uow: UnitOfWork, s: Situation, order: Order, cut: date, credit_lines: list[OrderLineSpec],
                     warnings: list[str]) -> None:
    """The part of an order for the days from `cut` to the period's end: what it charged less
    what it would have charged up to `cut`, each rounded as charged (R7)."""
    lines = (await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                       .order_by(OrderLine.position))).all()
    days, used = s.period.days, max((cut - order.order_date).days, 0)
    back: list[tuple[OrderLine, Decimal, Decimal]] = []
    for line in lines:
        amount = line.amount - prorate(line.unit_price, line.quantity, used, days)
        listed = line.list_amount - prorate(line.list_unit_price, line.quantity, used, days)
        if amount > 0:
            back.append((line, amount, listed))
    if not back:
        return
    billed = {row.order_line_id: row for row in (await uow.session.scalars(select(InvoiceLine).join(
        Invoice, Invoice.id == InvoiceLine.invoice_id).where(
        InvoiceLine.order_line_id.in_([line.id for line, *_ in back])))).all()}
    if order.invoice_id is not None and billed:
        invoice = await uow.session.get_one(Invoice, order.invoice_id)
        await issue_credit_note(uow, invoice, [Credit(billed[line.id].position, amount) for line, amount, _ in back
                                               if line.id in billed],
                                f"Cancelled on {cut.isoformat()}: the days from then of order {order.number}")
        warnings.append(f"A credit note gives back the unused days of order {order.number}.")
        return
    for line, amount, listed in back:
        credit_lines.append(OrderLineSpec(
            f"Credit, cancelled on {cut.isoformat()}: {line.description}"[:300], line.license_type, line.feature_code,
            1, -amount, -amount, -listed, -listed, line.discount_percent))


async def change_interval(uow: UnitOfWork, subscription: Subscription, *, interval: BillingInterval) -> ChangeResult:
    """R47: MONTHLY <-> YEARLY at the start of the next period, whose first day anchors the
    new periods; one pending at a time, cancellable with cancelScheduledChange."""
    _check_active(subscription)
    s = await situation(uow, subscription)
    field = ["input", "billingInterval"]
    if s.pending_change(ScheduledChangeKind.INTERVAL_CHANGE) is not None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "An interval change is scheduled already; cancel it first.",
                            field)
    if interval is subscription.billing_interval:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The subscription already has that billing interval.", field)
    change = ScheduledChange(
        firm_id=subscription.firm_id, subscription_id=subscription.id, kind=ScheduledChangeKind.INTERVAL_CHANGE,
        license_type=None, from_value=subscription.billing_interval.value, to_value=interval.value,
        effective_on=s.period.end, created_at=uow.runtime.now())
    uow.session.add(change)
    s.pending.append(change)
    await uow.session.flush()
    uow.audit("subscription.interval_change_scheduled", subscription,
              f"Billing interval {subscription.billing_interval} -> {interval} from {s.period.end.isoformat()}",
              before={"billingInterval": subscription.billing_interval.value},
              after={"billingInterval": interval.value, "effectiveOn": s.period.end.isoformat()},
              subscription_id=subscription.id)
    return ChangeResult(subscription.id, s.preview(s.period.end, None, []), None, snapshot(change))
