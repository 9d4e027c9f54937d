"""Server secrets generated on first use and kept in the database, like the signing keys."""

import base64
import logging
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.oauth import ServerSecret

PII_DIGEST_KEY = "pii-digest-key"  # noqa: S105 - a name, not a secret
log = logging.getLogger("bureau.secrets")


async def existing_secret(session: AsyncSession, name: str) -> bytes | None:
    """The named secret when it was made already; None when not (then nothing was digested with it)."""
    value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
    return None if value is None else base64.b64decode(value)


async def server_secret(session: AsyncSession, name: str) -> bytes:
    """The named secret; made in a savepoint when missing, so a concurrent maker wins cleanly."""
    value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
    if value is None:
        fresh = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            async with session.begin_nested():
                session.add(ServerSecret(name=name, value=fresh))
        except IntegrityError:  # another transaction made it first: read theirs
            log.info("server secret %s was created concurrently", name)
        value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
        if value is None:
            raise RuntimeError(f"could not create server secret {name}")
    return base64.b64decode(value)
