"""The reference model's own tests, each figure computed by hand in its comment, so that the
property test's oracle is checked before it judges the server."""

from datetime import date
from decimal import Decimal as D

from tests.model.billing import (
    CUSTOMER,
    FIRM,
    MONTHLY,
    YEARLY,
    Catalog,
    Model,
    Outcome,
    add_months,
    cents,
    period_number,
    prorated,
    reseller,
)

CATALOG = Catalog({"STANDARD": D("149.00"), "PLUS": D("249.00")},
                  {"PAYROLL": D("99.00"), "BANK": D("49.00"), "API": D("0.00")})


def world(today: date, *, discount: str = "0", mode: str = CUSTOMER, interval: str = MONTHLY,
          starts_on: date | None = None, seats: int = 10, holders: int = 0) -> Model:
    model = Model(CATALOG, today)
    model.add_firm("f", D(discount))
    model.add_agreement("f", "a")
    model.add_company("a", "c", holders)
    model.subscribe("a", interval=interval, starts_on=starts_on or today, edition="STANDARD", seats=seats,
                    mode=mode)
    return model


def lines(model: Model) -> list[tuple[str, int, D, D]]:
    return [c.line() for c in model.charges]


def test_half_up_rounding_per_line() -> None:
    assert cents(D("0.005")) == D("0.01") and cents(D("2.675")) == D("2.68") and cents(D("1.004")) == D("1.00")


def test_periods_are_anchored_and_clamped() -> None:
    # 31 January: to 29 February (2028 is a leap year), then 31 March again: the anchor is kept.
    anchor = date(2028, 1, 31)
    assert [period_number(anchor, MONTHLY, k) for k in range(3)] == [
        (date(2028, 1, 31), date(2028, 2, 29)), (date(2028, 2, 29), date(2028, 3, 31)),
        (date(2028, 3, 31), date(2028, 4, 30))]
    # 29 February yearly: 28 February 2029, then 29 February 2032 four years on.
    assert period_number(date(2028, 2, 29), YEARLY, 1) == (date(2029, 2, 28), date(2030, 2, 28))
    assert add_months(date(2028, 2, 29), 48) == date(2032, 2, 29)


def test_a_31_day_month_proration() -> None:
    # 2 seats bought on 11 December in the period 1 Dec - 1 Jan (31 days, 21 remaining):
    # 2 x 149.00 x 21/31 = 201.870... -> 201.87. A 30-day month would give 208.60.
    model = world(date(2026, 12, 1))
    model.set_today(date(2026, 12, 11))
    assert model.change_seats("a", 12) == Outcome(order=D("201.87"))
    assert prorated(2, D("149.00"), date(2026, 12, 1), date(2027, 1, 1), date(2026, 12, 11)) == D("201.87")


def test_a_leap_february_proration() -> None:
    # Period 1 Feb - 1 Mar 2028 has 29 days; one seat on 29 February, its last day: 149.00 x 1/29
    # = 5.137... -> 5.14. And PAYROLL enabled on 15 February: 99.00 x 15/29 = 51.206... -> 51.21.
    model = world(date(2028, 2, 1))
    model.set_today(date(2028, 2, 15))
    assert model.set_addon("a", "PAYROLL", True) == Outcome(order=D("51.21"))
    model.set_today(date(2028, 2, 29))
    assert model.change_seats("a", 11) == Outcome(order=D("5.14"))


def test_a_yearly_period_and_its_invoice_month() -> None:
    # Yearly from 10 June 2026: the period price of a seat is 149.00 x 12 = 1788.00; one seat on
    # 2 November (220 of 365 days left): 1788.00 x 220/365 = 1077.698... -> 1077.70. The period
    # belongs to June 2027, the month of its last day (9 June 2027); the order to November 2026.
    model = world(date(2026, 11, 2), interval=YEARLY, starts_on=date(2026, 6, 10), seats=10)
    assert model.change_seats("a", 11) == Outcome(order=D("1077.70"))
    model.set_today(date(2026, 12, 1))
    [november] = model.rollover(date(2026, 12, 1))
    assert (november.month, [c.line() for c in november.charges]) == (
        date(2026, 11, 1), [("a", 1, D("1788.00"), D("1077.70"))])
    model.set_today(date(2027, 7, 1))
    issued = model.rollover(date(2027, 7, 1))
    assert [(i.month, i.number, i.total) for i in issued] == [(date(2027, 6, 1), 2, D("17880.00"))]


def test_a_discount_that_gives_half_cents() -> None:
    # 12.5 %: 149.00 x 0.875 = 130.375 -> 130.38 a seat; 3 seats 391.14. Yearly, the period's list
    # price 1788.00 x 0.875 = 1564.50. An order of 1 seat with 15 of 30 days: 130.38 x 15/30 = 65.19.
    assert reseller(D("149.00"), D("12.5")) == D("130.38")
    assert reseller(D("1788.00"), D("12.5")) == D("1564.50")
    model = world(date(2026, 11, 1), discount="12.5", mode=FIRM, seats=3)
    assert lines(model) == [("a", 3, D("130.38"), D("391.14"))]
    model.set_today(date(2026, 11, 16))
    assert model.change_seats("a", 4) == Outcome(order=D("65.19"))
    model.set_today(date(2026, 12, 1))
    [invoice] = model.rollover(date(2026, 12, 1))
    assert invoice.account == (FIRM, "f") and invoice.total == D("456.33")


def test_seats_decrease_at_the_next_period_but_never_below_use() -> None:
    model = world(date(2026, 11, 1), seats=10, holders=6)
    assert model.change_seats("a", 5) == Outcome(error="SEATS_BELOW_ACTIVE_USERS")
    assert model.change_seats("a", 8) == Outcome(scheduled="SEAT_DECREASE")
    assert model.change_seats("a", 9) == Outcome(scheduled="SEAT_DECREASE")  # replaces the pending 8
    assert model.change_seats("a", 12) == Outcome(order=D("298.00"))  # cancels it: 2 x 149.00 x 30/30
    assert model.change_seats("a", 7) == Outcome(scheduled="SEAT_DECREASE")
    model.add_company("a", "c2", 2)  # 8 holders now: the decrease to 7 ends at 8 (R9)
    model.set_today(date(2026, 12, 1))
    assert model.subscriptions["a"].seats == 8
    assert lines(model)[-1] == ("a", 8, D("149.00"), D("1192.00"))


def test_edition_and_billing_mode_wait_for_the_next_period() -> None:
    model = world(date(2026, 11, 1), discount="20", seats=2)
    assert model.change_edition("a", "PLUS") == Outcome(scheduled="EDITION_CHANGE")
    assert model.change_edition("a", "STANDARD") == Outcome(error="EDITION_CHANGE_PENDING")
    assert model.change_billing_mode("a", FIRM) == Outcome(scheduled="BILLING_MODE_CHANGE")
    model.set_today(date(2026, 11, 16))
    # Still STANDARD at list: 1 x 149.00 x 15/30 = 74.50, on the direct invoice of November.
    assert model.change_seats("a", 3) == Outcome(order=D("74.50"))
    model.set_today(date(2026, 12, 1))
    # December: PLUS at the reseller price 249.00 x 0.8 = 199.20, 3 seats = 597.60, to the firm.
    assert model.charges[-1].line() == ("a", 3, D("199.20"), D("597.60"))
    assert model.charges[-1].account == (FIRM, "f")
    [november] = model.rollover(date(2026, 12, 1))
    assert november.account == (CUSTOMER, "a") and november.total == D("372.50")  # 298.00 + 74.50


def test_an_add_on_is_paid_once_per_period() -> None:
    # Enabled 16 November: 99.00 x 15/30 = 49.50; off and on again: free. In December it is on
    # the period's line (99.00); off and on again there: free too. Free add-ons are never charged.
    model = world(date(2026, 11, 16), starts_on=date(2026, 11, 1), seats=1)
    assert model.set_addon("a", "PAYROLL", True) == Outcome(order=D("49.50"))
    assert model.set_addon("a", "PAYROLL", False) == Outcome()
    assert model.set_addon("a", "PAYROLL", True) == Outcome()
    assert model.set_addon("a", "API", True) == Outcome()
    model.set_today(date(2026, 12, 5))
    assert model.set_addon("a", "PAYROLL", False) == Outcome()
    assert model.set_addon("a", "PAYROLL", True) == Outcome()
    assert [c.line() for c in model.charges if c.month == date(2026, 12, 1)] == [
        ("a", 1, D("149.00"), D("149.00")), ("a", 1, D("99.00"), D("99.00"))]


def test_each_charge_on_exactly_one_invoice_with_gapless_numbers() -> None:
    model = world(date(2026, 11, 1), seats=1)
    model.add_agreement("f", "b")
    model.add_company("b", "cb", 0)
    model.subscribe("b", interval=MONTHLY, starts_on=date(2026, 11, 1), edition="PLUS", seats=1, mode=FIRM)
    model.set_today(date(2027, 1, 10))  # late: two months pass before the rollover runs
    issued = model.rollover(date(2027, 1, 10))
    assert [(i.account, i.month, i.number) for i in issued] == [
        ((CUSTOMER, "a"), date(2026, 11, 1), 1), ((FIRM, "f"), date(2026, 11, 1), 2),
        ((CUSTOMER, "a"), date(2026, 12, 1), 3), ((FIRM, "f"), date(2026, 12, 1), 4)]
    assert model.rollover(date(2027, 1, 10)) == [] and model.rollover(date(2026, 12, 1)) == []  # twice
    assert len(model.placed) == 4 and [c.month for c in model.unplaced()] == [date(2027, 1, 1)] * 2


def test_a_move_is_refused_when_the_target_has_no_room() -> None:
    model = world(date(2026, 11, 1), seats=3, holders=2)
    model.add_agreement("f", "b")
    model.add_company("b", "cb", 2)
    model.subscribe("b", interval=MONTHLY, starts_on=date(2026, 11, 1), edition="STANDARD", seats=3, mode=CUSTOMER)
    assert model.move_company("cb", "a") == Outcome(error="SEAT_LIMIT_REACHED")
    model.change_seats("a", 4)
    assert model.move_company("cb", "a") == Outcome() and model.in_use("a") == 4
