"""R77: a token's principal kept for a few seconds, so that a request costs no statement for it.

What a principal holds (its client, the user's status and email, firm roles, the memberships
that grant a role, whether the token was revoked) changes only when something commits. So every
commit in this process bumps a version (`changed`, on after_commit of the sessions of every runtime's
database: resolvers.runtime calls `install`),
and an entry read before the last bump is not used: revoking a token, deactivating a membership or
a user, cancelling a licence takes effect at once in the process that did it. Another process
learns of it when its entry expires, BUREAU_PRINCIPAL_CACHE_SECONDS (5) after it was read: that is
the window. An entry is also never used past the end of a membership it holds (R52, on the
request's clock), nor before the moment it was read (a clock set back). 0 seconds keeps nothing.
"""

import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from auth.principal import Grants, Principal
from models.db import add_hooks

MOST_PRINCIPALS = 10_000  # tokens kept at once, the least recently used going first

_version = 0


def version() -> int:
    return _version


def changed(session: Session | None = None) -> None:
    """After any commit of this process: every principal read before it may be out of date."""
    global _version
    _version += 1


def install(sessions: async_sessionmaker[AsyncSession]) -> None:
    add_hooks(sessions, {"after_commit": changed})


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    version: int
    expires: float  # on the monotonic clock
    read_at: datetime  # the request's clock
    until: datetime | None  # the earliest end of a membership it holds


class PrincipalCache:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock  # tests move it
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()  # the bearer token itself is not kept

    def get(self, token: str, now: datetime) -> Principal | None:
        """The principal read for this token, as a copy the request may change, while still valid."""
        if self.seconds <= 0:
            return None
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (entry.version != _version or self.clock() >= entry.expires or now < entry.read_at
                or (entry.until is not None and now >= entry.until)):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        grants = entry.principal.grants
        return dataclasses.replace(entry.principal, grants=Grants(dict(grants.firm_roles), dict(grants.companies)))

    def put(self, token: str, principal: Principal, *, read_version: int, now: datetime,
            until: datetime | None) -> None:
        """Keeps what was read at `read_version` (taken before the read began)."""
        if self.seconds <= 0 or read_version != _version:
            return
        grants = principal.grants
        kept = dataclasses.replace(principal, grants=Grants(dict(grants.firm_roles), dict(grants.companies)))
        self._entries[self._key(token)] = _Entry(kept, read_version, self.clock() + self.seconds, now, until)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > MOST_PRINCIPALS:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
