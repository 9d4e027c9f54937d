"""OAuth client registration. Only a hash of a client secret is kept: secrets are 256-bit
random values, so a fast hash is enough (a memory-hard one is for human passwords)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OAuthClient
from models.oauth_grants import AuthorizationCode, RefreshToken

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


@dataclass(frozen=True)
class ClientInfo:
    """What an operator may see of a client: everything but its secret's hash."""

    client_id: str
    name: str
    public: bool
    firm_id: int | None
    scopes: list[str]
    redirect_uris: list[str]
    created_at: datetime


async def list_clients(session: AsyncSession) -> list[ClientInfo]:
    rows = await session.scalars(select(OAuthClient).order_by(OAuthClient.id))
    return [ClientInfo(row.client_id, row.name, row.is_public, row.firm_id, row.scopes.split(),
                       [uri for uri in row.redirect_uris.split("\n") if uri], row.created_at) for row in rows]


async def revoke_client(session: AsyncSession, client_id: str) -> bool:
    """Removes the client with its codes and refresh tokens. Its access tokens stop working at once:
    every request looks its client up (auth.authenticate), and an unknown client is refused. False
    when there is no such client."""
    client = await find_client(session, client_id)
    if client is None:
        return False
    # Explicitly, not by ON DELETE CASCADE alone: SQLite enforces foreign keys only when told to.
    await session.execute(delete(AuthorizationCode).where(AuthorizationCode.client_pk == client.id))
    await session.execute(delete(RefreshToken).where(RefreshToken.client_pk == client.id))
    await session.delete(client)
    await session.flush()
    return True
