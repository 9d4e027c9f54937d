"""Seat usage (R13, R14, R16) as SQL, so that the API, the checks and invoices count alike."""

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select

from models import ClientUser, Company, LicenseSession, Membership, Subscription
from models.enums import LicenseType, MembershipStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def holds_seat(now: datetime) -> ColumnElement[bool]:
    """R13 and R52, the same as `licensing.memberships.holds_seat` in Python: a membership that
    grants access (not DEACTIVATED, its end not reached) and is ACTIVE, or INVITED with an
    invitation that has not lapsed."""
    return and_(
        Membership.grants_access(now),
        or_(
            Membership.status == MembershipStatus.ACTIVE,
            and_(
                Membership.status == MembershipStatus.INVITED,
                or_(Membership.invitation_expires_at.is_(None), Membership.invitation_expires_at > now),
            ),
        ),
    )


def named_seat_holders(now: datetime) -> Select[int, int]:
    """(agreement_id, user_id) for every user using a NAMED seat of an agreement: a user in
    several companies of one agreement appears once."""
    return (
        select(Company.agreement_id, Membership.user_id)
        .join(Company, Company.id == Membership.company_id)
        .where(Membership.license_type == LicenseType.NAMED, holds_seat(now))
        .distinct()
    )


def access_lines(now: datetime) -> Select[int, int, LicenseType]:
    """(agreement_id, user_id, license_type) for every user needing a seat of that type in an
    agreement: NAMED by R13, and likewise CONCURRENT and CLIENT_USER members (ACTIVE, or INVITED
    and not lapsed) of any company of the agreement. A user in several companies of one
    agreement appears once per licence type; `access_companies` gives the companies."""
    return (
        select(Company.agreement_id, Membership.user_id, Membership.license_type)
        .join(Company, Company.id == Membership.company_id)
        .where(holds_seat(now))
        .distinct()
    )


def access_companies(now: datetime) -> Select[int, LicenseType, Company]:
    """(user_id, license_type, company) behind each line of `access_lines`."""
    return (
        select(Membership.user_id, Membership.license_type, Company)
        .join(Company, Company.id == Membership.company_id)
        .where(holds_seat(now))
    )


LICENSE_TYPES = list(LicenseType)


def license_type_order(column: ColumnElement[LicenseType]) -> ColumnElement[int]:
    """NAMED, CONCURRENT, CLIENT_USER as 0, 1, 2: the order lines are listed in."""
    return case({t: i for i, t in enumerate(LICENSE_TYPES)}, value=column)


def named_seats_in_use(agreement_ids: list[int], now: datetime) -> Select[int, int]:
    holders = named_seat_holders(now).where(Company.agreement_id.in_(agreement_ids)).subquery()
    return select(holders.c.agreement_id, func.count()).group_by(holders.c.agreement_id)


def live_sessions(subscription_ids: list[int], now: datetime) -> Select[int, int]:
    """Concurrent seats in use: sessions neither ended nor expired (R14)."""
    return (
        select(LicenseSession.subscription_id, func.count())
        .where(
            LicenseSession.subscription_id.in_(subscription_ids),
            LicenseSession.ended_at.is_(None),
            LicenseSession.expires_at > now,
        )
        .group_by(LicenseSession.subscription_id)
    )


def client_users_assigned(firm_ids: list[int]) -> Select[int, int]:
    return select(ClientUser.firm_id, func.count()).where(ClientUser.firm_id.in_(firm_ids)).group_by(ClientUser.firm_id)


async def in_use(session: "AsyncSession", subscription: Subscription, license_type: LicenseType,
                 now: datetime) -> int:
    """Seats of one pool in use now: NAMED by R13, CONCURRENT live sessions, CLIENT_USER
    assigned client users (master subscriptions only)."""
    if license_type is LicenseType.NAMED:
        if subscription.agreement_id is None:
            return 0  # a master licence has no companies of its own; firm staff use no seat
        holders = named_seat_holders(now).where(Company.agreement_id == subscription.agreement_id).subquery()
        return int(await session.scalar(select(func.count()).select_from(holders)) or 0)
    if license_type is LicenseType.CONCURRENT:
        rows = (await session.execute(live_sessions([subscription.id], now))).all()
        return int(rows[0][1]) if rows else 0
    if subscription.master_firm_id is None:
        return 0
    rows = (await session.execute(client_users_assigned([subscription.master_firm_id]))).all()
    return int(rows[0][1]) if rows else 0
