"""Signing keys: generated on first use and kept in the database, shared by every process.

Rotation: `rotate()` adds a new active key and marks the old ones retired; retired keys stay
in the JWKS and keep validating until the tokens they signed have expired (`prune()`).
"""

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.oauth import SigningKey

ALGORITHM = "ES256"


def _new_key() -> ECKey:
    kid = secrets.token_urlsafe(12)
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True)


class KeyRing:
    """The process's view of the signing keys; reloaded when a token names an unknown kid."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], key_file: str | None = None) -> None:
        self._sessions = sessions
        self._key_file = key_file
        self._active: ECKey | None = None
        self._keys: dict[str, ECKey] = {}

    async def signing_key(self) -> ECKey:
        if self._active is None:
            await self.reload(create=True)
        assert self._active is not None
        return self._active

    async def key_set(self) -> KeySet:
        if not self._keys:
            await self.reload(create=True)
        return KeySet(list(self._keys.values()))

    async def find(self, kid: str) -> ECKey | None:
        if kid not in self._keys:
            await self.reload(create=False)
        return self._keys.get(kid)

    async def reload(self, *, create: bool) -> None:
        if self._key_file:
            # A small local file read once per process: not worth a thread.
            key = ECKey.import_key(json.loads(Path(self._key_file).read_text()))  # noqa: ASYNC240
            self._active, self._keys = key, {str(key.kid): key}
            return
        async with self._sessions() as session:
            rows = (await session.scalars(select(SigningKey).order_by(SigningKey.id))).all()
            if not rows and create:
                rows = [await self._create(session)]
        keys = {row.kid: ECKey.import_key(json.loads(row.private_jwk)) for row in rows}
        active = [row for row in rows if row.retired_at is None]
        self._keys = keys
        self._active = keys[active[-1].kid] if active else None

    async def _create(self, session: AsyncSession) -> SigningKey:
        key = _new_key()
        row = SigningKey(kid=str(key.kid), private_jwk=json.dumps(key.as_dict(private=True)))
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:  # another process made one at the same moment: use theirs
            await session.rollback()
        return (await session.scalars(select(SigningKey).order_by(SigningKey.id))).first() or row

    async def rotate(self) -> str:
        """Make a new active key; the old ones keep validating."""
        key = _new_key()
        async with self._sessions.begin() as session:
            for row in (await session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))).all():
                row.retired_at = datetime.now(UTC)
            session.add(SigningKey(kid=str(key.kid), private_jwk=json.dumps(key.as_dict(private=True))))
        await self.reload(create=False)
        return str(key.kid)

    async def prune(self, max_token_lifetime: timedelta) -> int:
        """Drop keys retired longer ago than any token they signed can live."""
        cutoff = datetime.now(UTC) - max_token_lifetime
        async with self._sessions.begin() as session:
            result = await session.execute(delete(SigningKey).where(SigningKey.retired_at < cutoff))
        await self.reload(create=False)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
