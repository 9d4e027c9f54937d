"""Human passwords and the limits on password sign-in attempts.

Passwords are hashed with Argon2id (argon2-cffi, RFC 9106's second recommended profile:
64 MiB, 3 passes, 4 lanes). Hashing takes tens of milliseconds of CPU, so it runs in a
worker thread and never blocks the event loop.

Sign-in attempts are throttled, never locked out (OWASP Authentication Cheat Sheet): nobody
can keep an account's owner out by typing wrong passwords for it. Three rules, each with its
setting in `AttemptLimits`:

1. Per account and address (the pair): the first `free_failures` failures cost nothing; each
   further one makes the pair wait, `first_delay` doubling up to `max_delay`. An attempt
   while the pair waits is refused (`Limited`) and NOT recorded, so failures cannot extend
   a wait; the next failure after the wait doubles it (capped). A success clears the pair's
   failures, only that pair's.
2. Per address, all accounts (credential stuffing, spraying): at most `address_failures`
   failures in `address_window`; then that address waits, no other.
3. Per account, many addresses (distributed guessing): when `account_addresses` distinct
   addresses have failed on the account within `account_window` (one address flooding counts
   once), addresses new to the account are refused until they age out.

An address where the account signed in successfully within `known_for` is known for that
account (the OWASP "device cookie" idea, by address digest): rules 2 and 3 do not apply to
it, so neither a flood from elsewhere nor a spray from a shared address keeps the owner out.
Rule 1 always applies.

The attempts are kept in the DATABASE (`sign_in_attempts`), not in process memory: the
server runs as any number of processes and instances behind a load balancer (DESIGN.md
section 5), and a limit kept per process would multiply by their number, differ between
instances and reset on every restart. An allowed attempt is recorded (and committed) before
the password is checked and counts as a failure unless the sign-in succeeds; the rules are
checked again after recording, so parallel guesses see each other. Failures are kept for
`failure_memory`, successes for `known_for`. Account and address are stored as SHA-256
digests: people type passwords into the email field, and the table needs no readable addresses.
"""

import asyncio
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.oauth_grants import SignInAttempt
from observability.metrics import RATE_LIMITED

HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4 (RFC 9106 low-memory profile)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

# Verified when the account does not exist, so that an unknown email takes as long as a
# wrong password and the answer tells nothing about which accounts exist.
_DUMMY_HASH = HASHER.hash("not a real password: used to equalise timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash; False for no hash (after the same work)."""
    if stored is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def upgrade_hash(user: Any, password: str) -> None:
    """After a right password: rehash it when it was hashed with weaker parameters than today's."""
    if user.password_hash is not None and needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, or None (NIST SP 800-63B: length, no composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    if not password.strip():
        return "The password must not be blank."
    return None


# ----------------------------------------------------------------------- attempt limits


@dataclass(frozen=True)
class AttemptLimits:
    """The settings of the three rules (see the module docstring); the defaults are safe."""

    # Rule 1, per (account, address) pair: free failures, then a doubling wait, capped.
    free_failures: int = 5
    first_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=15)
    # Rule 2, per address over all accounts.
    address_failures: int = 30
    address_window: timedelta = timedelta(minutes=15)
    # Rule 3, per account: distinct failing addresses, after which new addresses wait.
    account_addresses: int = 10
    account_window: timedelta = timedelta(hours=1)
    # How long failures count (and are kept), and how long a success makes an address known.
    failure_memory: timedelta = timedelta(hours=24)
    known_for: timedelta = timedelta(days=90)

    def __post_init__(self) -> None:
        if self.free_failures < 0 or min(self.address_failures, self.account_addresses) < 1:
            raise ValueError("attempt limits must allow at least one failure")
        if max(self.address_window, self.account_window) > self.failure_memory:
            raise ValueError("failures must be kept at least as long as the windows that count them")
        if self.failure_memory > self.known_for:
            raise ValueError("known_for must be at least failure_memory: older attempts of any kind are deleted")


def delay_after(failures: int, limits: AttemptLimits) -> timedelta:
    """How long a pair waits after its `failures`-th counted failure."""
    further = failures - limits.free_failures
    if further <= 0:
        return timedelta(0)
    # Capped as seconds (a bounded exponent keeps the float finite) before any timedelta overflows.
    seconds = limits.first_delay.total_seconds() * 2.0 ** min(further - 1, 64)
    return timedelta(seconds=min(seconds, limits.max_delay.total_seconds()))


@dataclass(frozen=True)
class Attempt:
    id: int
    account: str
    address: str


@dataclass(frozen=True)
class Limited:
    """Too many failed attempts: try again after `retry_after` seconds."""

    retry_after: int


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


_FAILED = SignInAttempt.succeeded.is_(False)
_UNCLEARED = SignInAttempt.cleared.is_(False)


class AttemptLimiter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime],
                 limits: AttemptLimits | None = None) -> None:
        self._sessions = sessions
        self._clock = clock
        self.limits = limits or AttemptLimits()

    async def begin(self, email: str, address: str) -> Attempt | Limited:
        """Records an attempt for the account (normalised email) from the address, or returns
        Limited (recording nothing) while a rule makes this pair wait."""
        now = self._clock()
        account, addr = _digest("account", email.strip().lower()), _digest("address", address)
        # Refused attempts write nothing: a flood costs reads only and extends no wait.
        async with self._sessions() as session:
            free_at = await self._free_at(session, account, addr, now)
        if free_at is not None:
            return _limited(free_at, now)
        async with self._sessions.begin() as session:
            await self._forget(session, now)
            row = SignInAttempt(account=account, address=addr, attempted_at=now, succeeded=False, cleared=False)
            session.add(row)
            await session.flush()
            attempt = Attempt(row.id, account, addr)
        # Again now that this attempt is committed: of parallel attempts, each later check sees
        # the earlier ones (as failures until they succeed), so they cannot all slip through.
        async with self._sessions() as session:
            free_at = await self._free_at(session, account, addr, now, SignInAttempt.id != attempt.id)
        if free_at is not None:
            async with self._sessions.begin() as session:
                await session.execute(delete(SignInAttempt).where(SignInAttempt.id == attempt.id))
            return _limited(free_at, now)
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this attempt is no failure, the pair starts afresh, and the
        address is known for the account. Failures of the address with other accounts, and of
        the account from other addresses, still count."""
        pair = (SignInAttempt.account == attempt.account, SignInAttempt.address == attempt.address)
        async with self._sessions.begin() as session:
            await session.execute(update(SignInAttempt).where(SignInAttempt.id == attempt.id).values(succeeded=True))
            await session.execute(update(SignInAttempt).where(*pair, SignInAttempt.id < attempt.id, _FAILED)
                                  .values(cleared=True))
            # The latest success is all that makes the address known: one success row per pair.
            await session.execute(delete(SignInAttempt).where(*pair, SignInAttempt.id < attempt.id,
                                                              SignInAttempt.succeeded.is_(True)))

    async def _forget(self, session: AsyncSession, now: datetime) -> None:
        # Ranged deletes on the indexed time: what no rule looks at any more.
        await session.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at < now - self.limits.known_for))
        await session.execute(delete(SignInAttempt).where(
            SignInAttempt.attempted_at < now - self.limits.failure_memory, _FAILED))

    async def _free_at(self, session: AsyncSession, account: str, addr: str, now: datetime,
                       *other: ColumnElement[bool]) -> datetime | None:
        """When this pair may try again, or None when it may now; the latest of the rules."""
        limits = self.limits
        pair = (SignInAttempt.account == account, SignInAttempt.address == addr)
        waits: list[datetime] = []

        # Rule 1: the pair's uncleared failures, the wait counted from the latest of them.
        count, latest = (await session.execute(
            select(func.count(), func.max(SignInAttempt.attempted_at))
            .where(*pair, _FAILED, _UNCLEARED, SignInAttempt.attempted_at > now - limits.failure_memory, *other)
        )).one()
        if count and latest is not None:
            waits.append(latest + delay_after(int(count), limits))

        known = await session.scalar(select(SignInAttempt.id).where(
            *pair, SignInAttempt.succeeded.is_(True), SignInAttempt.attempted_at > now - limits.known_for).limit(1))
        if known is None:
            # Rule 2: with `address_failures` failures in the window, free when the oldest of
            # the newest `address_failures` ages out.
            nth = await session.scalar(
                select(SignInAttempt.attempted_at)
                .where(SignInAttempt.address == addr, _FAILED, SignInAttempt.attempted_at > now - limits.address_window,
                       *other)
                .order_by(SignInAttempt.attempted_at.desc()).offset(limits.address_failures - 1).limit(1))
            if nth is not None:
                waits.append(nth + limits.address_window)
            # Rule 3: each failing address once, by its latest failure; cleared failures are of
            # addresses that signed in since, so they are no guessing.
            last = func.max(SignInAttempt.attempted_at)
            nth = await session.scalar(
                select(last)
                .where(SignInAttempt.account == account, _FAILED, _UNCLEARED,
                       SignInAttempt.attempted_at > now - limits.account_window, *other)
                .group_by(SignInAttempt.address)
                .order_by(last.desc()).offset(limits.account_addresses - 1).limit(1))
            if nth is not None:
                waits.append(nth + limits.account_window)

        free_at = max(waits, default=None)
        return free_at if free_at is not None and free_at > now else None


def _limited(free_at: datetime, now: datetime) -> Limited:
    RATE_LIMITED.labels("sign_in").inc()
    return Limited(max(1, math.ceil((free_at - now).total_seconds())))
