"""Seat, edition and add-on changes (R7-R12) as pure decisions over plain values.

The resolvers load the subscription, ask these functions what a change means, and store
the answer; a dry run asks the same questions and stores nothing (R26).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from licensing.errors import RuleViolation
from licensing.money import period_price, prorate, reseller_price
from licensing.periods import Period, remaining_days
from models.enums import BillingInterval, BillingMode, LicenseType, SalesChannel, UserErrorCode


def refuse_marketplace(channel: SalesChannel, field: Sequence[str]) -> None:
    """R11: a marketplace subscription is changed in the marketplace, never here."""
    if channel is SalesChannel.MARKETPLACE:
        raise RuleViolation(UserErrorCode.MANAGED_EXTERNALLY,
                            "This subscription was bought through a marketplace; change it there.", field)


@dataclass(frozen=True)
class SeatPlan:
    """What asking for `requested` seats does now and at the next period."""

    purchased_now: int  # the pool's purchased count after the change
    charge_now: int  # seats to order and charge for the rest of this period (R7)
    scheduled_to: int | None  # a SEAT_DECREASE target for the next period, or None
    effective_on: date
    warnings: list[str] = field(default_factory=list)


def plan_seats(
    *,
    purchased: int,
    pending_decrease_to: int | None,
    requested: int,
    in_use: int,
    period: Period,
    today: date,
    license_type: LicenseType,
    field: Sequence[str],
) -> SeatPlan:
    """R7 increase now (seats paid this period are not charged again), R8 decrease at the
    next period, R9 never below the seats in use."""
    if requested < 0:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Seats cannot be negative.", field)
    warnings: list[str] = []
    if requested > purchased:
        if pending_decrease_to is not None:
            warnings.append(f"The pending decrease of {license_type.value} seats to {pending_decrease_to} "
                            "is cancelled.")
        return SeatPlan(requested, requested - purchased, None, today, warnings)
    if requested < in_use:
        raise RuleViolation(UserErrorCode.SEATS_BELOW_ACTIVE_USERS,
                            f"{in_use} {license_type.value} seats are in use; the count cannot go below that.",
                            field)
    if requested == purchased:
        if pending_decrease_to is not None:
            warnings.append(f"The pending decrease of {license_type.value} seats to {pending_decrease_to} "
                            "is cancelled; the seats stay as they are.")
        return SeatPlan(purchased, 0, None, today, warnings)
    if pending_decrease_to is not None and pending_decrease_to != requested:
        warnings.append(f"The pending decrease of {license_type.value} seats to {pending_decrease_to} "
                        f"is replaced by a decrease to {requested}.")
    return SeatPlan(purchased, 0, requested, period.end, warnings)


def unit_period_price(monthly_list_price: Decimal, interval: BillingInterval, billing_mode: BillingMode,
                      discount_percent: Decimal) -> Decimal:
    """A seat's or add-on's period price, priced like the invoice it lands on (R24):
    list for CUSTOMER, reseller price for FIRM."""
    price = period_price(monthly_list_price, interval)
    if billing_mode is BillingMode.FIRM:
        return reseller_price(price, discount_percent)
    return price


def prorated_charge(unit_price: Decimal, quantity: int, period: Period, today: date) -> Decimal:
    """R7: price x quantity x remaining days / days in period, half-up to cents."""
    return prorate(unit_price, quantity, remaining_days(period, today), period.days)


def check_edition_change(current: str, requested: str, pending: str | None, known: bool,
                         field: Sequence[str]) -> None:
    """R10: one pending edition change at a time, whatever edition it names."""
    if not known:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "No edition with that code.", field)
    if pending is not None:
        raise RuleViolation(UserErrorCode.EDITION_CHANGE_PENDING,
                            f"A change to {pending} is already scheduled; cancel it first.", field)
    if requested == current:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The subscription already has that edition.", field)


def feature_needs_charge(enabled_before: bool, paid_period_start: date | None, period: Period,
                         monthly_price: Decimal) -> bool:
    """R12/R24: enabling a paid add-on is charged once per period; enabling it again in the
    same period costs nothing, and disabling is immediate with no credit."""
    if enabled_before or monthly_price == 0:
        return False
    return paid_period_start != period.start
