"""The vendor edits the catalog (upsertEdition, upsertFeature); prices hold from their date."""

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from models import AuditEvent, EditionPrice
from resolvers.rollover import rollover
from tests.api.client import Api, unique
from tests.api.test_invoicing import at, invoices
from tests.api.test_subscription_changes import clock

EDITION = "edition { code name seatPrice { amount currency } includedFileStorageGb }"
FEATURE = "feature { code name kind monthlyPrice { amount currency } }"
CATALOG = "{ catalog { editions { code name seatPrice { amount currency } includedFileStorageGb } " \
          "features { code kind monthlyPrice { amount currency } } } }"


def code(prefix: str) -> str:
    return unique(prefix + "_")


async def upsert_edition(api: Api, **input: Any) -> dict[str, Any]:
    expect_errors = input.pop("expect_errors", False)
    return await api.mutate("upsertEdition", input, EDITION, token=await api.vendor(), expect_errors=expect_errors)


async def catalog(api: Api, token: str) -> dict[str, Any]:
    data = (await api.ok(CATALOG, token=token))["catalog"]
    return {"editions": {e["code"]: e for e in data["editions"]}, "features": {f["code"]: f for f in data["features"]}}


async def test_vendor_adds_and_updates_an_edition(api: Api) -> None:
    firm = await api.firm(currency="SEK")
    new = code("PRO")
    created = await upsert_edition(api, code=new, name="Pro", includedFileStorageGb=50,
                                   seatPrices=[{"amount": "250.00", "currency": "SEK"},
                                               {"amount": "25.5", "currency": "eur"}])
    # priced as `catalog` prices it: EUR for the vendor
    assert created["edition"] == {"code": new, "name": "Pro", "includedFileStorageGb": 50,
                                  "seatPrice": {"amount": "25.50", "currency": "EUR"}}
    assert (await catalog(api, firm.admin))["editions"][new]["seatPrice"] == {"amount": "250.00", "currency": "SEK"}

    updated = await upsert_edition(api, code=new, name="Pro 2", includedFileStorageGb=75,
                                   seatPrices=[{"amount": "26.00", "currency": "EUR"}])
    assert updated["edition"]["name"] == "Pro 2" and updated["edition"]["includedFileStorageGb"] == 75
    # today's EUR price is replaced; SEK keeps its price
    assert updated["edition"]["seatPrice"]["amount"] == "26.00"
    listed = (await catalog(api, firm.admin))["editions"][new]
    assert (listed["name"], listed["seatPrice"]["amount"]) == ("Pro 2", "250.00")
    async with api.runtime.database.sessions() as session:
        rows = (await session.scalars(select(EditionPrice).where(EditionPrice.edition_code == new))).all()
        events = (await session.scalars(select(AuditEvent).where(AuditEvent.action.like("catalog.edition%"),
                                                                 AuditEvent.summary.contains(new))
                                        .order_by(AuditEvent.id))).all()
    assert sorted((r.currency, str(r.monthly_price)) for r in rows) == [("EUR", "26.00"), ("SEK", "250.00")]
    assert [e.action for e in events] == ["catalog.edition_created", "catalog.edition_priced",
                                          "catalog.edition_priced", "catalog.edition_updated",
                                          "catalog.edition_priced"]
    assert {e.firm_id for e in events} == {None}  # vendor-wide
    assert all(e.client_id == api.vendor_client_id for e in events)

    # the same values again change nothing and audit nothing
    await upsert_edition(api, code=new, name="Pro 2", includedFileStorageGb=75,
                         seatPrices=[{"amount": "26.00", "currency": "EUR"}])
    async with api.runtime.database.sessions() as session:
        again = (await session.scalars(select(AuditEvent.id).where(AuditEvent.summary.contains(new)))).all()
    assert len(again) == len(events)


async def test_vendor_adds_and_updates_a_feature(api: Api) -> None:
    firm = await api.firm(currency="NOK")
    new = code("SIGNING")
    vendor = await api.vendor()
    created = await api.mutate("upsertFeature", {
        "code": new, "name": "E-signing", "kind": "FEATURE",
        "monthlyPrices": [{"amount": "0", "currency": "NOK"}, {"amount": "4.90", "currency": "EUR"}]},
        FEATURE, token=vendor)
    assert created["feature"] == {"code": new, "name": "E-signing", "kind": "FEATURE",
                                  "monthlyPrice": {"amount": "4.90", "currency": "EUR"}}
    assert (await catalog(api, firm.admin))["features"][new]["monthlyPrice"] == {"amount": "0.00", "currency": "NOK"}
    updated = await api.mutate("upsertFeature", {
        "code": new, "name": "Signing", "kind": "INTEGRATION", "monthlyPrices": [{"amount": "49", "currency": "NOK"}]},
        FEATURE, token=vendor)
    assert (updated["feature"]["name"], updated["feature"]["kind"]) == ("Signing", "INTEGRATION")
    listed = (await catalog(api, firm.admin))["features"][new]
    assert (listed["kind"], listed["monthlyPrice"]["amount"]) == ("INTEGRATION", "49.00")


async def test_vendor_reprices_from_a_date(api: Api) -> None:
    """A future-dated price changes neither today's catalog nor the current period; it shows
    from its date, and the first period starting on or after it is invoiced at it."""
    edition = code("REPRICED")
    with clock(api, at("2026-11-11")):
        await upsert_edition(api, code=edition, name="Repriced", includedFileStorageGb=10, validFrom="2026-01-01",
                             seatPrices=[{"amount": "100.00", "currency": "SEK"}, {"amount": "10.00",
                                                                                   "currency": "EUR"}])
        firm = await api.firm(currency="SEK")
        agreement_id, _ = await api.agreement(firm, billing_mode="CUSTOMER")
        subscribed = await api.mutate("createSubscription", {
            "ownerId": agreement_id, "editionCode": edition, "billingInterval": "MONTHLY", "startsOn": "2026-11-01",
            "seats": [{"licenseType": "NAMED", "count": 2}]}, "subscription { id }", token=firm.admin)
        sub_id = subscribed["subscription"]["id"]
        repriced = await upsert_edition(api, code=edition, name="Repriced", includedFileStorageGb=10,
                                        validFrom="2026-11-20", seatPrices=[{"amount": "120.00", "currency": "SEK"}])
        assert repriced["edition"]["seatPrice"] == {"amount": "10.00", "currency": "EUR"}
        # a second price for the same date replaces the first
        await upsert_edition(api, code=edition, name="Repriced", includedFileStorageGb=10, validFrom="2026-11-20",
                             seatPrices=[{"amount": "125.00", "currency": "SEK"}])
        assert (await catalog(api, firm.admin))["editions"][edition]["seatPrice"]["amount"] == "100.00"

    sub_query = """query($id: ID!) { node(id: $id) { ... on LicenseSubscription { monthlyPrice { amount }
        edition { seatPrice { amount } } } } }"""
    upcoming = """query($id: ID!) { agreement(id: $id) { upcomingInvoice { period { start end }
        lines { quantity unitPrice { amount } amount { amount } } } } }"""
    with clock(api, at("2026-11-25")):
        assert (await catalog(api, firm.admin))["editions"][edition]["seatPrice"]["amount"] == "125.00"
        current = (await api.ok(sub_query, {"id": sub_id}, token=firm.admin))["node"]
        assert current == {"monthlyPrice": {"amount": "200.00"}, "edition": {"seatPrice": {"amount": "100.00"}}}
        preview = (await api.ok(upcoming, {"id": agreement_id}, token=firm.admin))["agreement"]["upcomingInvoice"]
        assert [(line["quantity"], line["unitPrice"]["amount"]) for line in preview["lines"]] == [(2, "100.00")]

    with clock(api, at("2026-12-01")):
        await rollover(api.runtime, date(2026, 12, 1))
    [november] = await invoices(api, agreement_id, firm.admin)
    assert [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"])
            for line in november["lines"]] == [(2, "100.00", "200.00")]
    with clock(api, at("2026-12-05")):
        current = (await api.ok(sub_query, {"id": sub_id}, token=firm.admin))["node"]
        assert current == {"monthlyPrice": {"amount": "250.00"}, "edition": {"seatPrice": {"amount": "125.00"}}}
        preview = (await api.ok(upcoming, {"id": agreement_id}, token=firm.admin))["agreement"]["upcomingInvoice"]
    assert preview["period"] == {"start": "2026-12-01", "end": "2027-01-01"}
    assert [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"])
            for line in preview["lines"]] == [(2, "125.00", "250.00")]


GOOD: dict[str, Any] = {"name": "Valid", "includedFileStorageGb": 1,
                        "seatPrices": [{"amount": "1.00", "currency": "SEK"}, {"amount": "2.00", "currency": "EUR"}]}


@pytest.mark.parametrize(("change", "field"), [
    ({"code": "  "}, ["input", "code"]),
    ({"code": "lower_case"}, ["input", "code"]),
    ({"code": "WITH SPACE"}, ["input", "code"]),
    ({"name": " "}, ["input", "name"]),
    ({"includedFileStorageGb": -1}, ["input", "includedFileStorageGb"]),
    ({"seatPrices": []}, ["input", "seatPrices"]),
    ({"seatPrices": [{"amount": "1.00", "currency": "SEK"}, {"amount": "-0.01", "currency": "EUR"}]},
     ["input", "seatPrices", "1", "amount"]),
    ({"seatPrices": [{"amount": "1.00", "currency": "SEK"}, {"amount": "2.005", "currency": "EUR"}]},
     ["input", "seatPrices", "1", "amount"]),
    ({"seatPrices": [{"amount": "NaN", "currency": "SEK"}]}, ["input", "seatPrices", "0", "amount"]),
    ({"seatPrices": [{"amount": "1E+20", "currency": "SEK"}]}, ["input", "seatPrices", "0", "amount"]),
    ({"seatPrices": [{"amount": "1.00", "currency": "XXX"}]}, ["input", "seatPrices", "0", "currency"]),
    ({"seatPrices": [{"amount": "1.00", "currency": "SEK"}, {"amount": "2.00", "currency": "sek"}]},
     ["input", "seatPrices", "1", "currency"]),
])
async def test_catalog_input_is_checked_and_nothing_is_stored(api: Api, change: dict[str, Any],
                                                             field: list[str]) -> None:
    new = code("BAD")
    payload = await upsert_edition(api, **{"code": new, **GOOD, **change}, expect_errors=True)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_INPUT", field)]
    assert payload["edition"] is None
    assert new not in (await catalog(api, await api.vendor()))["editions"]


async def test_feature_prices_are_checked_at_their_own_field(api: Api) -> None:
    payload = await api.mutate("upsertFeature", {
        "code": code("BADFEATURE"), "name": "Bad", "kind": "FEATURE",
        "monthlyPrices": [{"amount": "1.234", "currency": "EUR"}]}, FEATURE, token=await api.vendor(),
        expect_errors=True)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_INPUT", ["input", "monthlyPrices", "0", "amount"])]


async def test_only_the_vendor_edits_the_catalog(api: Api) -> None:
    firm = await api.firm()
    new = code("HIJACK")
    for name, input in (
        ("upsertEdition", {"code": new, **GOOD}),
        ("upsertFeature", {"code": new, "name": "X", "kind": "FEATURE",
                           "monthlyPrices": [{"amount": "1.00", "currency": "EUR"}]}),
    ):
        body = await api.gql(f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
                             "{ userErrors { code } } }", {"input": input}, token=firm.admin)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    # also with the platform:admin scope missing from a token of the vendor's own client
    staff = await api.token(firm.admin_email, scopes=["subscriptions:write"], client_id=api.vendor_client_id)
    body = await api.gql("mutation($input: UpsertEditionInput!) { upsertEdition(input: $input) { userErrors "
                         "{ code } } }", {"input": {"code": new, **GOOD}}, token=staff)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert new not in (await catalog(api, await api.vendor()))["editions"]


async def test_concurrent_upserts_of_one_new_code_both_succeed(api: Api) -> None:
    new = code("RACE")
    results = await asyncio.gather(*(upsert_edition(api, code=new, name=f"Race {n}", includedFileStorageGb=n,
                                                    seatPrices=[{"amount": f"{n}.00", "currency": "EUR"}])
                                     for n in (1, 2)))
    assert all(result["userErrors"] == [] for result in results)
    async with api.runtime.database.sessions() as session:
        rows = (await session.scalars(select(EditionPrice).where(EditionPrice.edition_code == new))).all()
    assert len(rows) == 1
    listed = (await catalog(api, await api.vendor()))["editions"][new]
    assert (listed["name"], listed["seatPrice"]["amount"]) in {("Race 1", "1.00"), ("Race 2", "2.00")}
