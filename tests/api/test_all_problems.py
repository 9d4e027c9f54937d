"""R53: an input with several wrong fields is refused with one userError per wrong field, so
a form can mark them all at once; and nothing is stored."""

from typing import Any

from sqlalchemy import func, select

from models import AuditEvent
from tests.api.client import Api, new_pin, unique


def fields(payload: dict[str, Any]) -> dict[str, str]:
    return {".".join(error["field"]): error["code"] for error in payload["userErrors"]}


async def audit_events(api: Api) -> int:
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def test_a_new_agreement_reports_its_own_and_its_companys_wrong_fields(api: Api) -> None:
    firm = await api.firm()
    before = await audit_events(api)
    payload = await api.mutate("createAgreement", {
        "firmId": firm.id, "name": "  ", "customerNumber": "x" * 51, "billingMode": "FIRM",
        "company": {"name": "", "country": "Narnia", "vatNumber": "v" * 41},
    }, "agreement { id }", token=firm.admin, expect_errors=True)
    assert payload["agreement"] is None
    assert set(fields(payload)) == {"input.name", "input.customerNumber", "input.billingMode", "input.company.name",
                                    "input.company.vatNumber", "input.company.country"}
    assert await audit_events(api) == before


async def test_an_invitation_reports_every_wrong_field(api: Api) -> None:
    firm = await api.firm()
    _, company = await api.agreement(firm)
    assert company
    payload = await api.invite(firm.admin, company, email="not-an-email", name=" ", employeeNumber="9" * 200,
                               personalIdentityNumber="19000101-0000", expect_errors=True)
    assert set(fields(payload)) == {"input.name", "input.email", "input.personalIdentityNumber",
                                    "input.employeeNumber"}
    assert payload["membership"] is None


async def test_a_missing_identity_is_reported_beside_a_blank_name(api: Api) -> None:
    firm = await api.firm()
    _, company = await api.agreement(firm)
    assert company
    payload = await api.invite(firm.admin, company, name="", expect_errors=True)
    assert fields(payload) == {"input.name": "INVALID_INPUT", "input.email": "IDENTITY_REQUIRED"}


async def test_an_invoice_address_reports_each_missing_part(api: Api) -> None:
    firm = await api.firm()
    agreement, _ = await api.agreement(firm)
    payload = await api.mutate("updateBillingDetails", {
        "ownerId": agreement, "billingEmail": "nope",
        "invoiceAddress": {"street": "", "postalCode": " ", "city": "Lund", "country": "XX"},
    }, "billingDetails { invoiceAddress { city } }", token=firm.admin, expect_errors=True)
    assert fields(payload) == {
        "input.invoiceAddress.street": "INVOICE_ADDRESS_REQUIRED",
        "input.invoiceAddress.postalCode": "INVOICE_ADDRESS_REQUIRED",
        "input.invoiceAddress.country": "INVALID_INPUT",
        "input.billingEmail": "INVALID_INPUT",
    }


async def test_a_company_update_with_a_bad_vat_number_is_not_also_a_contract_transfer(api: Api) -> None:
    firm = await api.firm()
    _, company = await api.agreement(firm)
    payload = await api.mutate("updateCompany", {"companyId": company, "name": "", "vatNumber": "v" * 41},
                               "company { id }", token=firm.admin, expect_errors=True)
    assert fields(payload) == {"input.name": "INVALID_INPUT", "input.vatNumber": "INVALID_INPUT"}


async def test_one_valid_input_still_passes(api: Api) -> None:
    firm = await api.firm()
    agreement, company = await api.agreement(firm)
    assert company
    await api.subscription(firm, agreement, named=1)
    payload = await api.invite(firm.admin, company, email=unique("ok") + "@x.example",
                               personalIdentityNumber=new_pin())
    assert payload["membership"]["status"] == "INVITED"
