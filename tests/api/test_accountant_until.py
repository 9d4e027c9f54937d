"""Accountant access with an end (R52) through HTTP on PostgreSQL: grantAccountantAccess with
`until` ends by itself at 00:00 UTC of that day, with no job run: the accountant's grants,
every read that follows them, the status everyone sees and the seat (R13) all change at
that moment. revokeAccountantAccess ends it at once, the way deactivation does (R33). Both
are audited (R29). The clock is moved as in test_subscription_changes."""

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from models import LicenseSession, Membership, ids
from models.db import connect
from models.enums import LicenseType, MembershipStatus
from models.oauth_grants import InvitationToken
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, Firm, unique
from tests.api.mail import MailServer
from tests.api.test_live_events import SEATS, live, serve, subscribed
from tests.api.test_memberships import audit_events, change, codes, named_in_use, set_membership, setup
from tests.api.test_subscription_changes import clock

NOV_11 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
UNTIL = date(2026, 11, 14)  # the first day without access
LAST_MOMENT = datetime(2026, 11, 13, 23, 59, 59, 999999, tzinfo=UTC)
ENDS = datetime(2026, 11, 14, 0, 0, tzinfo=UTC)

MEMBERSHIP = "membership { id status role accessEndsOn invitationExpiresAt }"
COMPANY = "query($id: ID!) { node(id: $id) { id ... on Company { name agreement { subscription { id } } } } }"
OWN = "{ viewer { memberships { edges { node { id status accessEndsOn company { id } } } } } }"


async def grant(api: Api, firm: Firm, company_id: str, until: date | None = UNTIL, **extra: Any) -> tuple[str, str]:
    """(membership ID, email) of a new accountant."""
    email = unique("accountant") + "@books.example"
    input: dict[str, Any] = {"companyId": company_id, "name": "Acc Ountant", "email": email, **extra}
    if until is not None:
        input["until"] = until.isoformat()
    payload = await api.mutate("grantAccountantAccess", input, MEMBERSHIP, token=firm.admin)
    return payload["membership"]["id"], email


async def node(api: Api, id: str, token: str) -> dict[str, Any] | None:
    data = await api.ok(COMPANY, {"id": id}, token=token)
    result: dict[str, Any] | None = data["node"]
    return result


async def seen_by_admin(api: Api, firm: Firm, membership_id: str) -> dict[str, Any]:
    data = await api.ok("query($id: ID!) { node(id: $id) { ... on Membership { status accessEndsOn } } }",
                        {"id": membership_id}, token=firm.admin)
    result: dict[str, Any] = data["node"]
    return result


async def invite_one_more(api: Api, firm: Firm, company_id: str) -> list[str]:
    payload = await api.invite(firm.admin, company_id, email=unique("more") + "@x.example", expect_errors=True)
    return [e["code"] for e in payload["userErrors"]]


async def stored(api: Api, membership_id: str) -> Membership:
    async with api.runtime.database.sessions() as session:
        return await session.get_one(Membership, ids.decode_as(membership_id, "Membership"))


# ------------------------------------------------------------------ granting until a date


async def test_r46_access_granted_until_a_date_ends_by_itself_on_that_date(api: Api) -> None:
    with clock(api, NOV_11):
        firm, agreement_id, company_id = await setup(api, named=1)
        membership_id, email = await grant(api, firm, company_id)
        await set_membership(api, membership_id, status="ACTIVE", activated_at=NOV_11)  # accepted
        accountant = await api.token(email)  # one token, before and after the end
        assert await seen_by_admin(api, firm, membership_id) == {"status": "ACTIVE", "accessEndsOn": "2026-11-14"}

    with clock(api, LAST_MOMENT):  # the last day of access, to its last microsecond
        company = await node(api, company_id, accountant)
        assert company is not None and company["agreement"]["subscription"] is not None
        [own] = (await api.ok(OWN, token=accountant))["viewer"]["memberships"]["edges"]
        assert own["node"] == {"id": membership_id, "status": "ACTIVE", "accessEndsOn": "2026-11-14",
                               "company": {"id": company_id}}
        assert await named_in_use(api, firm, agreement_id) == 1
        assert await invite_one_more(api, firm, company_id) == ["SEAT_LIMIT_REACHED"]

    with clock(api, ENDS):  # 00:00 UTC of `until`: over, and nobody ran anything
        assert await node(api, company_id, accountant) is None
        assert await node(api, agreement_id, accountant) is None
        assert (await api.ok(OWN, token=accountant))["viewer"]["memberships"]["edges"] == []
        assert await seen_by_admin(api, firm, membership_id) == {"status": "DEACTIVATED", "accessEndsOn": "2026-11-14"}
        assert await named_in_use(api, firm, agreement_id) == 0
        assert await invite_one_more(api, firm, company_id) == []
        assert await named_in_use(api, firm, agreement_id) == 1
    # the stored row never changed: the end alone decides, so no job is needed
    assert (await stored(api, membership_id)).status is MembershipStatus.ACTIVE


async def test_r46_an_ended_access_is_deactivated_for_every_rule(api: Api) -> None:
    """DEACTIVATED everywhere: deactivating changes nothing more, no new invitation is sent,
    it approves nobody, and reactivating gives access back, without the end, on a free seat (R13)."""
    with clock(api, NOV_11):
        firm, agreement_id, company_id = await setup(api, named=1)
        membership_id, email = await grant(api, firm, company_id)  # never accepted: INVITED
        invited = await seen_by_admin(api, firm, membership_id)
        assert invited == {"status": "INVITED", "accessEndsOn": "2026-11-14"}
    with clock(api, ENDS + timedelta(days=1)):
        assert (await change(api, "deactivateMembership", membership_id, firm.admin))["userErrors"] == []
        assert await audit_events(api, membership_id, "membership.deactivated") == []
        assert codes(await change(api, "resendWelcomeEmail", membership_id, firm.admin)) == [
            ("INVALID_INPUT", ["input", "membershipId"])]
        other = (await api.invite(firm.admin, company_id, email=unique("o") + "@x.example"))["membership"]["id"]
        user = (await api.ok("query($id: ID!) { node(id: $id) { ... on Membership { user { id } } } }",
                             {"id": membership_id}, token=firm.admin))["node"]["user"]["id"]
        assert codes(await change(api, "updateMembership", other, firm.admin, approverId=user)) == [
            ("INVALID_INPUT", ["input", "approverId"])]  # an approver must be a member still
        assert codes(await change(api, "reactivateMembership", membership_id, firm.admin)) == [
            ("SEAT_LIMIT_REACHED", ["input", "membershipId"])]
        await change(api, "deactivateMembership", other, firm.admin)
        back = await change(api, "reactivateMembership", membership_id, firm.admin)
        assert back["userErrors"] == []
        assert await seen_by_admin(api, firm, membership_id) == {"status": "INVITED", "accessEndsOn": None}
        assert await named_in_use(api, firm, agreement_id) == 1
        assert await node(api, company_id, await api.token(email)) is not None
        [event] = await audit_events(api, membership_id, "membership.reactivated")
        assert json.loads(event.before or "")["status"] == "DEACTIVATED"
        assert json.loads(event.before or "")["accessEndsOn"] == "2026-11-14"
        assert json.loads(event.after or "")["accessEndsOn"] is None


async def test_r46_the_invitation_lapses_when_the_access_ends(api: Api, mail: MailServer) -> None:
    with clock(api, NOV_11):
        firm, _, company_id = await setup(api)
        membership_id, email = await grant(api, firm, company_id)
        far, _ = await grant(api, firm, company_id, until=date(2027, 6, 1))
        lapses = {m: datetime.fromisoformat((await api.ok(
            "query($id: ID!) { node(id: $id) { ... on Membership { invitationExpiresAt } } }", {"id": m},
            token=firm.admin))["node"]["invitationExpiresAt"]) for m in (membership_id, far)}
        assert lapses == {membership_id: ENDS, far: NOV_11 + timedelta(days=14)}
        link = await mail.link_to(api.runtime, email)
        assert (await api.http.get(link)).status_code == 200
    with clock(api, ENDS):
        assert (await api.http.get(link)).status_code == 404
        # and were the link and invitation to outlive the end, the end alone still closes it
        later = ENDS + timedelta(days=30)
        async with api.runtime.database.sessions.begin() as session:
            pk = ids.decode_as(membership_id, "Membership")
            await session.execute(update(InvitationToken).where(InvitationToken.membership_id == pk)
                                  .values(expires_at=later))
            await session.execute(update(Membership).where(Membership.id == pk).values(invitation_expires_at=later))
        assert (await api.http.get(link)).status_code == 404
    with clock(api, ENDS - timedelta(seconds=1)):
        assert (await api.http.get(link)).status_code == 200


async def test_r46_an_accountant_with_an_end_ahead_keeps_its_role(api: Api) -> None:
    """No ADMINISTRATOR ever leaves by the clock (R21): the role of a membership with an end
    ahead stays ACCOUNTANT, until it is revoked."""
    firm, _, company_id = await setup(api)
    membership_id, _ = await grant(api, firm, company_id, until=api.runtime.today() + timedelta(days=30))
    assert codes(await change(api, "updateMembership", membership_id, firm.admin, role="ADMINISTRATOR")) == [
        ("INVALID_INPUT", ["input", "role"])]
    assert (await change(api, "updateMembership", membership_id, firm.admin, employeeNumber="E-9"))["userErrors"] == []
    await change(api, "revokeAccountantAccess", membership_id, firm.admin)
    assert (await change(api, "updateMembership", membership_id, firm.admin, role="APPROVER"))["userErrors"] == []


async def test_r46_r29_granting_with_an_end_is_audited(api: Api) -> None:
    firm, _, company_id = await setup(api)
    until = api.runtime.today() + timedelta(days=10)
    membership_id, _ = await grant(api, firm, company_id, until=until)
    [event] = await audit_events(api, membership_id, "membership.accountant_granted")
    assert event.actor_user_id is not None and event.client_id == api.app_client_id
    assert event.subject_id == membership_id and event.company_id == ids.decode(company_id)[1]
    after = json.loads(event.after or "")
    assert (after["role"], after["licenseType"], after["accessEndsOn"]) == ("ACCOUNTANT", "NAMED", until.isoformat())
    # without `until` there is no end, and none is audited
    open_ended, _ = await grant(api, firm, company_id, until=None)
    assert (await seen_by_admin(api, firm, open_ended))["accessEndsOn"] is None
    [event] = await audit_events(api, open_ended, "membership.accountant_granted")
    assert "accessEndsOn" not in json.loads(event.after or "")


# ------------------------------------------------------------------ revoking at once


async def test_r46_revoking_ends_accountant_access_at_once_and_frees_the_seat(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api, named=1)
    until = api.runtime.today() + timedelta(days=30)
    membership_id, email = await grant(api, firm, company_id, until=until)
    await set_membership(api, membership_id, status="ACTIVE", activated_at=api.runtime.now())
    accountant = await api.token(email)
    assert await node(api, company_id, accountant) is not None
    assert await named_in_use(api, firm, agreement_id) == 1
    assert await invite_one_more(api, firm, company_id) == ["SEAT_LIMIT_REACHED"]

    revoked = await change(api, "revokeAccountantAccess", membership_id, firm.admin)
    assert revoked["userErrors"] == []
    assert (revoked["membership"]["status"], revoked["membership"]["role"]) == ("DEACTIVATED", "ACCOUNTANT")
    assert await seen_by_admin(api, firm, membership_id) == {"status": "DEACTIVATED", "accessEndsOn": None}
    assert await node(api, company_id, accountant) is None
    assert await named_in_use(api, firm, agreement_id) == 0
    assert await invite_one_more(api, firm, company_id) == []

    [event] = await audit_events(api, membership_id, "membership.accountant_revoked")
    assert event.actor_user_id is not None and event.client_id == api.app_client_id
    assert event.company_id == ids.decode(company_id)[1]
    before, after = json.loads(event.before or ""), json.loads(event.after or "")
    assert (before["status"], before["accessEndsOn"]) == ("ACTIVE", until.isoformat())
    assert (after["status"], after["accessEndsOn"]) == ("DEACTIVATED", None)
    # revoking again changes nothing, and audits nothing
    assert (await change(api, "revokeAccountantAccess", membership_id, firm.admin))["userErrors"] == []
    assert len(await audit_events(api, membership_id, "membership.accountant_revoked")) == 1


async def test_r46_only_an_accountant_membership_is_revoked(api: Api) -> None:
    firm, _, company_id = await setup(api)
    reporter = (await api.invite(firm.admin, company_id, email=unique("r") + "@x.example"))["membership"]["id"]
    assert codes(await change(api, "revokeAccountantAccess", reporter, firm.admin)) == [
        ("INVALID_INPUT", ["input", "membershipId"])]
    assert (await seen_by_admin(api, firm, reporter))["status"] == "INVITED"


async def test_r33_revoking_ends_live_sessions_as_deactivation_does(api: Api) -> None:
    """Revoking takes the one path that ends access (change_access). An accountant is NAMED
    (R22), so its live session is staged in the database: what matters is that it ends."""
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=5, concurrent=2)
    membership_id, email = await grant(api, firm, company_id, until=None)
    await set_membership(api, membership_id, license_type=LicenseType.CONCURRENT)
    await api.mutate("startSession", {"companyId": company_id}, "session { id }", token=await api.token(email))
    await change(api, "revokeAccountantAccess", membership_id, firm.admin)
    user_id = (await stored(api, membership_id)).user_id
    async with api.runtime.database.sessions() as session:
        ends = list(await session.scalars(select(LicenseSession.ended_at).where(LicenseSession.user_id == user_id)))
    assert len(ends) == 1 and ends[0] is not None


# ------------------------------------------------------------------ live seat usage


async def test_r46_live_seat_usage_frees_the_seat_when_the_access_ends(database_url: str, api: Api) -> None:
    """seatUsageChanged wakes up at the end by itself, as it does for a lapsing session. The
    accountant has accepted, so it is the end, not an invitation lapse, that it waits for."""
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=3)
    base = Runtime.create(connect(database_url), Settings())
    offset = ENDS - timedelta(seconds=4) - datetime.now(UTC)  # four seconds before the end
    runtime = dataclasses.replace(base, clock=lambda: datetime.now(UTC) + offset)
    async with serve(runtime) as server, httpx.AsyncClient(base_url=server.url) as http:
        on_server = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        membership_id, _ = await grant(on_server, firm, company_id)
        await set_membership(api, membership_id, status="ACTIVE", activated_at=runtime.now())
        async with live(server, firm.admin) as client:
            await subscribed(server, client, "s", SEATS, {"id": subscription_id})
            assert runtime.now() < ENDS
            message = await client.receive()  # nobody did anything: the access ended
            assert message["payload"]["data"]["seatUsageChanged"]["inUse"] == 0
            assert runtime.now() >= ENDS
