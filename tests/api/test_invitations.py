"""Invitations (R13 seats, R18 identity, R19 personal identity numbers, R20 outbox rows)."""

from sqlalchemy import select

from models import OutboxEmail, User
from tests.api.client import Api, Firm, unique


async def company_with_seats(api: Api, named: int) -> tuple[Firm, str, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=named)
    return firm, agreement_id, company_id


async def test_invitation_queues_a_welcome_email_in_the_same_transaction(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api, 2)
    email = unique("welcome") + "@x.example"
    payload = await api.invite(firm.admin, company_id, email=email.upper(), role="APPROVER")
    assert payload["welcomeEmailQueued"] is True
    assert payload["membership"]["status"] == "INVITED"
    assert payload["membership"]["user"]["email"] == email
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(OutboxEmail.subject).where(OutboxEmail.to_address == email))


async def test_a_user_needs_an_email_or_a_personal_identity_number(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api, 2)
    payload = await api.invite(firm.admin, company_id, expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["IDENTITY_REQUIRED"]


async def test_personal_identity_number_enables_bankid_and_is_never_returned(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api, 2)
    payload = await api.mutate("inviteUser", {
        "companyId": company_id, "name": "Berit", "personalIdentityNumber": "811228-9874",
        "role": "REPORTER", "licenseType": "NAMED"},
        "membership { user { email hasPersonalIdentityNumber loginMethods } } welcomeEmailQueued",
        token=firm.admin)
    assert payload["welcomeEmailQueued"] is False
    assert payload["membership"]["user"] == {"email": None, "hasPersonalIdentityNumber": True,
                                             "loginMethods": ["BANKID"]}
    async with api.runtime.database.sessions() as session:
        digests = list(await session.scalars(select(User.personal_identity_digest)))
    assert all(d is None or "9874" not in d for d in digests)
    bad = await api.mutate("inviteUser", {"companyId": company_id, "name": "X", "personalIdentityNumber":
                                          "811228-9875", "role": "REPORTER", "licenseType": "NAMED"},
                           "membership { id }", token=firm.admin, expect_errors=True)
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [
        ("INVALID_PERSONAL_IDENTITY_NUMBER", ["input", "personalIdentityNumber"])]


async def test_the_same_person_is_matched_by_number_in_either_form(api: Api) -> None:
    firm, agreement_id, company_id = await company_with_seats(api, 3)
    second = await api.company(firm, agreement_id)
    one = await api.mutate("inviteUser", {"companyId": company_id, "name": "B", "personalIdentityNumber":
                                          "19811228-9874", "role": "REPORTER", "licenseType": "NAMED"},
                           "membership { user { id } }", token=firm.admin)
    two = await api.mutate("inviteUser", {"companyId": second, "name": "B", "personalIdentityNumber": "8112289874",
                                          "role": "REPORTER", "licenseType": "NAMED"},
                           "membership { user { id } }", token=firm.admin)
    assert one["membership"]["user"]["id"] == two["membership"]["user"]["id"]


async def test_users_are_matched_by_email_case_insensitively_and_may_not_join_twice(api: Api) -> None:
    firm, agreement_id, company_id = await company_with_seats(api, 3)
    email = unique("Case") + "@X.example"
    first = await api.invite(firm.admin, company_id, email=email)
    second_company = await api.company(firm, agreement_id)
    other = await api.invite(firm.admin, second_company, email=email.lower())
    assert first["membership"]["user"]["id"] == other["membership"]["user"]["id"]
    again = await api.invite(firm.admin, company_id, email=email.swapcase(), expect_errors=True)
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_MEMBER"]


async def test_inviting_beyond_the_named_seats_is_refused(api: Api) -> None:
    firm, agreement_id, company_id = await company_with_seats(api, 2)
    await api.invite(firm.admin, company_id, email=unique("a") + "@x.example")
    repeat = unique("b") + "@x.example"
    await api.invite(firm.admin, company_id, email=repeat)
    full = await api.invite(firm.admin, company_id, email=unique("c") + "@x.example", expect_errors=True)
    assert [(e["code"], e["field"]) for e in full["userErrors"]] == [("SEAT_LIMIT_REACHED", ["input", "licenseType"])]
    # a user already holding a seat of the agreement joins another of its companies without a new one
    second = await api.company(firm, agreement_id)
    await api.invite(firm.admin, second, email=repeat)
    # concurrent members need no named seat
    await api.invite(firm.admin, company_id, email=unique("d") + "@x.example", license_type="CONCURRENT")
    data = await api.ok("query($id: ID!) { agreement(id: $id) { subscription { seats { licenseType inUse "
                        "available } } } }", {"id": agreement_id}, token=firm.admin)
    assert data["agreement"]["subscription"]["seats"][0] == {"licenseType": "NAMED", "inUse": 2, "available": 0}


async def test_an_agreement_without_a_subscription_has_no_seats_to_give(api: Api) -> None:
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    assert company_id is not None
    payload = await api.invite(firm.admin, company_id, email=unique("n") + "@x.example", expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["SEAT_LIMIT_REACHED"]


async def test_no_welcome_email_when_asked_not_to(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api, 2)
    email = unique("quiet") + "@x.example"
    payload = await api.invite(firm.admin, company_id, email=email, sendWelcomeEmail=False)
    assert payload["welcomeEmailQueued"] is False
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(OutboxEmail.id).where(OutboxEmail.to_address == email)) is None


async def test_parallel_invitations_take_exactly_the_free_seats(api: Api) -> None:
    import asyncio

    firm, _, company_id = await company_with_seats(api, 5)
    await api.invite(firm.admin, company_id, email=unique("first") + "@x.example")
    results = await asyncio.gather(*(api.invite(firm.admin, company_id, email=unique("p") + "@x.example",
                                                expect_errors=True) for _ in range(12)))
    codes = [tuple(e["code"] for e in r["userErrors"]) for r in results]
    assert codes.count(()) == 4
    assert codes.count(("SEAT_LIMIT_REACHED",)) == 8
