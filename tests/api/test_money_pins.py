"""Pins on the money rules (R7, R10, R13, R16, R24, R25), through HTTP on PostgreSQL.

Each test kills a plausible breakage that the rest of the suite let through: every figure is
computed by hand in a comment (Decimal arithmetic, half-up to cents per line; a reseller price is
list x (1 - discount/100) rounded half-up per unit, then amount = quantity x unit).

Dates: these tests run on an app of their own whose clock stands where the test puts it
(`Dated`), with subscriptions and rollovers in 2024-2025, so that the shared database's other
subscriptions are not moved. The leap-year pin needs 2028 and 2029: it runs on a database of its own.
Every assertion is about firms the test created itself.
"""

import csv
import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from app import create_app
from auth.clients import ALL_SCOPES, register_client
from models.db import connect
from models.migrate import migrate
from resolvers.rollover import rollover
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, Firm, unique
from tests.api.test_client_users import add, assign, firm_with_clients, members
from tests.conftest import create_database, drop_database

INVOICE = """id number billingMode issuedAt period { start end } total { amount currency basis }
  lines { agreement { id } customerNumber description quantity unitPrice { amount currency basis }
          amount { amount currency basis } }"""
INVOICES = f"""query($id: ID!) {{ node(id: $id) {{
  ... on Firm {{ invoices {{ edges {{ node {{ {INVOICE} }} }} }} }}
  ... on Agreement {{ invoices {{ edges {{ node {{ {INVOICE} }} }} }} }} }} }}"""
ORDER = ("order { number total { amount currency } lines { quantity unitPrice { amount } amount { amount } } } "
         "preview { amountDueNow { amount } }")
PERIOD = "query($id: ID!) { node(id: $id) { ... on LicenseSubscription { currentPeriod { start end } } } }"


def moment(when: str) -> datetime:
    """`2025-01-11` is 10:00 UTC that day; a full ISO date-time is taken as UTC."""
    parsed = datetime.fromisoformat(when if "T" in when else when + "T10:00")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class Dated:
    """The real app on its own runtime, whose clock reads `now`: `at()` moves it, `api` talks to it."""

    def __init__(self, runtime: Runtime, vendor_client_id: str, app_client_id: str, when: str) -> None:
        self.now = moment(when)
        self.runtime = dataclasses.replace(runtime, clock=lambda: self.now)
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=self.runtime)),
                                       base_url="http://bureau.test")
        self.api = Api(self._http, self.runtime, vendor_client_id=vendor_client_id, app_client_id=app_client_id)

    def at(self, when: str) -> Api:
        self.now = moment(when)
        return self.api

    async def rollover(self, until: str) -> None:
        """The period change of `until`, run shortly after midnight that day."""
        self.now = moment(until + "T00:05")
        await rollover(self.runtime, date.fromisoformat(until))

    async def close(self) -> None:
        await self._http.aclose()


@pytest.fixture
async def dated(api: Api) -> AsyncIterator[Dated]:
    """The shared database, with a clock of the test's own."""
    clocked = Dated(api.runtime, api.vendor_client_id, api.app_client_id, "2025-01-01")
    yield clocked
    await clocked.close()


@pytest.fixture
async def own_database() -> AsyncIterator[Dated]:
    """A database of the test's own, for dates the shared one must not see (rollovers past today + 1 year)."""
    url = await create_database("bureau_pins")
    try:
        await migrate(url)
        database = connect(url)
        try:
            runtime = Runtime.create(database, Settings())
            async with database.sessions.begin() as session:
                vendor = await register_client(session, name="vendor back office", scopes=list(ALL_SCOPES))
                app_client = await register_client(session, name="partner app", scopes=list(ALL_SCOPES))
            clocked = Dated(runtime, vendor.client_id, app_client.client_id, "2028-01-01")
            try:
                yield clocked
            finally:
                await clocked.close()
        finally:
            await database.dispose()
    finally:
        await drop_database(url)


# ------------------------------------------------------------------ helpers


async def subscribe(api: Api, firm: Firm, owner_id: str, *, starts_on: str, named: int = 0, client_user: int = 0,
                    edition: str = "STANDARD", interval: str = "MONTHLY") -> str:
    seats = [{"licenseType": "NAMED", "count": named}] if named or not client_user else []
    if client_user:
        seats.append({"licenseType": "CLIENT_USER", "count": client_user})
    payload = await api.mutate("createSubscription", {"ownerId": owner_id, "editionCode": edition,
                                                      "billingInterval": interval, "startsOn": starts_on,
                                                      "seats": seats}, "subscription { id }", token=firm.admin)
    return str(payload["subscription"]["id"])


async def seats_to(api: Api, firm: Firm, subscription_id: str, seats: int, license_type: str = "NAMED",
                   ) -> dict[str, Any]:
    return await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": license_type,
                                            "seats": seats}, ORDER, token=firm.admin)


async def set_discount(api: Api, firm: Firm, percent: str) -> None:
    await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": percent}, "firm { id }",
                     token=await api.vendor())


async def edition_priced(api: Api, code: str, sek: str, valid_from: str) -> None:
    """An edition of the test's own (the shared catalog's prices stay as other tests expect them)."""
    await api.mutate("upsertEdition", {"code": code, "name": code.title(), "includedFileStorageGb": 1,
                                       "seatPrices": [{"amount": sek, "currency": "SEK"}], "validFrom": valid_from},
                     "edition { code }", token=await api.vendor())


async def invoices(api: Api, owner_id: str, token: str) -> list[dict[str, Any]]:
    """A firm's consolidated invoices, or an agreement's direct ones, oldest first."""
    data = await api.ok(INVOICES, {"id": owner_id}, token=token)
    found = [edge["node"] for edge in data["node"]["invoices"]["edges"]]
    return sorted(found, key=lambda invoice: invoice["period"]["start"])


async def invoice_of(api: Api, owner_id: str, token: str, month: str) -> dict[str, Any]:
    [invoice] = [i for i in await invoices(api, owner_id, token) if i["period"]["start"] == month + "-01"]
    return invoice


def rows(invoice: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]]


def order_rows(payload: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"])
            for line in payload["order"]["lines"]]


async def current_period(api: Api, firm: Firm, subscription_id: str) -> tuple[str, str]:
    period = (await api.ok(PERIOD, {"id": subscription_id}, token=firm.admin))["node"]["currentPeriod"]
    return period["start"], period["end"]


async def export(api: Api, firm: Firm, month: str) -> str:
    response = await api.http.get(f"/exports/reinvoicing.csv?firm={firm.id}&month={month}",
                                  headers={"Authorization": f"Bearer {firm.admin}"})
    assert response.status_code == 200, response.text
    return response.text


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def agreement_name(api: Api, firm: Firm, agreement_id: str) -> str:
    data = await api.ok("query($id: ID!) { agreement(id: $id) { name } }", {"id": agreement_id}, token=firm.admin)
    return str(data["agreement"]["name"])


# ------------------------------------------------------------------ proration (R7): the period's own day count


async def test_seats_and_add_ons_bought_in_a_31_day_month_are_prorated_over_31_days(dated: Dated) -> None:
    api = dated.at("2025-01-11")
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2025-01-01", named=10)
    assert await current_period(api, firm, sub_id) == ("2025-01-01", "2025-02-01")
    added = await seats_to(api, firm, sub_id, 12)
    # January has 31 days; 11 Jan to 1 Feb leaves 21 of them (the 11th included):
    # 2 seats x 149.00 x 21 / 31 = 6258 / 31 = 201.870.. -> 201.87 (over 30 days it would be 208.60)
    assert order_rows(added) == [(2, "149.00", "201.87")]
    assert added["order"]["total"] == {"amount": "201.87", "currency": "SEK"}
    assert added["preview"]["amountDueNow"]["amount"] == "201.87"
    payroll = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "PAYROLL", "enabled": True},
                               ORDER, token=firm.admin)
    # PAYROLL 99.00 a month: 99.00 x 21 / 31 = 2079 / 31 = 67.064.. -> 67.06 (over 30 days: 69.30)
    assert order_rows(payroll) == [(1, "99.00", "67.06")]


async def test_seats_added_to_a_yearly_licence_are_prorated_over_the_366_days_of_its_year(dated: Dated) -> None:
    api = dated.at("2024-07-01")
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2024-01-15", named=2, interval="YEARLY")
    assert await current_period(api, firm, sub_id) == ("2024-01-15", "2025-01-15")
    added = await seats_to(api, firm, sub_id, 3)
    # A YEARLY seat costs 12 x 149.00 = 1788.00 for its period. 15 Jan 2024 to 15 Jan 2025 holds 29 Feb 2024:
    # 366 days. From 1 July: 31 (Jul) + 31 + 30 + 31 + 30 + 31 (Dec) + 14 (1-14 Jan) = 198 days left.
    # 1788.00 x 198 / 366 = 354024 / 366 = 967.278.. -> 967.28 (over 360 days: 983.40, over 365: 969.93)
    assert order_rows(added) == [(1, "1788.00", "967.28")]


async def test_a_leap_year_february_and_an_anchor_on_29_february_prorate_over_29_days(own_database: Dated) -> None:
    """2028 and 2029 on a database of the test's own: the shared one must not roll over that far."""
    clock = own_database
    api = clock.at("2028-02-10")
    firm = await api.firm()
    february, _ = await api.agreement(firm)
    feb_sub = await subscribe(api, firm, february, starts_on="2028-02-01", named=1)
    assert await current_period(api, firm, feb_sub) == ("2028-02-01", "2028-03-01")
    # February 2028 has 29 days; 10 Feb to 1 Mar leaves 20: 149.00 x 20 / 29 = 2980 / 29 = 102.758.. -> 102.76
    # (over 30 days: 99.33; over a common year's 28: 106.43)
    assert order_rows(await seats_to(api, firm, feb_sub, 2)) == [(1, "149.00", "102.76")]

    api = clock.at("2028-03-10")
    leap, _ = await api.agreement(firm)
    leap_sub = await subscribe(api, firm, leap, starts_on="2028-02-29", named=2)
    # anchored on 29 Feb: the first period runs to 29 Mar, 29 days
    assert await current_period(api, firm, leap_sub) == ("2028-02-29", "2028-03-29")
    # 10 Mar to 29 Mar leaves 19 of 29: 149.00 x 19 / 29 = 2831 / 29 = 97.620.. -> 97.62 (over 30 days: 94.37)
    assert order_rows(await seats_to(api, firm, leap_sub, 3)) == [(1, "149.00", "97.62")]

    await clock.rollover("2028-04-01")
    api = clock.api
    # February's invoice: its period (1 seat) and the order of the 10th; 149.00 + 102.76 = 251.76
    feb_invoice = await invoice_of(api, february, firm.admin, "2028-02")
    assert rows(feb_invoice) == [(1, "149.00", "149.00"), (1, "149.00", "102.76")]
    assert feb_invoice["total"]["amount"] == "251.76"
    # the period 29 Feb - 28 Mar belongs to March, the month of its last day: 2 x 149.00 + 97.62 = 395.62
    [march] = await invoices(api, leap, firm.admin)
    assert march["period"] == {"start": "2028-03-01", "end": "2028-04-01"}
    assert rows(march) == [(2, "149.00", "298.00"), (1, "149.00", "97.62")]
    assert march["total"]["amount"] == "395.62"

    # A year on the anchor clamps to 28 Feb 2029 (no 29th) and comes back to the 29th in March.
    await clock.rollover("2029-02-01")
    assert await current_period(clock.api, firm, leap_sub) == ("2029-01-29", "2029-02-28")
    await clock.rollover("2029-03-01")
    assert await current_period(clock.api, firm, leap_sub) == ("2029-02-28", "2029-03-29")
    await clock.rollover("2029-04-01")
    assert await current_period(clock.api, firm, leap_sub) == ("2029-03-29", "2029-04-29")
    # one invoice a month from March 2028 to March 2029, the later ones for the 3 seats: 3 x 149.00 = 447.00
    later = [f"2028-{month:02d}-01" for month in range(4, 13)] + ["2029-01-01", "2029-02-01", "2029-03-01"]
    issued = [(i["period"]["start"], i["total"]["amount"]) for i in await invoices(clock.api, leap, firm.admin)]
    assert issued == [("2028-03-01", "395.62")] + [(start, "447.00") for start in later]


# ------------------------------------------------------------------ reseller prices (R24): half cents


async def test_a_discount_giving_half_cents_rounds_each_unit_price_half_up_then_multiplies(dated: Dated) -> None:
    api = dated.at("2025-01-01")
    edition = unique("HALF_CENT_")
    await edition_priced(api, edition, "99.00", "2024-01-01")
    firm = await api.firm(reseller=True)
    await set_discount(api, firm, "12.5")
    agreement_id, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="H-1")
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2025-01-01", named=3, edition=edition)
    await subscribe(api, firm, firm.id, starts_on="2025-01-01", client_user=2)  # the firm's own, STANDARD

    api = dated.at("2025-01-21")
    added = await seats_to(api, firm, sub_id, 4)
    # unit: 99.00 x (1 - 12.5/100) = 99.00 x 0.875 = 86.625 -> 86.63 (half-up; half-even or truncation: 86.62)
    # 1 seat for 21 Jan to 1 Feb, 11 of 31 days: 86.63 x 11 / 31 = 952.93 / 31 = 30.739.. -> 30.74
    assert order_rows(added) == [(1, "86.63", "30.74")]

    await dated.rollover("2025-02-01")
    [january] = await invoices(dated.api, firm.id, firm.admin)
    assert january["period"] == {"start": "2025-01-01", "end": "2025-02-01"}
    # the firm's own licence first: STANDARD 149.00 x 0.875 = 130.375 -> 130.38 (half-down would give 130.37);
    #   2 x 130.38 = 260.76 (not 2 x 130.375 = 260.75)
    # H-1: 3 x 86.63 = 259.89 (not 3 x 86.625 = 259.875 -> 259.88); then the order of the 21st, 30.74
    assert [(line["customerNumber"], *row) for line, row in zip(january["lines"], rows(january), strict=True)] == [
        (None, 2, "130.38", "260.76"), ("H-1", 3, "86.63", "259.89"), ("H-1", 1, "86.63", "30.74")]
    # 260.76 + 259.89 + 30.74 = 551.39
    assert january["total"] == {"amount": "551.39", "currency": "SEK", "basis": "RESELLER"}
    exported = csv_rows(await export(dated.api, firm, "2025-01"))
    assert [(r["customer_number"], r["quantity"], r["unit_price"], r["amount"]) for r in exported] == [
        ("", "2", "130.38", "260.76"), ("H-1", "3", "86.63", "259.89"), ("H-1", "1", "86.63", "30.74")]


# ------------------------------------------------------------------ invoices (R24)


async def test_a_paid_add_on_is_invoiced_for_every_period_it_is_enabled_in(dated: Dated) -> None:
    api = dated.at("2025-04-21")
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2025-04-01", named=2)
    enabled = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "PAYROLL", "enabled": True},
                               ORDER, token=firm.admin)
    # PAYROLL 99.00 a month; 21 Apr to 1 May is 10 of April's 30 days: 99.00 x 10 / 30 = 33.00
    assert order_rows(enabled) == [(1, "99.00", "33.00")]
    await dated.rollover("2025-05-01")
    await dated.rollover("2025-06-01")
    april, may = await invoices(dated.api, agreement_id, firm.admin)
    # April: 2 x 149.00 = 298.00 and the order for the add-on, 33.00: 331.00
    assert april["period"]["start"] == "2025-04-01"
    assert rows(april) == [(2, "149.00", "298.00"), (1, "99.00", "33.00")]
    assert april["total"]["amount"] == "331.00"
    # May: the seats, and the add-on enabled for the whole period: 298.00 + 99.00 = 397.00
    assert may["period"]["start"] == "2025-05-01"
    assert rows(may) == [(2, "149.00", "298.00"), (1, "99.00", "99.00")]
    assert "Payroll" in may["lines"][1]["description"]
    assert may["total"]["amount"] == "397.00"


async def test_a_month_with_nothing_to_charge_issues_no_invoice_and_uses_no_number(dated: Dated) -> None:
    api = dated.at("2025-02-03")
    firm = await api.firm(reseller=True)
    empty_direct, _ = await api.agreement(firm, billing_mode="CUSTOMER")
    empty_consolidated, _ = await api.agreement(firm, billing_mode="FIRM")
    paying, _ = await api.agreement(firm, billing_mode="CUSTOMER")
    await subscribe(api, firm, empty_direct, starts_on="2025-02-01", named=0)
    await subscribe(api, firm, empty_consolidated, starts_on="2025-02-01", named=0)
    await subscribe(api, firm, paying, starts_on="2025-02-01", named=1)
    await dated.rollover("2025-03-01")
    api = dated.api
    assert await invoices(api, empty_direct, firm.admin) == []
    assert await invoices(api, firm.id, firm.admin) == []  # no consolidated invoice either
    [invoice] = await invoices(api, paying, firm.admin)
    # the firm's series has no number spent on an empty invoice
    assert (invoice["number"], rows(invoice)) == ("I000001", [(1, "149.00", "149.00")])


async def test_an_order_on_a_months_last_day_is_on_that_months_invoice(dated: Dated) -> None:
    api = dated.at("2025-01-31T23:30")  # the month's last half hour, UTC
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2025-01-01", named=1)
    added = await seats_to(api, firm, sub_id, 2)
    # 31 Jan to 1 Feb is 1 of 31 days: 149.00 x 1 / 31 = 4.806.. -> 4.81
    assert order_rows(added) == [(1, "149.00", "4.81")]
    upcoming = await api.ok("query($id: ID!) { agreement(id: $id) { upcomingInvoice { period { start } "
                            "lines { quantity unitPrice { amount } amount { amount } } } } }",
                            {"id": agreement_id}, token=firm.admin)
    preview = upcoming["agreement"]["upcomingInvoice"]
    assert preview["period"]["start"] == "2025-01-01"
    assert rows(preview) == [(1, "149.00", "149.00"), (1, "149.00", "4.81")]

    await dated.rollover("2025-02-01")
    [january] = await invoices(dated.api, agreement_id, firm.admin)
    # January: the period's seat, 149.00, and the order of the 31st, 4.81: 153.81
    assert january["period"] == {"start": "2025-01-01", "end": "2025-02-01"}
    assert rows(january) == [(1, "149.00", "149.00"), (1, "149.00", "4.81")]
    assert january["total"]["amount"] == "153.81"
    await dated.rollover("2025-03-01")
    february = await invoice_of(dated.api, agreement_id, firm.admin, "2025-02")
    assert rows(february) == [(2, "149.00", "298.00")]  # the order is not charged again


async def test_every_consolidated_invoice_line_carries_its_agreement_and_customer_number(dated: Dated) -> None:
    api = dated.at("2025-02-01")
    firm = await api.firm(reseller=True)
    await set_discount(api, firm, "20")
    numbered, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="N-10")
    unnumbered, _ = await api.agreement(firm, billing_mode="FIRM")  # the customer number is optional (R1)
    numbered_sub = await subscribe(api, firm, numbered, starts_on="2025-02-01", named=2)
    await subscribe(api, firm, unnumbered, starts_on="2025-02-01", named=1)
    await subscribe(api, firm, firm.id, starts_on="2025-02-01", client_user=1)
    api = dated.at("2025-02-15")
    # reseller price 149.00 x 0.8 = 119.20; 15 Feb to 1 Mar is 14 of 28 days: 119.20 x 14 / 28 = 59.60
    assert order_rows(await seats_to(api, firm, numbered_sub, 3)) == [(1, "119.20", "59.60")]

    await dated.rollover("2025-03-01")
    api = dated.api
    [february] = await invoices(api, firm.id, firm.admin)
    assert [((line["agreement"] or {}).get("id"), line["customerNumber"], line["quantity"], line["amount"]["amount"])
            for line in february["lines"]] == [
        (None, None, 1, "119.20"),  # the firm's own licence: no agreement, no customer number
        (numbered, "N-10", 2, "238.40"),  # 2 x 119.20
        (numbered, "N-10", 1, "59.60"),  # the order's line too
        (unnumbered, None, 1, "119.20"),
    ]
    # the export names them too: the firm's own line after the firm
    firm_name = (await api.ok("query($id: ID!) { firm(id: $id) { name } }", {"id": firm.id},
                              token=firm.admin))["firm"]["name"]
    first, second = await agreement_name(api, firm, numbered), await agreement_name(api, firm, unnumbered)
    exported = csv_rows(await export(api, firm, "2025-02"))
    assert [(r["customer_number"], r["agreement"], r["amount"]) for r in exported] == [
        ("", firm_name, "119.20"), ("N-10", first, "238.40"), ("N-10", first, "59.60"), ("", second, "119.20")]


# ------------------------------------------------------------------ an issued month stays as issued (R24, R25)


async def issued_march(dated: Dated) -> tuple[Firm, str, str, str, dict[str, Any]]:
    """A consolidated March 2025 at an edition of the test's own (100.00 SEK, 10 % off), issued;
    returns the firm, the agreement, the edition, the export and the invoice as they were when issued."""
    api = dated.at("2025-03-01")
    edition = unique("KEPT_")
    await edition_priced(api, edition, "100.00", "2025-01-01")
    firm = await api.firm(reseller=True)
    await set_discount(api, firm, "10")
    agreement_id, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="R-1")
    sub_id = await subscribe(api, firm, agreement_id, starts_on="2025-03-01", named=2, edition=edition)
    await subscribe(api, firm, firm.id, starts_on="2025-03-01", client_user=1, edition=edition)
    api = dated.at("2025-03-11")
    await seats_to(api, firm, sub_id, 3)
    await dated.rollover("2025-04-01")
    invoice = await invoice_of(dated.api, firm.id, firm.admin, "2025-03")
    # 100.00 x 0.9 = 90.00 a seat; the order: 1 seat, 11 Mar to 1 Apr = 21 of 31 days, 90.00 x 21 / 31 = 60.97
    assert [(line["customerNumber"], *row) for line, row in zip(invoice["lines"], rows(invoice), strict=True)] == [
        (None, 1, "90.00", "90.00"), ("R-1", 2, "90.00", "180.00"), ("R-1", 1, "90.00", "60.97")]
    assert invoice["total"]["amount"] == "330.97"
    return firm, agreement_id, edition, await export(dated.api, firm, "2025-03"), invoice


async def change_what_an_invoice_was_computed_from(dated: Dated, firm: Firm, agreement_id: str,
                                                   edition: str) -> None:
    api = dated.at("2025-04-02")
    await api.mutate("updateAgreement", {"agreementId": agreement_id, "customerNumber": "R-2"}, "agreement { id }",
                     token=firm.admin)
    await edition_priced(api, edition, "200.00", "2025-02-01")  # a new price, in force before March began
    await set_discount(api, firm, "25")


async def test_an_issued_months_export_and_invoice_keep_their_numbers_when_prices_and_numbers_change(
    dated: Dated,
) -> None:
    firm, agreement_id, edition, issued_csv, issued_invoice = await issued_march(dated)
    await change_what_an_invoice_was_computed_from(dated, firm, agreement_id, edition)
    api = dated.api
    # April is not issued: it shows the new customer number, but its period began on 1 April, before
    # the new price and discount, and keeps the prices in force then (R24): 100.00 x 0.9 = 90.00.
    april = csv_rows(await export(api, firm, "2025-04"))
    assert [(r["customer_number"], r["quantity"], r["unit_price"]) for r in april] == [("", "1", "90.00"),
                                                                                       ("R-2", "3", "90.00")]
    # March was issued: its invoice and its export are read from what was issued, byte for byte.
    assert await invoice_of(api, firm.id, firm.admin, "2025-03") == issued_invoice
    assert await export(api, firm, "2025-03") == issued_csv


async def test_an_issued_invoice_and_its_export_never_change(dated: Dated) -> None:
    firm, agreement_id, edition, issued_csv, issued_invoice = await issued_march(dated)
    await change_what_an_invoice_was_computed_from(dated, firm, agreement_id, edition)
    await dated.at("2025-04-02").mutate("updateAgreement", {"agreementId": agreement_id, "name": "Renamed customer"},
                                        "agreement { id }", token=firm.admin)
    assert await invoice_of(dated.api, firm.id, firm.admin, "2025-03") == issued_invoice
    assert await export(dated.api, firm, "2025-03") == issued_csv


async def test_an_issued_export_keeps_the_firms_name_on_its_own_licence_line(dated: Dated) -> None:
    """The firm's own licence has no agreement: its line shows the firm's name, which must stay as issued too."""
    firm, _, _, issued_csv, issued_invoice = await issued_march(dated)
    await dated.at("2025-04-02").mutate("updateFirm", {"firmId": firm.id, "name": unique("Renamed firm ")},
                                        "firm { id }", token=await dated.api.vendor())
    assert await invoice_of(dated.api, firm.id, firm.admin, "2025-03") == issued_invoice
    assert await export(dated.api, firm, "2025-03") == issued_csv


# ------------------------------------------------------------------ edition changes (R10)


async def test_a_second_edition_change_is_refused_whatever_edition_it_names(api: Api) -> None:
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    sub_id = await api.subscription(firm, agreement_id, named=2)
    selection = "subscription { scheduledChanges { kind toValue } } preview { effectiveOn }"
    await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": "PREMIUM"}, selection,
                     token=firm.admin)
    for edition, dry_run in (("PREMIUM", False), ("PREMIUM", True), ("STANDARD", False), ("PLUS", False)):
        refused = await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": edition,
                                                     "dryRun": dry_run}, selection, token=firm.admin,
                                   expect_errors=True)
        assert [e["code"] for e in refused["userErrors"]] == ["EDITION_CHANGE_PENDING"], (edition, dry_run)
    data = await api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { edition { code } "
                        "scheduledChanges { kind toValue } } } }", {"id": sub_id}, token=firm.admin)
    assert data["node"] == {"edition": {"code": "STANDARD"},
                            "scheduledChanges": [{"kind": "EDITION_CHANGE", "toValue": "PREMIUM"}]}


# ------------------------------------------------------------------ client users (R16)


async def test_an_uncertified_firm_cannot_give_a_client_user_another_company(api: Api) -> None:
    firm, _, (first, second) = await firm_with_clients(api, client_user_seats=1, companies=2)
    assigned = await assign(api, firm, [first])
    client_user = assigned["clientUser"]
    vendor = await api.vendor()
    await api.mutate("updateFirm", {"firmId": firm.id, "isCertified": False}, "firm { id }", token=vendor)
    refused = await add(api, firm, client_user["id"], second, expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["FIRM_NOT_CERTIFIED"]
    assert refused["clientUser"] is None
    # nothing stored: one company still, and no membership in the other
    data = await api.ok("query($id: ID!) { node(id: $id) { ... on ClientUser { companies { id } } } }",
                        {"id": client_user["id"]}, token=firm.admin)
    assert data["node"]["companies"] == [{"id": first}]
    assert client_user["user"]["id"] not in [m["user"]["id"] for m in await members(api, firm, second)]
    # certified again, the same call works: the refusal was the certification's
    await api.mutate("updateFirm", {"firmId": firm.id, "isCertified": True}, "firm { id }", token=vendor)
    added = await add(api, firm, client_user["id"], second)
    assert sorted(c["id"] for c in added["clientUser"]["companies"]) == sorted([first, second])


# ------------------------------------------------------------------ invitations (R13)


async def test_a_pending_invitation_holds_its_seat_for_14_days_then_frees_it(dated: Dated) -> None:
    invited_at = "2025-05-05T10:00"
    api = dated.at(invited_at)
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=1)
    selection = "membership { id status invitationExpiresAt }"

    async def invite(email: str, *, expect_errors: bool = False) -> dict[str, Any]:
        return await dated.api.mutate("inviteUser", {"companyId": company_id, "name": "Invited Person",
                                                     "email": email, "role": "REPORTER", "licenseType": "NAMED"},
                                      selection, token=firm.admin, expect_errors=expect_errors)

    async def seats_in_use() -> int:
        data = await dated.api.ok("query($id: ID!) { agreement(id: $id) { subscription { seats { inUse } } } }",
                                  {"id": agreement_id}, token=firm.admin)
        return int(data["agreement"]["subscription"]["seats"][0]["inUse"])

    first = await invite(unique("pending") + "@pins.example")
    lapses = moment(invited_at) + timedelta(days=14)
    assert datetime.fromisoformat(first["membership"]["invitationExpiresAt"]) == lapses
    later = unique("later") + "@pins.example"

    dated.now = lapses - timedelta(minutes=1)  # still pending: the one seat is taken
    assert await seats_in_use() == 1
    refused = await invite(later, expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["SEAT_LIMIT_REACHED"]

    dated.now = lapses + timedelta(minutes=1)  # lapsed: the seat is free again
    assert await seats_in_use() == 0
    await invite(later)
    assert await seats_in_use() == 1
