"""Archiving a company or an agreement, and undoing it within a grace period (R49).

Archiving a company ends all access to it at once: its memberships end (so their seats free),
their live sessions end, and its client-user assignments end; R21 does not hold it up, since
every access ends together. The company and its history (audit log, orders, invoices) stay
readable for whoever may read them, and lists leave it out unless asked to include archived
ones. An agreement is archived with all its companies, and only when its subscription is
cancelled (or it has none) and no transfer offer is open. Within ARCHIVE_GRACE_DAYS the
archiving can be undone: the memberships it ended are given back (seat rules apply, R13), the
client-user assignments are not (the firm assigns them again). Releasing a client user
(removeClientUser) is in resolvers/client_users.py.
"""

from datetime import datetime, timedelta

from sqlalchemy import select

from licensing import seats
from licensing.errors import RuleViolation
from models import Agreement, ClientUserCompany, Company, Membership, Subscription
from models.enums import LicenseType, MembershipStatus, SubscriptionStatus, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.invitations import invitation_expiry
from resolvers.memberships import End, change_access
from resolvers.periods import advance_agreements
from resolvers.transfers import open_transfer

ARCHIVE_GRACE_DAYS = 30


async def _check_no_transfer(uow: UnitOfWork, agreement_id: int, field: list[str]) -> None:
    if await open_transfer(uow, agreement_id) is not None:
        raise RuleViolation(UserErrorCode.TRANSFER_PENDING,
                            "The agreement has an open transfer offer; withdraw or decline it first.", field)


async def archive_company(uow: UnitOfWork, company: Company, *, field: list[str] | None = None) -> Company:
    field = field or ["input", "companyId"]
    if company.archived_at is not None:
        raise RuleViolation(UserErrorCode.ARCHIVED, "The company is archived already.", field)
    await seats.lock_agreement(uow.session, company.agreement_id)
    await _check_no_transfer(uow, company.agreement_id, field)
    ended = 0
    for link in (await uow.session.scalars(select(ClientUserCompany).where(
            ClientUserCompany.company_id == company.id))).all():
        await uow.session.delete(link)
    for membership in (await uow.session.scalars(select(Membership).where(
            Membership.company_id == company.id, Membership.status != MembershipStatus.DEACTIVATED))).all():
        if membership.license_type is LicenseType.CLIENT_USER:
            await change_access(uow, membership, field, end=End.REMOVE, whole_company=True)
            continue
        await change_access(uow, membership, field, end=End.DEACTIVATE, whole_company=True)
        membership.ended_by_archive = True
        ended += 1
    company.archived_at = uow.runtime.now()
    await uow.session.flush()
    uow.audit("company.archived", company, f"Company {company.name} archived",
              before={"archivedAt": None}, after={"archivedAt": company.archived_at.isoformat(),
                                                  "membershipsEnded": ended}, company_id=company.id,
              affects=[company])
    return company


async def unarchive_company(uow: UnitOfWork, company: Company, *, field: list[str] | None = None) -> Company:
    field = field or ["input", "companyId"]
    _check_in_grace(uow, company.archived_at, field)
    agreement = await uow.session.get_one(Agreement, company.agreement_id)
    if agreement.archived_at is not None:
        raise RuleViolation(UserErrorCode.ARCHIVED, "Its agreement is archived: undo that instead.", field)
    await advance_agreements(uow, {company.agreement_id})
    await seats.lock_agreement(uow.session, company.agreement_id)
    now = uow.runtime.now()
    given_back = 0
    for membership in (await uow.session.scalars(select(Membership).where(
            Membership.company_id == company.id, Membership.ended_by_archive.is_(True)))).all():
        if membership.license_type is LicenseType.NAMED:
            await seats.claim_named_seat(uow.session, company.agreement_id, membership.user_id, now, field)
        accepted = membership.activated_at is not None
        membership.status = MembershipStatus.ACTIVE if accepted else MembershipStatus.INVITED
        membership.deactivated_at, membership.ended_by_archive = None, False
        if not accepted:
            membership.invitation_expires_at = invitation_expiry(uow)
        given_back += 1
    archived_at = company.archived_at
    company.archived_at = None
    await uow.session.flush()
    uow.audit("company.unarchived", company, f"Company {company.name} taken out of the archive",
              before={"archivedAt": archived_at.isoformat() if archived_at else None},
              after={"archivedAt": None, "membershipsGivenBack": given_back}, company_id=company.id,
              affects=[company])
    return company


async def archive_agreement(uow: UnitOfWork, agreement: Agreement) -> Agreement:
    field = ["input", "agreementId"]
    if agreement.archived_at is not None:
        raise RuleViolation(UserErrorCode.ARCHIVED, "The agreement is archived already.", field)
    subscription = await uow.session.scalar(select(Subscription).where(Subscription.agreement_id == agreement.id))
    if subscription is not None and subscription.status is not SubscriptionStatus.CANCELLED:
        raise RuleViolation(UserErrorCode.SUBSCRIPTION_ACTIVE,
                            "Its subscription is still running: cancel it, and archive the agreement once it ended.",
                            field)
    await _check_no_transfer(uow, agreement.id, field)
    for company in (await uow.session.scalars(select(Company).where(
            Company.agreement_id == agreement.id, Company.archived_at.is_(None)))).all():
        await archive_company(uow, company, field=field)
    agreement.archived_at = uow.runtime.now()
    await uow.session.flush()
    uow.audit("agreement.archived", agreement, f"Agreement {agreement.name} archived",
              after={"archivedAt": agreement.archived_at.isoformat()})
    return agreement


async def unarchive_agreement(uow: UnitOfWork, agreement: Agreement) -> Agreement:
    """Undoes the archiving of the agreement and of the companies archived with it."""
    field = ["input", "agreementId"]
    _check_in_grace(uow, agreement.archived_at, field)
    archived_at = agreement.archived_at
    agreement.archived_at = None
    await uow.session.flush()
    # Its companies were archived in the same transaction, just before it.
    for company in (await uow.session.scalars(select(Company).where(
            Company.agreement_id == agreement.id, Company.archived_at.is_not(None),
            Company.archived_at >= (archived_at or uow.runtime.now()) - timedelta(minutes=1)))).all():
        await unarchive_company(uow, company, field=field)
    uow.audit("agreement.unarchived", agreement, f"Agreement {agreement.name} taken out of the archive",
              before={"archivedAt": archived_at.isoformat() if archived_at else None}, after={"archivedAt": None})
    return agreement


def _check_in_grace(uow: UnitOfWork, archived_at: datetime | None, field: list[str]) -> None:
    if archived_at is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "It is not archived.", field)
    if uow.runtime.now() - archived_at > timedelta(days=ARCHIVE_GRACE_DAYS):
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            f"It was archived more than {ARCHIVE_GRACE_DAYS} days ago; that cannot be undone.", field)
