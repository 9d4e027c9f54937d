"""Links sent by email, and what opening one does (R18, R20).

One function, `send_link`, makes every link and queues its email: an invitation to a
company, an account set-up for firm staff, the confirmation of an email given when
accepting, and the confirmation of a new email the user asked for. Only the link's hash
is stored; the outbox makes the secret when it sends the email, so the raw link is never
kept anywhere. Invitations and set-ups go only to the address stored on the user.

Opening a link (`open_link`) and acting on it (`accept`, `sign_in_and_accept`,
`confirm_email`) run in a unit of work like any mutation: the pages in `web/` only render.
Identity is the person's own: a link never changes the credentials of a user who has some
(accepting then means signing in as that user), and an email is stored only once a link
sent to that address has been opened.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from auth.passwords import hash_password, password_problem, verify_password
from licensing import memberships
from licensing.errors import RuleViolation
from licensing.identity import normalize_email
from licensing.memberships import effective_status
from models import Company, Membership, OutboxEmail, User
from models.enums import LinkPurpose, MembershipStatus, UserErrorCode, UserStatus
from models.oauth_grants import ExternalSubjectLink, InvitationToken, token_digest
from models.outbox import LINK_PLACEHOLDER
from resolvers.base import UnitOfWork


def invitation_expiry(uow: UnitOfWork) -> datetime:
    return uow.runtime.now() + timedelta(days=uow.runtime.settings.invitation_days)


def invitation_expiry_of(uow: UnitOfWork, user: User) -> datetime | None:
    """When an invitation of this user lapses; never for a user without an email (R51), whose
    BankID sign-in accepts it (resolvers.accounts)."""
    return invitation_expiry(uow) if memberships.invitation_lapses(user.email) else None


async def send_link(
    uow: UnitOfWork,
    user: User,
    purpose: LinkPurpose,
    *,
    firm_id: int | None,
    place: str,
    expires_at: datetime,
    membership: Membership | None = None,
    new_email: str | None = None,
) -> InvitationToken:
    """Queues the email that carries a new link (R20: in the caller's transaction).

    Invitations and account set-ups go to the user's stored email and nowhere else; a
    confirmation goes to the new address it confirms (`new_email`). `place` names the
    company or firm the email is about."""
    confirming = purpose in (LinkPurpose.EMAIL_CONFIRMATION, LinkPurpose.EMAIL_CHANGE)
    to_address = new_email if confirming else user.email
    if to_address is None:
        raise ValueError("a link needs an address to go to")
    # The secret is made when the email is sent: until then nobody, not even the outbox, has it.
    _, link = InvitationToken.issue(user_id=user.id, firm_id=firm_id, purpose=purpose, expires_at=expires_at,
                                    membership_id=membership.id if membership else None,
                                    pending_email=new_email if confirming else None)
    uow.session.add(link)
    await uow.session.flush()
    subject, text = _wording(purpose, place)
    uow.session.add(OutboxEmail(
        firm_id=firm_id,
        to_address=to_address,
        subject=subject,
        body=f"Hello {user.name},\n\n{text}\n{LINK_PLACEHOLDER}\n\n"
             "If you did not expect this email, ignore it.\n",
        next_attempt_at=uow.runtime.now(),
        link_id=link.id,
    ))
    return link


def _wording(purpose: LinkPurpose, place: str) -> tuple[str, str]:
    if purpose is LinkPurpose.INVITATION:
        return f"You are invited to {place}", f"You have been invited to {place}. Accept the invitation here:"
    if purpose is LinkPurpose.ACCOUNT_SETUP:
        return f"Your account at {place}", f"You have been added to the staff of {place}. Set up your sign-in here:"
    if purpose is LinkPurpose.EMAIL_CONFIRMATION:
        return "Confirm your email for bureau", f"Confirm that this is your email address, and finish {place}, here:"
    return "Confirm your new email for bureau", "Confirm that this is your new email address for bureau here:"


# ----------------------------------------------------------------------------- opening a link


@dataclass
class Link:
    """An open link: its row, its user, and for an invitation the membership and company."""

    row: InvitationToken
    user: User
    membership: Membership | None
    company: Company | None
    has_credentials: bool

    @property
    def what(self) -> str:
        if self.row.purpose is LinkPurpose.EMAIL_CHANGE:
            return "changing your email"
        if self.company is not None:
            return f"accepting the invitation to {self.company.name}"
        return "setting up your account"

    @property
    def asks_for_email(self) -> bool:
        """R18: a user without an email gives one when accepting (then confirms it)."""
        return self.row.pending_email is None and self.user.email is None

    @property
    def sets_password(self) -> bool:
        """Only a user with no credentials at all chooses a password through a link."""
        return self.row.pending_email is None and not self.has_credentials


async def open_link(uow: UnitOfWork, token: str, *, lock: bool) -> Link | None:
    """The link behind a token, while it may still be used; None for anything else."""
    now = uow.runtime.now()
    stmt = select(InvitationToken).where(InvitationToken.token_hash == token_digest(token))
    row = await uow.session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    membership = company = None
    if row.membership_id is not None:
        stmt_m = select(Membership).where(Membership.id == row.membership_id)
        membership = await uow.session.scalar(stmt_m.with_for_update() if lock else stmt_m)
        # An ended access (R52) reads DEACTIVATED: its invitation cannot be accepted either.
        if membership is None or effective_status(membership.status, membership.access_ends_at,
                                                  now) is not MembershipStatus.INVITED:
            return None
        if membership.invitation_expires_at is not None and membership.invitation_expires_at <= now:
            return None  # lapsed: its seat was freed (R13); a new invitation is needed
        company = await uow.session.get(Company, membership.company_id)
        if company is None or membership.user_id != row.user_id:
            return None
    stmt_u = select(User).where(User.id == row.user_id)
    user = await uow.session.scalar(stmt_u.with_for_update() if lock else stmt_u)
    if user is None or user.status is UserStatus.DEACTIVATED:
        return None
    external = await uow.session.scalar(select(ExternalSubjectLink.id).where(ExternalSubjectLink.user_id == user.id)
                                        .limit(1))
    return Link(row, user, membership, company, user.password_hash is not None or external is not None)


@dataclass(frozen=True)
class Accepted:
    """Done: the membership (if any) and the user are active."""


@dataclass(frozen=True)
class ConfirmationSent:
    """The email the person gave waits for the link sent to it."""

    email: str


async def accept(uow: UnitOfWork, link: Link, *, email: str, password: str, password_again: str
                 ) -> Accepted | ConfirmationSent:
    """Accepting as a user without credentials: choose a password, and give an email when
    none is on file. Raises RuleViolation with a message for the page."""
    if link.has_credentials or link.row.pending_email is not None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Sign in to accept this invitation.")
    new_email = None
    if link.asks_for_email:
        try:
            new_email = normalize_email(email, ["email"])
        except RuleViolation:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "Enter a valid email address.", ["email"]) from None
        await _check_email_free(uow, link.user, new_email)
    problem = password_problem(password)
    if problem is None and password != password_again:
        problem = "The two passwords are not the same."
    if problem:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, problem, ["password"])
    link.user.password_hash = await hash_password(password)
    if new_email is not None:
        # R18: stored only once confirmed, or anyone could claim someone else's address.
        expires = link.membership.invitation_expires_at if link.membership else None
        await send_link(uow, link.user, LinkPurpose.EMAIL_CONFIRMATION, firm_id=link.row.firm_id, place=link.what,
                  expires_at=expires or link.row.expires_at, membership=link.membership, new_email=new_email)
        return ConfirmationSent(new_email)
    _activate(uow, link, {})
    return Accepted()


async def sign_in_and_accept(uow: UnitOfWork, link: Link, *, password: str) -> Accepted:
    """Accepting as a user who has credentials: signing in as that user, nothing set."""
    if link.user.password_hash is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "Sign in from your app to accept: this link cannot set a password.")
    if not await verify_password(link.user.password_hash, password):
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The password is not right.", ["password"])
    _activate(uow, link, {})
    return Accepted()


async def confirm_email(uow: UnitOfWork, link: Link) -> Accepted:
    """A link sent to a new address was opened: the address is the person's, so it is stored.
    For an email change the old address is told, and links sent to it stop working."""
    new_email = link.row.pending_email
    assert new_email is not None
    user = link.user
    await _check_email_free(uow, user, new_email)
    old = user.email
    user.email, user.email_normalized = new_email, new_email
    if link.row.purpose is LinkPurpose.EMAIL_CHANGE:
        await revoke_links(uow, user.id, keep=link.row.id)
        if old is not None:
            uow.session.add(OutboxEmail(
                firm_id=None, to_address=old, subject="Your bureau email was changed",
                body=f"Hello {user.name},\n\nThe email of your bureau account was changed to {new_email}. "
                     "If you did not do this, contact your administrator at once.\n",
                next_attempt_at=uow.runtime.now()))
    _activate(uow, link, {"email": new_email}, before={"email": old})
    return Accepted()


async def revoke_links(uow: UnitOfWork, user_id: int, *, keep: int | None = None) -> None:
    """Every unused link of the user stops working (they went to an address no longer its)."""
    stmt = update(InvitationToken).where(InvitationToken.user_id == user_id, InvitationToken.used_at.is_(None))
    if keep is not None:
        stmt = stmt.where(InvitationToken.id != keep)
    await uow.session.execute(stmt.values(used_at=uow.runtime.now()))


async def _check_email_free(uow: UnitOfWork, user: User, email: str) -> None:
    taken = await uow.session.scalar(select(User.id).where(User.email_normalized == email, User.id != user.id))
    if taken is not None:
        raise RuleViolation(UserErrorCode.IDENTITY_CONFLICT,
                            "That email address belongs to another account. Sign in with it, or give another one.",
                            ["email"])


def _activate(uow: UnitOfWork, link: Link, changed: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    """The membership (if any) and the user become ACTIVE; the link is used up (R29: audited)."""
    now = uow.runtime.now()
    user, membership = link.user, link.membership
    link.row.used_at = now
    was: dict[str, Any] = dict(before or {})
    after: dict[str, Any] = dict(changed)
    if user.status is UserStatus.INVITED:
        was["userStatus"], after["userStatus"] = user.status.value, UserStatus.ACTIVE.value
        user.status = UserStatus.ACTIVE
    if membership is not None:
        was["status"], after["status"] = membership.status.value, MembershipStatus.ACTIVE.value
        membership.status, membership.activated_at = MembershipStatus.ACTIVE, now
    if link.row.purpose is LinkPurpose.EMAIL_CHANGE:
        action = "user.email_changed"
    elif membership is not None:
        action = "membership.invitation_accepted"
    else:
        action = "user.account_set_up"
    uow.audit(action, membership if membership is not None else user, f"{user.name} finished {link.what}"[:500],
              before=was, after=after, firm_id=link.row.firm_id,
              company_id=membership.company_id if membership else None, actor_user_id=user.id,
              affects=[membership] if membership is not None else [])
