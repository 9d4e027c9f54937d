"""Trusted external OpenID Connect providers: their access tokens are accepted like ours.

BUREAU_TRUSTED_ISSUERS is a JSON list, one object per provider:

    [{"issuer": "https://login.example.com/", "audience": "bureau",
      "jwks_uri": "https://login.example.com/.well-known/jwks.json"}]

with optional keys
- "algorithms": the signature algorithms accepted (default ["RS256", "ES256"]; asymmetric only);
- "typ": the JWT `typ` header the provider puts on access tokens (default "at+jwt", RFC 9068);
  null for a provider that sets none (then the audience alone keeps its ID tokens out);
- "scopes": the most a token of this provider may carry (default: every scope but
  platform:admin, which only this server's own clients are given);
- "leeway": clock skew allowed, in seconds (default 30);
- "pin_claim": the claim that carries the user's Swedish personal identity number, for a
  provider that vouches for it (a BankID broker, e.g. "ssn"); none by default.

A token is validated as RFC 8725 asks: the algorithm is pinned per provider (never `none`,
never an HMAC one, whose key would be public), the key comes from the provider's JWKS by
`kid`, and iss, aud, exp (and nbf, iat when present) are checked. The JWKS is fetched with
httpx and cached; a token naming an unknown `kid` makes one refetch (the provider rotated
its keys), at most once every `refetch_interval` seconds so that made-up kids cannot make us
hammer the provider.

The token's subject is mapped to a User through a stored link (issuer, sub) first, else by
its personal identity number (the `pin_claim`, when the provider has one and the token
carries it), else by its `email` when the provider says `email_verified` is true. A user
linked to another subject of the same provider is not taken over, by number or by email.
Deactivated users are refused.

The number is checked as R19 checks it (date and check digit; an invalid one makes the
token invalid, never an error of ours) and compared by its keyed digest, as stored
(`licensing.identity.personnummer_digest` with the server secret `PII_DIGEST_KEY`); it is
never logged, and never named in the reason a token is refused. The number decides: a token
whose number is not the one on file for the user it would map to (linked, or matched by
email), or whose number and email are two users', is refused. A token that maps by its
number is a BankID sign-in (`Principal.pin_sign_in`): the HTTP layer then stores the link
(issuer, sub), so that later tokens map by it, and accepts the user's pending invitations
(resolvers/accounts.py), since a user without an email has no invitation link to open.
"""

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.authenticate import load_grants
from auth.clients import ALL_SCOPES
from auth.principal import PLATFORM_ADMIN, PinSignIn, Principal
from auth.secrets import PII_DIGEST_KEY, existing_secret
from auth.tls import client_context
from auth.tokens import InvalidToken
from models import User
from models.enums import MembershipStatus, UserStatus
from models.oauth_grants import ExternalSubjectLink

log = logging.getLogger("bureau.external")

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
DEFAULT_SCOPES = frozenset(ALL_SCOPES) - {PLATFORM_ADMIN}
ACCESS_TOKEN_TYPES = {"at+jwt": ("at+jwt", "application/at+jwt")}


class ConfigError(ValueError):
    """BUREAU_TRUSTED_ISSUERS is not what it should be."""


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str
    audience: str
    jwks_uri: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    typ: str | None = "at+jwt"
    scopes: frozenset[str] = DEFAULT_SCOPES
    leeway: int = 30
    pin_claim: str | None = None

    def accepts_typ(self, typ: object) -> bool:
        if self.typ is None:
            return True
        accepted = ACCESS_TOKEN_TYPES.get(self.typ.lower(), (self.typ.lower(),))
        return isinstance(typ, str) and typ.lower() in accepted


def _secure_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def parse_trusted_issuers(raw: str | None) -> list[TrustedIssuer]:
    """The providers of BUREAU_TRUSTED_ISSUERS; ConfigError tells what is wrong."""
    if raw is None or not raw.strip():
        return []
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"BUREAU_TRUSTED_ISSUERS is not JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError("BUREAU_TRUSTED_ISSUERS must be a JSON list of objects")
    issuers = []
    for n, entry in enumerate(entries):
        where = f"BUREAU_TRUSTED_ISSUERS[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        for key in ("issuer", "audience", "jwks_uri"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigError(f"{where} needs a non-empty string {key!r}")
        unknown = set(entry) - {"issuer", "audience", "jwks_uri", "algorithms", "typ", "scopes", "leeway",
                                "pin_claim"}
        if unknown:
            raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        if not _secure_url(entry["jwks_uri"]):
            raise ConfigError(f"{where}: jwks_uri must be https (http only on loopback)")
        algorithms = tuple(entry.get("algorithms") or ("RS256", "ES256"))
        if not set(algorithms) <= ASYMMETRIC:
            raise ConfigError(f"{where}: algorithms must be asymmetric ones of {', '.join(sorted(ASYMMETRIC))}")
        scopes = frozenset(entry.get("scopes") or DEFAULT_SCOPES)
        if not scopes <= set(ALL_SCOPES):
            raise ConfigError(f"{where}: unknown scopes {', '.join(sorted(scopes - set(ALL_SCOPES)))}")
        typ = entry.get("typ", "at+jwt")
        if typ is not None and not isinstance(typ, str):
            raise ConfigError(f"{where}: typ must be a string or null")
        leeway = entry.get("leeway", 30)
        if not isinstance(leeway, int) or not 0 <= leeway <= 300:
            raise ConfigError(f"{where}: leeway must be 0..300 seconds")
        pin_claim = entry.get("pin_claim")
        if pin_claim is not None and (not isinstance(pin_claim, str) or not pin_claim.strip()):
            raise ConfigError(f"{where}: pin_claim must be a claim name or null")
        issuers.append(TrustedIssuer(entry["issuer"], entry["audience"], entry["jwks_uri"], algorithms, typ,
                                     scopes, leeway, pin_claim))
    if len({i.issuer for i in issuers}) != len(issuers):
        raise ConfigError("BUREAU_TRUSTED_ISSUERS names an issuer twice")
    return issuers


@dataclass
class _Jwks:
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> joserfc key
    fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class ExternalClaims:
    issuer: TrustedIssuer
    subject: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class MappedUser:
    user: User
    linked: bool  # through a stored (issuer, sub) link


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NumberRules:
    """R19's rules for personal identity numbers. They are licensing's (`licensing.identity`),
    and auth imports models only (DESIGN.md section 5), so the app hands them in."""

    canonical: Callable[[str, date], str | None]  # the stored form, or None: not a valid number
    digest: Callable[[str, bytes], str]  # the keyed digest that is stored and matched


class TrustedIssuers:
    """The configured providers, their cached keys, and the token -> Principal mapping."""

    def __init__(self, issuers: Iterable[TrustedIssuer], *, own_issuer: str | None = None,
                 cache_ttl: float = 3600.0, refetch_interval: float = 10.0, http_timeout: float = 5.0,
                 clock: Callable[[], datetime] = _now, numbers: NumberRules | None = None) -> None:
        self.issuers = {i.issuer: i for i in issuers}
        if own_issuer is not None and own_issuer in self.issuers:
            raise ConfigError("BUREAU_TRUSTED_ISSUERS must not name this server's own issuer")
        if numbers is None and any(i.pin_claim for i in self.issuers.values()):
            raise ConfigError("a pin_claim needs the personal identity number rules (numbers)")
        self.numbers = numbers
        self.cache_ttl = cache_ttl
        self.refetch_interval = refetch_interval
        self.http_timeout = http_timeout
        self.clock = clock  # "today" for the numbers' dates, the server's own clock (tests set it)
        self._jwks: dict[str, _Jwks] = {}

    @classmethod
    def from_env(cls, own_issuer: str | None = None, clock: Callable[[], datetime] = _now,
                 numbers: NumberRules | None = None) -> "TrustedIssuers":
        return cls(parse_trusted_issuers(os.environ.get("BUREAU_TRUSTED_ISSUERS")), own_issuer=own_issuer,
                   clock=clock, numbers=numbers)

    # -- which tokens are ours to check

    @staticmethod
    def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Header and claims as sent, only to choose the provider and key; nothing is trusted
        before the signature and the claims have been checked."""
        try:
            obj = jws.extract_compact(token.encode())
            claims = json.loads(obj.payload)
        except (JoseError, ValueError, UnicodeError):
            return None
        if not isinstance(claims, dict):
            return None
        return dict(obj.protected), claims

    def claims(self, token: str) -> bool:
        if not self.issuers:
            return False
        parts = self._unverified(token)
        return parts is not None and parts[1].get("iss") in self.issuers

    # -- keys

    async def _fetch(self, issuer: TrustedIssuer) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self.http_timeout, follow_redirects=False,
                                     verify=client_context(trust_env=True)) as client:
            response = await client.get(issuer.jwks_uri, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        keys: dict[str, Any] = {}
        for data in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            if data.get("alg") is not None and data["alg"] not in issuer.algorithms:
                continue
            try:
                key_set = KeySet.import_key_set({"keys": [data]})
            except (JoseError, ValueError, TypeError) as exc:
                log.info("ignoring a key of %s: %s", issuer.issuer, exc)
                continue
            key = key_set.keys[0]
            if key.is_private:
                continue  # a provider publishing private keys is misconfigured; never use them
            keys[str(data.get("kid", ""))] = key
        return keys

    async def _key(self, issuer: TrustedIssuer, kid: str) -> Any | None:
        cache = self._jwks.setdefault(issuer.issuer, _Jwks())
        async with cache.lock:
            age = time.monotonic() - cache.fetched_at
            stale = not cache.fetched_at or age > self.cache_ttl
            unknown = kid not in cache.keys
            if stale or (unknown and age >= self.refetch_interval):
                try:
                    cache.keys = await self._fetch(issuer)
                    cache.fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("could not fetch the keys of %s: %s", issuer.issuer, type(exc).__name__)
                    if stale and not cache.keys:
                        raise InvalidToken("the issuer's keys are unavailable") from exc
            if kid in cache.keys:
                return cache.keys[kid]
            if not kid and len(cache.keys) == 1:
                return next(iter(cache.keys.values()))
            return None

    # -- validation

    async def validate(self, token: str) -> ExternalClaims:
        parts = self._unverified(token)
        if parts is None:
            raise InvalidToken("malformed token")
        header, unverified = parts
        issuer = self.issuers.get(unverified.get("iss"))  # type: ignore[arg-type]
        if issuer is None:
            raise InvalidToken("untrusted issuer")
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise InvalidToken("unexpected algorithm")
        if not issuer.accepts_typ(header.get("typ")):
            raise InvalidToken("not an access token")
        kid = header.get("kid")
        key = await self._key(issuer, str(kid) if kid is not None else "")
        if key is None:
            raise InvalidToken("unknown key")
        try:
            decoded = jwt.decode(token, key, algorithms=[str(alg)])
            jwt.JWTClaimsRegistry(
                leeway=issuer.leeway,
                iss={"essential": True, "value": issuer.issuer},
                aud={"essential": True, "value": issuer.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc) or "invalid token") from exc
        return ExternalClaims(issuer, str(decoded.claims["sub"]), dict(decoded.claims))

    async def pin_digest(self, session: AsyncSession, found: ExternalClaims) -> str | None:
        """The keyed digest of the number in the provider's pin claim; None when the provider
        names no such claim, the token carries none, or no number was ever stored (no key yet).
        A number that is not valid makes the token invalid; the reason never quotes it."""
        name = found.issuer.pin_claim
        if name is None or name not in found.claims:
            return None
        raw = found.claims[name]
        assert self.numbers is not None  # __init__ refuses a pin_claim without them
        canonical = self.numbers.canonical(raw, self.clock().astimezone(UTC).date()) if isinstance(raw, str) else None
        if canonical is None:
            raise InvalidToken("the token's personal identity number is not valid")
        key = await existing_secret(session, PII_DIGEST_KEY)
        return None if key is None else self.numbers.digest(canonical, key)

    async def authenticate(self, session: AsyncSession, token: str, *, now: datetime) -> Principal:
        found = await self.validate(token)
        digest = await self.pin_digest(session, found)
        mapped = await find_user(session, found, digest)
        if mapped is None:
            raise InvalidToken("no user for this subject")
        user = mapped.user
        if user.status is UserStatus.DEACTIVATED:
            raise InvalidToken("unknown or deactivated user")
        claims = found.claims
        client = claims.get("client_id") or claims.get("azp") or found.issuer.audience
        principal = Principal(
            client_id=f"ext:{client}"[:100],
            scopes=frozenset(_scopes(claims)) & found.issuer.scopes,
            token_id=str(claims["jti"]) if isinstance(claims.get("jti"), str) else None,
        )
        principal.user_id = user.id
        principal.email_required = user.email is None
        principal.grants = await load_grants(session, user.id, now)
        if digest is not None and user.personal_identity_digest == digest:
            invited = any(g.status is MembershipStatus.INVITED for g in principal.grants.companies.values())
            principal.pin_sign_in = PinSignIn(found.issuer.issuer, found.subject, linked=mapped.linked,
                                              pending=user.status is UserStatus.INVITED or invited)
        return principal


def _scopes(claims: dict[str, Any]) -> list[str]:
    """`scope` (RFC 9068, space separated) or `scp` (a list, as some providers send)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")
    if isinstance(scp, str):
        return scp.split()
    if isinstance(scp, list):
        return [s for s in scp if isinstance(s, str)]
    return []


def _email_verified(claims: dict[str, Any]) -> bool:
    verified = claims.get("email_verified")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


async def find_user(session: AsyncSession, found: ExternalClaims, pin_digest: str | None = None) -> MappedUser | None:
    """The user a validated token stands for: by its stored link, else by its number (the
    digest of the pin claim), else by its verified email; None for nobody, or when the
    token's identifiers disagree with each other or with what is on file."""
    issuer = found.issuer.issuer
    linked = await session.scalar(
        select(User).join(ExternalSubjectLink, ExternalSubjectLink.user_id == User.id)
        .where(ExternalSubjectLink.issuer == issuer, ExternalSubjectLink.subject == found.subject)
    )
    if linked is not None:
        if not _same_number(linked, pin_digest):
            return None  # the token vouches for another person than the one on file
        return MappedUser(linked, linked=True)
    by_number = None
    if pin_digest is not None:
        by_number = await session.scalar(select(User).where(User.personal_identity_digest == pin_digest))
    by_email = await _by_verified_email(session, found.claims)
    if by_number is not None and by_email is not None and by_number.id != by_email.id:
        return None  # the number is one user's, the email another's: neither is taken
    user = by_number or by_email
    if user is None or not _same_number(user, pin_digest):
        return None
    other = await session.scalar(
        select(ExternalSubjectLink.subject).where(ExternalSubjectLink.issuer == issuer,
                                                  ExternalSubjectLink.user_id == user.id)
    )
    if other is not None:
        return None  # the user is someone else at this provider: a number or an email does not override that
    return MappedUser(user, linked=False)


def _same_number(user: User, pin_digest: str | None) -> bool:
    """No number in the token, or none on file, or the same one."""
    return pin_digest is None or user.personal_identity_digest in (None, pin_digest)


async def _by_verified_email(session: AsyncSession, claims: dict[str, Any]) -> User | None:
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip() or not _email_verified(claims):
        return None
    return await session.scalar(select(User).where(User.email_normalized == email.strip().lower()))


async def link_subject(session: AsyncSession, issuer: str, subject: str, user_id: int) -> None:
    """Links a provider's subject to a user (the caller commits)."""
    session.add(ExternalSubjectLink(issuer=issuer, subject=subject, user_id=user_id))
    await session.flush()
