"""Billing details of agreements and firms through HTTP (R23), who may change them
(section 3), atomicity (R26) and audit (R29)."""

import json
from typing import Any

from sqlalchemy import select

from models import AuditEvent
from tests.api.client import Api, Firm, unique

DETAILS = "billingDetails { billingContactName billingEmail invoiceAddress { street postalCode city country } " \
          "eInvoice { enabled address operatorCode } }"
ADDRESS = {"street": "Storgatan 1", "postalCode": "111 22", "city": "Stockholm", "country": "se"}
E_INVOICE = {"enabled": True, "address": "0007:5567321707", "operatorCode": "PEPPOL"}


async def setup(api: Api) -> tuple[Firm, str, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=10)
    return firm, agreement_id, company_id


async def update(api: Api, token: str, owner_id: str, **input: Any) -> dict[str, Any]:
    return await api.mutate("updateBillingDetails", {"ownerId": owner_id, "invoiceAddress": ADDRESS, **input},
                            DETAILS, token=token, expect_errors=True)


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def stored(api: Api, firm: Firm, agreement_id: str) -> dict[str, Any] | None:
    data = await api.ok(f"query($id: ID!) {{ agreement(id: $id) {{ {DETAILS} }} }}", {"id": agreement_id},
                        token=firm.admin)
    details: dict[str, Any] | None = data["agreement"]["billingDetails"]
    return details


async def member_token(api: Api, firm: Firm, company_id: str, role: str) -> str:
    email = unique(role.lower()) + "@member.example"
    await api.invite(firm.admin, company_id, email=email, role=role)
    return await api.token(email)


async def audit_events(api: Api, subject_id: str) -> list[AuditEvent]:
    async with api.runtime.database.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(
            AuditEvent.subject_id == subject_id, AuditEvent.action == "billing_details.updated")
            .order_by(AuditEvent.id)))


async def forbidden(api: Api, token: str, owner_id: str) -> None:
    body = await api.gql("mutation($input: UpdateBillingDetailsInput!) { updateBillingDetails(input: $input) "
                         "{ userErrors { code } } }", {"input": {"ownerId": owner_id, "invoiceAddress": ADDRESS}},
                         token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


async def test_billing_details_are_stored_read_back_and_audited(api: Api) -> None:
    firm, agreement_id, _ = await setup(api)
    assert await stored(api, firm, agreement_id) is None
    payload = await update(api, firm.admin, agreement_id, billingContactName=" Anna Ek ",
                           billingEmail="Invoices@Customer.example", eInvoice=E_INVOICE)
    assert payload["userErrors"] == []
    expected = {"billingContactName": "Anna Ek", "billingEmail": "Invoices@Customer.example",
                "invoiceAddress": {**ADDRESS, "country": "SE"}, "eInvoice": E_INVOICE}
    assert payload["billingDetails"] == expected
    assert await stored(api, firm, agreement_id) == expected
    [event] = await audit_events(api, agreement_id)
    assert json.loads(event.before or "") == {"billingContactName": None, "billingEmail": None,
                                              "invoiceAddress.street": None, "invoiceAddress.postalCode": None,
                                              "invoiceAddress.city": None, "invoiceAddress.country": None,
                                              "eInvoice.enabled": False, "eInvoice.address": None,
                                              "eInvoice.operatorCode": None}
    assert json.loads(event.after or "")["invoiceAddress.country"] == "SE"
    assert event.actor_user_id is not None and event.client_id == api.app_client_id

    # absent fields stay; blank ones clear; only what changed is audited
    moved = await update(api, firm.admin, agreement_id, billingEmail="",
                         invoiceAddress={**ADDRESS, "city": "Uppsala"})
    assert moved["billingDetails"]["billingContactName"] == "Anna Ek"
    assert moved["billingDetails"]["billingEmail"] is None
    assert moved["billingDetails"]["eInvoice"] == E_INVOICE
    second = (await audit_events(api, agreement_id))[1]
    assert json.loads(second.before or "") == {"billingEmail": "Invoices@Customer.example",
                                               "invoiceAddress.city": "Stockholm"}
    assert json.loads(second.after or "") == {"billingEmail": None, "invoiceAddress.city": "Uppsala"}


async def test_physical_address_is_required_with_e_invoicing(api: Api) -> None:
    firm, agreement_id, _ = await setup(api)
    for name in ("street", "postalCode", "city"):
        for e_invoice in (None, E_INVOICE):
            extra = {"eInvoice": e_invoice} if e_invoice else {}
            payload = await update(api, firm.admin, agreement_id, invoiceAddress={**ADDRESS, name: "  "}, **extra)
            assert codes(payload) == [("INVOICE_ADDRESS_REQUIRED", ["input", "invoiceAddress", name])]
            assert payload["billingDetails"] is None
    assert await stored(api, firm, agreement_id) is None


async def test_e_invoicing_needs_address_and_operator_code(api: Api) -> None:
    firm, agreement_id, _ = await setup(api)
    no_address = await update(api, firm.admin, agreement_id, eInvoice={"enabled": True, "operatorCode": "PEPPOL"})
    assert codes(no_address) == [("E_INVOICE_DETAILS_REQUIRED", ["input", "eInvoice", "address"])]
    no_operator = await update(api, firm.admin, agreement_id,
                               eInvoice={"enabled": True, "address": "0007:5567321707", "operatorCode": ""})
    assert codes(no_operator) == [("E_INVOICE_DETAILS_REQUIRED", ["input", "eInvoice", "operatorCode"])]
    off = await update(api, firm.admin, agreement_id, eInvoice={"enabled": False})
    assert off["userErrors"] == [] and off["billingDetails"]["eInvoice"]["enabled"] is False
    on = await update(api, firm.admin, agreement_id, eInvoice=E_INVOICE)
    assert on["billingDetails"]["eInvoice"] == E_INVOICE


async def test_country_and_billing_email_are_checked(api: Api) -> None:
    firm, agreement_id, _ = await setup(api)
    assert codes(await update(api, firm.admin, agreement_id, invoiceAddress={**ADDRESS, "country": "Sweden"})) == [
        ("INVALID_INPUT", ["input", "invoiceAddress", "country"])]
    assert codes(await update(api, firm.admin, agreement_id, billingEmail="invoices at customer")) == [
        ("INVALID_INPUT", ["input", "billingEmail"])]


async def test_a_refused_billing_change_leaves_nothing_behind(api: Api) -> None:
    firm, agreement_id, _ = await setup(api)
    await update(api, firm.admin, agreement_id, billingContactName="Anna")
    before = await stored(api, firm, agreement_id)
    refused = await update(api, firm.admin, agreement_id, billingContactName="Someone Else",
                           invoiceAddress={**ADDRESS, "street": "Ny gata 2"},
                           eInvoice={"enabled": True, "address": "0007:1"})
    assert codes(refused) == [("E_INVOICE_DETAILS_REQUIRED", ["input", "eInvoice", "operatorCode"])]
    assert await stored(api, firm, agreement_id) == before
    assert len(await audit_events(api, agreement_id)) == 1


async def test_firm_billing_details_belong_to_the_firm_admin(api: Api) -> None:
    firm, _, company_id = await setup(api)
    payload = await update(api, firm.admin, firm.id, billingContactName="Firm Finance")
    assert payload["userErrors"] == [] and payload["billingDetails"]["billingContactName"] == "Firm Finance"
    data = await api.ok(f"query($id: ID!) {{ firm(id: $id) {{ {DETAILS} }} }}", {"id": firm.id}, token=firm.admin)
    assert data["firm"]["billingDetails"]["invoiceAddress"]["city"] == "Stockholm"
    [event] = await audit_events(api, firm.id)
    assert event.firm_id is not None
    # a company's administrator may not change the firm's details
    await forbidden(api, await member_token(api, firm, company_id, "ADMINISTRATOR"), firm.id)


async def test_who_may_change_an_agreements_billing_details(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api)
    administrator = await member_token(api, firm, company_id, "ADMINISTRATOR")
    assert (await update(api, administrator, agreement_id, billingContactName="By admin"))["userErrors"] == []
    for role in ("ACCOUNTANT", "APPROVER", "REPORTER"):
        await forbidden(api, await member_token(api, firm, company_id, role), agreement_id)
    advisor_email = unique("advisor") + "@firm.example"
    await api.mutate("addFirmStaff", {"firmId": firm.id, "name": "Advisor", "email": advisor_email,
                                      "role": "FIRM_ADVISOR"}, "firmMember { id }", token=await api.vendor())
    advisor = await api.token(advisor_email)
    await forbidden(api, advisor, agreement_id)
    await forbidden(api, advisor, firm.id)
    # another firm does not see the agreement at all
    other = await api.firm()
    assert codes(await update(api, other.admin, agreement_id)) == [("NOT_FOUND", ["input", "ownerId"])]
    assert codes(await update(api, firm.admin, company_id)) == [("NOT_FOUND", ["input", "ownerId"])]
    assert (await stored(api, firm, agreement_id) or {})["billingContactName"] == "By admin"
