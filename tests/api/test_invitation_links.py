"""Links sent by email, through real SMTP (aiosmtpd on loopback) and real HTTP: invitations,
account set-up, the confirmation of an email given on acceptance (R18), and a user's own
email change. Only a link's hash is ever stored; a user who already has credentials can't
set new ones through a link, and accepting means signing in as them."""

from datetime import timedelta
from html import unescape

from sqlalchemy import func, select, update

from models import AuditEvent, Membership, OutboxEmail, User
from models import ids as global_ids
from models.enums import LinkPurpose, MembershipStatus, UserStatus
from models.oauth_grants import ExternalSubjectLink, InvitationToken, token_digest
from models.outbox import LINK_PLACEHOLDER
from tests.api.client import Api, Firm, new_pin, unique
from tests.api.mail import MailServer
from tests.api.test_oauth import PASSWORD, form_fields, new_client, tokens_for, user_with_password, viewer


async def membership_and_user(api: Api, membership_id: str) -> tuple[Membership, User]:
    async with api.runtime.database.sessions() as session:
        membership = await session.get_one(Membership, global_ids.decode_as(membership_id, "Membership"))
        user = await session.get_one(User, membership.user_id)
    return membership, user


async def invited_company(api: Api) -> tuple[Firm, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    await api.subscription(firm, agreement_id)
    assert company_id is not None
    return firm, company_id


def csrf_of(page_text: str) -> str:
    return unescape(form_fields(page_text)["csrf_token"])


async def test_invitation_acceptance_sets_a_password_and_activates(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    email = unique("invitee") + "@x.example"
    invited = await api.invite(firm.admin, company_id, email=email)
    membership_id = invited["membership"]["id"]
    link = await mail.link_to(api.runtime, email)
    assert membership_id not in link  # the link is an unguessable token, not the membership's ID

    page = await api.http.get(link)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<label for="password">' in page.text and 'name="email"' not in page.text
    csrf = csrf_of(page.text)
    short = await api.http.post(link, data={"csrf_token": csrf, "password": "short", "password_again": "short"})
    assert short.status_code == 400 and "at least 12" in short.text
    differ = await api.http.post(link, data={"csrf_token": csrf, "password": PASSWORD,
                                             "password_again": PASSWORD + "!"})
    assert differ.status_code == 400
    forged = await api.http.post(link, data={"csrf_token": "1.x", "password": PASSWORD, "password_again": PASSWORD})
    assert forged.status_code == 400
    accepted = await api.http.post(link, data={"csrf_token": csrf, "password": PASSWORD, "password_again": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert "Invitation accepted" in accepted.text

    membership, user = await membership_and_user(api, membership_id)
    assert membership.status is MembershipStatus.ACTIVE and membership.activated_at is not None
    assert user.status is UserStatus.ACTIVE
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert (await api.http.get(link)).status_code == 404  # used up
    client_id, _ = await new_client(api)
    tokens = await tokens_for(api, client_id, email)
    assert (await viewer(api, tokens["access_token"])).json()["data"]["viewer"]["user"]["email"] == email
    async with api.runtime.database.sessions() as session:
        actions = list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == membership_id)))
    assert "membership.invitation_accepted" in actions


async def test_the_link_is_made_when_mailed_and_only_its_hash_is_kept(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    email = unique("hashed") + "@x.example"
    await api.invite(firm.admin, company_id, email=email)
    async with api.runtime.database.sessions() as session:
        [body] = list(await session.scalars(select(OutboxEmail.body).where(OutboxEmail.to_address == email)))
    assert "/invitations/" not in body and LINK_PLACEHOLDER in body  # nothing to steal before it is sent

    link = await mail.link_to(api.runtime, email)
    token = link.rsplit("/", 1)[1]
    async with api.runtime.database.sessions() as session:
        [body] = list(await session.scalars(select(OutboxEmail.body).where(OutboxEmail.to_address == email)))
        hashes = list(await session.scalars(select(InvitationToken.token_hash)))
        stored_raw = await session.scalar(select(func.count()).select_from(OutboxEmail)
                                          .where(OutboxEmail.body.contains(token)))
    assert token not in body and stored_raw == 0
    assert token_digest(token) in hashes and token not in hashes
    assert (await api.http.get(link)).status_code == 200


async def test_a_link_used_or_lapsed_before_its_mail_goes_is_never_sent(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    email = unique("lapsed") + "@x.example"
    invited = await api.invite(firm.admin, company_id, email=email)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(InvitationToken)
                              .where(InvitationToken.membership_id == global_ids.decode_as(
                                  invited["membership"]["id"], "Membership"))
                              .values(expires_at=api.runtime.now().replace(year=2000)))
    await mail.deliver(api.runtime)
    assert mail.recorder.to(email) == []
    async with api.runtime.database.sessions() as session:
        row = await session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == email))
    assert row is not None and row.discarded_at is not None and row.sent_at is None


async def test_invitation_without_email_asks_for_one_and_confirms_it(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    invited = await api.invite(firm.admin, company_id,
                               personalIdentityNumber=new_pin())
    assert invited["welcomeEmailQueued"] is False
    membership, user = await membership_and_user(api, invited["membership"]["id"])
    assert user.email is None
    # No email, so the link reaches the person another way (here: made directly).
    async with api.runtime.database.sessions.begin() as session:
        token, row = InvitationToken.issue(user_id=membership.user_id, firm_id=membership.firm_id,
                                           membership_id=membership.id, purpose=LinkPurpose.INVITATION,
                                           # R51: an invitation without an email does not lapse
                                           expires_at=api.runtime.now() + timedelta(days=14))
        session.add(row)
    link = f"/invitations/{token}"

    page = await api.http.get(link)
    assert page.status_code == 200 and '<label for="email">' in page.text
    csrf = csrf_of(page.text)
    taken = await api.http.post(link, data={"csrf_token": csrf, "email": firm.admin_email,
                                            "password": PASSWORD, "password_again": PASSWORD})
    assert taken.status_code == 400 and "another account" in taken.text
    email = unique("Berit") + "@X.example"
    sent = await api.http.post(link, data={"csrf_token": csrf, "email": email, "password": PASSWORD,
                                           "password_again": PASSWORD})
    assert sent.status_code == 200 and "Check your email" in sent.text
    # Not yet: the address is confirmed first.
    membership, user = await membership_and_user(api, invited["membership"]["id"])
    assert user.email is None and membership.status is MembershipStatus.INVITED

    confirm = await mail.link_to(api.runtime, email.lower())
    page = await api.http.get(confirm)
    assert page.status_code == 200 and "Confirm" in page.text
    done = await api.http.post(confirm, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "Invitation accepted" in done.text
    membership, user = await membership_and_user(api, invited["membership"]["id"])
    assert user.email == email.lower() and user.status is UserStatus.ACTIVE
    assert membership.status is MembershipStatus.ACTIVE
    assert (await api.http.get(link)).status_code == 404 and (await api.http.get(confirm)).status_code == 404
    client_id, _ = await new_client(api)
    assert (await tokens_for(api, client_id, email))["access_token"]


async def test_an_account_set_up_link_without_a_membership(api: Api, mail: MailServer) -> None:
    # Firm staff have no membership to accept: addFirmStaff emails a link that sets up the account.
    firm = await api.firm()
    link = await mail.link_to(api.runtime, firm.admin_email)
    page = await api.http.get(link)
    assert page.status_code == 200 and "Set up your account" in page.text
    done = await api.http.post(link, data={"csrf_token": csrf_of(page.text), "password": PASSWORD,
                                           "password_again": PASSWORD})
    assert done.status_code == 200 and "Account ready" in done.text
    assert (await api.http.get(link)).status_code == 404
    client_id, _ = await new_client(api)
    tokens = await tokens_for(api, client_id, firm.admin_email)
    assert (await viewer(api, tokens["access_token"])).json()["data"]["viewer"]["user"]["email"] == firm.admin_email


async def test_unknown_or_lapsed_invitation_links_are_refused(api: Api, mail: MailServer) -> None:
    assert (await api.http.get("/invitations/not-a-token-we-made")).status_code == 404
    firm, company_id = await invited_company(api)
    email = unique("late") + "@x.example"
    invited = await api.invite(firm.admin, company_id, email=email)
    link = await mail.link_to(api.runtime, email)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(Membership)
                              .where(Membership.id == global_ids.decode_as(invited["membership"]["id"], "Membership"))
                              .values(invitation_expires_at=api.runtime.now().replace(year=2000)))
    assert (await api.http.get(link)).status_code == 404


async def test_a_user_with_a_password_accepts_by_signing_in_and_sets_nothing(api: Api, mail: MailServer) -> None:
    email = await user_with_password(api)  # someone who already signs in with a password
    firm, company_id = await invited_company(api)
    invited = await api.invite(firm.admin, company_id, email=email)
    _, before = await membership_and_user(api, invited["membership"]["id"])
    link = await mail.link_to(api.runtime, email)

    page = await api.http.get(link)
    assert page.status_code == 200 and "sign in as" in page.text
    assert 'autocomplete="new-password"' not in page.text and 'name="password_again"' not in page.text
    csrf = csrf_of(page.text)
    # Trying to set a new password through the link gets nowhere: it is checked as a sign-in.
    wrong = await api.http.post(link, data={"csrf_token": csrf, "password": "a new password of mine",
                                            "password_again": "a new password of mine"})
    assert wrong.status_code == 401
    membership, user = await membership_and_user(api, invited["membership"]["id"])
    assert membership.status is MembershipStatus.INVITED and user.password_hash == before.password_hash

    right = await api.http.post(link, data={"csrf_token": csrf, "password": PASSWORD})
    assert right.status_code == 200 and "Invitation accepted" in right.text
    membership, user = await membership_and_user(api, invited["membership"]["id"])
    assert membership.status is MembershipStatus.ACTIVE and user.password_hash == before.password_hash


async def test_a_user_changes_their_own_email_through_a_link_to_the_new_address(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    old = unique("old") + "@x.example"
    await api.invite(firm.admin, company_id, email=old)
    stale_link = await mail.link_to(api.runtime, old)  # an invitation link sent to the old address
    token = await api.token(old)
    new = unique("new") + "@x.example"
    asked = await api.mutate("requestEmailChange", {"email": new}, "user { email }", token=token)
    assert asked["user"]["email"] == old  # unchanged until the new address is confirmed

    link = await mail.link_to(api.runtime, new)
    page = await api.http.get(link)
    assert page.status_code == 200 and new in page.text
    done = await api.http.post(link, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "Email changed" in done.text
    me = await api.ok("{ viewer { user { email } } }", token=token)
    assert me["viewer"]["user"]["email"] == new
    # The old address is told, and what was sent to it stops working.
    await mail.deliver(api.runtime)
    assert any("was changed" in m["Subject"] for m in mail.recorder.to(old))
    assert (await api.http.get(stale_link)).status_code == 404
    async with api.runtime.database.sessions() as session:
        actions = list(await session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(["user.email_change_requested", "user.email_changed"]),
            AuditEvent.after.contains(new))))
    assert sorted(actions) == ["user.email_change_requested", "user.email_changed"]


async def test_an_email_change_to_an_address_in_use_is_refused_when_confirmed(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    mine = unique("mine") + "@x.example"
    await api.invite(firm.admin, company_id, email=mine)
    token = await api.token(mine)
    theirs = firm.admin_email
    await api.mutate("requestEmailChange", {"email": theirs}, "user { email }", token=token)
    link = await mail.link_to(api.runtime, theirs)
    page = await api.http.get(link)
    refused = await api.http.post(link, data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409
    me = await api.ok("{ viewer { user { email } } }", token=token)
    assert me["viewer"]["user"]["email"] == mine


async def test_a_client_token_has_no_email_to_change(api: Api) -> None:
    body = await api.gql('mutation { requestEmailChange(input: {email: "x@y.example"}) { userErrors { code } } }',
                         token=await api.token())
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_user_who_signs_in_elsewhere_cannot_get_a_password_through_a_link(api: Api, mail: MailServer) -> None:
    firm, company_id = await invited_company(api)
    email = unique("external") + "@x.example"
    invited = await api.invite(firm.admin, company_id, email=email)
    _, user = await membership_and_user(api, invited["membership"]["id"])
    async with api.runtime.database.sessions.begin() as session:
        session.add(ExternalSubjectLink(issuer="https://login.example/", subject=unique("sub"), user_id=user.id))
    link = await mail.link_to(api.runtime, email)
    page = await api.http.get(link)
    assert page.status_code == 200 and "cannot set a password" in page.text and "<form" not in page.text
    posted = await api.http.post(link, data={"csrf_token": "1.x", "password": PASSWORD, "password_again": PASSWORD})
    assert posted.status_code in (400, 401)
    _, after = await membership_and_user(api, invited["membership"]["id"])
    assert after.password_hash is None
