"""Concurrent sessions (R14, R28, R29): start, renew and end the caller's own sessions.

Concurrency (R28): starting (and renewing) a session first locks the subscription's
CONCURRENT SeatPool row with SELECT ... FOR UPDATE, then counts the live sessions. Parallel
starts against one pool therefore queue up on that row, and each counts after the previous
one committed (READ COMMITTED takes a fresh snapshot per statement), so N parallel starts
against k free seats succeed exactly k times. The pool row is the natural lock: it is the
thing being rationed, it exists exactly when there are seats to take, and locking it does
not block unrelated work on the subscription or agreement (reads, feature switches,
invitations of NAMED users). Seat changes (changeSeats) update that same row, so they
serialise with session starts too. A subscription without a CONCURRENT pool has no seats,
so there is nothing to lock and the start is refused.

Choices:
- A session is per user and company: a user who already has a live session in the company
  gets it back, renewed, rather than taking a second seat. Sessions in two companies of
  one agreement are two sessions and use two seats (R14 counts live sessions).
- Only the session's own user renews or ends it; anyone else is told NOT_FOUND.
- Renewal is not audited (clients renew every few minutes); start and end are (R29).
"""

from sqlalchemy import select

from licensing import sessions as rules
from licensing.errors import RuleViolation
from licensing.usage import live_sessions
from models import Company, LicenseSession, Membership, SeatPool, Subscription
from models import ids as global_ids
from models.enums import LicenseType, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.periods import advance_agreements


async def lock_concurrent_pool(uow: UnitOfWork, subscription_id: int) -> SeatPool | None:
    """The subscription's CONCURRENT pool, locked until the transaction ends (see above)."""
    return await uow.session.scalar(
        select(SeatPool)
        .where(SeatPool.subscription_id == subscription_id, SeatPool.license_type == LicenseType.CONCURRENT)
        .with_for_update()
    )


async def count_live(uow: UnitOfWork, subscription_id: int) -> int:
    rows = (await uow.session.execute(live_sessions([subscription_id], uow.runtime.now()))).all()
    return int(rows[0][1]) if rows else 0


async def start_session(uow: UnitOfWork, company: Company) -> LicenseSession:
    """The calling user takes a seat of the CONCURRENT pool of the company's agreement."""
    field = ["input", "companyId"]
    user_id = uow.principal.user_id
    if user_id is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "A session is taken by a user; this access token acts for no user.", field)
    # The policy check (Action.OWN_SESSION) already asked for a CONCURRENT grant; the vendor
    # passes it without one, so ask the database which membership the session rests on.
    membership = await uow.session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id, Membership.company_id == company.id,
            Membership.license_type == LicenseType.CONCURRENT, Membership.grants_access(uow.runtime.now()),
        )
    )
    if membership is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "You have no CONCURRENT membership in this company.", field)
    # R105 (R38): a period that is over ends first, with its scheduled changes, so that the seats
    # counted are those in force today, whether or not the rollover ran.
    await advance_agreements(uow, {company.agreement_id})
    subscription = await uow.session.scalar(
        select(Subscription).where(Subscription.agreement_id == company.agreement_id)
    )
    pool = await lock_concurrent_pool(uow, subscription.id) if subscription is not None else None
    if subscription is None or pool is None:
        raise RuleViolation(UserErrorCode.CONCURRENT_LIMIT_REACHED,
                            "The company's licence has no concurrent seats.", field)
    now = uow.runtime.now()
    ttl = uow.runtime.settings.session_ttl_seconds
    existing = await uow.session.scalar(
        select(LicenseSession)
        .where(LicenseSession.user_id == user_id, LicenseSession.company_id == company.id,
               LicenseSession.ended_at.is_(None), LicenseSession.expires_at > now)
        .order_by(LicenseSession.expires_at.desc())
        .limit(1)
    )
    if existing is not None:
        existing.expires_at = rules.expiry(now, ttl)
        await uow.session.flush()
        return existing
    rules.check_concurrent_seat_free(pool.purchased, await count_live(uow, subscription.id), field)
    session = LicenseSession(
        firm_id=company.firm_id,
        subscription_id=subscription.id,
        company_id=company.id,
        user_id=user_id,
        started_at=now,
        expires_at=rules.expiry(now, ttl),
    )
    uow.session.add(session)
    await uow.session.flush()
    uow.audit(
        "session.started", session, f"Concurrent session started in {company.name}",
        after={"user": global_ids.encode("User", user_id), "company": global_ids.of(company),
               "expiresAt": session.expires_at.isoformat()},
        company_id=company.id, subscription_id=subscription.id, affects=[subscription],
    )
    return session


async def renew_session(uow: UnitOfWork, session: LicenseSession) -> LicenseSession:
    """The caller's own session (the mutation's target, declared `own`)."""
    # Under the pool lock, so that a session cannot come back to life after a start took the
    # seat it gave up by expiring (R28).
    await lock_concurrent_pool(uow, session.subscription_id)
    now = uow.runtime.now()
    rules.check_renewable(session.expires_at, session.ended_at, now, ["input", "sessionId"])
    session.expires_at = rules.expiry(now, uow.runtime.settings.session_ttl_seconds)
    await uow.session.flush()
    return session


async def end_session(uow: UnitOfWork, session: LicenseSession) -> LicenseSession:
    """Gives the seat back. Ending an ended session changes nothing (idempotent); an expired
    one is recorded as ended when it expired."""
    if session.ended_at is not None:
        return session
    now = uow.runtime.now()
    was_live = rules.is_live(session.expires_at, session.ended_at, now)
    session.ended_at = rules.end_time(session.expires_at, now)
    await uow.session.flush()
    uow.audit(
        "session.ended", session, "Concurrent session ended" if was_live else "Expired concurrent session closed",
        before={"endedAt": None, "expiresAt": session.expires_at.isoformat()},
        after={"endedAt": session.ended_at.isoformat(), "expired": not was_live},
        company_id=session.company_id, subscription_id=session.subscription_id, affects=[session],
    )
    return session
