"""Rollover and monthly invoices (R15, R24) with hand-computed amounts."""

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from resolvers.rollover import rollover
from tests.api.client import Api, Firm
from tests.api.test_subscription_changes import clock

INVOICES = """query($id: ID!) { node(id: $id) { ... on Firm { invoices { edges { node { number billingMode
  period { start end } total { amount currency } lines { customerNumber description quantity
  unitPrice { amount } amount { amount } agreement { id } } } } } }
  ... on Agreement { invoices { edges { node { number billingMode period { start end } total { amount }
  lines { description quantity unitPrice { amount } amount { amount } } } } } } } }"""


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


async def invoices(api: Api, owner_id: str, token: str) -> list[dict[str, Any]]:
    data = await api.ok(INVOICES, {"id": owner_id}, token=token)
    return [edge["node"] for edge in data["node"]["invoices"]["edges"]]


async def subscribe(api: Api, firm: Firm, agreement_id: str, *, named: int, starts_on: str,
                    interval: str = "MONTHLY") -> str:
    payload = await api.mutate("createSubscription", {
        "ownerId": agreement_id, "editionCode": "STANDARD", "billingInterval": interval, "startsOn": starts_on,
        "seats": [{"licenseType": "NAMED", "count": named}]}, "subscription { id }", token=firm.admin)
    return str(payload["subscription"]["id"])


async def test_a_month_with_a_mid_period_seat_increase(api: Api) -> None:
    with clock(api, at("2026-11-11")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm, customer_number="C-1")
        sub_id = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-11-01")
        await api.mutate("changeSeats", {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 12},
                         "order { id }", token=firm.admin)
        report = await rollover(api.runtime, date(2026, 12, 1))
        assert report.invoices_issued >= 1
    [invoice] = await invoices(api, agreement_id, firm.admin)
    assert invoice["billingMode"] == "CUSTOMER"
    assert invoice["period"] == {"start": "2026-11-01", "end": "2026-12-01"}
    # 10 seats x 149.00 for the period, plus the order: 2 x 149 x 20/30 = 198.67
    assert [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]] \
        == [(10, "149.00", "1490.00"), (2, "149.00", "198.67")]
    assert invoice["total"]["amount"] == "1688.67"
    assert invoice["number"] == "I000001"
    # December is invoiced for the 12 seats bought by then
    with clock(api, at("2026-12-02")):
        await rollover(api.runtime, date(2027, 1, 1))
    december = [i for i in await invoices(api, agreement_id, firm.admin) if i["period"]["start"] == "2026-12-01"]
    assert [(line["quantity"], line["amount"]["amount"]) for line in december[0]["lines"]] == [(12, "1788.00")]
    assert december[0]["number"] == "I000002"


async def test_rollover_twice_issues_nothing_new(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-01")
        await rollover(api.runtime, date(2026, 12, 1))
        again = await rollover(api.runtime, date(2026, 12, 1))
    assert len(await invoices(api, agreement_id, firm.admin)) == 1
    assert again.invoices_issued == 0


async def test_two_rollovers_at_once_invoice_exactly_once_with_gapless_numbers(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreements = [(await api.agreement(firm))[0] for _ in range(3)]
        for agreement_id in agreements:
            await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
        await asyncio.gather(rollover(api.runtime, date(2026, 12, 1)), rollover(api.runtime, date(2026, 12, 1)))
    numbers = []
    for agreement_id in agreements:
        numbers += [i["number"] for i in await invoices(api, agreement_id, firm.admin)]
    assert sorted(numbers) == ["I000001", "I000002", "I000003"]


async def test_consolidated_invoice_at_reseller_prices_with_the_firms_own_licence(api: Api) -> None:
    vendor = await api.vendor()
    with clock(api, at("2026-11-01")):
        firm = await api.firm(reseller=True, certified=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "15"}, "firm { id }",
                         token=vendor)
        first, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="100")
        second, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="200")
        direct, _ = await api.agreement(firm, billing_mode="CUSTOMER", customer_number="300")
        await subscribe(api, firm, second, named=1, starts_on="2026-11-01")
        await subscribe(api, firm, first, named=3, starts_on="2026-11-01")
        await subscribe(api, firm, direct, named=2, starts_on="2026-11-01")
        await api.mutate("createSubscription", {"ownerId": firm.id, "editionCode": "PLUS", "billingInterval":
                                                "MONTHLY", "startsOn": "2026-11-01",
                                                "seats": [{"licenseType": "CLIENT_USER", "count": 4}]},
                         "subscription { id }", token=firm.admin)
        await rollover(api.runtime, date(2026, 12, 1))
    [consolidated] = await invoices(api, firm.id, firm.admin)
    assert consolidated["billingMode"] == "FIRM"
    rows = [(line["customerNumber"], line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"])
            for line in consolidated["lines"]]
    # list x 0.85: STANDARD 149.00 -> 126.65, PLUS 249.00 -> 211.65; the firm's licence first
    assert rows == [(None, 4, "211.65", "846.60"), ("100", 3, "126.65", "379.95"), ("200", 1, "126.65", "126.65")]
    assert Decimal(consolidated["total"]["amount"]) == Decimal("846.60") + Decimal("379.95") + Decimal("126.65")
    [own] = await invoices(api, direct, firm.admin)
    assert own["lines"][0]["unitPrice"]["amount"] == "149.00"
    # both kinds share the firm's one gapless series
    assert sorted([consolidated["number"], own["number"]]) == ["I000001", "I000002"]


async def test_a_yearly_subscription_is_invoiced_in_the_month_its_period_ends(api: Api) -> None:
    with clock(api, at("2026-11-11")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        await subscribe(api, firm, agreement_id, named=2, starts_on="2026-01-15", interval="YEARLY")
        await rollover(api.runtime, date(2027, 1, 1))
        assert await invoices(api, agreement_id, firm.admin) == []
        await rollover(api.runtime, date(2027, 2, 1))
    [invoice] = await invoices(api, agreement_id, firm.admin)
    assert invoice["period"] == {"start": "2027-01-01", "end": "2027-02-01"}
    # 149.00 x 12 = 1788.00 a seat for the year 2026-01-15 to 2027-01-14
    assert [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]] \
        == [(2, "1788.00", "3576.00")]


async def test_an_agreement_moved_between_billing_modes_mid_period(api: Api) -> None:
    with clock(api, at("2026-11-11")):
        firm = await api.firm(reseller=True)
        agreement_id, _ = await api.agreement(firm, billing_mode="CUSTOMER", customer_number="M-1")
        sub_id = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-11-01")
        await api.mutate("changeSeats", {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 11},
                         "order { id }", token=firm.admin)
    with clock(api, at("2026-11-20")):
        await api.mutate("updateAgreement", {"agreementId": agreement_id, "billingMode": "FIRM"},
                         "agreement { id }", token=firm.admin)
    with clock(api, at("2026-12-05")):
        await rollover(api.runtime, date(2027, 1, 1))
    direct = await invoices(api, agreement_id, firm.admin)
    # November stays direct (the mode applies from the next period); December is consolidated
    assert [(i["period"]["start"], i["total"]["amount"]) for i in direct] == [("2026-11-01", "1589.33")]
    consolidated = await invoices(api, firm.id, firm.admin)
    assert [(i["period"]["start"], i["lines"][0]["quantity"]) for i in consolidated] == [("2026-12-01", 11)]


async def test_seat_decrease_applies_at_rollover_but_never_below_seats_in_use(api: Api) -> None:
    with clock(api, at("2026-11-11")):
        firm = await api.firm()
        agreement_id, company_id = await api.agreement(firm)
        assert company_id is not None
        sub_id = await subscribe(api, firm, agreement_id, named=5, starts_on="2026-11-01")
        await api.mutate("changeSeats", {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 2},
                         "order { id }", token=firm.admin)
        await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": "PLUS"}, "subscription { id }",
                         token=firm.admin)
    with clock(api, at("2026-11-20")):  # before the period ends: seats counted then are November's (R38)
        for n in range(3):  # three users arrive after the decrease was scheduled (it keeps 5 seats until then)
            await api.invite(firm.admin, company_id, email=f"late{n}.{sub_id[-6:]}@x.example")
    with clock(api, at("2026-12-01")):
        await rollover(api.runtime, date(2026, 12, 1))
        data = await api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { edition { code } "
                            "seats { purchased } scheduledChanges { kind } auditLog(first: 3) { edges { node { "
                            "action after } } } } } }", {"id": sub_id}, token=firm.admin)
    node = data["node"]
    assert node["edition"]["code"] == "PLUS" and node["scheduledChanges"] == []
    assert node["seats"] == [{"purchased": 3}]  # max(2 scheduled, 3 in use)
    decreased = [e["node"] for e in node["auditLog"]["edges"] if e["node"]["action"] == "subscription.seats_decreased"]
    assert decreased and '"inUse": 3' in decreased[0]["after"]


async def test_upcoming_invoice_previews_the_month_in_progress(api: Api) -> None:
    with clock(api, at("2026-11-11")):
        firm = await api.firm(reseller=True)
        direct, company_id = await api.agreement(firm, billing_mode="CUSTOMER", customer_number="P-1")
        consolidated, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="P-2")
        sub_id = await subscribe(api, firm, direct, named=2, starts_on="2026-11-01")
        await subscribe(api, firm, consolidated, named=1, starts_on="2026-11-01")
        await api.mutate("changeSeats", {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 3},
                         "order { id }", token=firm.admin)
        query = """query($a: ID!, $b: ID!, $f: ID!) {
          a: agreement(id: $a) { upcomingInvoice { billingMode period { start end } total { amount }
            lines { quantity amount { amount } } } }
          b: agreement(id: $b) { upcomingInvoice { total { amount } } }
          f: firm(id: $f) { upcomingInvoice { billingMode total { amount } lines { customerNumber } } } }"""
        data = await api.ok(query, {"a": direct, "b": consolidated, "f": firm.id}, token=firm.admin)
    preview = data["a"]["upcomingInvoice"]
    assert preview["period"] == {"start": "2026-11-01", "end": "2026-12-01"}
    # 2 x 149.00 for November, plus 1 seat ordered on the 11th: 149 x 20/30 = 99.33
    assert [(line["quantity"], line["amount"]["amount"]) for line in preview["lines"]] == [(2, "298.00"),
                                                                                         (1, "99.33")]
    assert preview["total"]["amount"] == "397.33"
    assert data["b"]["upcomingInvoice"] is None
    assert data["f"]["upcomingInvoice"]["lines"] == [{"customerNumber": "P-2"}]
    # the preview stores nothing
    assert await invoices(api, direct, firm.admin) == []
    with clock(api, at("2026-12-01")):
        await rollover(api.runtime, date(2026, 12, 1))
    [issued] = await invoices(api, direct, firm.admin)
    assert issued["total"]["amount"] == "397.33"
    assert company_id is not None
    member = await api.invite(firm.admin, company_id, email=f"rep.{sub_id[-5:]}@x.example")
    assert member["membership"]["id"]
    reporter = await api.token(f"rep.{sub_id[-5:]}@x.example")
    hidden = await api.ok("query($a: ID!) { agreement(id: $a) { upcomingInvoice { total { amount } } } }",
                          {"a": direct}, token=reporter)
    assert hidden["agreement"]["upcomingInvoice"] is None


async def test_reinvoicing_export_has_the_numbers_of_the_consolidated_invoice(api: Api) -> None:
    import csv
    import io

    with clock(api, at("2026-11-01")):
        firm = await api.firm(reseller=True)
        one, _ = await api.agreement(firm, billing_mode="FIRM", customer_number='K-1, "quoted"')
        two, _ = await api.agreement(firm, billing_mode="FIRM", customer_number="K-2")
        await subscribe(api, firm, one, named=2, starts_on="2026-11-01")
        await subscribe(api, firm, two, named=1, starts_on="2026-11-01")
        url = f"/exports/reinvoicing.csv?firm={firm.id}&month=2026-11"
        preview = await api.http.get(url, headers={"Authorization": f"Bearer {firm.admin}"})
        await rollover(api.runtime, date(2026, 12, 1))
    issued = await api.http.get(url, headers={"Authorization": f"Bearer {firm.admin}"})
    assert issued.status_code == 200 and issued.headers["content-type"].startswith("text/csv")
    assert issued.text == preview.text
    rows = list(csv.DictReader(io.StringIO(issued.text)))
    [invoice] = await invoices(api, firm.id, firm.admin)
    assert [(r["customer_number"], r["quantity"], r["amount"]) for r in rows] == [
        (line["customerNumber"], str(line["quantity"]), line["amount"]["amount"]) for line in invoice["lines"]]
    assert rows[0]["customer_number"] == 'K-1, "quoted"'
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(invoice["total"]["amount"])
    # billing:read is needed, and another firm sees nothing
    narrow = await api.token(firm.admin_email, scopes=["firms:read"])
    assert (await api.http.get(url, headers={"Authorization": f"Bearer {narrow}"})).status_code == 403
    other = await api.firm()
    assert (await api.http.get(url, headers={"Authorization": f"Bearer {other.admin}"})).status_code == 404
    assert (await api.http.get(url)).status_code == 401


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def test_reinvoicing_export_cells_cannot_start_a_formula(api: Api) -> None:
    """OWASP CSV Injection: hostile names come back as text with a leading quote, numbers stay numbers."""
    import csv
    import io

    from sqlalchemy import update

    from models import Agreement, ids

    # (agreement name, customer number): every leading character OWASP lists, then one that needs csv quoting
    hostile = [('=HYPERLINK("http://evil","x")', "=1+1"), ("+1+1", "+46"), ("-2+3", "-7"), ("@SUM(A1:A9)", "@K"),
               ("\t=1+1", "K-TAB"), ("\r=1+1", "K-CR"), ('Acme, "Quoted"\nsecond line', 'K-1, "q"')]
    with clock(api, at("2026-11-01")):
        firm = await api.firm(reseller=True)
        vendor = await api.vendor()
        await api.mutate("updateFirm", {"firmId": firm.id, "name": "=cmd|' /C calc'!A0"}, "firm { id }",
                         token=vendor)
        await subscribe(api, firm, firm.id, named=1, starts_on="2026-11-01")  # the firm's own master licence
        for name, number in hostile:
            created = await api.mutate("createAgreement", {"firmId": firm.id, "name": name, "billingMode": "FIRM",
                                                           "customerNumber": number}, "agreement { id }",
                                       token=firm.admin)
            agreement_id = created["agreement"]["id"]
            if name[0] in "\t\r":
                # The API strips surrounding whitespace; the export must not rely on it, so store these directly.
                async with api.runtime.database.sessions.begin() as session:
                    await session.execute(update(Agreement).where(Agreement.id == ids.decode_as(agreement_id,
                                                                                                "Agreement"))
                                          .values(name=name))
            await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
        response = await api.http.get(f"/exports/reinvoicing.csv?firm={firm.id}&month=2026-11",
                                      headers={"Authorization": f"Bearer {firm.admin}"})
    assert response.status_code == 200
    header, *rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert header[:4] == ["customer_number", "agreement", "license_type", "description"]
    by_number = {row[0]: row for row in rows}
    for name, number in hostile[:-1]:
        row = by_number["'" + number] if number[0] in FORMULA_STARTS else by_number[number]
        assert row[1] == "'" + name
    quoted = by_number['K-1, "q"']
    assert quoted[1] == 'Acme, "Quoted"\nsecond line'  # quoting kept, nothing added
    [own] = [row for row in rows if row[0] == ""]
    assert own[1] == "'=cmd|' /C calc'!A0"
    assert len(rows) == len(hostile) + 1
    for row in rows:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
        # numbers stay plain numbers, without a quote
        assert row[4].isdigit() and Decimal(row[5]) > 0 and Decimal(row[6]) == int(row[4]) * Decimal(row[5])
        assert row[2] == "NAMED" and row[3].startswith("NAMED licences") and row[7] == "SEK"


async def test_an_agreement_with_billing_history_is_never_deleted(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, company_id = await api.agreement(firm)
        assert company_id is not None
        await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
        target, _ = await api.agreement(firm, company=False)
        await api.mutate("moveCompany", {"companyId": company_id, "toAgreementId": target}, "company { id }",
                         token=firm.admin)
        refused = await api.mutate("deleteAgreement", {"agreementId": agreement_id}, "deletedAgreementId",
                                   token=firm.admin, expect_errors=True)
        assert [e["code"] for e in refused["userErrors"]] == ["HAS_BILLING_HISTORY"]
    with clock(api, at("2026-12-01")):
        await rollover(api.runtime, date(2026, 12, 1))
        [invoice] = await invoices(api, agreement_id, firm.admin)
        still = await api.mutate("deleteAgreement", {"agreementId": agreement_id}, "deletedAgreementId",
                                 token=firm.admin, expect_errors=True)
        assert [e["code"] for e in still["userErrors"]] == ["HAS_BILLING_HISTORY"]
        # An agreement that was never billed may go.
        empty, _ = await api.agreement(firm, company=False)
        deleted = await api.mutate("deleteAgreement", {"agreementId": empty}, "deletedAgreementId",
                                   token=firm.admin)
    assert deleted["deletedAgreementId"] == empty
    assert invoice["total"]["amount"] == "298.00"
    assert [i["number"] for i in await invoices(api, agreement_id, firm.admin)] == [invoice["number"]]
