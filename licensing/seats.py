"""Seat rules for NAMED pools (R5, R9, R13).

Concurrency (R28): every change that takes a NAMED seat first locks the agreement row
(SELECT ... FOR UPDATE), so concurrent invitations to one agreement queue up and each
counts the seats in use after the previous one committed. A lock on the agreement rather
than on the pool row also covers agreements without a subscription, and moves.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from licensing.errors import RuleViolation
from licensing.usage import named_seat_holders
from models import Agreement, Company, SeatPool, Subscription
from models.enums import LicenseType, UserErrorCode


def check_seat_available(purchased: int, in_use: int, needed: int, field: Sequence[str]) -> None:
    """Pure form of R13: `needed` more seats must fit in what was purchased."""
    if needed > 0 and in_use + needed > purchased:
        raise RuleViolation(
            UserErrorCode.SEAT_LIMIT_REACHED,
            f"All {purchased} NAMED seats are in use; add seats before inviting more users.",
            field,
        )


def check_not_below_in_use(seats: int, in_use: int, field: Sequence[str]) -> None:
    """R9: never fewer seats than are in use."""
    if seats < in_use:
        raise RuleViolation(
            UserErrorCode.SEATS_BELOW_ACTIVE_USERS,
            f"{in_use} seats are in use; the count cannot go below that.",
            field,
        )


async def lock_agreement(session: AsyncSession, agreement_id: int) -> None:
    await session.execute(select(Agreement.id).where(Agreement.id == agreement_id).with_for_update())


async def named_pool(session: AsyncSession, agreement_id: int) -> SeatPool | None:
    return await session.scalar(
        select(SeatPool)
        .join(Subscription, Subscription.id == SeatPool.subscription_id)
        .where(Subscription.agreement_id == agreement_id, SeatPool.license_type == LicenseType.NAMED)
    )


async def named_holders(session: AsyncSession, agreement_id: int, now: datetime) -> set[int]:
    rows = await session.scalars(
        select(named_seat_holders(now).where(Company.agreement_id == agreement_id).subquery().c.user_id)
    )
    return set(rows)


async def claim_named_seat(
    session: AsyncSession, agreement_id: int, user_id: int, now: datetime, field: Sequence[str]
) -> None:
    """A user already holding a seat of the agreement needs no second one (R13)."""
    await lock_agreement(session, agreement_id)
    holders = await named_holders(session, agreement_id, now)
    if user_id in holders:
        return
    pool = await named_pool(session, agreement_id)
    check_seat_available(pool.purchased if pool else 0, len(holders), 1, field)


async def check_move_fits(
    session: AsyncSession, company_id: int, target_agreement_id: int, now: datetime, field: Sequence[str]
) -> None:
    """R5: the moving company's NAMED users must fit the target's NAMED seats.

    A target without a subscription has no pool to exceed: its seats are bought when its
    subscription is created, which cannot be fewer than those in use (R9)."""
    await lock_agreement(session, target_agreement_id)
    pool = await named_pool(session, target_agreement_id)
    if pool is None:
        return
    target = await named_holders(session, target_agreement_id, now)
    moving = set(
        await session.scalars(
            select(named_seat_holders(now).where(Company.id == company_id).subquery().c.user_id)
        )
    )
    check_seat_available(pool.purchased, len(target), len(moving - target), field)


async def count_named_in_use(session: AsyncSession, agreement_id: int, now: datetime) -> int:
    return len(await named_holders(session, agreement_id, now))

