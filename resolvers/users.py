"""Users, memberships and invitations (R13, R18, R19, R20)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select

from auth.secrets import PII_DIGEST_KEY, server_secret
from licensing import identity, seats
from licensing import memberships as membership_rules
from licensing.errors import Problems, RuleViolation
from licensing.validation import optional_text, require_text
from live import publish
from models import Company, Membership, Subscription, User
from models import ids as global_ids
from models.enums import LicenseType, LinkPurpose, MembershipStatus, PayType, Role, UserErrorCode, UserStatus
from models.oauth_grants import ExternalSubjectLink
from models.side_by_side import side_by_side
from resolvers import invitations, webhook_events
from resolvers.base import UnitOfWork
from resolvers.periods import advance_agreements

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Identity:
    """An email and/or a personal identity number, normalised and checked."""

    email: str | None
    pin_digest: str | None


async def check_identity(
    uow: UnitOfWork, email: str | None, personal_identity_number: str | None, field: Sequence[str],
    problems: Problems | None = None,
) -> Identity:
    """The email and the number, both checked (R53: each wrong one is reported, into
    `problems` when the caller collects the rest of its input too)."""
    own = problems is None
    problems = problems if problems is not None else Problems()
    has_email = email is not None and bool(email.strip())
    has_number = personal_identity_number is not None and bool(personal_identity_number.strip())
    email_value = problems.check(identity.normalize_email, email, [*field, "email"]) if has_email else None
    canonical = problems.check(identity.normalize_personnummer, personal_identity_number, uow.runtime.today(),
                               [*field, "personalIdentityNumber"]) if has_number else None
    if not has_email and not has_number:
        problems.found.append(RuleViolation(
            UserErrorCode.IDENTITY_REQUIRED, "A user needs an email or a personal identity number.",
            [*field, "email"]))
    if own:
        problems.done()
    digest = None
    if canonical is not None:
        digest = identity.personnummer_digest(canonical, await server_secret(uow.session, PII_DIGEST_KEY))
    return Identity(email_value, digest)


async def find_or_create_user(uow: UnitOfWork, name: str, who: Identity, field: Sequence[str]) -> User:
    user, _ = await find_or_create(uow, name, who, field)
    return user


async def find_or_create(uow: UnitOfWork, name: str, who: Identity, field: Sequence[str], *,
                         joining: Company | None = None) -> tuple[User, bool]:
    """Users are matched by email (case-insensitively) and by personal identity number, and
    nobody who names a person changes them: identity is the person's own. A match is reused
    unchanged only when it is one user and every identifier given is the one on file; no
    match makes a new user; anything else is IDENTITY_CONFLICT."""
    clauses = []
    if who.email is not None:
        clauses.append(User.email_normalized == who.email)
    if who.pin_digest is not None:
        clauses.append(User.personal_identity_digest == who.pin_digest)
    if joining is None:
        found = list((await uow.session.scalars(select(User).where(or_(*clauses)).order_by(User.id))).all())
    else:
        # With what the commit's hooks need of the company the user joins: its agreement's
        # subscription, which the live event names (live.publish), and its firm's webhook endpoints
        # (resolvers.webhook_events). One statement for all three.
        found, licences, endpoints = await side_by_side(
            uow.session, select(User).where(or_(*clauses)),
            select(Subscription).where(Subscription.agreement_id == joining.agreement_id),
            webhook_events.endpoints_of(joining.firm_id))
        found.sort(key=lambda u: u.id)
        publish.note_licence(uow.session.sync_session, joining.agreement_id, licences[0].id if licences else None)
        webhook_events.note_endpoints(uow.session.sync_session, joining.firm_id, endpoints)
    if found:
        identity.check_same_person([(u.email_normalized, u.personal_identity_digest) for u in found],
                                   who.email, who.pin_digest, field)
        return found[0], False
    user = User(
        name=require_text(name, [*field, "name"]),
        email=who.email,
        email_normalized=who.email,
        personal_identity_digest=who.pin_digest,
        status=UserStatus.INVITED,
    )
    uow.session.add(user)
    await uow.session.flush()
    return user, True


async def invite_user(
    uow: UnitOfWork,
    company: Company,
    *,
    name: str,
    email: str | None,
    personal_identity_number: str | None,
    role: Role,
    license_type: LicenseType,
    employee_number: str | None = None,
    pay_type: PayType | None = None,
    approver_id: str | None = None,
    send_welcome_email: bool = True,
    action: str = "membership.invited",
    access_ends_at: datetime | None = None,
) -> tuple[Membership, bool]:
    """`access_ends_at` (accountant access only, R52) ends the membership by itself; its
    invitation lapses then at the latest."""
    field = ["input"]
    problems = Problems()
    problems.check(require_text, name, [*field, "name"])
    if license_type is LicenseType.CLIENT_USER:
        problems.found.append(RuleViolation(UserErrorCode.INVALID_INPUT,
                                            "Client-user licences are handed out with assignClientUser.",
                                            [*field, "licenseType"]))
    employee = problems.check(optional_text, employee_number, [*field, "employeeNumber"], "Employee number")
    who = await check_identity(uow, email, personal_identity_number, field, problems)
    problems.done()
    user, created = await find_or_create(uow, name, who, field, joining=company)
    # A user made just now, in this transaction, has no membership anywhere: nothing to count.
    existing = not created and await uow.session.scalar(
        select(func.count()).select_from(Membership)
        .where(Membership.user_id == user.id, Membership.company_id == company.id)
    )
    if existing:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER, "The user already has a membership in this company.",
                            [*field, "email"])
    approver_pk = await _approver(uow, company, approver_id, [*field, "approverId"])
    now = uow.runtime.now()
    if license_type is LicenseType.NAMED:
        await advance_agreements(uow, {company.agreement_id})
        await seats.claim_named_seat(uow.session, company.agreement_id, user.id, now, [*field, "licenseType"])
    membership = Membership(
        firm_id=company.firm_id,
        company_id=company.id,
        user_id=user.id,
        role=role,
        license_type=license_type,
        status=MembershipStatus.INVITED,
        employee_number=employee,
        pay_type=pay_type,
        approver_id=approver_pk,
        invited_at=now,
        invitation_expires_at=membership_rules.invitation_lapse(invitations.invitation_expiry_of(uow, user),
                                                                access_ends_at),
        access_ends_at=access_ends_at,
    )
    uow.session.add(membership)
    await uow.session.flush()
    queued = bool(send_welcome_email and user.email)
    if queued:
        await queue_welcome_email(uow, user, company, membership)
    after: dict[str, object] = {"user": global_ids.of(user), "role": role.value, "licenseType": license_type.value,
                                "welcomeEmailQueued": queued}
    if access_ends_at is not None:
        after["accessEndsOn"] = str(membership_rules.access_ends_on(access_ends_at))
    uow.audit(action, membership, f"{user.name} invited to {company.name} as {role.value}", after=after,
              company_id=company.id, affects=[company])
    return membership, queued


async def queue_welcome_email(uow: UnitOfWork, user: User, company: Company, membership: Membership) -> None:
    """R20: the invitation email, to the user's stored email, in the same transaction."""
    await invitations.send_link(uow, user, LinkPurpose.INVITATION, firm_id=membership.firm_id, place=company.name,
                                expires_at=membership.invitation_expires_at or invitations.invitation_expiry(uow),
                                membership=membership)


async def queue_staff_welcome_email(uow: UnitOfWork, user: User, firm_id: int, firm_name: str) -> bool:
    """Firm staff who have no password yet get a link to set one up (no membership involved)."""
    if user.email is None or user.password_hash is not None:
        return False
    await invitations.send_link(uow, user, LinkPurpose.ACCOUNT_SETUP, firm_id=firm_id, place=firm_name,
                                expires_at=invitations.invitation_expiry(uow))
    return True


async def _approver(uow: UnitOfWork, company: Company, approver_id: str | None, field: list[str]) -> int | None:
    if approver_id is None:
        return None
    pk = global_ids.decode_as(approver_id, "User")
    member = None
    if pk is not None:
        member = await uow.session.scalar(
            select(Membership.id).where(
                Membership.user_id == pk, Membership.company_id == company.id,
                Membership.grants_access(uow.runtime.now()),
            )
        )
    if member is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The approver must be a member of the same company.", field)
    return pk


# ----------------------------------------------------------------- a person's own identity


async def request_email_change(uow: UnitOfWork, *, email: str) -> User:
    """The caller changes their own email: a link goes to the new address, and the email
    changes only when it is opened (resolvers.invitations.confirm_email). Whether another
    account has that address is not told here; the link then refuses."""
    assert uow.principal.user_id is not None  # Action.OWN_ACCOUNT
    user = await uow.session.get_one(User, uow.principal.user_id)
    new_email = identity.normalize_email(email, ["input", "email"])
    if new_email == user.email_normalized:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "That is already your email.", ["input", "email"])
    await invitations.send_link(uow, user, LinkPurpose.EMAIL_CHANGE, firm_id=None, place="bureau",
                                expires_at=uow.runtime.now() + EMAIL_CHANGE_LIFETIME, new_email=new_email)
    uow.audit("user.email_change_requested", user, f"{user.name} asked to change their email",
              before={"email": user.email}, after={"pendingEmail": new_email})
    return user


async def correct_identity(uow: UnitOfWork, user: User, *, email: str | None, personal_identity_number: str | None,
                           remove_personal_identity_number: bool) -> User:
    """The vendor corrects who a user is (checked out of band): a new email, a new or no
    personal identity number. Links sent before stop working. The number is never logged
    or audited, only that it changed."""
    field = ["input"]
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    given = await check_identity(uow, email, personal_identity_number, field) if (
        (email and email.strip()) or (personal_identity_number and personal_identity_number.strip())) else None
    if personal_identity_number and personal_identity_number.strip() and remove_personal_identity_number:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Give a new personal identity number or remove it, not both.",
                            [*field, "removePersonalIdentityNumber"])
    if given is not None and given.email is not None and given.email != user.email_normalized:
        await _refuse_taken(uow, user, User.email_normalized == given.email, [*field, "email"])
        before["email"], after["email"] = user.email, given.email
        user.email, user.email_normalized = given.email, given.email
    if given is not None and given.pin_digest is not None and given.pin_digest != user.personal_identity_digest:
        await _refuse_taken(uow, user, User.personal_identity_digest == given.pin_digest,
                            [*field, "personalIdentityNumber"])
        before["personalIdentityNumber"] = "on file" if user.personal_identity_digest else None
        after["personalIdentityNumber"] = "changed" if user.personal_identity_digest else "added"
        user.personal_identity_digest = given.pin_digest
    if remove_personal_identity_number and user.personal_identity_digest is not None:
        before["personalIdentityNumber"], after["personalIdentityNumber"] = "on file", None
        user.personal_identity_digest = None
    if user.email is None and user.personal_identity_digest is None:
        raise RuleViolation(UserErrorCode.IDENTITY_REQUIRED,
                            "A user needs an email or a personal identity number.", [*field, "email"])
    if after:
        await invitations.revoke_links(uow, user.id)
        # R103: a provider's subject was linked to the user as they were; it signs in again only by the
        # corrected email or number (R51), never by the link.
        unlinked = await uow.session.execute(delete(ExternalSubjectLink).where(ExternalSubjectLink.user_id == user.id))
        if getattr(unlinked, "rowcount", 0):
            after["externalSignInLinks"] = "removed"
        uow.audit("user.identity_corrected", user, f"Identity of {user.name} corrected", before=before, after=after)
    return user


async def _refuse_taken(uow: UnitOfWork, user: User, clause: object, field: list[str]) -> None:
    taken = await uow.session.scalar(select(User.id).where(clause, User.id != user.id))  # type: ignore[arg-type]
    if taken is not None:
        raise RuleViolation(UserErrorCode.IDENTITY_CONFLICT, "Another user already has that identity.", field)
