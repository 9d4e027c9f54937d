"""OAuth client registration. Only a hash of a client secret is kept: secrets are 256-bit
random values, so a fast hash is enough (a memory-hard one is for human passwords)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OAuthClient

ALL_SCOPES = (
    "firms:read", "firms:write", "agreements:read", "agreements:write", "companies:read", "companies:write",
    "users:read", "users:write", "subscriptions:read", "subscriptions:write", "billing:read", "billing:write",
    "audit:read", "platform:admin",
)


def hash_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(hash_secret(secret), stored)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None


class UnknownScope(ValueError):
    pass


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scopes: {' '.join(unknown)}")
    return sorted(set(scopes))


async def register_client(
    session: AsyncSession,
    *,
    name: str,
    scopes: list[str],
    firm_id: int | None = None,
    redirect_uris: list[str] | None = None,
    public: bool = False,
) -> RegisteredClient:
    client_id = "bc_" + secrets.token_urlsafe(16)
    secret = None if public else secrets.token_urlsafe(32)
    session.add(OAuthClient(
        client_id=client_id,
        name=name,
        secret_hash=hash_secret(secret) if secret else None,
        is_public=public,
        firm_id=firm_id,
        scopes=" ".join(check_scopes(scopes)),
        redirect_uris="\n".join(redirect_uris or []),
    ))
    await session.flush()
    return RegisteredClient(client_id, secret)


async def find_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    return await session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
