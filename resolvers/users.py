"""Users, memberships and invitations (R13, R18, R19, R20)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select

from auth.secrets import PII_DIGEST_KEY, server_secret
from licensing import identity, seats
from licensing.errors import RuleViolation
from licensing.validation import optional_text, require_text
from models import Company, Membership, OutboxEmail, User
from models import ids as global_ids
from models.enums import LicenseType, MembershipStatus, PayType, Role, UserErrorCode, UserStatus
from models.oauth_grants import InvitationToken
from resolvers.base import UnitOfWork


@dataclass(frozen=True)
class Identity:
    """An email and/or a personal identity number, normalised and checked."""

    email: str | None
    pin_digest: str | None


async def check_identity(
    uow: UnitOfWork, email: str | None, personal_identity_number: str | None, field: Sequence[str]
) -> Identity:
    email_value = None if email is None or not email.strip() else identity.normalize_email(email, [*field, "email"])
    digest = None
    if personal_identity_number is not None and personal_identity_number.strip():
        canonical = identity.normalize_personnummer(
            personal_identity_number, uow.runtime.today(), [*field, "personalIdentityNumber"]
        )
        digest = identity.personnummer_digest(canonical, await server_secret(uow.session, PII_DIGEST_KEY))
    if email_value is None and digest is None:
        raise RuleViolation(
            UserErrorCode.IDENTITY_REQUIRED, "A user needs an email or a personal identity number.", [*field, "email"]
        )
    return Identity(email_value, digest)


async def find_or_create_user(uow: UnitOfWork, name: str, who: Identity, field: Sequence[str]) -> User:
    """Users are matched by email (case-insensitively) and by personal identity number."""
    clauses = []
    if who.email is not None:
        clauses.append(User.email_normalized == who.email)
    if who.pin_digest is not None:
        clauses.append(User.personal_identity_digest == who.pin_digest)
    found = (await uow.session.scalars(select(User).where(or_(*clauses)).order_by(User.id))).all()
    if len(found) > 1:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "The email and the personal identity number belong to different users.", field)
    if found:
        user = found[0]
        # Complete what is missing; never overwrite what the person already has on file.
        if user.email is None and who.email is not None:
            user.email, user.email_normalized = who.email, who.email
        if user.personal_identity_digest is None and who.pin_digest is not None:
            user.personal_identity_digest = who.pin_digest
        return user
    user = User(
        name=require_text(name, [*field, "name"]),
        email=who.email,
        email_normalized=who.email,
        personal_identity_digest=who.pin_digest,
        status=UserStatus.INVITED,
    )
    uow.session.add(user)
    await uow.session.flush()
    return user


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
) -> tuple[Membership, bool]:
    field = ["input"]
    require_text(name, [*field, "name"])
    if license_type is LicenseType.CLIENT_USER:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "Client-user licences are handed out with assignClientUser.", [*field, "licenseType"])
    who = await check_identity(uow, email, personal_identity_number, field)
    user = await find_or_create_user(uow, name, who, field)
    existing = await uow.session.scalar(
        select(func.count()).select_from(Membership)
        .where(Membership.user_id == user.id, Membership.company_id == company.id)
    )
    if existing:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER, "The user already has a membership in this company.",
                            [*field, "email"])
    approver_pk = await _approver(uow, company, approver_id, [*field, "approverId"])
    now = uow.runtime.now()
    if license_type is LicenseType.NAMED:
        await seats.claim_named_seat(uow.session, company.agreement_id, user.id, now, [*field, "licenseType"])
    membership = Membership(
        firm_id=company.firm_id,
        company_id=company.id,
        user_id=user.id,
        role=role,
        license_type=license_type,
        status=MembershipStatus.INVITED,
        employee_number=optional_text(employee_number, [*field, "employeeNumber"], "Employee number"),
        pay_type=pay_type,
        approver_id=approver_pk,
        invited_at=now,
        invitation_expires_at=now + timedelta(days=uow.runtime.settings.invitation_days),
    )
    uow.session.add(membership)
    await uow.session.flush()
    queued = bool(send_welcome_email and user.email)
    if queued:
        queue_welcome_email(uow, user, company, membership)
    uow.audit(
        action, membership, f"{user.name} invited to {company.name} as {role.value}",
        after={"user": global_ids.of(user), "role": role.value, "licenseType": license_type.value,
               "welcomeEmailQueued": queued},
        company_id=company.id,
    )
    return membership, queued


def queue_welcome_email(uow: UnitOfWork, user: User, company: Company, membership: Membership) -> None:
    """R20: the email is a row in the same transaction; the outbox worker sends it."""
    assert user.email is not None
    # The link carries an unguessable token (only its hash is stored); see auth/routes.py.
    expires_at = membership.invitation_expires_at or uow.runtime.now() + timedelta(
        days=uow.runtime.settings.invitation_days)
    token, row = InvitationToken.issue(user_id=user.id, firm_id=membership.firm_id, membership_id=membership.id,
                                       expires_at=expires_at)
    uow.session.add(row)
    link = f"{uow.runtime.settings.issuer}/invitations/{token}"
    uow.session.add(OutboxEmail(
        firm_id=company.firm_id,
        to_address=user.email,
        subject=f"You are invited to {company.name}",
        body=f"Hello {user.name},\n\nYou have been invited to {company.name}. "
             f"Accept the invitation here:\n{link}\n",
        next_attempt_at=uow.runtime.now(),
    ))


def queue_staff_welcome_email(uow: UnitOfWork, user: User, firm_id: int, firm_name: str) -> bool:
    """Firm staff who have no password yet get a link to set one up (no membership involved)."""
    if user.email is None or user.password_hash is not None:
        return False
    expires_at = uow.runtime.now() + timedelta(days=uow.runtime.settings.invitation_days)
    token, row = InvitationToken.issue(user_id=user.id, firm_id=firm_id, expires_at=expires_at)
    uow.session.add(row)
    link = f"{uow.runtime.settings.issuer}/invitations/{token}"
    uow.session.add(OutboxEmail(
        firm_id=firm_id,
        to_address=user.email,
        subject=f"Your account at {firm_name}",
        body=f"Hello {user.name},\n\nYou have been added to the staff of {firm_name}. "
             f"Set up your sign-in here:\n{link}\n",
        next_attempt_at=uow.runtime.now(),
    ))
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
                Membership.status != MembershipStatus.DEACTIVATED,
            )
        )
    if member is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The approver must be a member of the same company.", field)
    return pk
