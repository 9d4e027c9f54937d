"""Money that is right whatever the timing (R7, R12, R15, R24), through HTTP on PostgreSQL:
one truth for periods, each charge on exactly one invoice, invoices that never change, dates
and bounds, and prices on one basis. Every figure is computed by hand in a comment."""

from datetime import date
from typing import Any

import pytest

from models import ids
from resolvers import invoicing
from resolvers.rollover import rollover
from tests.api.client import Api, Firm, new_pin, unique
from tests.api.test_invoicing import at, invoices, subscribe
from tests.api.test_subscription_changes import clock

SUBSCRIPTION = ("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { currentPeriod { start end } "
                "nextPeriod { start end } edition { code } seats { licenseType purchased } "
                "monthlyPrice { amount basis } scheduledChanges { kind effectiveOn fromValue toValue } } } }")
PREVIEW = "preview { amountDueNow { amount basis } nextMonthlyPrice { amount basis } }"


def lines(invoice: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]]


async def seats(api: Api, firm: Firm, subscription_id: str, count: int, selection: str = "order { id }",
                **extra: Any) -> dict[str, Any]:
    return await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED",
                                            "seats": count, **extra}, selection, token=firm.admin)


async def read(api: Api, firm: Firm, subscription_id: str) -> dict[str, Any]:
    return (await api.ok(SUBSCRIPTION, {"id": subscription_id}, token=firm.admin))["node"]


# ------------------------------------------------------------------ one truth for periods


@pytest.mark.parametrize("rollover_first", [False, True])
async def test_seats_bought_on_a_periods_first_day_are_charged_once_whether_or_not_the_rollover_ran(
        api: Api, rollover_first: bool) -> None:
    """10 seats, and 2 more bought at 10:00 on 1 December: December is 12 x 149.00 = 1788.00,
    whether the day's rollover ran before the purchase or after it."""
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-11-01")
    with clock(api, at("2026-12-01")):
        if rollover_first:
            await rollover(api.runtime, date(2026, 12, 1))
        bought = await seats(api, firm, sub, 12)
        assert bought["order"] is not None  # the 2 seats for December, at once: 2 x 149.00 x 31/31
        assert (await read(api, firm, sub))["currentPeriod"] == {"start": "2026-12-01", "end": "2027-01-01"}
        await rollover(api.runtime, date(2026, 12, 1))
    with clock(api, at("2027-01-01")):
        await rollover(api.runtime, date(2027, 1, 1))
    by_month = {i["period"]["start"]: i for i in await invoices(api, agreement_id, firm.admin)}
    assert lines(by_month["2026-11-01"]) == [(10, "149.00", "1490.00")]
    # December: the 2-seat order (2 x 149.00 x 31/31 = 298.00) plus 10 seats for the period.
    assert by_month["2026-12-01"]["total"]["amount"] == "1788.00"
    assert sorted(lines(by_month["2026-12-01"])) == [(2, "149.00", "298.00"), (10, "149.00", "1490.00")]


async def test_the_current_period_is_the_stored_one_and_follows_the_rollover(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-01")
        await api.mutate("changeEdition", {"subscriptionId": sub, "editionCode": "PLUS"}, "subscription { id }",
                         token=firm.admin)
        await rollover(api.runtime, date(2026, 12, 1))  # the period change, ahead of the clock
        after = await read(api, firm, sub)
    assert after["currentPeriod"] == {"start": "2026-12-01", "end": "2027-01-01"}
    assert after["nextPeriod"] == {"start": "2027-01-01", "end": "2027-02-01"}
    assert after["edition"]["code"] == "PLUS" and after["scheduledChanges"] == []


async def test_changes_before_a_future_start_cost_nothing_and_price_the_first_period(api: Api) -> None:
    with clock(api, at("2026-11-20")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=3, starts_on="2026-12-15")
        more = await seats(api, firm, sub, 5, f"order {{ id }} {PREVIEW}")
        assert more["order"] is None and more["preview"]["amountDueNow"]["amount"] == "0.00"
        fewer = await seats(api, firm, sub, 4, "scheduledChange { kind } order { id }")
        assert fewer["scheduledChange"] is None and fewer["order"] is None  # nothing to wait for
        await api.mutate("changeEdition", {"subscriptionId": sub, "editionCode": "PLUS"}, "subscription { id }",
                         token=firm.admin)
        state = await read(api, firm, sub)
    assert state["currentPeriod"] == {"start": "2026-12-15", "end": "2027-01-15"}
    assert state["edition"]["code"] == "PLUS" and state["seats"][0]["purchased"] == 4
    with clock(api, at("2027-02-01")):
        await rollover(api.runtime, date(2027, 2, 1))
    [january] = [i for i in await invoices(api, agreement_id, firm.admin) if i["period"]["start"] == "2027-01-01"]
    # The first period, 15 Dec to 14 Jan, belongs to January: 4 PLUS seats at 249.00.
    assert lines(january) == [(4, "249.00", "996.00")]


# ------------------------------------------------------------------ each charge on exactly one invoice


async def test_a_charge_in_a_month_already_invoiced_goes_on_the_next_invoice(api: Api) -> None:
    """A YEARLY subscription (10 June 2026 to 10 June 2027, 365 days; a seat's period price
    149.00 x 12 = 1788.00) takes one seat on 2 November, and the rollover is run ahead, for
    1 December: November is invoiced. Another seat bought on 2 November is a charge of a month
    already invoiced: it goes on December's invoice, with its own date."""
    with clock(api, at("2026-11-02")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-06-10", interval="YEARLY")
        await seats(api, firm, sub, 11)  # 1 x 1788.00 x 220/365 = 1077.698... -> 1077.70
        await rollover(api.runtime, date(2026, 12, 1))
        late = await seats(api, firm, sub, 12)  # the same again, on a day already invoiced
    with clock(api, at("2027-01-01")):
        await rollover(api.runtime, date(2027, 1, 1))
    by_month = {i["period"]["start"]: i for i in await invoices(api, agreement_id, firm.admin)}
    assert lines(by_month["2026-11-01"]) == [(1, "1788.00", "1077.70")]  # issued before: unchanged
    december = by_month["2026-12-01"]
    assert lines(december) == [(1, "1788.00", "1077.70")]
    assert "2026-11-02" in december["lines"][0]["description"]  # with its own date
    assert late["order"] is not None


async def test_a_change_after_a_rollover_run_ahead_prices_the_period_it_opened(api: Api) -> None:
    """Run ahead, the rollover has ended November: a seat bought on 2 November is part of the
    December period that has not begun (nothing due now), never charged twice."""
    with clock(api, at("2026-11-02")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-11-01")
        await rollover(api.runtime, date(2026, 12, 1))
        bought = await seats(api, firm, sub, 11, f"order {{ id }} {PREVIEW}")
        assert bought["order"] is None and bought["preview"]["amountDueNow"]["amount"] == "0.00"
    with clock(api, at("2027-01-01")):
        await rollover(api.runtime, date(2027, 1, 1))
    by_month = {i["period"]["start"]: i for i in await invoices(api, agreement_id, firm.admin)}
    assert lines(by_month["2026-11-01"]) == [(10, "149.00", "1490.00")]
    assert lines(by_month["2026-12-01"]) == [(11, "149.00", "1639.00")]


async def test_re_enabling_an_add_on_paid_through_the_period_line_is_free(api: Api) -> None:
    with clock(api, at("2026-11-03")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=1, starts_on="2026-11-01")
        first = await api.mutate("setFeature", {"subscriptionId": sub, "featureCode": "PAYROLL", "enabled": True},
                                 "order { id }", token=firm.admin)
        assert first["order"] is not None
    with clock(api, at("2026-12-05")):  # PAYROLL is on the December period's own line now
        await api.mutate("setFeature", {"subscriptionId": sub, "featureCode": "PAYROLL", "enabled": False},
                         "order { id }", token=firm.admin)
        again = await api.mutate("setFeature", {"subscriptionId": sub, "featureCode": "PAYROLL", "enabled": True},
                                 f"order {{ id }} {PREVIEW}", token=firm.admin)
    assert again["order"] is None and again["preview"]["amountDueNow"]["amount"] == "0.00"


async def test_a_billing_mode_change_waits_for_the_next_period(api: Api) -> None:
    with clock(api, at("2026-11-10")):
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "20"}, "firm { id }",
                         token=await api.vendor())
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-11-01")
        await api.mutate("updateAgreement", {"agreementId": agreement_id, "billingMode": "FIRM"},
                         "agreement { billingMode }", token=firm.admin)
        state = await read(api, firm, sub)
        assert [(c["kind"], c["effectiveOn"], c["toValue"]) for c in state["scheduledChanges"]] == [
            ("BILLING_MODE_CHANGE", "2026-12-01", "FIRM")]
        mode = await api.ok("query($id: ID!) { node(id: $id) { ... on Agreement { billingMode } } }",
                            {"id": agreement_id}, token=firm.admin)
        assert mode["node"]["billingMode"] == "CUSTOMER"
        # Until then orders follow the old mode: at list price, on the direct invoice.
        await seats(api, firm, sub, 11)  # 1 x 149.00 x 21/30 = 104.30
    with clock(api, at("2026-12-02")):
        await rollover(api.runtime, date(2026, 12, 1))
        await seats(api, firm, sub, 12)  # FIRM now: 149.00 x 0.8 = 119.20; 1 x 119.20 x 30/31 = 115.35
    with clock(api, at("2027-01-01")):
        await rollover(api.runtime, date(2027, 1, 1))
    [november] = await invoices(api, agreement_id, firm.admin)
    assert lines(november) == [(10, "149.00", "1490.00"), (1, "149.00", "104.30")]
    consolidated = [i for i in await invoices(api, firm.id, firm.admin) if i["period"]["start"] == "2026-12-01"]
    assert [(q, u, a) for q, u, a in lines(consolidated[0])] == [(11, "119.20", "1311.20"), (1, "119.20", "115.35")]


async def test_a_scheduled_billing_mode_change_can_be_cancelled(api: Api) -> None:
    with clock(api, at("2026-11-10")):
        firm = await api.firm(reseller=True)
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
        await api.mutate("updateAgreement", {"agreementId": agreement_id, "billingMode": "FIRM"},
                         "agreement { id }", token=firm.admin)
        await api.mutate("cancelScheduledChange", {"subscriptionId": sub, "kind": "BILLING_MODE_CHANGE"},
                         "subscription { id }", token=firm.admin)
        assert (await read(api, firm, sub))["scheduledChanges"] == []
        await rollover(api.runtime, date(2026, 12, 1))
    mode = await api.ok("query($id: ID!) { node(id: $id) { ... on Agreement { billingMode } } }",
                        {"id": agreement_id}, token=firm.admin)
    assert mode["node"]["billingMode"] == "CUSTOMER"


# ------------------------------------------------------------------ invoices that never change


async def test_an_issued_invoice_keeps_its_agreements_name_and_prices(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "12.5"}, "firm { id }",
                         token=await api.vendor())
        agreement_id, _ = await api.agreement(firm, billing_mode="FIRM", customer_number=unique("K"))
        await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-01")
        await rollover(api.runtime, date(2026, 12, 1))
    query = ("query($id: ID!) { node(id: $id) { ... on Firm { invoices { edges { node { number total { amount } "
             "lines { agreementName customerNumber description listUnitPrice { amount } discountPercent "
             "unitPrice { amount basis } amount { amount } } } } } } } }")
    before = await api.ok(query, {"id": firm.id}, token=firm.admin)
    [line] = before["node"]["invoices"]["edges"][0]["node"]["lines"]
    # 149.00 x 0.875 = 130.375 -> 130.38 a seat; x 3 = 391.14
    assert (line["listUnitPrice"]["amount"], line["discountPercent"], line["unitPrice"]) == (
        "149.00", "12.50", {"amount": "130.38", "basis": "RESELLER"})
    assert line["amount"]["amount"] == "391.14"
    named = await api.ok("query($id: ID!) { node(id: $id) { ... on Agreement { name customerNumber } } }",
                         {"id": agreement_id}, token=firm.admin)
    assert (line["agreementName"], line["customerNumber"]) == (named["node"]["name"], named["node"]["customerNumber"])
    await api.mutate("updateAgreement", {"agreementId": agreement_id, "name": "Renamed", "customerNumber": "NEW"},
                     "agreement { id }", token=firm.admin)
    await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "30"}, "firm { id }",
                     token=await api.vendor())
    assert await api.ok(query, {"id": firm.id}, token=firm.admin) == before


async def test_the_discount_of_a_periods_start_is_the_periods(api: Api) -> None:
    with clock(api, at("2026-11-01")):
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "10"}, "firm { id }",
                         token=await api.vendor())
        agreement_id, _ = await api.agreement(firm, billing_mode="FIRM")
        sub = await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
    with clock(api, at("2026-11-16")):
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "50"}, "firm { id }",
                         token=await api.vendor())
        await seats(api, firm, sub, 3)  # at today's 50 %: 74.50 x 15/30 = 37.25
        await rollover(api.runtime, date(2026, 12, 1))
    [november] = [i for i in await invoices(api, firm.id, firm.admin) if i["period"]["start"] == "2026-11-01"]
    # The period at the 10 % it began with: 149.00 x 0.9 = 134.10 x 2 = 268.20
    assert lines(november) == [(2, "134.10", "268.20"), (1, "74.50", "37.25")]


# ------------------------------------------------------------------ dates, bounds and prices


@pytest.mark.parametrize("count", [100_001, 2_147_483_647])
async def test_seat_counts_above_the_ceiling_are_refused(api: Api, count: int) -> None:
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    created = await api.mutate("createSubscription", {
        "ownerId": agreement_id, "editionCode": "STANDARD", "billingInterval": "YEARLY",
        "seats": [{"licenseType": "NAMED", "count": count}]}, "subscription { id }", token=firm.admin,
        expect_errors=True)
    assert [e["code"] for e in created["userErrors"]] == ["INVALID_INPUT"]
    sub = await subscribe(api, firm, agreement_id, named=1, starts_on=date.today().isoformat(), interval="YEARLY")
    changed = await api.mutate("changeSeats", {"subscriptionId": sub, "licenseType": "NAMED", "seats": count},
                               "order { id }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in changed["userErrors"]] == ["INVALID_INPUT"]
    at_ceiling = await api.mutate("changeSeats", {"subscriptionId": sub, "licenseType": "NAMED", "seats": 100_000,
                                                  "dryRun": True}, "preview { amountDueNow { amount } }",
                                  token=firm.admin)
    assert at_ceiling["userErrors"] == []


async def test_one_firms_failure_does_not_stop_the_others(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    with clock(api, at("2026-11-05")):
        broken, fine = await api.firm(), await api.firm()
        agreements = {}
        for firm in (broken, fine):
            agreements[firm.id], _ = await api.agreement(firm)
            await subscribe(api, firm, agreements[firm.id], named=1, starts_on="2026-11-01")
        broken_id = ids.decode(broken.id)[1]
        real = invoicing.issue_for_firm

        async def failing(uow: Any, firm_id: int, until: date) -> int:
            if firm_id == broken_id:
                raise RuntimeError("numeric field overflow")
            return await real(uow, firm_id, until)

        monkeypatch.setattr(invoicing, "issue_for_firm", failing)
        report = await rollover(api.runtime, date(2026, 12, 1))
        assert broken_id in report.failed_firms
        assert len(await invoices(api, agreements[fine.id], fine.admin)) == 1
        assert await invoices(api, agreements[broken.id], broken.admin) == []
        monkeypatch.setattr(invoicing, "issue_for_firm", real)
        rerun = await rollover(api.runtime, date(2026, 12, 1))
    assert broken_id not in rerun.failed_firms
    assert len(await invoices(api, agreements[broken.id], broken.admin)) == 1


async def test_a_currency_the_catalog_does_not_price_is_refused(api: Api) -> None:
    created = await api.mutate("createFirm", {"name": unique("Dollar firm "), "country": "US", "currency": "USD"},
                               "firm { id }", token=await api.vendor(), expect_errors=True)
    assert [e["code"] for e in created["userErrors"]] == ["NO_PRICE_IN_CURRENCY"]
    # An edition not priced in the firm's currency cannot be subscribed to.
    code = unique("ONLYEUR")
    await api.mutate("upsertEdition", {"code": code, "name": "Only in euro", "includedFileStorageGb": 1,
                                       "validFrom": "2020-01-01",
                                       "seatPrices": [{"amount": "9.00", "currency": "EUR"}]},
                     "edition { code }", token=await api.vendor())
    firm = await api.firm(currency="SEK")
    listed = await api.ok("{ catalog { editions { code } } }", token=firm.admin)
    assert code not in {e["code"] for e in listed["catalog"]["editions"]}  # never shown at 0.00
    agreement_id, _ = await api.agreement(firm)
    refused = await api.mutate("createSubscription", {
        "ownerId": agreement_id, "editionCode": code, "billingInterval": "MONTHLY",
        "seats": [{"licenseType": "NAMED", "count": 1}]}, "subscription { id }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["NO_PRICE_IN_CURRENCY"]


async def test_marketplace_subscriptions_are_not_invoiced_here(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        await api.mutate("createSubscription", {
            "ownerId": agreement_id, "editionCode": "STANDARD", "billingInterval": "MONTHLY",
            "startsOn": "2026-11-01", "channel": "MARKETPLACE", "seats": [{"licenseType": "NAMED", "count": 5}]},
            "subscription { id }", token=await api.vendor())
        await rollover(api.runtime, date(2026, 12, 1))
    assert await invoices(api, agreement_id, firm.admin) == []


async def test_a_firm_agreements_preview_and_monthly_price_are_on_the_payers_basis(api: Api) -> None:
    with clock(api, at("2026-11-16")):
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "12.5"}, "firm { id }",
                         token=await api.vendor())
        agreement_id, _ = await api.agreement(firm, billing_mode="FIRM")
        sub = await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-16")
        dry = await seats(api, firm, sub, 4, PREVIEW, dryRun=True)
        state = await read(api, firm, sub)
    # Reseller seat price 149.00 x 0.875 = 130.375 -> 130.38. Due now: 1 x 130.38 x 30/30 = 130.38.
    assert dry["preview"]["amountDueNow"] == {"amount": "130.38", "basis": "RESELLER"}
    # From the next period: 4 x 130.38 = 521.52, on the same basis.
    assert dry["preview"]["nextMonthlyPrice"] == {"amount": "521.52", "basis": "RESELLER"}
    assert state["monthlyPrice"] == {"amount": "391.14", "basis": "RESELLER"}  # 3 x 130.38


# ------------------------------------------------------------------ seats counted after a period end


async def decreased_to_one_then_late(api: Api) -> tuple[Firm, str, str, str]:
    """Agreement A: 5 seats, 1 holder, a decrease to 1 due on 1 December. Agreement B: 3 seats,
    3 holders in one company. Returns (firm, A, A's subscription, B's company)."""
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        a, company_a = await api.agreement(firm)
        b, company_b = await api.agreement(firm)
        assert company_a is not None and company_b is not None
        sub_a = await subscribe(api, firm, a, named=5, starts_on="2026-11-01")
        await subscribe(api, firm, b, named=3, starts_on="2026-11-01")
        await api.invite(firm.admin, company_a, personalIdentityNumber=new_pin())
        for _ in range(3):
            await api.invite(firm.admin, company_b, personalIdentityNumber=new_pin())
        await seats(api, firm, sub_a, 1, "scheduledChange { kind }")
    return firm, a, sub_a, company_b


async def test_a_move_after_a_period_end_counts_the_seats_of_the_new_period(api: Api) -> None:
    """Found while writing the billing reference model: on 3 December, before the day's rollover, A has 1
    seat (the decrease took effect on 1 December, R8); moving B's 3 holders in does not fit
    (R5), whether or not the rollover ran. Counted against November's 5 seats, it was accepted
    and the December invoice charged max(1, 4) = 4 seats."""
    firm, a, sub_a, company_b = await decreased_to_one_then_late(api)
    with clock(api, at("2026-12-03")):
        moved = await api.mutate("moveCompany", {"companyId": company_b, "toAgreementId": a}, "company { id }",
                                 token=firm.admin, expect_errors=True)
        assert [e["code"] for e in moved["userErrors"]] == ["SEAT_LIMIT_REACHED"]
        await rollover(api.runtime, date(2026, 12, 3))  # the refusal stored nothing (R26): the job does it
        state = await read(api, firm, sub_a)
    assert state["currentPeriod"]["start"] == "2026-12-01" and state["seats"][0]["purchased"] == 1
    with clock(api, at("2027-01-01")):
        await rollover(api.runtime, date(2027, 1, 1))
    by_month = {i["period"]["start"]: i for i in await invoices(api, a, firm.admin)}
    assert lines(by_month["2026-12-01"]) == [(1, "149.00", "149.00")]


async def test_an_invitation_after_a_period_end_counts_the_seats_of_the_new_period(api: Api) -> None:
    firm, a, sub_a, _ = await decreased_to_one_then_late(api)
    company = await api.company(firm, a)
    with clock(api, at("2026-12-03")):
        invited = await api.invite(firm.admin, company, personalIdentityNumber=new_pin(), expect_errors=True)
    assert [e["code"] for e in invited["userErrors"]] == ["SEAT_LIMIT_REACHED"]
