"""R51: users with only a personal identity number get in with BankID. A provider of our own
on loopback (tests/api/test_external_idp.py) issues access tokens that carry the number in
its pin claim, as BankID brokers do; everything else goes through HTTP on PostgreSQL."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app import create_app
from auth.external import ConfigError, NumberRules, TrustedIssuers, link_subject, parse_trusted_issuers
from licensing import identity
from models import AuditEvent, Membership, OutboxEmail, User, ids
from models.enums import MembershipStatus, UserStatus
from models.oauth_grants import ExternalSubjectLink
from resolvers.runtime import Runtime
from tests.api import test_external_idp as idp
from tests.api.client import Api, Firm, new_pin, unique
from tests.api.mail import MailServer
from tests.api.test_invitation_links import csrf_of
from tests.api.test_subscription_changes import clock

provider = idp.provider  # the provider of our own on loopback, as a fixture of this module
PIN_CLAIM = "ssn"
SCOPES = "users:read users:write companies:read firms:read"
NUMBERS = NumberRules(identity.canonical_personnummer, identity.personnummer_digest)

VIEWER = "{ viewer { emailRequired user { id email status loginMethods } } }"
COMPANY = "query($id: ID!) { company(id: $id) { name } }"
REQUEST_EMAIL_CHANGE = ("mutation($input: RequestEmailChangeInput!) { requestEmailChange(input: $input) "
                        "{ user { email } userErrors { code } } }")
MEMBERSHIP = "membership { id status invitationExpiresAt user { id email } }"


@pytest.fixture
async def bankid(runtime: Runtime, provider: idp.Provider) -> AsyncIterator[httpx.AsyncClient]:
    """The API, trusting the provider as a BankID broker that puts the number in `ssn`."""
    external = TrustedIssuers([idp.trust(provider, pin_claim=PIN_CLAIM)], own_issuer=runtime.settings.issuer,
                              refetch_interval=0, clock=runtime.now, numbers=NUMBERS)
    app = create_app(runtime=runtime)
    app.state.trusted_issuers = external
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as client:
        yield client


def bankid_token(provider: idp.Provider, number: Any, *, sub: str | None = None, **claims: Any) -> str:
    """A token as a broker issues it after a BankID sign-in: the number as 12 digits."""
    value = number.replace("-", "") if isinstance(number, str) else number
    return provider.token(sub=sub or unique("bankid-"), scope=SCOPES, **{PIN_CLAIM: value}, **claims)


async def ask(client: httpx.AsyncClient, token: str, query: str,
              variables: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers={"Authorization": f"Bearer {token}"})


def error_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors") or []]


async def company(api: Api, named: int = 5) -> tuple[Firm, str, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=named)
    return firm, agreement_id, company_id


async def invite_by_number(api: Api, firm: Firm, company_id: str, pin: str) -> dict[str, Any]:
    return await api.mutate("inviteUser", {"companyId": company_id, "name": "Bo BankID", "role": "REPORTER",
                                           "licenseType": "NAMED", "personalIdentityNumber": pin},
                            f"{MEMBERSHIP} welcomeEmailQueued", token=firm.admin)


async def membership_row(api: Api, membership_id: str) -> Membership:
    async with api.runtime.database.sessions() as session:
        return await session.get_one(Membership, ids.decode(membership_id)[1])


async def links_of(api: Api, user_id: str) -> list[str]:
    async with api.runtime.database.sessions() as session:
        return list(await session.scalars(select(ExternalSubjectLink.subject)
                                          .where(ExternalSubjectLink.user_id == ids.decode(user_id)[1])))


async def events(api: Api, subject_id: str, action: str) -> list[AuditEvent]:
    async with api.runtime.database.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.subject_id == subject_id,
                                                                   AuditEvent.action == action)))


async def outbox_size(api: Api) -> int:
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEmail)) or 0)


async def change(api: Api, name: str, membership_id: str, token: str) -> dict[str, Any]:
    return await api.mutate(name, {"membershipId": membership_id}, f"{MEMBERSHIP}", token=token,
                            expect_errors=True)


# ----------------------------------------------------------------------------- the round trip


async def test_a_bankid_only_invitee_signs_in_gives_an_email_and_gets_to_work(
        api: Api, bankid: httpx.AsyncClient, provider: idp.Provider, mail: MailServer) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    assert invited["welcomeEmailQueued"] is False
    membership_id, user_id = invited["membership"]["id"], invited["membership"]["user"]["id"]
    subject = unique("bankid-")
    token = bankid_token(provider, pin, sub=subject)

    # The first sign-in: mapped by the number, linked, and the invitation accepted.
    first = await ask(bankid, token, VIEWER)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["viewer"] == {"emailRequired": True, "user": {
        "id": user_id, "email": None, "status": "ACTIVE", "loginMethods": ["BANKID"]}}
    accepted = await membership_row(api, membership_id)
    assert accepted.status is MembershipStatus.ACTIVE and accepted.activated_at is not None
    assert await links_of(api, user_id) == [subject]
    [event] = await events(api, membership_id, "membership.invitation_accepted")
    assert event.actor_user_id == ids.decode(user_id)[1] and event.client_id == "ext:partner-spa"
    assert json.loads(event.after or "{}") == {"status": "ACTIVE", "userStatus": "ACTIVE"}

    # Until the user has an email, nothing but the viewer and requestEmailChange.
    for query, variables in [(COMPANY, {"id": company_id}),
                             ("{ viewer { memberships { totalCount } } }", None),
                             ("{ viewer { user { memberships { totalCount } } } }", None),
                             ("query($id: ID!) { node(id: $id) { id } }", {"id": company_id}),
                             ("mutation($input: InviteUserInput!) { inviteUser(input: $input) { userErrors { code } } }"
                              , {"input": {"companyId": company_id, "name": "X", "email": "x@x.example",
                                         "role": "REPORTER", "licenseType": "NAMED"}})]:
        refused = await ask(bankid, token, query, variables)
        assert error_codes(refused) == ["EMAIL_REQUIRED"], (query, refused.text)
        assert refused.json()["data"] is None
    export = await bankid.get("/exports/reinvoicing.csv", params={"firm": firm.id, "month": "2026-01"},
                              headers={"Authorization": f"Bearer {token}"})
    assert export.status_code == 403 and export.json()["code"] == "EMAIL_REQUIRED"
    email = unique("bankid") + "@x.example"
    asked = await ask(bankid, token, REQUEST_EMAIL_CHANGE, {"input": {"email": email}})
    assert asked.json()["data"]["requestEmailChange"] == {"user": {"email": None}, "userErrors": []}, asked.text

    # The link mailed to the new address sets it.
    link = await mail.link_to(api.runtime, email)
    page = await api.http.get(link)
    done = await api.http.post(link, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "Email changed" in done.text

    after = await ask(bankid, token, VIEWER)
    assert after.json()["data"]["viewer"]["emailRequired"] is False
    assert after.json()["data"]["viewer"]["user"]["email"] == email
    allowed = await ask(bankid, token, COMPANY, {"id": company_id})
    assert allowed.json().get("errors") is None and allowed.json()["data"]["company"]["name"]
    # Later tokens map by the link, with or without the number; nothing is accepted twice.
    later = await ask(bankid, provider.token(sub=subject, scope=SCOPES), VIEWER)
    assert later.status_code == 200 and later.json()["data"]["viewer"]["user"]["id"] == user_id
    assert len(await events(api, membership_id, "membership.invitation_accepted")) == 1
    assert await links_of(api, user_id) == [subject]


async def test_parallel_first_sign_ins_link_and_accept_once(api: Api, bankid: httpx.AsyncClient,
                                                            provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    token = bankid_token(provider, pin)
    answers = await asyncio.gather(*(ask(bankid, token, VIEWER) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len(await links_of(api, invited["membership"]["user"]["id"])) == 1
    assert len(await events(api, invited["membership"]["id"], "membership.invitation_accepted")) == 1


# ----------------------------------------------------------------------------- who gets in


async def test_a_number_that_matches_nobody_gets_nobody_in(api: Api, bankid: httpx.AsyncClient,
                                                           provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    await invite_by_number(api, firm, company_id, new_pin())  # numbers are on file, just not this one
    subject = unique("stranger-")
    response = await ask(bankid, bankid_token(provider, new_pin(), sub=subject), VIEWER)
    assert response.status_code == 401
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(ExternalSubjectLink.id).where(ExternalSubjectLink.subject == subject)) \
            is None


async def test_a_user_linked_to_another_subject_is_not_taken_over_by_number(
        api: Api, bankid: httpx.AsyncClient, provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    user_id = invited["membership"]["user"]["id"]
    first = unique("first-")
    async with api.runtime.database.sessions.begin() as session:
        await link_subject(session, provider.issuer, first, ids.decode(user_id)[1])
    response = await ask(bankid, bankid_token(provider, pin, sub=unique("second-")), VIEWER)
    assert response.status_code == 401
    assert await links_of(api, user_id) == [first]
    assert (await membership_row(api, invited["membership"]["id"])).status is MembershipStatus.INVITED
    # The linked subject itself gets in (and so accepts the invitation).
    assert (await ask(bankid, bankid_token(provider, pin, sub=first), VIEWER)).status_code == 200
    assert (await membership_row(api, invited["membership"]["id"])).status is MembershipStatus.ACTIVE


async def test_the_number_decides_when_the_token_names_two_people(api: Api, bankid: httpx.AsyncClient,
                                                                  provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    # The number is one user's, the verified email another's.
    mixed = bankid_token(provider, pin, email=firm.admin_email, email_verified=True)
    assert (await ask(bankid, mixed, VIEWER)).status_code == 401
    # A linked user whose number on file is not the token's.
    subject = unique("linked-")
    async with api.runtime.database.sessions.begin() as session:
        await link_subject(session, provider.issuer, subject, ids.decode(invited["membership"]["user"]["id"])[1])
    assert (await ask(bankid, bankid_token(provider, new_pin(), sub=subject), VIEWER)).status_code == 401
    assert (await ask(bankid, bankid_token(provider, pin, sub=subject), VIEWER)).status_code == 200


async def test_an_invalid_number_makes_a_bad_token(api: Api, bankid: httpx.AsyncClient,
                                                   provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    await invite_by_number(api, firm, company_id, pin)
    wrong_check_digit = pin[:-1] + str((int(pin[-1]) + 1) % 10)
    for bad in (wrong_check_digit, "19811328-1234", "not a number", "", int(pin.replace("-", "")), None.__class__,
                ["19811228-9874"], "\u0661" * 12):
        value: Any = bad if not isinstance(bad, type) else {"nested": True}
        response = await ask(bankid, bankid_token(provider, value, email=firm.admin_email, email_verified=True),
                             VIEWER)
        assert response.status_code == 401, (bad, response.text)
        assert "personal identity number is not valid" in response.headers["www-authenticate"]
        assert pin.replace("-", "")[2:] not in response.text + response.headers["www-authenticate"]


async def test_a_token_without_the_number_maps_as_before(api: Api, bankid: httpx.AsyncClient,
                                                         provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    # A verified email still maps, as for any provider; no link is made, nothing is required.
    subject = unique("email-")
    by_email = await ask(bankid, provider.token(sub=subject, scope=SCOPES, email=firm.admin_email,
                                                email_verified=True), VIEWER)
    assert by_email.status_code == 200
    assert by_email.json()["data"]["viewer"]["emailRequired"] is False
    assert by_email.json()["data"]["viewer"]["user"]["email"] == firm.admin_email
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(ExternalSubjectLink.id).where(ExternalSubjectLink.subject == subject)) \
            is None
    # Without the number (and no link) the BankID-only user is nobody, and nothing is accepted.
    assert (await ask(bankid, provider.token(scope=SCOPES), VIEWER)).status_code == 401
    assert (await membership_row(api, invited["membership"]["id"])).status is MembershipStatus.INVITED


async def test_a_deactivated_user_with_the_number_is_refused(api: Api, bankid: httpx.AsyncClient,
                                                             provider: idp.Provider) -> None:
    firm, _, company_id = await company(api)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(User).where(User.id == ids.decode(invited["membership"]["user"]["id"])[1])
                              .values(status=UserStatus.DEACTIVATED))
    assert (await ask(bankid, bankid_token(provider, pin), VIEWER)).status_code == 401
    assert await links_of(api, invited["membership"]["user"]["id"]) == []


# ----------------------------------------------------------------------------- invitations


async def test_an_invitation_without_email_waits_for_the_bankid_sign_in(api: Api, bankid: httpx.AsyncClient,
                                                                        provider: idp.Provider) -> None:
    firm, agreement_id, company_id = await company(api, named=1)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    assert invited["membership"]["invitationExpiresAt"] is None
    with clock(api, api.runtime.now() + timedelta(days=60)):
        # It holds the agreement's only seat (R13) long after 14 days...
        taken = await api.invite(firm.admin, company_id, email=unique("late") + "@x.example", expect_errors=True)
        assert [e["code"] for e in taken["userErrors"]] == ["SEAT_LIMIT_REACHED"]
        # ...and the sign-in still accepts it.
        assert (await ask(bankid, bankid_token(provider, pin), VIEWER)).status_code == 200
    assert (await membership_row(api, invited["membership"]["id"])).status is MembershipStatus.ACTIVE
    # An invitation that can be mailed lapses as before.
    other_firm, _, other_company = await company(api)
    mailed = await api.mutate("inviteUser", {"companyId": other_company, "name": "Mailed", "role": "REPORTER",
                                             "licenseType": "NAMED", "email": unique("m") + "@x.example"},
                              MEMBERSHIP, token=other_firm.admin)
    assert mailed["membership"]["invitationExpiresAt"] is not None


async def test_a_reactivated_bankid_invitation_waits_too(api: Api) -> None:
    firm, _, company_id = await company(api)
    invited = await invite_by_number(api, firm, company_id, new_pin())
    membership_id = invited["membership"]["id"]
    assert (await change(api, "deactivateMembership", membership_id, firm.admin))["userErrors"] == []
    back = await change(api, "reactivateMembership", membership_id, firm.admin)
    assert back["userErrors"] == [] and back["membership"]["status"] == "INVITED"
    assert back["membership"]["invitationExpiresAt"] is None


async def test_a_lapsed_bankid_invitation_is_renewed_by_resending_it(api: Api, bankid: httpx.AsyncClient,
                                                                     provider: idp.Provider) -> None:
    firm, agreement_id, company_id = await company(api, named=1)
    pin = new_pin()
    invited = await invite_by_number(api, firm, company_id, pin)
    membership_id = invited["membership"]["id"]
    # Made before R51: it had an expiry, and lapsed; its seat went to someone else.
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(Membership).where(Membership.id == ids.decode(membership_id)[1])
                              .values(invitation_expires_at=api.runtime.now() - timedelta(days=1)))
    other = await api.invite(firm.admin, company_id, email=unique("seat") + "@x.example")
    mails = await outbox_size(api)
    full = await change(api, "resendWelcomeEmail", membership_id, firm.admin)
    assert [e["code"] for e in full["userErrors"]] == ["SEAT_LIMIT_REACHED"]
    # A lapsed invitation is not accepted by signing in either.
    subject = unique("bankid-")
    assert (await ask(bankid, bankid_token(provider, pin, sub=subject), VIEWER)).status_code == 200
    assert (await membership_row(api, membership_id)).status is MembershipStatus.INVITED

    await change(api, "deactivateMembership", other["membership"]["id"], firm.admin)
    renewed = await change(api, "resendWelcomeEmail", membership_id, firm.admin)
    assert renewed["userErrors"] == []
    assert renewed["membership"]["status"] == "INVITED" and renewed["membership"]["invitationExpiresAt"] is None
    assert await outbox_size(api) == mails  # no address, no email
    assert len(await events(api, membership_id, "membership.invitation_renewed")) == 1
    assert await events(api, membership_id, "membership.welcome_email_resent") == []
    # Resending one that waits already changes nothing.
    assert (await change(api, "resendWelcomeEmail", membership_id, firm.admin))["userErrors"] == []
    assert len(await events(api, membership_id, "membership.invitation_renewed")) == 1
    # And now the sign-in accepts it (the user is linked already: a later invitation is accepted too).
    assert (await ask(bankid, bankid_token(provider, pin, sub=subject), VIEWER)).status_code == 200
    assert (await membership_row(api, membership_id)).status is MembershipStatus.ACTIVE


# ----------------------------------------------------------------------------- logs and set-up


async def test_the_number_in_a_token_never_reaches_the_log(api: Api, bankid: httpx.AsyncClient,
                                                           provider: idp.Provider,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    firm, _, company_id = await company(api)
    pin, stranger, linked_elsewhere = new_pin(), new_pin(), new_pin()
    await invite_by_number(api, firm, company_id, pin)
    elsewhere = await invite_by_number(api, firm, company_id, linked_elsewhere)
    async with api.runtime.database.sessions.begin() as session:
        await link_subject(session, provider.issuer, unique("x-"), ids.decode(elsewhere["membership"]["user"]["id"])[1])
    bad = pin[:-1] + str((int(pin[-1]) + 1) % 10)
    tokens = [bankid_token(provider, n) for n in (pin, stranger, linked_elsewhere, bad)]
    answers = [await ask(bankid, t, VIEWER) for t in tokens]
    answers.append(await ask(bankid, tokens[0], COMPANY, {"id": company_id}))  # EMAIL_REQUIRED
    assert [a.status_code for a in answers] == [200, 401, 401, 401, 200]
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(logging.Formatter().format(r) for r in server_side)
    forms = [f for n in (pin, stranger, linked_elsewhere, bad) for f in (n, n.replace("-", ""), n[2:])]
    assert [f for f in forms + tokens if f in logged] == []


def test_a_provider_declares_its_pin_claim() -> None:
    [broker] = parse_trusted_issuers(json.dumps([{"issuer": "https://bankid.example", "audience": "bureau",
                                                  "jwks_uri": "https://bankid.example/jwks", "pin_claim": "ssn"}]))
    assert broker.pin_claim == "ssn"
    with pytest.raises(ConfigError):  # the number's rules are licensing's: the app must hand them in
        TrustedIssuers([broker])
    assert TrustedIssuers([broker], numbers=NUMBERS).numbers is NUMBERS
