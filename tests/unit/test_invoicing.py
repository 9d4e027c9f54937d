"""Invoice lines as a pure function (R24): totals add up, order of events does not matter."""

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.catalog import PriceBook
from licensing.invoicing import Customer, OrderLineCharge, PeriodCharge, build_lines, months_ended, place, total
from models import Edition, EditionPrice, Feature, FeaturePrice
from models.enums import BillingInterval, BillingMode, FeatureKind, LicenseType

BOOK = PriceBook.of(
    [Edition(code="STANDARD", name="Standard", included_file_storage_gb=10)],
    [EditionPrice(edition_code="STANDARD", currency="SEK", monthly_price=Decimal("149.00"),
                  valid_from=date(2020, 1, 1)),
     EditionPrice(edition_code="STANDARD", currency="SEK", monthly_price=Decimal("159.00"),
                  valid_from=date(2027, 1, 1))],
    [Feature(code="PAYROLL", name="Payroll", kind=FeatureKind.FEATURE)],
    [FeaturePrice(feature_code="PAYROLL", currency="SEK", monthly_price=Decimal("99.00"),
                  valid_from=date(2020, 1, 1))],
)
customers = st.builds(Customer, st.integers(1, 5), st.one_of(st.none(), st.sampled_from(["1", "2", "10"])),
                      st.sampled_from(["A", "B"]))
discounts = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
periods = st.builds(
    PeriodCharge, customers, st.just(date(2026, 11, 1)), st.just(date(2026, 12, 1)), st.just("STANDARD"),
    st.sampled_from(list(BillingInterval)), st.sampled_from(list(BillingMode)),
    st.tuples(st.tuples(st.just(LicenseType.NAMED), st.integers(0, 50)),
              st.tuples(st.just(LicenseType.CONCURRENT), st.integers(0, 5))),
    st.sampled_from([Decimal("149.00"), Decimal("12.35")]),
    st.sampled_from([(), (("PAYROLL", Decimal("99.00")),)]), discounts,
)
orders = st.builds(
    OrderLineCharge, customers, st.sampled_from(["O000001", "O000002"]), st.just(date(2026, 11, 11)),
    st.sampled_from(list(BillingMode)), st.integers(1, 3), st.just("seats"), st.just(LicenseType.NAMED),
    st.integers(1, 5), st.just(Decimal("149.00")), discounts, st.just(Decimal("149.00")),
    st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(periods, max_size=6), st.lists(orders, max_size=6), st.randoms(use_true_random=False))
def test_total_is_the_sum_of_lines_whatever_the_order_of_events(  # type: ignore[no-untyped-def]
    period_list, order_list, rng
) -> None:
    lines = build_lines(period_list, order_list, BOOK)
    shuffled_periods, shuffled_orders = period_list[:], order_list[:]
    rng.shuffle(shuffled_periods)
    rng.shuffle(shuffled_orders)
    assert build_lines(shuffled_periods, shuffled_orders, BOOK) == lines
    assert total(lines) == sum((line.amount for line in lines), Decimal("0.00"))
    for line in lines:
        if not line.description.startswith("Order"):  # period lines: quantity x period price
            assert line.amount == line.unit_price * line.quantity
        assert line.amount.as_tuple().exponent == -2


def test_a_period_is_charged_at_the_prices_and_discount_it_began_with() -> None:
    customer = Customer(1, "1", "A")
    seats = ((LicenseType.NAMED, 2),)
    before = PeriodCharge(customer, date(2026, 12, 1), date(2027, 1, 1), "STANDARD", BillingInterval.MONTHLY,
                          BillingMode.FIRM, seats, Decimal("149.00"), (), Decimal("10"))
    after = PeriodCharge(customer, date(2027, 1, 1), date(2027, 2, 1), "STANDARD", BillingInterval.MONTHLY,
                         BillingMode.FIRM, seats, Decimal("159.00"), (), Decimal("12.5"))
    # 149.00 x 0.9 = 134.10; 159.00 x 0.875 = 139.125 -> 139.13 (half-up, per unit)
    lines = build_lines([before, after], [], BOOK)
    assert [(line.list_unit_price, line.discount_percent, line.unit_price, line.amount) for line in lines] == [
        (Decimal("149.00"), Decimal("10"), Decimal("134.10"), Decimal("268.20")),
        (Decimal("159.00"), Decimal("12.5"), Decimal("139.13"), Decimal("278.26"))]


def test_a_charge_of_an_invoiced_month_goes_on_the_accounts_next_invoice() -> None:
    assert place((2026, 11), set(), date(2026, 12, 1)) == (2026, 11)
    assert place((2026, 11), set(), date(2026, 11, 30)) is None  # its month has not ended
    assert place((2026, 11), {(2026, 11)}, date(2026, 12, 31)) is None  # December's invoice is not due yet
    assert place((2026, 11), {(2026, 11)}, date(2027, 1, 1)) == (2026, 12)
    assert place((2026, 11), {(2026, 11), (2026, 12)}, date(2027, 2, 1)) == (2027, 1)
    assert place((2026, 12), {(2026, 12)}, date(2027, 2, 1)) == (2027, 1)


def test_a_month_ends_when_its_last_day_is_over() -> None:
    assert months_ended([(2026, 11), (2026, 12)], date(2026, 11, 30)) == []
    assert months_ended([(2026, 11), (2026, 12)], date(2026, 12, 1)) == [(2026, 11)]
