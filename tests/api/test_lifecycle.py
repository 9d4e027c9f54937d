"""The whole licence lifecycle (R46-R50), through HTTP on PostgreSQL: cancelling, changing
the billing interval, archiving and its undoing, releasing client users, credit notes and
moving a client to another firm. Figures are computed by hand in the comments."""

import csv
import io
from datetime import date, timedelta
from typing import Any

from resolvers.rollover import rollover
from tests.api.client import Api, Firm, unique
from tests.api.test_client_users import assign, firm_with_clients
from tests.api.test_invoicing import at, invoices, subscribe
from tests.api.test_subscription_changes import clock

SUB = ("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { status currentPeriod { start end } "
       "billingInterval seats { licenseType purchased inUse } scheduledChanges { kind effectiveOn toValue } } } }")
COMPANY = "query($id: ID!) { company(id: $id) { id name archivedAt } }"


def lines(invoice: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"]) for line in invoice["lines"]]


async def sub_state(api: Api, token: str, sub: str) -> dict[str, Any]:
    return (await api.ok(SUB, {"id": sub}, token=token))["node"]


async def member(api: Api, firm: Firm, company_id: str, role: str = "REPORTER") -> str:
    email = unique("member") + "@x.example"
    await api.invite(firm.admin, company_id, email=email, role=role)
    return await api.token(email)


# ------------------------------------------------------------------ cancelling (R46)


async def test_a_cancellation_waits_for_the_period_end_and_then_ends_access_and_charges(api: Api) -> None:
    with clock(api, at("2026-11-10")):
        firm = await api.firm()
        agreement_id, company_id = await api.agreement(firm)
        assert company_id is not None
        sub = await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-01")
        reporter = await member(api, firm, company_id)
        cancelled = await api.mutate("cancelSubscription", {"subscriptionId": sub}, "scheduledChange { kind "
                                     "effectiveOn } subscription { status } preview { effectiveOn "
                                     "nextMonthlyPrice { amount } warnings }", token=firm.admin)
        assert cancelled["scheduledChange"] == {"kind": "CANCELLATION", "effectiveOn": "2026-12-01"}
        # The preview shows it: from 1 December nothing more is charged.
        assert cancelled["preview"]["effectiveOn"] == "2026-12-01"
        assert cancelled["preview"]["nextMonthlyPrice"]["amount"] == "0.00" and cancelled["preview"]["warnings"]
        assert cancelled["subscription"]["status"] == "ACTIVE"
        # Cancellable until then, and again.
        await api.mutate("cancelScheduledChange", {"subscriptionId": sub, "kind": "CANCELLATION"},
                         "subscription { id }", token=firm.admin)
        assert (await sub_state(api, firm.admin, sub))["scheduledChanges"] == []
        await api.mutate("cancelSubscription", {"subscriptionId": sub}, "subscription { id }", token=firm.admin)
        # R9 does not hold it up: a member still uses a seat.
        assert (await sub_state(api, firm.admin, sub))["seats"][0]["inUse"] == 1
        assert (await api.ok(COMPANY, {"id": company_id}, token=reporter))["company"] is not None
    with clock(api, at("2026-12-02")):
        await rollover(api.runtime, date(2026, 12, 1))
        state = await sub_state(api, firm.admin, sub)
        assert state["status"] == "CANCELLED"
        assert state["currentPeriod"] == {"start": "2026-11-01", "end": "2026-12-01"}  # no later period
        # The member keeps its data but no longer gets in through it.
        assert (await api.ok(COMPANY, {"id": company_id}, token=reporter))["company"] is None
        changed = await api.mutate("changeSeats", {"subscriptionId": sub, "licenseType": "NAMED", "seats": 9},
                                   "order { id }", token=firm.admin, expect_errors=True)
        assert [e["code"] for e in changed["userErrors"]] == ["INVALID_INPUT"]
    with clock(api, at("2027-02-02")):
        await rollover(api.runtime, date(2027, 2, 1))
    # November only: 3 x 149.00. Nothing after the period it ended with.
    assert [(i["period"]["start"], lines(i)) for i in await invoices(api, agreement_id, firm.admin)] == [
        ("2026-11-01", [(3, "149.00", "447.00")])]


async def test_the_vendor_cancels_at_once_and_the_unused_days_are_given_back(api: Api) -> None:
    """YEARLY, 10 June 2026 to 10 June 2027 (365 days), 10 seats at 149.00 x 12 = 1788.00. One
    more seat on 2 November: 1788.00 x 220/365 = 1077.70, on November's invoice. Cancelled at once
    on 15 December: the period is charged for its 188 days: 10 x 1788.00 x 188/365 = 9209.42; the
    order's days from then are given back by a credit note: 1077.70 - 1788.00 x 43/365 (210.64)
    = 867.06."""
    with clock(api, at("2026-11-02")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=10, starts_on="2026-06-10", interval="YEARLY")
        await api.mutate("changeSeats", {"subscriptionId": sub, "licenseType": "NAMED", "seats": 11},
                         "order { id }", token=firm.admin)
    with clock(api, at("2026-12-15")):
        await rollover(api.runtime, date(2026, 12, 1))
        refused = await api.gql("mutation($i: CancelSubscriptionInput!) { cancelSubscription(input: $i) { "
                                "userErrors { code } } }", {"i": {"subscriptionId": sub, "immediately": True}},
                                token=firm.admin)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # at once is the vendor's
        done = await api.mutate("cancelSubscription", {"subscriptionId": sub, "immediately": True},
                                "subscription { status } creditOrder { id }", token=await api.vendor())
        assert done["subscription"]["status"] == "CANCELLED" and done["creditOrder"] is None
    with clock(api, at("2027-01-02")):
        await rollover(api.runtime, date(2027, 1, 1))
    listed = {(i["period"]["start"], i["number"]): i for i in await invoices(api, agreement_id, firm.admin)}
    by_month: dict[str, list[dict[str, Any]]] = {}
    for (start, _), invoice in sorted(listed.items()):
        by_month.setdefault(start, []).append(invoice)
    november = by_month["2026-11-01"]
    assert [lines(i) for i in november] == [[(1, "1788.00", "1077.70")]]
    december = by_month["2026-12-01"]
    # December: the credit note (issued in December) and the period cut at 15 December.
    totals = sorted(i["total"]["amount"] for i in december)
    assert totals == ["-867.06", "9209.42"]


async def test_a_subscription_that_has_not_begun_is_cancelled_at_once_for_nothing(api: Api) -> None:
    with clock(api, at("2026-11-20")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=4, starts_on="2026-12-05")
        done = await api.mutate("cancelSubscription", {"subscriptionId": sub}, "subscription { status }",
                                token=firm.admin)
        assert done["subscription"]["status"] == "CANCELLED"
    with clock(api, at("2027-02-02")):
        await rollover(api.runtime, date(2027, 2, 1))
    assert await invoices(api, agreement_id, firm.admin) == []


# ------------------------------------------------------------------ the billing interval (R47)


async def test_a_billing_interval_change_waits_for_the_next_period_which_anchors_the_new_ones(api: Api) -> None:
    with clock(api, at("2026-11-20")):
        firm = await api.firm()
        agreement_id, _ = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=2, starts_on="2026-10-15")
        changed = await api.mutate("changeBillingInterval", {"subscriptionId": sub, "billingInterval": "YEARLY"},
                                   "scheduledChange { kind effectiveOn toValue }", token=firm.admin)
        assert changed["scheduledChange"] == {"kind": "INTERVAL_CHANGE", "effectiveOn": "2026-12-15",
                                              "toValue": "YEARLY"}
        again = await api.mutate("changeBillingInterval", {"subscriptionId": sub, "billingInterval": "YEARLY"},
                                 "scheduledChange { kind }", token=firm.admin, expect_errors=True)
        assert [e["code"] for e in again["userErrors"]] == ["INVALID_INPUT"]  # one pending at a time
    with clock(api, at("2026-12-16")):
        state = await sub_state(api, firm.admin, sub)  # the stored period until something moves it
        await rollover(api.runtime, date(2026, 12, 16))
        state = await sub_state(api, firm.admin, sub)
    assert state["billingInterval"] == "YEARLY"
    assert state["currentPeriod"] == {"start": "2026-12-15", "end": "2027-12-15"}


# ------------------------------------------------------------------ archiving (R49)


async def test_archiving_a_company_ends_every_access_and_can_be_undone(api: Api) -> None:
    firm, _, [company_id, other_id] = await firm_with_clients(api, client_user_seats=2, companies=2, named=5)
    admin = await member(api, firm, company_id, "ADMINISTRATOR")  # the only one: R21 does not hold this up
    await assign(api, firm, [company_id])
    sub_id = (await api.ok("query($id: ID!) { company(id: $id) { agreement { subscription { id } } } }",
                           {"id": company_id}, token=firm.admin))["company"]["agreement"]["subscription"]["id"]
    assert (await sub_state(api, firm.admin, sub_id))["seats"][0]["inUse"] == 1
    archived = await api.mutate("archiveCompany", {"companyId": company_id}, "company { archivedAt }",
                                token=firm.admin)
    assert archived["company"]["archivedAt"] is not None
    assert (await sub_state(api, firm.admin, sub_id))["seats"][0]["inUse"] == 0  # the seat is free at once
    assert (await api.ok(COMPANY, {"id": company_id}, token=admin))["company"] is None  # access ended
    # Left out of lists unless asked for; still readable, history included, for the firm.
    listed = await api.ok("query($id: ID!) { firm(id: $id) { companies { edges { node { id } } } "
                          "all: companies(includeArchived: true) { edges { node { id } } } } }", {"id": firm.id},
                          token=firm.admin)
    assert company_id not in [e["node"]["id"] for e in listed["firm"]["companies"]["edges"]]
    assert company_id in [e["node"]["id"] for e in listed["firm"]["all"]["edges"]]
    history = await api.ok("query($id: ID!) { company(id: $id) { auditLog { edges { node { action } } } } }",
                           {"id": company_id}, token=firm.admin)
    assert "company.archived" in [e["node"]["action"] for e in history["company"]["auditLog"]["edges"]]
    # Nothing else can be done to it.
    refused = await api.invite(firm.admin, company_id, email=unique("late") + "@x.example", expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["ARCHIVED"]
    # Undone within the grace period: the memberships it ended are back, the client user is not.
    await api.mutate("unarchiveCompany", {"companyId": company_id}, "company { archivedAt }", token=firm.admin)
    assert (await api.ok(COMPANY, {"id": company_id}, token=admin))["company"]["id"] == company_id
    assert (await sub_state(api, firm.admin, sub_id))["seats"][0]["inUse"] == 1
    assert other_id


async def test_an_archiving_can_be_undone_only_within_the_grace_period(api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.mutate("archiveCompany", {"companyId": company_id}, "company { id }", token=firm.admin)
    with clock(api, api.runtime.now() + timedelta(days=31)):
        late = await api.mutate("unarchiveCompany", {"companyId": company_id}, "company { id }", token=firm.admin,
                                expect_errors=True)
    assert [e["code"] for e in late["userErrors"]] == ["INVALID_INPUT"]
    assert agreement_id


async def test_an_agreement_is_archived_only_once_its_subscription_ended(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm()
        agreement_id, company_id = await api.agreement(firm)
        sub = await subscribe(api, firm, agreement_id, named=2, starts_on="2026-11-01")
        refused = await api.mutate("archiveAgreement", {"agreementId": agreement_id}, "agreement { id }",
                                   token=firm.admin, expect_errors=True)
        assert [e["code"] for e in refused["userErrors"]] == ["SUBSCRIPTION_ACTIVE"]
        await api.mutate("cancelSubscription", {"subscriptionId": sub}, "subscription { id }", token=firm.admin)
    with clock(api, at("2026-12-02")):
        await rollover(api.runtime, date(2026, 12, 1))
        done = await api.mutate("archiveAgreement", {"agreementId": agreement_id}, "agreement { archivedAt }",
                                token=firm.admin)
        assert done["agreement"]["archivedAt"] is not None
        company = await api.ok(COMPANY, {"id": company_id}, token=firm.admin)
        assert company["company"]["archivedAt"] is not None  # archived with it
        # Its invoices stay readable.
        assert len(await invoices(api, agreement_id, firm.admin)) == 1


# ------------------------------------------------------------------ client users (R16, R17)


async def test_releasing_client_users_frees_their_seats_for_a_lower_count(api: Api) -> None:
    firm, master, companies = await firm_with_clients(api, client_user_seats=2, companies=2)
    assert master is not None
    first = await assign(api, firm, [companies[0]])
    second = await assign(api, firm, [companies[1]])
    for client_user, company_id in ((first, companies[0]), (second, companies[1])):
        await api.mutate("removeClientUserCompany", {"clientUserId": client_user["clientUser"]["id"],
                                                     "companyId": company_id}, "clientUser { id }", token=firm.admin)
    lower = {"subscriptionId": master, "licenseType": "CLIENT_USER", "seats": 0}
    refused = await api.mutate("changeSeats", lower, "scheduledChange { toValue }", token=firm.admin,
                               expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["SEATS_BELOW_ACTIVE_USERS"]  # they still hold seats
    for client_user in (first, second):
        removed = await api.mutate("removeClientUser", {"clientUserId": client_user["clientUser"]["id"]},
                                   "removedClientUserId", token=firm.admin)
        assert removed["removedClientUserId"] == client_user["clientUser"]["id"]
    assert (await sub_state(api, firm.admin, master))["seats"][0]["inUse"] == 0
    lowered = await api.mutate("changeSeats", lower, "scheduledChange { toValue }", token=firm.admin)
    assert lowered["scheduledChange"]["toValue"] == "0"


# ------------------------------------------------------------------ credit notes (R48)


CREDITS = ("query($id: ID!) { node(id: $id) { ... on Firm { invoices { edges { node { number kind reason total "
           "{ amount } creditedInvoice { number } lines { position creditedLinePosition description quantity "
           "unitPrice { amount } amount { amount } } } } } } } }")


async def test_a_credit_note_corrects_an_issued_invoice_and_never_changes_it(api: Api) -> None:
    with clock(api, at("2026-11-05")):
        firm = await api.firm(reseller=True)
        agreement_id, _ = await api.agreement(firm, billing_mode="FIRM", customer_number=unique("C"))
        await subscribe(api, firm, agreement_id, named=3, starts_on="2026-11-01")
        await api.subscription(firm, firm.id, named=0, client_user=2)
    with clock(api, at("2026-12-03")):
        await rollover(api.runtime, date(2026, 12, 1))
        [issued] = [e["node"] for e in (await api.ok(CREDITS, {"id": firm.id}, token=firm.admin))["node"]["invoices"]
                    ["edges"]]
        vendor = await api.vendor()
        credit = {"invoiceId": None, "reason": "Two seats were never used"}
        node = await api.ok("query($id: ID!) { firm(id: $id) { invoices { edges { node { id } } } } }",
                            {"id": firm.id}, token=firm.admin)
        credit["invoiceId"] = node["firm"]["invoices"]["edges"][0]["node"]["id"]
        seats_line = next(line for line in issued["lines"] if line["quantity"] == 3)
        too_much = await api.mutate("issueCreditNote", {**credit, "lines": [
            {"position": seats_line["position"], "amount": "447.01"}]}, "creditNote { number }", token=vendor,
            expect_errors=True)
        assert [e["code"] for e in too_much["userErrors"]] == ["CREDIT_EXCEEDS_INVOICE"]
        first = await api.mutate("issueCreditNote", {**credit, "lines": [
            {"position": seats_line["position"], "amount": "298.00"}]}, "creditNote { number total { amount } }",
            token=vendor)
        assert first["creditNote"]["total"]["amount"] == "-298.00"
        # What is left of the line is 149.00, and no more.
        rest = await api.mutate("issueCreditNote", {**credit, "lines": [{"position": seats_line["position"],
                                                                         "amount": "149.01"}]},
                                "creditNote { number }", token=vendor, expect_errors=True)
        assert [e["code"] for e in rest["userErrors"]] == ["CREDIT_EXCEEDS_INVOICE"]
        export = await api.http.get("/exports/reinvoicing.csv", params={"firm": firm.id, "month": "2026-12"},
                                    headers={"Authorization": f"Bearer {firm.admin}"})
    listed = [e["node"] for e in (await api.ok(CREDITS, {"id": firm.id}, token=firm.admin))["node"]["invoices"]
              ["edges"]]
    original = next(i for i in listed if i["kind"] == "INVOICE")
    note = next(i for i in listed if i["kind"] == "CREDIT_NOTE")
    assert original == issued  # untouched
    assert note["creditedInvoice"]["number"] == issued["number"] and note["reason"] == credit["reason"]
    assert int(note["number"][1:]) == int(issued["number"][1:]) + 1  # the same gapless series
    assert [(line["creditedLinePosition"], line["amount"]["amount"]) for line in note["lines"]] == [
        (seats_line["position"], "-298.00")]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    # On the CSV of the month it was issued in, after that month's own (not yet issued) lines.
    assert [row["amount"] for row in rows][-1] == "-298.00"
    assert len(rows) == 3  # December's seats and client-user lines, then the credit


# ------------------------------------------------------------------ moving a client (R50)


TRANSFERS = ("query($id: ID!) { firm(id: $id) { incomingTransfers { id status agreementName fromFirmName "
             "effectiveOn } } }")


async def test_a_client_moves_to_another_firm_with_consent_at_the_next_period(api: Api) -> None:
    with clock(api, at("2026-11-10")):
        old = await api.firm(certified=True)
        new = await api.firm()
        agreement_id, company_id = await api.agreement(old, customer_number=unique("OLD"))
        assert company_id is not None
        await subscribe(api, old, agreement_id, named=3, starts_on="2026-11-01")
        await api.subscription(old, old.id, named=0, client_user=1)
        await assign(api, old, [company_id])
        offered = await api.mutate("offerAgreementTransfer", {"agreementId": agreement_id, "toFirmId": new.id},
                                   "transfer { id status expiresAt }", token=old.admin)
        transfer_id = offered["transfer"]["id"]
        # An open offer blocks archiving.
        blocked = await api.mutate("archiveCompany", {"companyId": company_id}, "company { id }", token=old.admin,
                                   expect_errors=True)
        assert [e["code"] for e in blocked["userErrors"]] == ["TRANSFER_PENDING"]
        incoming = (await api.ok(TRANSFERS, {"id": new.id}, token=new.admin))["firm"]["incomingTransfers"]
        assert [(t["id"], t["status"]) for t in incoming] == [(transfer_id, "OFFERED")]
        assert incoming[0]["agreementName"] and incoming[0]["fromFirmName"]
        # The receiver cannot read the agreement before it moves.
        assert (await api.ok("query($id: ID!) { agreement(id: $id) { id } }", {"id": agreement_id},
                             token=new.admin))["agreement"] is None
        accepted = await api.mutate("acceptAgreementTransfer", {"transferId": transfer_id, "customerNumber": "N-1"},
                                    "transfer { status effectiveOn }", token=new.admin)
        assert accepted["transfer"] == {"status": "ACCEPTED", "effectiveOn": "2026-12-01"}
    with clock(api, at("2026-12-02")):
        await rollover(api.runtime, date(2026, 12, 1))
        moved = await api.ok("query($id: ID!) { agreement(id: $id) { customerNumber firm { id } "
                             "companies { edges { node { members { edges { node { licenseType } } } } } } } }",
                             {"id": agreement_id}, token=new.admin)
        assert moved["agreement"]["firm"]["id"] == new.id and moved["agreement"]["customerNumber"] == "N-1"
        # The old firm's client user lost its assignment there.
        licence_types = [m["node"]["licenseType"] for c in moved["agreement"]["companies"]["edges"]
                         for m in c["node"]["members"]["edges"]]
        assert "CLIENT_USER" not in licence_types
        assert (await api.ok("query($id: ID!) { agreement(id: $id) { id } }", {"id": agreement_id},
                             token=old.admin))["agreement"] is None
    with clock(api, at("2027-01-02")):
        await rollover(api.runtime, date(2027, 1, 1))
    # November stays the old firm's, December is the new firm's.
    old_invoices = await api.ok("query($id: ID!) { firm(id: $id) { id } }", {"id": old.id}, token=old.admin)
    assert old_invoices["firm"]["id"] == old.id
    new_view = await invoices(api, agreement_id, new.admin)
    assert [i["period"]["start"] for i in new_view] == ["2026-12-01"]
    history = await api.ok("query($id: ID!) { firm(id: $id) { auditLog(first: 100) { edges { node { action } } } } }",
                           {"id": old.id}, token=old.admin)
    actions = {e["node"]["action"] for e in history["firm"]["auditLog"]["edges"]}
    assert {"agreement.transfer_offered", "agreement.transfer_accepted", "agreement.transferred"} <= actions


async def test_a_transfer_offer_lapses_after_thirty_days_and_can_be_declined(api: Api) -> None:
    old, new = await api.firm(), await api.firm()
    agreement_id, _ = await api.agreement(old, company=False)
    offered = await api.mutate("offerAgreementTransfer", {"agreementId": agreement_id, "toFirmId": new.id},
                               "transfer { id }", token=old.admin)
    later = api.runtime.now() + timedelta(days=31)
    with clock(api, later):
        late = await api.mutate("acceptAgreementTransfer", {"transferId": offered["transfer"]["id"]},
                                "transfer { status }", token=new.admin, expect_errors=True)
        assert [e["code"] for e in late["userErrors"]] == ["INVALID_INPUT"]
        assert (await api.ok(TRANSFERS, {"id": new.id}, token=new.admin))["firm"]["incomingTransfers"] == []
        await lapsed_then_declined_then_moved(api, old, new, agreement_id)


async def lapsed_then_declined_then_moved(api: Api, old: Firm, new: Firm, agreement_id: str) -> None:
    """Once an offer lapsed, the agreement may be offered again."""
    again = await api.mutate("offerAgreementTransfer", {"agreementId": agreement_id, "toFirmId": new.id},
                             "transfer { id }", token=old.admin)
    declined = await api.mutate("declineAgreementTransfer", {"transferId": again["transfer"]["id"]},
                                "transfer { status }", token=new.admin)
    assert declined["transfer"]["status"] == "DECLINED"
    # An agreement without a running subscription moves at once when accepted.
    third = await api.mutate("offerAgreementTransfer", {"agreementId": agreement_id, "toFirmId": new.id},
                             "transfer { id }", token=old.admin)
    await api.mutate("acceptAgreementTransfer", {"transferId": third["transfer"]["id"]}, "transfer { status }",
                     token=new.admin)
    moved = await api.ok("query($id: ID!) { agreement(id: $id) { firm { id } } }", {"id": agreement_id},
                         token=new.admin)
    assert moved["agreement"]["firm"]["id"] == new.id
