"""Subscription billing periods and calendar months (DESIGN "Periods", R7, R15, R24).

Periods are half-open ``[start, end)`` date ranges. A subscription's periods are
anchored on its start date: period n starts ``n * k`` months after the anchor
(k = 1 for MONTHLY, 12 for YEARLY), always computed from the original anchor so
that an anchor on the 31st comes back to the 31st after a short month.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from models.enums import BillingInterval

_MONTHS_PER_INTERVAL: dict[BillingInterval, int] = {
    BillingInterval.MONTHLY: 1,
    BillingInterval.YEARLY: 12,
}


def interval_months(interval: BillingInterval) -> int:
    """Length of one billing period in months."""
    return _MONTHS_PER_INTERVAL[interval]


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open date range: ``start`` included, ``end`` excluded."""

    start: date
    end: date

    def __post_init__(self) -> None:
        # An empty or reversed period would make proration divide by zero or go below 0.
        if self.end <= self.start:
            raise ValueError("a period must end after it starts")

    @property
    def days(self) -> int:
        """Number of days in the period (end - start, ends are exclusive)."""
        return (self.end - self.start).days

    def contains(self, day: date) -> bool:
        """True when ``start <= day < end``."""
        return self.start <= day < self.end


def add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by ``months`` months, keeping its day-of-month where the
    target month has it and clamping to the month's last day otherwise."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor.day, last_day))


def period_starting(anchor: date, interval: BillingInterval, index: int) -> Period:
    """The ``index``-th (0-based) period of a subscription anchored on ``anchor``."""
    if index < 0:
        raise ValueError("period index must not be negative")
    k = interval_months(interval)
    return Period(add_months(anchor, index * k), add_months(anchor, (index + 1) * k))


def _index_containing(anchor: date, interval: BillingInterval, day: date) -> int:
    if day < anchor:
        return 0
    k = interval_months(interval)
    # Whole calendar months between anchor and day give the index directly, except
    # when day falls before the anchor's day in its month: then it is one earlier.
    month_diff = (day.year - anchor.year) * 12 + (day.month - anchor.month)
    index = month_diff // k
    while index > 0 and day < add_months(anchor, index * k):
        index -= 1
    while day >= add_months(anchor, (index + 1) * k):
        index += 1
    return index


def period_containing(anchor: date, interval: BillingInterval, day: date) -> Period:
    """The period that contains ``day``; period 0 for a day before the anchor.

    Constant time: the index comes from the month difference, not from walking
    through all the periods since the anchor.
    """
    return period_starting(anchor, interval, _index_containing(anchor, interval, day))


def next_period(anchor: date, interval: BillingInterval, period: Period) -> Period:
    """The period right after ``period``, which must be one of the anchor's periods."""
    index = _index_containing(anchor, interval, period.start)
    if period_starting(anchor, interval, index) != period:
        # A period from another anchor or interval would silently shift billing dates.
        raise ValueError("period is not aligned to this anchor and interval")
    return period_starting(anchor, interval, index + 1)


def remaining_days(period: Period, day: date) -> int:
    """Days left in ``period`` counting ``day`` itself (R7: end - day)."""
    if not period.contains(day):
        # Outside the period the "remaining" share would be negative or above 1.
        raise ValueError("day is not inside the period")
    return (period.end - day).days


def month_of(day: date) -> tuple[int, int]:
    """The calendar month ``(year, month)`` a day belongs to (R24 invoicing)."""
    return (day.year, day.month)


def calendar_month(year: int, month: int) -> Period:
    """The calendar month as a period: its first day to the first day of the next."""
    first = date(year, month, 1)
    return Period(first, add_months(first, 1))
