"""RFC 9068 access tokens: issued and validated with joserfc (the Authlib project's JOSE).

Validation pins the algorithm, the `typ` header (so an ID token never passes as an access
token), the issuer and the audience, and requires exp, iat and the RFC 9068 claims.
"""

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from auth.keys import ALGORITHM, KeyRing
from settings import Settings

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - the RFC 9068 media type, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "client_id", "exp", "iat", "jti")
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat
MOST_VALIDATED = 10_000  # tokens whose validation is kept, the least recently used going first


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


@dataclass(frozen=True)
class _Validated:
    claims: AccessClaims
    key: ECKey  # the key that verified it: a hit needs it still in the key ring


class TokenService:
    def __init__(self, keys: KeyRing, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings
        # R99: verifying an ES256 signature was a tenth of a small read's CPU, repeated on every request
        # with the same bytes. A token's validity depends only on its bytes, our keys and the clock: a
        # token verified once is valid until it expires, while the key that signed it is ours.
        self._validated: OrderedDict[bytes, _Validated] = OrderedDict()

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
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()  # the token itself is not kept
        kept = self._validated.get(digest)
        if kept is not None:
            if time.time() < kept.claims.expires_at + LEEWAY and await self.keys.find(str(kept.key.kid)) is kept.key:
                self._validated.move_to_end(digest)
                return kept.claims
            del self._validated[digest]
        claims, key = await self._verify(token)
        self._validated[digest] = _Validated(claims, key)
        if len(self._validated) > MOST_VALIDATED:
            self._validated.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> tuple[AccessClaims, ECKey]:
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
                leeway=LEEWAY,
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
        ), key
