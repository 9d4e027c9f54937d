"""R7-R12 as pure decisions."""

from datetime import date
from decimal import Decimal

import pytest

from licensing.errors import RuleViolation
from licensing.periods import Period
from licensing.subscriptions import (
    check_edition_change,
    feature_needs_charge,
    plan_seats,
    prorated_charge,
    refuse_marketplace,
    unit_period_price,
)
from models.enums import BillingInterval, BillingMode, LicenseType, SalesChannel, UserErrorCode

NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1))
TODAY = date(2026, 11, 11)


def plan(purchased: int, pending: int | None, requested: int, in_use: int = 0):  # type: ignore[no-untyped-def]
    return plan_seats(purchased=purchased, pending_decrease_to=pending, requested=requested, in_use=in_use,
                      period=NOVEMBER, today=TODAY, license_type=LicenseType.NAMED, field=["input", "seats"])


def test_adding_seats_takes_effect_now_and_charges_the_added_ones() -> None:
    result = plan(10, None, 12)
    assert (result.purchased_now, result.charge_now, result.scheduled_to, result.effective_on) == (12, 2, None, TODAY)


def test_seat_decrease_waits_for_next_period() -> None:
    result = plan(10, None, 8)
    assert (result.purchased_now, result.charge_now, result.scheduled_to) == (10, 0, 8)
    assert result.effective_on == NOVEMBER.end


def test_seats_paid_this_period_are_not_charged_again() -> None:
    replaced = plan(10, 8, 9)
    assert (replaced.purchased_now, replaced.charge_now, replaced.scheduled_to) == (10, 0, 9)
    assert replaced.warnings and "replaced" in replaced.warnings[0]
    increased = plan(10, 8, 12)
    assert (increased.purchased_now, increased.charge_now, increased.scheduled_to) == (12, 2, None)
    assert increased.warnings


def test_seats_never_below_those_in_use() -> None:
    with pytest.raises(RuleViolation) as refused:
        plan(10, None, 3, in_use=4)
    assert refused.value.code is UserErrorCode.SEATS_BELOW_ACTIVE_USERS


def test_worked_proration_example() -> None:
    # 100.00 a month, 2 seats added on 11 November: 20 of 30 days remain -> 133.33
    unit = unit_period_price(Decimal("100.00"), BillingInterval.MONTHLY, BillingMode.CUSTOMER, Decimal("0"))
    assert prorated_charge(unit, 2, NOVEMBER, TODAY) == Decimal("133.33")


def test_yearly_seats_are_priced_for_twelve_months_at_reseller_price() -> None:
    unit = unit_period_price(Decimal("149.00"), BillingInterval.YEARLY, BillingMode.FIRM, Decimal("15"))
    assert unit == Decimal("1519.80")  # 1788.00 x 0.85


def test_one_edition_change_pending_at_a_time() -> None:
    with pytest.raises(RuleViolation) as refused:
        check_edition_change("STANDARD", "PREMIUM", "PLUS", True, ["input", "editionCode"])
    assert refused.value.code is UserErrorCode.EDITION_CHANGE_PENDING
    check_edition_change("STANDARD", "PLUS", None, True, [])


def test_marketplace_subscriptions_refuse_changes() -> None:
    with pytest.raises(RuleViolation) as refused:
        refuse_marketplace(SalesChannel.MARKETPLACE, [])
    assert refused.value.code is UserErrorCode.MANAGED_EXTERNALLY
    refuse_marketplace(SalesChannel.DIRECT, [])


def test_an_add_on_is_charged_once_per_period() -> None:
    assert feature_needs_charge(False, None, NOVEMBER, Decimal("99.00"))
    assert not feature_needs_charge(False, NOVEMBER.start, NOVEMBER, Decimal("99.00"))
    assert not feature_needs_charge(False, None, NOVEMBER, Decimal("0.00"))
    assert not feature_needs_charge(True, None, NOVEMBER, Decimal("99.00"))
