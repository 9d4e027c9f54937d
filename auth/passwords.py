"""Human passwords and the limits on password sign-in attempts.

Passwords are hashed with Argon2id (argon2-cffi, RFC 9106's second recommended profile:
64 MiB, 3 passes, 4 lanes). Hashing takes tens of milliseconds of CPU, so it runs in a
worker thread and never blocks the event loop.

Sign-in attempts are limited per account and per client address, and the attempts are kept
in the DATABASE (`sign_in_attempts`), not in process memory: the server runs as any number
of processes and instances behind a load balancer (DESIGN.md section 5), and a limit kept
per process would multiply by their number, differ between instances and reset on every
restart. An attempt is recorded (and committed) before the password is checked, so that
parallel guesses are counted too; it counts as a failure unless the sign-in succeeds.
Account and address are stored as SHA-256 digests: people type passwords into the email
field, and the table needs no readable addresses.

The per-account limit is a throttle, not a permanent lockout: failures age out of the
window, and a successful sign-in clears the account's earlier failures (not the address's).
"""

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.oauth_grants import SignInAttempt

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
    per_account: int = 5
    per_address: int = 30
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Attempt:
    id: int
    account: str


@dataclass(frozen=True)
class Limited:
    """Too many failed attempts: try again after `retry_after` seconds."""

    retry_after: int


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


class AttemptLimiter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime],
                 limits: AttemptLimits | None = None) -> None:
        self._sessions = sessions
        self._clock = clock
        self.limits = limits or AttemptLimits()

    async def begin(self, email: str, address: str) -> Attempt | Limited:
        """Records an attempt for the account (normalised email) from the address; Limited when
        either has had too many failures in the window, this attempt included."""
        now = self._clock()
        since = now - self.limits.window
        account, addr = _digest("account", email.strip().lower()), _digest("address", address)
        async with self._sessions.begin() as session:
            # Old rows are of no further use; a cheap ranged delete on an indexed column.
            await session.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at < since))
            row = SignInAttempt(account=account, address=addr, attempted_at=now, succeeded=False, cleared=False)
            session.add(row)
            await session.flush()
            attempt = Attempt(row.id, account)
        async with self._sessions() as session:
            by_account = await self._failures(session, since, SignInAttempt.account == account,
                                              SignInAttempt.cleared.is_(False))
            by_address = await self._failures(session, since, SignInAttempt.address == addr)
        over: list[datetime] = []
        for (count, oldest), limit in ((by_account, self.limits.per_account), (by_address, self.limits.per_address)):
            if count > limit:
                over.append(oldest or now)
        if over:
            # Free again when the oldest failure in the window ages out of it.
            retry = (min(over) + self.limits.window - now).total_seconds()
            return Limited(max(1, int(retry) + 1))
        return attempt

    async def _failures(self, session: AsyncSession, since: datetime, *where: object) -> tuple[int, datetime | None]:
        row = (await session.execute(
            select(func.count(), func.min(SignInAttempt.attempted_at))
            .where(SignInAttempt.attempted_at >= since, SignInAttempt.succeeded.is_(False), *where)  # type: ignore[arg-type]
        )).one()
        return int(row[0]), row[1]

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this attempt is no failure, and the account starts afresh."""
        async with self._sessions.begin() as session:
            await session.execute(update(SignInAttempt).where(SignInAttempt.id == attempt.id).values(succeeded=True))
            await session.execute(
                update(SignInAttempt).where(SignInAttempt.account == attempt.account).values(cleared=True)
            )
