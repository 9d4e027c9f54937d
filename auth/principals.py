"""R77: a token's principal kept for a few seconds, so that a request costs no statement for it.

What a principal holds (its client, the user's status and email, firm roles, the memberships
that grant a role, whether the token was revoked) changes only when something commits rows of the
tables it is read from (`auth.authenticate.read_tables`). So a commit in this process that wrote
such rows bumps a version (hooks on the session factory of every runtime's database, put there
by `install`, which resolvers.runtime calls: the rows a flush wrote, and the bulk or textual
statements a session ran), and an entry read before the bump is not used: revoking a token,
deactivating a membership or a user, cancelling a licence takes effect at once in the process
that did it. Rows of one user (the user, their memberships and staff roles) bump
that user's version only; any other row of those tables, or a statement whose rows are not
known, bumps every principal's. A commit that wrote none of them (a seat change, an order, the
outbox) leaves the kept principals as they are. Another process learns of a change when its entry
expires, BUREAU_PRINCIPAL_CACHE_SECONDS (5) after it was read: that is the window. An entry is
also never used past the end of a membership it holds (R52, on the request's clock), nor before
the moment it was read (a clock set back). 0 seconds keeps nothing.

R114: requests of one token that miss at the same time (a dashboard's parallel queries, or every
request in flight when an entry expires) share one read: the first reads, the others wait for it,
each getting its own copy. Only while nothing it reads from has been committed in this process
since the read began, as for keeping it; if the read fails or is cancelled, each reads for itself.
"""

import asyncio
import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from auth.principal import Grants, Principal
from models.db import add_hooks

MOST_PRINCIPALS = 10_000  # tokens kept at once, the least recently used going first
MOST_USERS_NOTED = 100_000  # users whose own version is kept; beyond, every principal's is bumped
_OWN_ROWS = {"users": "id", "memberships": "user_id", "firm_members": "user_id"}  # a user's rows, by column
_TOUCHED = "bureau.principals.touched"  # session.info: the users whose rows were written, or EVERYONE
EVERYONE = None

# One clock: each bump takes the next tick. A principal's version is the later of every
# principal's last bump and its user's last bump, so either makes it change.
_clock = 0
_everyone_at = 0
_user_at: dict[int, int] = {}


def version(user_id: int | None = None) -> int:
    """The version a principal of `user_id` (None: a client's own token) is read at."""
    return max(_everyone_at, _user_at.get(user_id, 0)) if user_id is not None else _everyone_at


def changed(session: Session | None = None, user_ids: set[int] | None = EVERYONE) -> None:
    """Principals read before now may be out of date: every one, or those of `user_ids`."""
    global _clock, _everyone_at
    _clock += 1
    if user_ids is EVERYONE or len(_user_at) + len(user_ids) > MOST_USERS_NOTED:
        _everyone_at = _clock
        _user_at.clear()
        return
    for user_id in user_ids:
        _user_at[user_id] = _clock


@cache
def _read_tables() -> frozenset[str]:
    from auth.authenticate import read_tables  # (auth.authenticate imports this module)

    return read_tables()


def _note(session: Session, user_ids: set[int] | None) -> None:
    if user_ids is EVERYONE:
        session.info[_TOUCHED] = EVERYONE
    elif _TOUCHED not in session.info or session.info[_TOUCHED] is not EVERYONE:
        session.info.setdefault(_TOUCHED, set()).update(user_ids)


def _own_users(table: str, obj: Any) -> set[int] | None:
    column = _OWN_ROWS.get(table)
    if column is None:
        return EVERYONE
    history = inspect(obj).attrs[column].history  # a row moved from one user to another: both
    return {v for v in chain([getattr(obj, column)], history.deleted) if isinstance(v, int)}


def _flushed(session: Session, flush_context: object) -> None:
    tables = _read_tables()
    for obj in chain(session.new, session.dirty, session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in tables and (obj not in session.dirty or session.is_modified(obj)):
            _note(session, _own_users(table, obj))


def _executed(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE, an INSERT statement or raw SQL: their rows are not known here."""
    if state.is_select:
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table is None or table in _read_tables():
        _note(state.session, EVERYONE)


def _committed(session: Session) -> None:
    if _TOUCHED in session.info:
        changed(session, session.info.pop(_TOUCHED))


def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back (a commit took its notes already); not a savepoint's end
        session.info.pop(_TOUCHED, None)


def install(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Commits through these sessions that wrote a principal's tables make kept principals stale."""
    add_hooks(sessions, {"after_flush": _flushed, "do_orm_execute": _executed, "after_commit": _committed,
                         "after_transaction_end": _ended})


def detached(principal: Principal) -> Principal:
    """A copy whose grants can change without changing `principal`'s."""
    grants = principal.grants
    return dataclasses.replace(principal, grants=Grants(dict(grants.firm_roles), dict(grants.companies)))


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    version: int
    expires: float  # on the monotonic clock
    read_at: datetime  # the request's clock
    until: datetime | None  # the earliest end of a membership it holds


Read = tuple[Principal, datetime | None]  # a principal and the earliest end of a membership it holds


@dataclass(frozen=True)
class _Flight:
    """A read under way (R114): what it will give, and what it was begun at."""

    answer: "asyncio.Future[Read | None]"  # None: it failed, or was cancelled
    version: int
    read_at: datetime


class PrincipalCache:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock  # tests move it
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._flights: dict[bytes, _Flight] = {}
        self.shared_reads = 0  # requests that waited for another's read instead of reading

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()  # the bearer token itself is not kept

    def get(self, token: str, now: datetime, *, shared: bool = False) -> Principal | None:
        """The principal read for this token, as a copy the request may change, while still valid; `shared`:
        the one kept, for a caller that only reads it (web.read_lane, which copies it to hand it on)."""
        if self.seconds <= 0:
            return None
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (entry.version != version(entry.principal.user_id) or self.clock() >= entry.expires or now < entry.read_at
                or (entry.until is not None and now >= entry.until)):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.principal if shared else detached(entry.principal)

    def put(self, token: str, principal: Principal, *, read_version: int, now: datetime,
            until: datetime | None) -> None:
        """Keeps what was read at `read_version` (taken before the read began)."""
        if self.seconds <= 0 or read_version != version(principal.user_id):
            return
        kept = detached(principal)
        self._entries[self._key(token)] = _Entry(kept, read_version, self.clock() + self.seconds, now, until)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > MOST_PRINCIPALS:
            self._entries.popitem(last=False)

    async def read_once(self, token: str, user_id: int | None, now: datetime,
                        read: Callable[[], Awaitable[Read]]) -> Principal:
        """The principal `read` gives, kept (`put`); or, while a read of the same token begun at the
        same version is under way, a copy of what that one gives (R114)."""
        if self.seconds <= 0:
            return (await read())[0]
        key, read_version = self._key(token), version(user_id)
        flight = self._flights.get(key)
        if flight is not None and flight.version == read_version and now >= flight.read_at:
            # Shielded: a waiter cancelled (its client gone) must not cancel the read the others wait for.
            shared = await asyncio.shield(flight.answer)
            if shared is not None and (shared[1] is None or now < shared[1]):
                self.shared_reads += 1
                return detached(shared[0])
        flight = _Flight(asyncio.get_running_loop().create_future(), read_version, now)
        self._flights[key] = flight
        answer: Read | None = None
        try:
            answer = await read()
        finally:
            # A copy of its own: this request may change its principal's grants before the waiters copy it.
            # None, on an error or a cancellation: each waiter reads for itself.
            flight.answer.set_result(None if answer is None else (detached(answer[0]), answer[1]))
            if self._flights.get(key) is flight:
                del self._flights[key]
        principal, until = answer
        self.put(token, principal, read_version=read_version, now=now, until=until)
        return principal

    def __len__(self) -> int:
        return len(self._entries)
