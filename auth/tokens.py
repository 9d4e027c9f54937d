"""RFC 9068 access tokens: issued and validated with joserfc (the Authlib project's JOSE).

Validation pins the algorithm, the `typ` header (so an ID token never passes as an access
token), the issuer and the audience, and requires exp, iat and the RFC 9068 claims.
"""

import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from auth.keys import ALGORITHM, KeyRing
from settings import Settings

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - the RFC 9068 media type, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "client_id", "exp", "iat", "jti")


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or not ours."""


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    client_id: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    raw: dict[str, Any]


class TokenService:
    def __init__(self, keys: KeyRing, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings

    async def issue(
        self,
        *,
        subject: str,
        client_id: str,
        scopes: list[str] | frozenset[str],
        ttl: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        key = await self.keys.signing_key()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": subject,
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + (ttl if ttl is not None else self.settings.access_token_ttl),
            "jti": secrets.token_urlsafe(16),
            **(extra or {}),
        }
        header = {"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYP, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    async def validate(self, token: str) -> AccessClaims:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidToken("malformed token") from exc
        if not header:
            raise InvalidToken("malformed token")
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unexpected algorithm")
        if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
            raise InvalidToken("not an access token")
        kid = header.get("kid")
        key: ECKey | None = await self.keys.find(str(kid)) if kid else None
        if key is None:
            raise InvalidToken("unknown key")
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
            registry = jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
                client_id={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc) or "invalid token") from exc
        claims = decoded.claims
        return AccessClaims(
            subject=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            raw=dict(claims),
        )
