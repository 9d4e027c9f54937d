"""Seat usage (R13, R14, R16) as SQL, so that the API, the checks and invoices count alike."""

from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from models import ClientUser, Company, LicenseSession, Membership
from models.enums import LicenseType, MembershipStatus


def holds_seat(now: datetime) -> ColumnElement[bool]:
    """An ACTIVE membership, or an INVITED one whose invitation has not lapsed (R13)."""
    return or_(
        Membership.status == MembershipStatus.ACTIVE,
        and_(
            Membership.status == MembershipStatus.INVITED,
            or_(Membership.invitation_expires_at.is_(None), Membership.invitation_expires_at > now),
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
