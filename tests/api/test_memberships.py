"""Memberships after the invitation through HTTP: accountant access (R22), changes,
deactivation and the last administrator (R21), reactivation and renewed invitations
with their seats (R13, R28), the welcome email (R18, R20), atomicity (R26), audit (R29)."""

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from models import AuditEvent, Membership, OutboxEmail, ids
from tests.api.client import Api, Firm, unique

FIELDS = "id status role licenseType employeeNumber payType approver { id } invitationExpiresAt activatedAt"
MEMBERSHIP = f"membership {{ {FIELDS} }}"
SEATS = "query($id: ID!) { agreement(id: $id) { subscription { seats { licenseType inUse available } } } }"


async def setup(api: Api, named: int = 10) -> tuple[Firm, str, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=named)
    return firm, agreement_id, company_id


async def invite(api: Api, firm: Firm, company_id: str, role: str = "REPORTER", license_type: str = "NAMED",
                 email: str | None = None) -> tuple[str, str]:
    """(membership ID, email) of a new invitation."""
    email = email or unique(role.lower()) + "@member.example"
    payload = await api.invite(firm.admin, company_id, email=email, role=role, license_type=license_type)
    return payload["membership"]["id"], email


async def set_membership(api: Api, membership_id: str, **values: Any) -> None:
    """What the API cannot do yet: accept an invitation, or let one lapse."""
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(Membership).where(Membership.id == ids.decode(membership_id)[1])
                              .values(**values))


async def named_in_use(api: Api, firm: Firm, agreement_id: str) -> int:
    data = await api.ok(SEATS, {"id": agreement_id}, token=firm.admin)
    pools = {p["licenseType"]: p for p in data["agreement"]["subscription"]["seats"]}
    return int(pools["NAMED"]["inUse"])


async def change(api: Api, name: str, membership_id: str, token: str, **extra: Any) -> dict[str, Any]:
    return await api.mutate(name, {"membershipId": membership_id, **extra}, MEMBERSHIP, token=token,
                            expect_errors=True)


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def forbidden(api: Api, name: str, input: dict[str, Any], token: str) -> None:
    query = f"mutation($input: {name[0].upper()}{name[1:]}Input!) " \
            f"{{ {name}(input: $input) {{ userErrors {{ code }} }} }}"
    body = await api.gql(query, {"input": input}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert body["data"] is None


async def audit_events(api: Api, subject_id: str, action: str) -> list[AuditEvent]:
    async with api.runtime.database.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(
            AuditEvent.subject_id == subject_id, AuditEvent.action == action).order_by(AuditEvent.id)))


# ------------------------------------------------------------------ R21


async def test_last_administrator_cannot_be_deactivated(api: Api) -> None:
    firm, _, company_id = await setup(api)
    first, _ = await invite(api, firm, company_id, role="ADMINISTRATOR")
    await set_membership(api, first, status="ACTIVE", activated_at=api.runtime.now())
    reporter, _ = await invite(api, firm, company_id)

    refused = await change(api, "deactivateMembership", first, firm.admin)
    assert codes(refused) == [("LAST_ADMINISTRATOR", ["input", "membershipId"])]
    assert refused["membership"] is None
    demoted = await change(api, "updateMembership", first, firm.admin, role="REPORTER")
    assert codes(demoted) == [("LAST_ADMINISTRATOR", ["input", "role"])]
    # other members come and go freely
    assert (await change(api, "deactivateMembership", reporter, firm.admin))["membership"]["status"] == "DEACTIVATED"

    second, _ = await invite(api, firm, company_id, role="ADMINISTRATOR")
    done = await change(api, "deactivateMembership", first, firm.admin)
    assert done["userErrors"] == [] and done["membership"]["status"] == "DEACTIVATED"
    # the deactivated one no longer counts: the second is now the last
    assert codes(await change(api, "deactivateMembership", second, firm.admin)) == [
        ("LAST_ADMINISTRATOR", ["input", "membershipId"])]
    assert codes(await change(api, "updateMembership", second, firm.admin, role="APPROVER")) == [
        ("LAST_ADMINISTRATOR", ["input", "role"])]
    # a deactivated administrator's role may change: it is no administrator that counts
    assert (await change(api, "updateMembership", first, firm.admin, role="APPROVER"))["userErrors"] == []


async def test_invited_administrator_counts_as_an_administrator(api: Api) -> None:
    firm, _, company_id = await setup(api)
    active, _ = await invite(api, firm, company_id, role="ADMINISTRATOR")
    await set_membership(api, active, status="ACTIVE", activated_at=api.runtime.now())
    invited, _ = await invite(api, firm, company_id, role="ADMINISTRATOR")
    # even a lapsed invitation is an ADMINISTRATOR membership that is not DEACTIVATED
    await set_membership(api, invited, invitation_expires_at=api.runtime.now() - timedelta(days=1))
    demoted = await change(api, "updateMembership", active, firm.admin, role="REPORTER")
    assert demoted["userErrors"] == [] and demoted["membership"]["role"] == "REPORTER"
    assert codes(await change(api, "deactivateMembership", invited, firm.admin)) == [
        ("LAST_ADMINISTRATOR", ["input", "membershipId"])]


async def test_concurrent_deactivations_keep_the_last_administrator(api: Api) -> None:
    firm, _, company_id = await setup(api)
    admins = [(await invite(api, firm, company_id, role="ADMINISTRATOR"))[0] for _ in range(3)]
    results = await asyncio.gather(*(change(api, "deactivateMembership", m, firm.admin) for m in admins))
    assert sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results) == [
        "LAST_ADMINISTRATOR", "OK", "OK"]


# ------------------------------------------------------------------ R22


async def test_accountant_access_takes_a_named_seat(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    email = unique("Accountant") + "@books.example"
    granted = await api.mutate("grantAccountantAccess", {"companyId": company_id, "name": "Acc Ountant",
                                                         "email": email}, f"{MEMBERSHIP} welcomeEmailQueued",
                               token=firm.admin)
    membership = granted["membership"]
    assert (membership["role"], membership["licenseType"], membership["status"]) == ("ACCOUNTANT", "NAMED", "INVITED")
    assert granted["welcomeEmailQueued"] is True
    assert await named_in_use(api, firm, agreement_id) == 1
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEmail)
                                    .where(OutboxEmail.to_address == email.lower())) == 1
    assert [e.actor_user_id is not None for e in await audit_events(api, membership["id"],
                                                                    "membership.accountant_granted")] == [True]

    full = await api.mutate("grantAccountantAccess", {"companyId": company_id, "name": "Second",
                                                      "email": unique("acc") + "@books.example"},
                            "membership { id }", token=firm.admin, expect_errors=True)
    assert codes(full) == [("SEAT_LIMIT_REACHED", ["input", "companyId"])]
    # the same accountant again in the same company is refused; an accountant stays NAMED
    again = await api.mutate("grantAccountantAccess", {"companyId": company_id, "name": "Acc",
                                                       "email": email.upper()}, "membership { id }",
                             token=firm.admin, expect_errors=True)
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_MEMBER"]
    assert codes(await change(api, "updateMembership", membership["id"], firm.admin, licenseType="CONCURRENT")) == [
        ("INVALID_INPUT", ["input", "licenseType"])]


async def test_grant_accountant_access_needs_the_manage_members_permission(api: Api) -> None:
    firm, _, company_id = await setup(api)
    approver_email = unique("approver") + "@member.example"
    await invite(api, firm, company_id, role="APPROVER", email=approver_email)
    await forbidden(api, "grantAccountantAccess", {"companyId": company_id, "name": "A",
                                                   "email": unique("a") + "@books.example"},
                    await api.token(approver_email))
    admin_email = unique("administrator") + "@member.example"
    await invite(api, firm, company_id, role="ADMINISTRATOR", email=admin_email)
    await api.mutate("grantAccountantAccess", {"companyId": company_id, "name": "A",
                                               "email": unique("a") + "@books.example"}, "membership { id }",
                     token=await api.token(admin_email))


async def test_accountant_reads_everything_and_changes_nothing(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api)
    reporter, _ = await invite(api, firm, company_id)
    email = unique("accountant") + "@books.example"
    granted = await api.mutate("grantAccountantAccess", {"companyId": company_id, "name": "Acc", "email": email},
                               "membership { id }", token=firm.admin)
    accountant = await api.token(email)

    data = await api.ok("query($id: ID!) { company(id: $id) { name members { totalCount } "
                        "agreement { subscription { seats { licenseType inUse } orders { totalCount } } } "
                        "auditLog { totalCount } } }", {"id": company_id}, token=accountant)
    company = data["company"]
    assert company["name"].startswith("Company")
    assert company["members"]["totalCount"] == 2
    assert company["agreement"]["subscription"]["seats"][0] == {"licenseType": "NAMED", "inUse": 2}
    assert company["auditLog"]["totalCount"] > 0

    address = {"street": "Storgatan 1", "postalCode": "111 22", "city": "Stockholm", "country": "SE"}
    for name, input in (
        ("updateCompany", {"companyId": company_id, "name": "By accountant"}),
        ("inviteUser", {"companyId": company_id, "name": "X", "email": unique("x") + "@x.example",
                        "role": "REPORTER", "licenseType": "NAMED"}),
        ("updateBillingDetails", {"ownerId": agreement_id, "invoiceAddress": address}),
        ("updateMembership", {"membershipId": reporter, "role": "APPROVER"}),
        ("deactivateMembership", {"membershipId": reporter}),
        ("grantAccountantAccess", {"companyId": company_id, "name": "Y", "email": unique("y") + "@x.example"}),
        ("updateMembership", {"membershipId": granted["membership"]["id"], "role": "ADMINISTRATOR"}),
    ):
        await forbidden(api, name, input, accountant)
    after = await api.ok("query($id: ID!) { company(id: $id) { name members { totalCount } } }",
                         {"id": company_id}, token=firm.admin)
    assert not after["company"]["name"].startswith("By accountant")
    assert after["company"]["members"]["totalCount"] == 2


# ------------------------------------------------------------------ updateMembership


async def test_update_membership_changes_and_audits_the_values(api: Api) -> None:
    firm, _, company_id = await setup(api)
    membership, _ = await invite(api, firm, company_id, license_type="CONCURRENT")
    approver, approver_email = await invite(api, firm, company_id, role="APPROVER")
    approver_user = (await api.ok("query($id: ID!) { node(id: $id) { ... on Membership { user { id } } } }",
                                  {"id": approver}, token=firm.admin))["node"]["user"]["id"]
    updated = await change(api, "updateMembership", membership, firm.admin, role="APPROVER", licenseType="NAMED",
                           employeeNumber=" E-17 ", payType="MONTHLY", approverId=approver_user)
    assert updated["userErrors"] == []
    m = updated["membership"]
    assert (m["role"], m["licenseType"], m["employeeNumber"], m["payType"], m["approver"]["id"]) == (
        "APPROVER", "NAMED", "E-17", "MONTHLY", approver_user)
    [event] = await audit_events(api, membership, "membership.updated")
    assert json.loads(event.before or "") == {"role": "REPORTER", "licenseType": "CONCURRENT",
                                              "employeeNumber": None, "payType": None, "approver": None}
    assert json.loads(event.after or "") == {"role": "APPROVER", "licenseType": "NAMED", "employeeNumber": "E-17",
                                             "payType": "MONTHLY", "approver": approver_user}
    # blank clears; nothing changed, nothing audited
    cleared = await change(api, "updateMembership", membership, firm.admin, employeeNumber="", approverId="")
    assert (cleared["membership"]["employeeNumber"], cleared["membership"]["approver"]) == (None, None)
    await change(api, "updateMembership", membership, firm.admin, role="APPROVER")
    assert len(await audit_events(api, membership, "membership.updated")) == 2


async def test_update_membership_refusals(api: Api) -> None:
    firm, _, company_id = await setup(api)
    membership, _ = await invite(api, firm, company_id)
    assert codes(await change(api, "updateMembership", membership, firm.admin, licenseType="CLIENT_USER")) == [
        ("INVALID_INPUT", ["input", "licenseType"])]
    assert codes(await change(api, "updateMembership", membership, firm.admin, role="ACCOUNTANT",
                              licenseType="CONCURRENT")) == [("INVALID_INPUT", ["input", "licenseType"])]
    other_firm, _, other_company = await setup(api)
    stranger, _ = await invite(api, other_firm, other_company)
    stranger_user = (await api.ok("query($id: ID!) { node(id: $id) { ... on Membership { user { id } } } }",
                                  {"id": stranger}, token=other_firm.admin))["node"]["user"]["id"]
    assert codes(await change(api, "updateMembership", membership, firm.admin, approverId=stranger_user)) == [
        ("INVALID_INPUT", ["input", "approverId"])]
    assert codes(await change(api, "updateMembership", membership, other_firm.admin, role="APPROVER")) == [
        ("NOT_FOUND", ["input", "membershipId"])]


async def test_changing_the_licence_to_named_takes_a_seat(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    _, email = await invite(api, firm, company_id)
    concurrent, _ = await invite(api, firm, company_id, license_type="CONCURRENT")
    assert codes(await change(api, "updateMembership", concurrent, firm.admin, licenseType="NAMED")) == [
        ("SEAT_LIMIT_REACHED", ["input", "licenseType"])]
    # the seat holder, in a second company of the agreement, needs no second seat
    second = await api.company(firm, agreement_id)
    other, _ = await invite(api, firm, second, license_type="CONCURRENT", email=email)
    assert (await change(api, "updateMembership", other, firm.admin, licenseType="NAMED"))["userErrors"] == []
    # a deactivated membership takes no seat until it is reactivated
    await change(api, "deactivateMembership", concurrent, firm.admin)
    assert (await change(api, "updateMembership", concurrent, firm.admin, licenseType="NAMED"))["userErrors"] == []
    assert await named_in_use(api, firm, agreement_id) == 1
    assert codes(await change(api, "reactivateMembership", concurrent, firm.admin)) == [
        ("SEAT_LIMIT_REACHED", ["input", "membershipId"])]


async def test_a_refused_change_leaves_nothing_behind(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    await invite(api, firm, company_id)
    membership, _ = await invite(api, firm, company_id, license_type="CONCURRENT")
    refused = await change(api, "updateMembership", membership, firm.admin, role="APPROVER",
                           employeeNumber="E-1", payType="HOURLY", licenseType="NAMED")
    assert codes(refused) == [("SEAT_LIMIT_REACHED", ["input", "licenseType"])]
    data = await api.ok(f"query($id: ID!) {{ node(id: $id) {{ ... on Membership {{ {FIELDS} }} }} }}",
                        {"id": membership}, token=firm.admin)
    node = data["node"]
    assert (node["role"], node["licenseType"], node["employeeNumber"], node["payType"]) == (
        "REPORTER", "CONCURRENT", None, None)
    assert await audit_events(api, membership, "membership.updated") == []
    assert await named_in_use(api, firm, agreement_id) == 1


# ------------------------------------------------------------------ deactivation and reactivation


async def test_deactivation_frees_the_seat_at_once_and_is_audited(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    first, email = await invite(api, firm, company_id)
    member_token = await api.token(email)
    assert codes(await api.invite(firm.admin, company_id, email=unique("n") + "@x.example", expect_errors=True)) == [
        ("SEAT_LIMIT_REACHED", ["input", "licenseType"])]
    done = await change(api, "deactivateMembership", first, firm.admin)
    assert done["membership"]["status"] == "DEACTIVATED"
    assert await named_in_use(api, firm, agreement_id) == 0
    await api.invite(firm.admin, company_id, email=unique("n") + "@x.example")
    [event] = await audit_events(api, first, "membership.deactivated")
    assert json.loads(event.before or "")["status"] == "INVITED"
    assert json.loads(event.after or "")["status"] == "DEACTIVATED"
    # a deactivated membership grants nothing
    data = await api.ok("query($id: ID!) { company(id: $id) { id } }", {"id": company_id}, token=member_token)
    assert data["company"] is None
    # deactivating again changes nothing
    assert (await change(api, "deactivateMembership", first, firm.admin))["userErrors"] == []
    assert len(await audit_events(api, first, "membership.deactivated")) == 1


async def test_reactivation_needs_a_free_seat(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    accepted, _ = await invite(api, firm, company_id)
    await set_membership(api, accepted, status="ACTIVE", activated_at=api.runtime.now() - timedelta(days=2))
    await change(api, "deactivateMembership", accepted, firm.admin)
    other, _ = await invite(api, firm, company_id)

    full = await change(api, "reactivateMembership", accepted, firm.admin)
    assert codes(full) == [("SEAT_LIMIT_REACHED", ["input", "membershipId"])]
    await change(api, "deactivateMembership", other, firm.admin)
    key = unique("reactivate-")
    back = await change(api, "reactivateMembership", accepted, firm.admin, idempotencyKey=key)
    assert back["userErrors"] == [] and back["membership"]["status"] == "ACTIVE"
    assert await named_in_use(api, firm, agreement_id) == 1
    # a repeat with the key returns the first result and does nothing again
    repeat = await change(api, "reactivateMembership", accepted, firm.admin, idempotencyKey=key)
    assert repeat["userErrors"] == [] and repeat["membership"]["id"] == accepted
    assert len(await audit_events(api, accepted, "membership.reactivated")) == 1

    # never accepted: invited again, with a fresh invitation
    await set_membership(api, other, invitation_expires_at=api.runtime.now() - timedelta(days=20))
    await change(api, "deactivateMembership", accepted, firm.admin)
    again = await change(api, "reactivateMembership", other, firm.admin)
    assert again["membership"]["status"] == "INVITED"
    assert datetime.fromisoformat(again["membership"]["invitationExpiresAt"]) > api.runtime.now() + timedelta(days=13)


async def test_only_deactivated_memberships_can_be_reactivated(api: Api) -> None:
    firm, _, company_id = await setup(api)
    invited, _ = await invite(api, firm, company_id)
    lapsed, _ = await invite(api, firm, company_id)
    await set_membership(api, lapsed, invitation_expires_at=api.runtime.now() - timedelta(days=1))
    for membership in (invited, lapsed):
        assert codes(await change(api, "reactivateMembership", membership, firm.admin)) == [
            ("INVALID_INPUT", ["input", "membershipId"])]


async def test_parallel_reactivations_take_exactly_the_free_seats(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=2)
    second = await api.company(firm, agreement_id)
    members = []
    for company in (company_id, company_id, second, second):
        membership, _ = await invite(api, firm, company)
        await change(api, "deactivateMembership", membership, firm.admin)
        members.append(membership)
    results = await asyncio.gather(*(change(api, "reactivateMembership", m, firm.admin) for m in members))
    assert sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results) == [
        "OK", "OK", "SEAT_LIMIT_REACHED", "SEAT_LIMIT_REACHED"]
    assert await named_in_use(api, firm, agreement_id) == 2


# ------------------------------------------------------------------ resendWelcomeEmail


def personnummer(serial: int) -> str:
    """A valid Swedish personal identity number no other test uses."""
    digits = f"850315{serial:03d}"
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return f"19{digits[:6]}-{digits[6:]}{(10 - total % 10) % 10}"


async def test_resend_without_an_email_queues_nothing(api: Api) -> None:
    """R51: the invitation is renewed to wait for the BankID sign-in (tests/api/test_bankid.py)."""
    firm, _, company_id = await setup(api)
    payload = await api.mutate("inviteUser", {"companyId": company_id, "name": "No Mail", "role": "REPORTER",
                                              "licenseType": "NAMED",
                                              "personalIdentityNumber": personnummer(int(unique("")) % 1000)},
                               "membership { id } welcomeEmailQueued", token=firm.admin)
    assert payload["welcomeEmailQueued"] is False
    membership = payload["membership"]["id"]
    assert codes(await change(api, "resendWelcomeEmail", membership, firm.admin)) == []
    assert await audit_events(api, membership, "membership.welcome_email_resent") == []


async def test_resend_renews_the_invitation_and_queues_the_email(api: Api) -> None:
    firm, _, company_id = await setup(api)
    membership, email = await invite(api, firm, company_id)
    await set_membership(api, membership, invitation_expires_at=api.runtime.now() + timedelta(hours=1))
    resent = await change(api, "resendWelcomeEmail", membership, firm.admin)
    assert resent["userErrors"] == []
    renewed = datetime.fromisoformat(resent["membership"]["invitationExpiresAt"])
    assert renewed > api.runtime.now() + timedelta(days=13)
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEmail)
                                    .where(OutboxEmail.to_address == email)) == 2
    assert len(await audit_events(api, membership, "membership.welcome_email_resent")) == 1
    # only pending invitations
    await set_membership(api, membership, status="ACTIVE", activated_at=api.runtime.now())
    assert codes(await change(api, "resendWelcomeEmail", membership, firm.admin)) == [
        ("INVALID_INPUT", ["input", "membershipId"])]


async def test_renewing_a_lapsed_invitation_needs_a_free_seat(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    lapsed, email = await invite(api, firm, company_id)
    await set_membership(api, lapsed, invitation_expires_at=api.runtime.now() - timedelta(days=1))
    assert await named_in_use(api, firm, agreement_id) == 0
    await invite(api, firm, company_id)
    assert codes(await change(api, "resendWelcomeEmail", lapsed, firm.admin)) == [
        ("SEAT_LIMIT_REACHED", ["input", "membershipId"])]
    async with api.runtime.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEmail)
                                    .where(OutboxEmail.to_address == email)) == 1
