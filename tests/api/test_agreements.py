"""Agreements and companies through HTTP: R1-R6."""

from sqlalchemy import func, select

from models import Agreement, Company
from tests.api.client import Api, unique

AGREEMENT = "agreement { id name customerNumber billingMode companyCount }"


async def test_create_agreement_with_first_company(api: Api) -> None:
    firm = await api.firm()
    payload = await api.mutate("createAgreement", {
        "firmId": firm.id, "name": "Bageriet", "customerNumber": "1001", "billingMode": "CUSTOMER",
        "company": {"name": "Bageriet AB", "country": "se", "vatNumber": "SE556000000101"},
    }, f"{AGREEMENT} company {{ id name country vatNumber agreement {{ id }} }}", token=firm.admin)
    assert payload["agreement"]["companyCount"] == 1
    assert payload["company"]["country"] == "SE"
    assert payload["company"]["agreement"]["id"] == payload["agreement"]["id"]


async def test_customer_number_is_unique_within_a_firm(api: Api) -> None:
    firm, other = await api.firm(), await api.firm()
    await api.agreement(firm, customer_number="42")
    payload = await api.mutate("createAgreement", {"firmId": firm.id, "name": "Again", "customerNumber": "42",
                                                   "billingMode": "CUSTOMER"}, AGREEMENT, token=firm.admin,
                               expect_errors=True)
    assert payload["userErrors"] == [{"code": "DUPLICATE_CUSTOMER_NUMBER", "message": payload["userErrors"][0][
        "message"], "field": ["input", "customerNumber"]}]
    assert payload["agreement"] is None
    await api.agreement(other, customer_number="42")  # another firm may use the same number


async def test_customer_number_is_optional_in_both_billing_modes(api: Api) -> None:
    firm = await api.firm(reseller=True)
    await api.agreement(firm, billing_mode="FIRM")
    await api.agreement(firm, billing_mode="FIRM")
    await api.agreement(firm, billing_mode="CUSTOMER")


async def test_blank_name_and_bad_country_are_invalid_input(api: Api) -> None:
    firm = await api.firm()
    blank = await api.mutate("createAgreement", {"firmId": firm.id, "name": "  ", "billingMode": "CUSTOMER"},
                             AGREEMENT, token=firm.admin, expect_errors=True)
    assert [(e["code"], e["field"]) for e in blank["userErrors"]] == [("INVALID_INPUT", ["input", "name"])]
    country = await api.mutate("createAgreement", {"firmId": firm.id, "name": "X", "billingMode": "CUSTOMER",
                                                   "company": {"name": "X AB", "country": "Sweden"}},
                               AGREEMENT, token=firm.admin, expect_errors=True)
    assert [(e["code"], e["field"]) for e in country["userErrors"]] == [
        ("INVALID_INPUT", ["input", "company", "country"])]


async def test_firm_billing_needs_a_reseller_agreement(api: Api) -> None:
    firm = await api.firm(reseller=False)
    payload = await api.mutate("createAgreement", {"firmId": firm.id, "name": "X", "billingMode": "FIRM"},
                               AGREEMENT, token=firm.admin, expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["RESELLER_AGREEMENT_REQUIRED"]
    agreement_id, _ = await api.agreement(firm)
    switch = await api.mutate("updateAgreement", {"agreementId": agreement_id, "billingMode": "FIRM"},
                              AGREEMENT, token=firm.admin, expect_errors=True)
    assert [e["code"] for e in switch["userErrors"]] == ["RESELLER_AGREEMENT_REQUIRED"]


async def test_agreement_and_first_company_are_created_together_or_not_at_all(api: Api) -> None:
    firm = await api.firm()
    name = unique("Atomic ")
    async with api.runtime.database.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(Agreement))
    payload = await api.mutate("createAgreement", {"firmId": firm.id, "name": name, "billingMode": "CUSTOMER",
                                                   "company": {"name": "", "country": "SE"}},
                               AGREEMENT, token=firm.admin, expect_errors=True)
    assert [e["field"] for e in payload["userErrors"]] == [["input", "company", "name"]]
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Agreement)) == before
        assert await session.scalar(select(func.count()).where(Agreement.name == name)) == 0


async def test_agreement_with_companies_cannot_be_deleted(api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    payload = await api.mutate("deleteAgreement", {"agreementId": agreement_id}, "deletedAgreementId",
                               token=firm.admin, expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["AGREEMENT_NOT_EMPTY"]
    empty_id, _ = await api.agreement(firm, company=False)
    deleted = await api.mutate("deleteAgreement", {"agreementId": empty_id}, "deletedAgreementId", token=firm.admin)
    assert deleted["deletedAgreementId"] == empty_id
    gone = await api.ok("query($id: ID!) { agreement(id: $id) { id } }", {"id": empty_id}, token=firm.admin)
    assert gone["agreement"] is None


async def test_company_moves_with_its_members_and_seat_usage(api: Api) -> None:
    firm = await api.firm()
    source_id, company_id = await api.agreement(firm)
    assert company_id is not None
    target_id, _ = await api.agreement(firm, company=False)
    await api.subscription(firm, source_id, named=5)
    await api.subscription(firm, target_id, named=5)
    await api.invite(firm.admin, company_id, email=unique("mover") + "@x.example")
    seats = "subscription { seats { licenseType inUse } }"
    payload = await api.mutate("moveCompany", {"companyId": company_id, "toAgreementId": target_id},
                               f"company {{ agreement {{ id }} members {{ totalCount }} }} "
                               f"fromAgreement {{ id companyCount {seats} }} toAgreement {{ id companyCount {seats} }}",
                               token=firm.admin)
    assert payload["company"]["agreement"]["id"] == target_id
    assert payload["company"]["members"]["totalCount"] == 1
    assert payload["fromAgreement"]["companyCount"] == 0
    assert payload["fromAgreement"]["subscription"]["seats"][0]["inUse"] == 0
    assert payload["toAgreement"]["subscription"]["seats"][0]["inUse"] == 1


async def test_move_over_the_targets_named_seats_is_refused_and_changes_nothing(api: Api) -> None:
    firm = await api.firm()
    source_id, company_id = await api.agreement(firm)
    assert company_id is not None
    target_id, target_company = await api.agreement(firm)
    assert target_company is not None
    await api.subscription(firm, source_id, named=2)
    await api.subscription(firm, target_id, named=1)
    await api.invite(firm.admin, target_company, email=unique("t") + "@x.example")
    await api.invite(firm.admin, company_id, email=unique("s") + "@x.example")
    payload = await api.mutate("moveCompany", {"companyId": company_id, "toAgreementId": target_id},
                               "company { id }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["SEAT_LIMIT_REACHED"]
    async with api.runtime.database.sessions() as session:
        from models import ids

        company = await session.get(Company, ids.decode(company_id)[1])
        assert company is not None and ids.encode("Agreement", company.agreement_id) == source_id


async def test_a_user_already_in_the_target_needs_no_new_seat_when_moving(api: Api) -> None:
    firm = await api.firm()
    source_id, company_id = await api.agreement(firm)
    target_id, target_company = await api.agreement(firm)
    assert company_id and target_company
    await api.subscription(firm, source_id, named=1)
    await api.subscription(firm, target_id, named=1)
    email = unique("both") + "@x.example"
    await api.invite(firm.admin, target_company, email=email)
    await api.invite(firm.admin, company_id, email=email)
    await api.mutate("moveCompany", {"companyId": company_id, "toAgreementId": target_id}, "company { id }",
                     token=firm.admin)


async def test_move_into_a_new_agreement_made_in_the_same_step(api: Api) -> None:
    firm = await api.firm()
    source_id, company_id = await api.agreement(firm)
    payload = await api.mutate("moveCompany", {"companyId": company_id, "newAgreement": {
        "name": "Split off", "customerNumber": unique("N"), "billingMode": "CUSTOMER"}},
        "company { agreement { name } } toAgreement { name companyCount } fromAgreement { companyCount }",
        token=firm.admin)
    assert payload["company"]["agreement"]["name"] == "Split off"
    assert payload["toAgreement"]["companyCount"] == 1 and payload["fromAgreement"]["companyCount"] == 0


async def test_move_needs_exactly_one_target_and_stays_within_the_firm(api: Api) -> None:
    firm, other = await api.firm(), await api.firm()
    _, company_id = await api.agreement(firm)
    foreign_id, _ = await api.agreement(other)
    neither = await api.mutate("moveCompany", {"companyId": company_id}, "company { id }", token=firm.admin,
                               expect_errors=True)
    assert [e["code"] for e in neither["userErrors"]] == ["INVALID_INPUT"]
    foreign = await api.mutate("moveCompany", {"companyId": company_id, "toAgreementId": foreign_id},
                               "company { id }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in foreign["userErrors"]] == ["NOT_FOUND"]


async def test_vat_number_change_needs_a_contract_transfer(api: Api) -> None:
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    renamed = await api.mutate("updateCompany", {"companyId": company_id, "name": "New name"},
                               "company { name }", token=firm.admin)
    assert renamed["company"]["name"] == "New name"
    # refused also when no VAT number is stored yet
    payload = await api.mutate("updateCompany", {"companyId": company_id, "vatNumber": "SE556677889901"},
                               "company { vatNumber }", token=firm.admin, expect_errors=True)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("VAT_CHANGE_REQUIRES_CONTRACT_TRANSFER", ["input", "vatNumber"])]
    vendor = await api.mutate("updateCompany", {"companyId": company_id, "vatNumber": "SE556677889901"},
                              "company { vatNumber }", token=await api.vendor())
    assert vendor["company"]["vatNumber"] == "SE556677889901"


async def test_an_idempotency_key_returns_the_first_result_and_does_nothing_again(api: Api) -> None:
    firm = await api.firm()
    key = unique("key-")
    input = {"firmId": firm.id, "name": "Once", "billingMode": "CUSTOMER", "idempotencyKey": key,
             "company": {"name": "Once AB", "country": "SE"}}
    first = await api.mutate("createAgreement", input, "agreement { id } company { id }", token=firm.admin)
    again = await api.mutate("createAgreement", input, "agreement { id } company { id }", token=firm.admin)
    assert again == first
    data = await api.ok("query($id: ID!) { firm(id: $id) { agreements { totalCount } } }", {"id": firm.id},
                        token=firm.admin)
    assert data["firm"]["agreements"]["totalCount"] == 1
    other = await api.mutate("createAgreement", {**input, "name": "Twice"}, "agreement { id }", token=firm.admin,
                             expect_errors=True)
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    # keys are per client and user: another user's identical key is a new request
    vendor_copy = await api.mutate("createAgreement", input, "agreement { id }", token=await api.vendor())
    assert vendor_copy["agreement"]["id"] != first["agreement"]["id"]


async def test_concurrent_requests_with_one_key_take_effect_once(api: Api) -> None:
    import asyncio

    firm = await api.firm()
    input = {"firmId": firm.id, "name": "Raced", "billingMode": "CUSTOMER", "idempotencyKey": unique("race-")}
    results = await asyncio.gather(*(api.mutate("createAgreement", input, "agreement { id }", token=firm.admin)
                                     for _ in range(5)))
    assert len({r["agreement"]["id"] for r in results}) == 1
