"""Billing periods (DESIGN "Periods", R7, R15, R24)."""

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing.periods import (
    Period,
    add_months,
    calendar_month,
    month_of,
    next_period,
    period_containing,
    period_starting,
    remaining_days,
)
from models.enums import BillingInterval

MONTHLY = BillingInterval.MONTHLY
YEARLY = BillingInterval.YEARLY


def test_period_days_counts_end_exclusive() -> None:
    p = Period(date(2025, 4, 1), date(2025, 5, 1))
    assert p.days == 30
    assert p.contains(date(2025, 4, 1))
    assert p.contains(date(2025, 4, 30))
    assert not p.contains(date(2025, 5, 1))
    assert not p.contains(date(2025, 3, 31))


def test_period_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="must end after"):
        Period(date(2025, 1, 1), date(2025, 1, 1))


def test_add_months_clamps_to_last_day_of_short_month() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 3, 31), 1) == date(2025, 4, 30)


def test_add_months_crosses_years_both_ways() -> None:
    assert add_months(date(2025, 11, 15), 3) == date(2026, 2, 15)
    assert add_months(date(2025, 1, 15), -1) == date(2024, 12, 15)
    assert add_months(date(2025, 6, 30), 0) == date(2025, 6, 30)


def test_monthly_period_keeps_anchor_day_after_short_month() -> None:
    anchor = date(2025, 1, 31)
    assert period_starting(anchor, MONTHLY, 0) == Period(
        date(2025, 1, 31), date(2025, 2, 28)
    )
    # Computed from the anchor, not from Feb 28: back to the 31st in March.
    assert period_starting(anchor, MONTHLY, 1) == Period(
        date(2025, 2, 28), date(2025, 3, 31)
    )
    assert period_starting(anchor, MONTHLY, 2) == Period(
        date(2025, 3, 31), date(2025, 4, 30)
    )
    assert period_starting(anchor, MONTHLY, 3) == Period(
        date(2025, 4, 30), date(2025, 5, 31)
    )


def test_yearly_period_is_twelve_months() -> None:
    anchor = date(2025, 3, 15)
    p = period_starting(anchor, YEARLY, 0)
    assert p == Period(date(2025, 3, 15), date(2026, 3, 15))
    assert p.days == 365
    assert period_starting(anchor, YEARLY, 4) == Period(
        date(2029, 3, 15), date(2030, 3, 15)
    )


def test_yearly_period_anchored_on_feb_29_returns_to_feb_29_in_leap_years() -> None:
    anchor = date(2024, 2, 29)
    assert period_starting(anchor, YEARLY, 0) == Period(
        date(2024, 2, 29), date(2025, 2, 28)
    )
    assert period_starting(anchor, YEARLY, 3) == Period(
        date(2027, 2, 28), date(2028, 2, 29)
    )


def test_period_index_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        period_starting(date(2025, 1, 1), MONTHLY, -1)


def test_period_containing_day_exactly_on_period_end_is_the_next_period() -> None:
    anchor = date(2025, 1, 10)
    p = period_containing(anchor, MONTHLY, date(2025, 2, 10))
    assert p == Period(date(2025, 2, 10), date(2025, 3, 10))
    assert remaining_days(p, date(2025, 2, 10)) == p.days == 28


def test_period_containing_day_before_anchor_day_in_month_is_previous_period() -> None:
    anchor = date(2025, 1, 31)
    assert period_containing(anchor, MONTHLY, date(2025, 2, 27)) == Period(
        date(2025, 1, 31), date(2025, 2, 28)
    )
    assert period_containing(anchor, MONTHLY, date(2025, 3, 30)) == Period(
        date(2025, 2, 28), date(2025, 3, 31)
    )
    assert period_containing(anchor, YEARLY, date(2026, 1, 30)) == Period(
        date(2025, 1, 31), date(2026, 1, 31)
    )


def test_period_containing_day_before_anchor_is_first_period() -> None:
    anchor = date(2025, 5, 20)
    assert period_containing(anchor, MONTHLY, date(2020, 1, 1)) == period_starting(
        anchor, MONTHLY, 0
    )


def test_period_containing_far_future_day_is_direct() -> None:
    anchor = date(2000, 1, 31)
    p = period_containing(anchor, MONTHLY, date(9000, 2, 28))
    assert p == Period(date(9000, 2, 28), date(9000, 3, 31))


def test_next_period_follows_without_gap() -> None:
    anchor = date(2025, 1, 31)
    p0 = period_starting(anchor, MONTHLY, 0)
    p1 = next_period(anchor, MONTHLY, p0)
    assert p1.start == p0.end
    assert p1 == Period(date(2025, 2, 28), date(2025, 3, 31))
    assert next_period(anchor, YEARLY, period_starting(anchor, YEARLY, 0)) == Period(
        date(2026, 1, 31), date(2027, 1, 31)
    )


def test_next_period_refuses_a_period_of_another_anchor() -> None:
    with pytest.raises(ValueError, match="not aligned"):
        next_period(
            date(2025, 1, 31), MONTHLY, Period(date(2025, 2, 1), date(2025, 3, 1))
        )


def test_remaining_days_includes_the_day_of_the_change() -> None:
    # Seats added on day 11 of a 30-day period: 20 days remain (R7).
    p = Period(date(2025, 4, 1), date(2025, 5, 1))
    assert remaining_days(p, date(2025, 4, 11)) == 20
    assert remaining_days(p, date(2025, 4, 30)) == 1
    assert remaining_days(p, date(2025, 4, 1)) == 30


def test_remaining_days_refuses_a_day_outside_the_period() -> None:
    p = Period(date(2025, 4, 1), date(2025, 5, 1))
    with pytest.raises(ValueError, match="not inside"):
        remaining_days(p, date(2025, 5, 1))
    with pytest.raises(ValueError, match="not inside"):
        remaining_days(p, date(2025, 3, 31))


def test_month_of_and_calendar_month_for_invoicing() -> None:
    assert month_of(date(2025, 2, 28)) == (2025, 2)
    assert calendar_month(2024, 2) == Period(date(2024, 2, 1), date(2024, 3, 1))
    assert calendar_month(2024, 2).days == 29
    assert calendar_month(2025, 12) == Period(date(2025, 12, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="month"):
        calendar_month(2025, 13)


anchors = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
intervals = st.sampled_from(list(BillingInterval))


@given(anchors, intervals, st.integers(min_value=0, max_value=600))
def test_periods_tile_time_without_gaps_or_overlaps(
    anchor: date, interval: BillingInterval, index: int
) -> None:
    p = period_starting(anchor, interval, index)
    q = period_starting(anchor, interval, index + 1)
    assert p.end == q.start
    assert p.start < p.end
    assert next_period(anchor, interval, p) == q
    if interval is MONTHLY:
        assert 28 <= p.days <= 31
    else:
        assert 365 <= p.days <= 366


@given(anchors, intervals, st.integers(min_value=0, max_value=40_000))
def test_period_containing_contains_the_day(
    anchor: date, interval: BillingInterval, offset: int
) -> None:
    day = anchor + timedelta(days=offset)
    p = period_containing(anchor, interval, day)
    assert p.contains(day)
    assert 1 <= remaining_days(p, day) <= p.days
    # It is one of the anchor's periods: its successor starts where it ends.
    assert next_period(anchor, interval, p).start == p.end


@given(anchors, st.integers(min_value=0, max_value=1200))
def test_monthly_period_starts_keep_anchor_day_when_the_month_has_it(
    anchor: date, index: int
) -> None:
    start = period_starting(anchor, MONTHLY, index).start
    last_day = calendar.monthrange(start.year, start.month)[1]
    assert start.day == min(anchor.day, last_day)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_calendar_month_of_a_day_contains_it(day: date) -> None:
    assert calendar_month(*month_of(day)).contains(day)
