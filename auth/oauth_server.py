"""The OAuth 2.0 authorization server: authlib's framework-neutral AuthorizationServer, grants,
PKCE and revocation, with bureau's storage and a thin request/response adapter for Starlette.

All protocol logic is authlib's (authlib.oauth2.rfc6749, rfc7636, rfc7009, rfc9207); this
module only says where things are stored and tightens the policy:
- authorization code grant with PKCE for every client, S256 only (RFC 9700 section 2.1.1);
- refresh tokens rotate on every use; presenting a used one again revokes its whole family,
  the access tokens issued with it included (RFC 9700 section 4.14.2); so does a second use
  of an authorization code (RFC 6749 section 4.1.2);
- client credentials only for confidential clients; the token's subject is the client, so
  it acts for the client's firm (auth/authenticate.py);
- requested scopes must be registered for the client (unknown or unregistered: invalid_scope);
  without a `scope` parameter the client's registered scopes are granted;
- redirect URIs match exactly, character for character;
- access tokens are RFC 9068 JWTs made by TokenService.issue; client secrets, codes and
  refresh tokens are kept only as hashes.

authlib's server is synchronous and the database is asynchronous: every call into authlib
runs inside `AsyncSession.run_sync` (a greenlet), where the sync Session works as usual and
`await_only` awaits the few coroutines it needs (TokenService). No threads are involved.
"""

import logging
import secrets
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc9207 import IssuerParameter
from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from auth.clients import ALL_SCOPES, verify_secret
from auth.tokens import AccessClaims, InvalidToken, TokenService
from models import OAuthClient, User
from models import ids as global_ids
from models.enums import UserStatus
from models.oauth_grants import AuthorizationCode, RefreshToken, RevokedAccessToken, new_token, token_digest
from settings import Settings

log = logging.getLogger("bureau.oauth")
T = TypeVar("T")

CODE_TTL = timedelta(minutes=2)
# A refresh token lives 30 days from its issue; a family (one sign-in) at most 90 days.
REFRESH_TTL = timedelta(days=30)
REFRESH_MAX_AGE = timedelta(days=90)
# Kept for reuse detection after they expire, then deleted.
GRACE = timedelta(days=1)

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
TOKEN_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]


def _await(coroutine: Coroutine[Any, Any, T]) -> T:
    """Awaits a coroutine from authlib's synchronous code (we run inside run_sync's greenlet)."""
    return await_only(coroutine)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- models


class Client(ClientMixin):  # type: ignore[misc]
    """authlib's view of an OAuthClient row."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id
        self.scopes = frozenset(row.scopes.split())
        self.redirect_uris = [uri for uri in row.redirect_uris.splitlines() if uri.strip()]

    @property
    def is_public(self) -> bool:
        return bool(self.row.is_public)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: a client with several must name one.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes when all are registered for the client (None refuses them);
        the registered ones when none are requested."""
        if not scope:
            return list_to_scope(sorted(self.scopes))  # type: ignore[no-any-return]
        requested = set(scope_to_list(scope))
        if not requested <= self.scopes:
            return None
        return list_to_scope(sorted(requested))  # type: ignore[no-any-return]

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string comparison (RFC 9700 section 4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return not self.is_public and verify_secret(client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in ("authorization_code", "refresh_token"):
            return bool(self.redirect_uris)
        if grant_type == "client_credentials":
            return not self.is_public
        return False


@dataclass
class Code:
    """authlib's view of an AuthorizationCode row (AuthorizationCodeMixin, plus PKCE)."""

    row: AuthorizationCode

    @property
    def user_id(self) -> int:
        return self.row.user_id

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


@dataclass
class Refresh:
    """authlib's view of a RefreshToken row (TokenMixin)."""

    row: RefreshToken

    def check_client(self, client: Client) -> bool:
        return self.row.client_pk == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_user(self) -> int:
        return self.row.user_id


@dataclass
class Access:
    """An access token presented for revocation: one of ours, still valid."""

    claims: AccessClaims

    def check_client(self, client: Client) -> bool:
        return self.claims.client_id == client.client_id


# ---------------------------------------------------------------------------- request, response


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = {}
        for key, value in items:
            self._datalist.setdefault(key, []).append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from already-read HTTP parts: the Starlette side reads the body
    (asynchronously) before authlib's synchronous code sees it."""

    def __init__(self, method: str, uri: str, headers: Any, items: Iterable[tuple[str, str]]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = Payload(items)

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data if self.method == "GET" else {}  # type: ignore[no-any-return]

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data if self.method == "POST" else {}  # type: ignore[no-any-return]


@dataclass
class Response:
    """What authlib answers, before it becomes a Starlette response."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]


# ---------------------------------------------------------------------------- grants


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE is required of every client, and only with S256 (`plain` is refused)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43  # about 256 bits of authlib's alphabet

    def save_authorization_code(self, code: str, request: Request) -> None:
        self.server.store.save_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        return self.server.store.use_code(code, client)  # type: ignore[no-any-return]

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing to do: the code was marked used when it was redeemed, and is kept until it
        expires so that a second use is recognised."""

    def authenticate_user(self, authorization_code: Code) -> User | None:
        return self.server.store.active_user(authorization_code.user_id)  # type: ignore[no-any-return]


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        return self.server.store.use_refresh_token(refresh_token)  # type: ignore[no-any-return]

    def authenticate_user(self, refresh_token: Refresh) -> User | None:
        return self.server.store.active_user(refresh_token.row.user_id)  # type: ignore[no-any-return]

    def revoke_old_credential(self, refresh_token: Refresh) -> None:
        """Nothing to do: the token was marked used (atomically) when it was redeemed."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS  # never a public client


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Refresh | Access | None:
        return self.server.store.find_token(token_string, token_type_hint)  # type: ignore[no-any-return]

    def revoke_token(self, token: Refresh | Access, request: Request) -> None:
        self.server.store.revoke(token)


class Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: authorization responses name the issuer (mix-up defence, RFC 9700 4.4)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


# ---------------------------------------------------------------------------- storage


class GrantStore:
    """Codes, refresh tokens and revocations in the request's (sync) session."""

    def __init__(self, session: Session, tokens: TokenService, now: Callable[[], datetime]) -> None:
        self.session = session
        self.tokens = tokens
        self.now = now
        # Set when a leaked credential was detected: its revocation is committed although the
        # request itself fails. Nothing else has been written by then.
        self.commit_on_error = False
        # Access tokens issued in this request: token -> (jti, expiry), for save_token.
        self.issued: dict[str, tuple[str, datetime]] = {}

    def client(self, client_id: str) -> Client | None:
        row = self.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        return Client(row) if row is not None else None

    def active_user(self, user_id: int) -> User | None:
        user = self.session.get(User, user_id)
        return user if user is not None and user.status is not UserStatus.DEACTIVATED else None

    # -- authorization codes

    def save_code(self, code: str, request: Request) -> None:
        now = self.now()
        self._prune(now)
        data = request.payload.data
        self.session.add(AuthorizationCode(
            code_hash=token_digest(code),
            client_pk=request.client.row.id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "S256"),
            auth_time=now,
            expires_at=now + CODE_TTL,
        ))
        self.session.flush()

    def use_code(self, code: str, client: Client) -> Code | None:
        row = self.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == token_digest(code)))
        if row is None or row.client_pk != client.row.id:
            return None
        now = self.now()
        if row.used_at is not None:
            log.warning("authorization code used twice (client %s): revoking what it gave", client.client_id)
            if row.family_id:
                self.revoke_family(row.family_id)
            return None
        if row.expires_at <= now:
            return None
        family_id = new_token()
        claimed = self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now, family_id=family_id)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None  # redeemed at this very moment by a concurrent request
        row.used_at, row.family_id = now, family_id
        return Code(row)

    # -- refresh tokens

    def use_refresh_token(self, token: str) -> Refresh | None:
        """The refresh token when it may be used now, marked used at once (atomically);
        a used one presented again revokes its family."""
        row = self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_digest(token)))
        if row is None:
            return None
        now = self.now()
        family_revoked = self.session.scalar(select(exists().where(
            RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_not(None))))
        if family_revoked:
            return None
        if row.used_at is not None:
            log.warning("refresh token reused (family %s…): revoking the family", row.family_id[:8])
            self.revoke_family(row.family_id)
            return None
        if row.expires_at <= now:
            return None
        claimed = self.session.execute(
            update(RefreshToken).where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None)).values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            log.warning("refresh token used twice at once (family %s…): revoking the family", row.family_id[:8])
            self.revoke_family(row.family_id)
            return None
        row.used_at = now
        return Refresh(row)

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        if "refresh_token" not in token:
            return  # client credentials: the JWT is all there is
        now = self.now()
        if request.refresh_token is not None:
            previous: RefreshToken = request.refresh_token.row
            family_id, auth_time, scope = previous.family_id, previous.auth_time, previous.scope
        else:
            code: AuthorizationCode = request.authorization_code.row
            assert code.family_id is not None
            family_id, auth_time, scope = code.family_id, code.auth_time, code.scope
        jti, access_expires = self.issued[token["access_token"]]
        self.session.add(RefreshToken(
            token_hash=token_digest(token["refresh_token"]),
            family_id=family_id,
            client_pk=request.client.row.id,
            user_id=request.user.id,
            scope=scope,
            access_jti=jti,
            access_expires_at=access_expires,
            auth_time=auth_time,
            expires_at=min(now + REFRESH_TTL, auth_time + REFRESH_MAX_AGE),
        ))
        self.session.flush()

    # -- revocation

    def find_token(self, token: str, hint: str | None) -> Refresh | Access | None:
        if hint != "access_token":
            row = self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_digest(token)))
            if row is not None:
                return Refresh(row)
        if hint != "refresh_token" or token.count(".") == 2:
            try:
                return Access(_await(self.tokens.validate(token)))
            except InvalidToken:
                return None
        return None

    def revoke(self, token: Refresh | Access) -> None:
        if isinstance(token, Refresh):
            # The whole grant goes: every refresh token of the sign-in and its access tokens.
            self.revoke_family(token.row.family_id)
        else:
            self.revoke_access(token.claims.token_id, datetime.fromtimestamp(token.claims.expires_at, UTC))

    def revoke_family(self, family_id: str) -> None:
        now = self.now()
        self.commit_on_error = True
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        live = self.session.execute(
            select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
                RefreshToken.family_id == family_id, RefreshToken.access_jti.is_not(None),
                RefreshToken.access_expires_at > now,
            )
        ).all()
        for jti, expires_at in live:
            if jti is not None and expires_at is not None:
                self.revoke_access(jti, expires_at)

    def revoke_access(self, jti: str, expires_at: datetime) -> None:
        if self.session.get(RevokedAccessToken, jti) is not None:
            return
        try:
            with self.session.begin_nested():
                self.session.add(RevokedAccessToken(jti=jti, expires_at=expires_at, revoked_at=self.now()))
        except IntegrityError:
            log.info("access token %s… was revoked concurrently", jti[:6])

    def _prune(self, now: datetime) -> None:
        """Drops what can no longer be used nor needs remembering (expired, past a grace period)."""
        cutoff = now - GRACE
        self.session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff))
        self.session.execute(delete(RefreshToken).where(RefreshToken.expires_at < cutoff))
        self.session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < now))


# ---------------------------------------------------------------------------- the server


class BureauAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One per HTTP request, bound to that request's database session."""

    def __init__(self, tokens: TokenService, settings: Settings, session: Session,
                 now: Callable[[], datetime]) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self.settings = settings
        self.tokens = tokens
        self.store = GrantStore(session, tokens, now)
        self.register_token_generator("default", BearerTokenGenerator(
            self._access_token, self._refresh_token, lambda client, grant_type: settings.access_token_ttl))
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_extension(Issuer(settings.issuer))

    def _access_token(self, client: Client, grant_type: str, user: User | None, scope: str) -> str:
        subject = client.client_id if user is None else global_ids.of(user)
        jti = secrets.token_urlsafe(16)
        ttl = self.settings.access_token_ttl
        token = _await(self.tokens.issue(subject=subject, client_id=client.client_id,
                                         scopes=scope_to_list(scope) or [], ttl=ttl, extra={"jti": jti}))
        self.store.issued[token] = (jti, datetime.now(UTC) + timedelta(seconds=ttl))
        return token

    def _refresh_token(self, client: Client, grant_type: str, user: User | None, scope: str) -> str:
        return new_token()

    # authlib's hooks

    def query_client(self, client_id: str) -> Client | None:
        return self.store.client(client_id)

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        self.store.save_token(token, request)

    def create_oauth2_request(self, request: Any) -> Request:
        assert isinstance(request, Request), "build requests with oauth_request()"
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return Response(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_revoke_token":
            client = kwargs.get("client")
            log.info("token revoked by client %s", getattr(client, "client_id", "?"))

    def error_response(self, request: Request, error: OAuth2Error) -> Response:
        """An error found before authlib's own response: with the RFC 9207 issuer when redirected."""
        error.state = request.payload.state
        response: Response = self.handle_error_response(request, error)
        if response.location:
            Issuer(self.settings.issuer).add_issuer_parameter(self, response)
        return response


def origin_of(uri: str) -> str | None:
    """scheme://host[:port] of a URI, for CORS; None for non-web schemes (mobile apps)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"
