"""Signing in with BankID (R51): what a sign-in through a provider's pin claim does.

auth/external.py maps the token to the user whose number is on file; here, in the unit of
work the HTTP layer runs right after authenticating, the provider's subject is linked to
that user (later tokens map by the link), and the user's pending invitations are accepted:
a user without an email has no invitation link to open, so signing in is the acceptance.
"""

from sqlalchemy import or_, select

from auth.external import link_subject
from auth.principal import PinSignIn
from licensing.errors import RuleViolation
from models import Company, Membership, User
from models.enums import MembershipStatus, UserErrorCode, UserStatus
from models.oauth_grants import ExternalSubjectLink
from resolvers.base import UnitOfWork


async def sign_in_with_number(uow: UnitOfWork, sign_in: PinSignIn) -> list[Membership]:
    """Links (issuer, sub) to the caller when not yet linked, and accepts the caller's INVITED
    memberships that have not lapsed; returns them. RuleViolation when the user or the subject
    is someone else's at this provider (a concurrent sign-in linked it first)."""
    assert uow.principal.user_id is not None  # a pin sign-in is always a user's
    user = await uow.session.scalar(select(User).where(User.id == uow.principal.user_id).with_for_update())
    if user is None or user.status is UserStatus.DEACTIVATED:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "unknown or deactivated user")
    if not sign_in.linked:
        await _link(uow, user, sign_in)
    return await _accept_invitations(uow, user)


async def _link(uow: UnitOfWork, user: User, sign_in: PinSignIn) -> None:
    links = (await uow.session.scalars(select(ExternalSubjectLink).where(
        ExternalSubjectLink.issuer == sign_in.issuer,
        or_(ExternalSubjectLink.subject == sign_in.subject, ExternalSubjectLink.user_id == user.id),
    ))).all()
    if any(link.user_id != user.id or link.subject != sign_in.subject for link in links):
        raise RuleViolation(UserErrorCode.IDENTITY_CONFLICT, "the user or the subject is linked to someone else")
    if links:
        return  # a concurrent first sign-in of the same person linked it (we are its retry)
    await link_subject(uow.session, sign_in.issuer, sign_in.subject, user.id)
    uow.audit("user.external_subject_linked", user, f"{user.name} signed in with BankID for the first time",
              after={"issuer": sign_in.issuer}, actor_user_id=user.id)


async def _accept_invitations(uow: UnitOfWork, user: User) -> list[Membership]:
    """Like opening an invitation link (resolvers.invitations._activate), for every pending one."""
    now = uow.runtime.now()
    rows = (await uow.session.execute(
        select(Membership, Company.name).join(Company, Company.id == Membership.company_id)
        .where(Membership.user_id == user.id, Membership.status == MembershipStatus.INVITED,
               or_(Membership.invitation_expires_at.is_(None), Membership.invitation_expires_at > now))
        .order_by(Membership.id).with_for_update(of=Membership)
    )).all()
    user_was = user.status
    if user.status is UserStatus.INVITED:
        user.status = UserStatus.ACTIVE
    for n, (membership, company_name) in enumerate(rows):
        before = {"status": membership.status.value}
        after = {"status": MembershipStatus.ACTIVE.value}
        if n == 0 and user_was is not user.status:  # the user's own change goes with the first, as a link does
            before["userStatus"], after["userStatus"] = user_was.value, user.status.value
        membership.status, membership.activated_at = MembershipStatus.ACTIVE, now
        uow.audit("membership.invitation_accepted", membership,
                  f"{user.name} accepted the invitation to {company_name} by signing in with BankID"[:500],
                  before=before, after=after, company_id=membership.company_id, actor_user_id=user.id,
                  affects=[membership])
    if not rows and user_was is not user.status:
        uow.audit("user.account_set_up", user, f"{user.name} signed in with BankID"[:500],
                  before={"userStatus": user_was.value}, after={"userStatus": user.status.value},
                  actor_user_id=user.id)
    return [membership for membership, _ in rows]
