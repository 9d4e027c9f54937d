"""HTTP routes of the authorization server (DESIGN.md section 6):

- GET/POST /oauth/authorize: the authorization endpoint with a plain HTML sign-in page
  (email and password; no JavaScript; CSRF-protected; attempts limited);
- POST /oauth/token: authorization code (PKCE S256), refresh token (rotating) and client
  credentials grants;
- POST /oauth/revoke: RFC 7009 revocation;
- GET /.well-known/oauth-authorization-server: RFC 8414 metadata;
- GET/POST /invitations/{token}: accepting an invitation (the link in the welcome email).

The protocol work is authlib's (auth/oauth_server.py); here are only pages and plumbing.
Every URL this server announces is made from BUREAU_ISSUER, never from the request's host.
"""

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from authlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, JSONResponse
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from auth.clients import ALL_SCOPES, find_client
from auth.oauth_server import (
    GRANT_TYPES,
    TOKEN_AUTH_METHODS,
    BureauAuthorizationServer,
    Client,
    Request,
    Response,
    origin_of,
)
from auth.passwords import (
    MIN_PASSWORD_LENGTH,
    AttemptLimiter,
    AttemptLimits,
    Limited,
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from auth.secrets import server_secret
from auth.tokens import TokenService
from licensing.errors import RuleViolation

# The one rule of section 2 needed here (users are matched by email, case-insensitively).
from licensing.identity import normalize_email
from models import AuditEvent, Company, Membership, OutboxEmail, User
from models import ids as global_ids
from models.db import Database
from models.enums import MembershipStatus, UserStatus
from models.oauth_grants import InvitationToken, token_digest
from settings import Settings

log = logging.getLogger("bureau.oauth")

CSRF_KEY = "csrf-key"  # noqa: S105 - the name of a server secret, not a secret
CSRF_MAX_AGE = 3600
SIGN_IN_FIELDS = frozenset({"email", "password", "csrf_token", "cancel"})
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method")


class Runtime(Protocol):
    """What the routes need of resolvers.runtime.Runtime."""

    database: Database
    settings: Settings
    tokens: TokenService

    def now(self) -> datetime: ...


# ----------------------------------------------------------------------------- pages

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f5f5;color:#1a1a1a}"
    "main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #ccc;border-radius:6px}"
    "h1{font-size:1.5rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}"
    "input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #666;border-radius:4px}"
    "input:focus,button:focus{outline:3px solid #0b57d0;outline-offset:2px}"
    "button{margin-top:1.5rem;margin-right:.5rem;padding:.6rem 1.2rem;font:inherit;border-radius:4px;"
    "border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#0b57d0}"
    ".error{color:#a50e0e;background:#fce8e6;padding:.75rem;border-radius:4px}"
    ".hint{color:#444;font-size:.9rem;margin:.25rem 0 0}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # No scripts at all; the only style is ours; never framed (clickjacking).
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The addresses of these pages carry secrets (invitation tokens, PKCE challenges).
    "Referrer-Policy": "no-referrer",
}

e = html.escape


def page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    document = (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{e(title)} - bureau</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{e(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(document, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def error_block(message: str | None) -> str:
    return f'<p class="error" role="alert" id="form-error">{e(message)}</p>\n' if message else ""


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">\n'


def field(name: str, label: str, kind: str, *, autocomplete: str, value: str = "", error: bool = False,
          hint: str | None = None) -> str:
    described = " ".join(x for x in (f"{name}-hint" if hint else "", "form-error" if error else "") if x)
    attributes = f' aria-describedby="{described}"' if described else ""
    if error:
        attributes += ' aria-invalid="true"'
    value_attr = f' value="{e(value)}"' if value else ""
    hint_html = f'<p class="hint" id="{name}-hint">{e(hint)}</p>\n' if hint else ""
    return (f'<label for="{name}">{e(label)}</label>\n'
            f'<input id="{name}" name="{name}" type="{kind}" autocomplete="{autocomplete}" required'
            f'{value_attr}{attributes}>\n{hint_html}')


# ----------------------------------------------------------------------------- CSRF


class Csrf:
    """Double-submit CSRF protection without server-side sessions: a random value in a
    SameSite=Lax, HttpOnly cookie, and in the form an HMAC of it (keyed with a server
    secret, bound to the form's purpose, time-limited). A cross-site page can neither read
    the cookie nor make the HMAC."""

    def __init__(self, database: Database, secure: bool) -> None:
        self._database = database
        self._key: bytes | None = None
        self.secure = secure
        # The __Host- prefix pins the cookie to this host and path /, but needs https.
        self.cookie = "__Host-bureau-csrf" if secure else "bureau-csrf"

    async def key(self) -> bytes:
        if self._key is None:
            async with self._database.sessions.begin() as session:
                self._key = await server_secret(session, CSRF_KEY)
        return self._key

    def _mac(self, key: bytes, cookie: str, purpose: str, issued: int) -> str:
        digest = hmac.new(key, f"{cookie}|{purpose}|{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def issue(self, request: HttpRequest, purpose: str) -> tuple[str, str | None]:
        """(the form's token, a new cookie value to set or None)."""
        cookie = request.cookies.get(self.cookie)
        fresh = None
        if not cookie or len(cookie) < 32:
            cookie = fresh = secrets.token_urlsafe(32)
        issued = int(time.time())
        return f"{issued}.{self._mac(await self.key(), cookie, purpose, issued)}", fresh

    async def check(self, request: HttpRequest, token: str | None, purpose: str) -> bool:
        cookie = request.cookies.get(self.cookie)
        if not cookie or not token or "." not in token:
            return False
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit() or not 0 <= time.time() - int(issued_text) <= CSRF_MAX_AGE:
            return False
        return hmac.compare_digest(mac, self._mac(await self.key(), cookie, purpose, int(issued_text)))

    def set_cookie(self, response: HttpResponse, value: str | None) -> HttpResponse:
        if value is not None:
            response.set_cookie(self.cookie, value, httponly=True, secure=self.secure, samesite="lax", path="/")
        return response


# ----------------------------------------------------------------------------- helpers


def _strings(items: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if isinstance(v, str)]


def _address(request: HttpRequest) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips so that this
    # is the real client's address.
    return request.client.host if request.client else "unknown"


def _wait(seconds: int) -> str:
    # The first waits last seconds, so "1 minute" would be wrong by a lot.
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def to_http(response: Response, *, status: int | None = None) -> HttpResponse:
    headers = dict(response.headers)
    if isinstance(response.body, dict | list):
        headers.pop("Content-Type", None)
        return JSONResponse(response.body, status_code=status or response.status, headers=headers)
    return HttpResponse(response.body or b"", status_code=status or response.status, headers=headers)


# ----------------------------------------------------------------------------- the routes


@dataclass
class OAuthRoutes:
    runtime: Runtime
    limiter: AttemptLimiter
    csrf: Csrf

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def issuer(self) -> str:
        return self.settings.issuer.rstrip("/")

    def server(self, session: AsyncSession) -> BureauAuthorizationServer:
        return BureauAuthorizationServer(self.runtime.tokens, self.settings, session.sync_session, self.runtime.now)

    def oauth_request(self, request: HttpRequest, items: Iterable[tuple[str, str]]) -> Request:
        uri = self.issuer + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Request(request.method, uri, request.headers, items)

    async def _finish(self, session: AsyncSession, server: BureauAuthorizationServer, response: Response) -> None:
        if response.status < 400 or server.store.commit_on_error:
            await session.commit()
        else:
            await session.rollback()

    # -- /oauth/authorize

    async def authorize(self, request: HttpRequest) -> HttpResponse:
        form: FormData | None = None
        if request.method == "POST":
            form = await request.form()
            items = _strings(form.multi_items())
        else:
            items = _strings(request.query_params.multi_items())
        oauth_items = [(k, v) for k, v in items if k not in SIGN_IN_FIELDS]
        try:
            oauth_request = self.oauth_request(request, oauth_items)
        except OAuth2Error as error:
            return self._error_page(error)
        async with self.runtime.database.sessions() as session:
            server = self.server(session)
            try:
                grant = await session.run_sync(lambda _: server.get_consent_grant(oauth_request))
            except OAuth2Error as error:
                if error.redirect_uri:
                    return to_http(server.error_response(oauth_request, error))
                return self._error_page(error)
            client: Client = grant.request.client
            if form is None:
                return await self._sign_in_page(request, client, oauth_items)
            if not await self.csrf.check(request, _text(form, "csrf_token"), "authorize"):
                return await self._sign_in_page(request, client, oauth_items, email=_text(form, "email"),
                                                error="The form had expired. Please sign in again.", status=400)
            if _text(form, "cancel"):
                response = await session.run_sync(
                    lambda _: server.create_authorization_response(oauth_request, grant_user=None, grant=grant))
                return to_http(response, status=303 if response.status == 302 else None)
            email, password = _text(form, "email").strip(), _text(form, "password")
            if not email or not password:
                return await self._sign_in_page(request, client, oauth_items, email=email, status=400,
                                                error="Enter your email and your password.")
            attempt = await self.limiter.begin(email, _address(request))
            if isinstance(attempt, Limited):
                return await self._sign_in_page(
                    request, client, oauth_items, email=email, status=429,
                    error=f"Too many sign-in attempts. Try again in {_wait(attempt.retry_after)}.",
                    headers={"Retry-After": str(attempt.retry_after)})
            user = await session.scalar(select(User).where(User.email_normalized == email.lower()))
            usable = user is not None and user.status is UserStatus.ACTIVE
            if not await verify_password(user.password_hash if usable and user else None, password):
                return await self._sign_in_page(request, client, oauth_items, email=email, status=401,
                                                error="The email or the password is not right.")
            assert user is not None and user.password_hash is not None
            await self.limiter.succeeded(attempt)
            if needs_rehash(user.password_hash):
                user.password_hash = await hash_password(password)
            response = await session.run_sync(
                lambda _: server.create_authorization_response(oauth_request, grant_user=user, grant=grant))
            await self._finish(session, server, response)
            # RFC 9700 section 4.12: never 307 after a form with credentials; 303 makes it a GET.
            return to_http(response, status=303 if response.status == 302 else None)

    async def _sign_in_page(self, request: HttpRequest, client: Client, items: list[tuple[str, str]], *,
                            email: str = "", error: str | None = None, status: int = 200,
                            headers: dict[str, str] | None = None) -> HttpResponse:
        token, cookie = await self.csrf.issue(request, "authorize")
        fields = "".join(hidden(k, v) for k, v in items if k in AUTHORIZE_PARAMS)
        body = (
            f"<p>Sign in to continue to <strong>{e(client.row.name)}</strong>.</p>\n"
            f"{error_block(error)}"
            '<form method="post" action="authorize">\n'
            f"{fields}{hidden('csrf_token', token)}"
            + field("email", "Email", "email", autocomplete="username", value=email, error=bool(error))
            + field("password", "Password", "password", autocomplete="current-password", error=bool(error))
            + '<button type="submit">Sign in</button>\n'
            '<button type="submit" name="cancel" value="1" class="secondary" formnovalidate>Cancel</button>\n'
            "</form>"
        )
        return self.csrf.set_cookie(page("Sign in", body, status, headers), cookie)

    def _error_page(self, error: OAuth2Error) -> HttpResponse:
        # The client or its redirect URI is not right: never redirect there (RFC 6749 4.1.2.1).
        message = error.description or error.error
        body = (f'<p class="error" role="alert">This sign-in link is not valid: {e(str(message))}</p>\n'
                "<p>Go back to the app you came from and try again, or tell its makers.</p>")
        return page("Sign-in link not valid", body, 400)

    # -- /oauth/token and /oauth/revoke

    async def token(self, request: HttpRequest) -> HttpResponse:
        return await self._endpoint(request, lambda server, req: server.create_token_response(req))

    async def revoke(self, request: HttpRequest) -> HttpResponse:
        return await self._endpoint(request, lambda server, req: server.create_endpoint_response("revocation", req))

    async def _endpoint(self, request: HttpRequest,
                        call: Callable[[BureauAuthorizationServer, Request], Response]) -> HttpResponse:
        form = await request.form()
        items = _strings(form.multi_items())
        try:
            oauth_request = self.oauth_request(request, items)
        except OAuth2Error as error:
            status, body, headers = error()
            return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
        # The signing key is loaded (made, on a new database) before the request's transaction
        # begins: making it takes a write of its own, which SQLite would not allow meanwhile.
        await self.runtime.tokens.keys.signing_key()
        async with self.runtime.database.sessions() as session:
            server = self.server(session)
            response = await session.run_sync(lambda _: call(server, oauth_request))
            await self._finish(session, server, response)
            http = to_http(response)
            await self._cors(session, request, dict(items).get("client_id"), http)
        return http

    async def _cors(self, session: AsyncSession, request: HttpRequest, client_id: str | None,
                    response: HttpResponse) -> None:
        """A browser app (SPA) may call the token and revocation endpoints from the origins of
        its own registered redirect URIs, and from no others."""
        origin = request.headers.get("origin")
        if not origin or not client_id:
            return
        row = await find_client(session, client_id)
        if row is None:
            return
        if origin in {origin_of(uri) for uri in row.redirect_uris.splitlines()}:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    # -- /.well-known/oauth-authorization-server

    async def metadata(self, request: HttpRequest) -> HttpResponse:
        issuer = self.issuer
        document = {
            "issuer": self.settings.issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "scopes_supported": list(ALL_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GRANT_TYPES,
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600",
                                               "Access-Control-Allow-Origin": "*"})

    # -- /invitations/{token}

    async def invitation(self, request: HttpRequest) -> HttpResponse:
        token = request.path_params["token"]
        purpose = "invitation:" + token_digest(token)
        async with self.runtime.database.sessions() as session:
            found = await self._invitation(session, token, lock=request.method == "POST")
            if found is None:
                return page("Invitation not valid", (
                    '<p class="error" role="alert">This invitation link is not valid any more: it was used '
                    "already, or it has expired.</p>\n<p>Ask the person who invited you to send a new one.</p>"
                ), 404)
            if request.method == "GET":
                return await self._invitation_page(request, found, purpose)
            form = await request.form()
            if not await self.csrf.check(request, _text(form, "csrf_token"), purpose):
                return await self._invitation_page(request, found, purpose, status=400,
                                                   error="The form had expired. Please try again.")
            if found.row.pending_email is not None:
                return await self._confirm_email(session, found)
            return await self._accept(request, session, found, form, purpose)

    async def _invitation(self, session: AsyncSession, token: str, *, lock: bool) -> "Invitation | None":
        now = self.runtime.now()
        row = await session.scalar(select(InvitationToken).where(InvitationToken.token_hash == token_digest(token)))
        if row is None or row.used_at is not None or row.expires_at <= now:
            return None
        membership = company = None
        if row.membership_id is not None:
            stmt = select(Membership).where(Membership.id == row.membership_id)
            membership = await session.scalar(stmt.with_for_update() if lock else stmt)
            if membership is None or membership.status is not MembershipStatus.INVITED:
                return None
            if membership.invitation_expires_at is not None and membership.invitation_expires_at <= now:
                return None  # lapsed: its seat was freed (R13); a new invitation is needed
            company = await session.get(Company, membership.company_id)
            if company is None or membership.user_id != row.user_id:
                return None
        stmt_user = select(User).where(User.id == row.user_id)
        user = await session.scalar(stmt_user.with_for_update() if lock else stmt_user)
        if user is None or user.status is UserStatus.DEACTIVATED:
            return None
        return Invitation(row, user, membership, company)

    async def _invitation_page(self, request: HttpRequest, found: "Invitation", purpose: str, *,
                               error: str | None = None, status: int = 200, email: str = "") -> HttpResponse:
        token, cookie = await self.csrf.issue(request, purpose)
        user = found.user
        action = e(request.path_params["token"])
        if found.row.pending_email is not None:
            body = (f"<p>Confirm that <strong>{e(found.row.pending_email)}</strong> is your email address "
                    f"to finish {e(found.what)}.</p>\n"
                    f'{error_block(error)}<form method="post" action="{action}">\n{hidden("csrf_token", token)}'
                    '<button type="submit">Confirm my email</button>\n</form>')
            return self.csrf.set_cookie(page("Confirm your email", body, status), cookie)
        if found.company is not None:
            title, button = "Accept your invitation", "Accept the invitation"
            intro = f"<p>Hello {e(user.name)}, you are invited to <strong>{e(found.company.name)}</strong>.</p>\n"
        else:
            title, button = "Set up your account", "Set up my account"
            intro = f"<p>Hello {e(user.name)}, choose how you will sign in to bureau.</p>\n"
        fields = ""
        if user.email is None:
            fields += field("email", "Email", "email", autocomplete="email", value=email, error=bool(error),
                            hint="We will send a link to this address to confirm it.")
        if user.password_hash is None:
            fields += field("password", "Choose a password", "password", autocomplete="new-password",
                            error=bool(error), hint=f"At least {MIN_PASSWORD_LENGTH} characters.")
            fields += field("password_again", "Repeat the password", "password", autocomplete="new-password",
                            error=bool(error))
        body = (f"{intro}{error_block(error)}"
                f'<form method="post" action="{action}">\n{hidden("csrf_token", token)}{fields}'
                f'<button type="submit">{button}</button>\n</form>')
        return self.csrf.set_cookie(page(title, body, status), cookie)

    async def _accept(self, request: HttpRequest, session: AsyncSession, found: "Invitation", form: FormData,
                      purpose: str) -> HttpResponse:
        user = found.user
        email = None
        if user.email is None:
            typed = _text(form, "email")
            try:
                email = normalize_email(typed, ["email"])
            except RuleViolation:
                return await self._invitation_page(request, found, purpose, status=400, email=typed,
                                                   error="Enter a valid email address.")
            taken = await session.scalar(select(User.id).where(User.email_normalized == email, User.id != user.id))
            if taken is not None:
                return await self._invitation_page(request, found, purpose, status=400, email=typed,
                                                   error="That email address belongs to another account. "
                                                         "Sign in with it, or give another one.")
        if user.password_hash is None:
            password = _text(form, "password")
            problem = password_problem(password)
            if problem is None and password != _text(form, "password_again"):
                problem = "The two passwords are not the same."
            if problem:
                return await self._invitation_page(request, found, purpose, status=400, email=email or "",
                                                   error=problem)
            user.password_hash = await hash_password(password)
        if email is not None:
            # R18: an invitation without an email. The address is confirmed before it is stored:
            # otherwise anyone could claim someone else's address (and so their future invitations).
            await self._send_confirmation(session, found, email)
            await session.commit()
            return page("Check your email", (
                f"<p>We sent a link to <strong>{e(email)}</strong>. Open it to confirm the address and "
                f"finish {e(found.what)}.</p>\n<p>Wrong address? Open the first link again "
                "and give another one.</p>"))
        self._activate(session, found, {})
        await session.commit()
        return self._accepted_page(found)

    async def _send_confirmation(self, session: AsyncSession, found: "Invitation", email: str) -> None:
        now = self.runtime.now()
        membership = found.membership
        expires = membership.invitation_expires_at if membership and membership.invitation_expires_at else None
        token, row = InvitationToken.issue(user_id=found.user.id, firm_id=found.row.firm_id,
                                           membership_id=found.row.membership_id,
                                           expires_at=expires or found.row.expires_at, pending_email=email)
        session.add(row)
        link = f"{self.issuer}/invitations/{token}"
        session.add(OutboxEmail(
            firm_id=found.row.firm_id,
            to_address=email,
            subject="Confirm your email for bureau",
            body=f"Hello {found.user.name},\n\nConfirm that this is your email address, and finish "
                 f"{found.what}, here:\n{link}\n\nIf you did not ask for this, ignore this message.\n",
            next_attempt_at=now,
        ))

    async def _confirm_email(self, session: AsyncSession, found: "Invitation") -> HttpResponse:
        email = found.row.pending_email
        assert email is not None
        user = found.user
        changed: dict[str, Any] = {}
        in_use = page("Email already in use", (
            f'<p class="error" role="alert">{e(email)} now belongs to another account. Open the first link '
            "again and give another address.</p>"), 409)
        if user.email is None:
            taken = await session.scalar(select(User.id).where(User.email_normalized == email, User.id != user.id))
            if taken is not None:
                return in_use
            user.email, user.email_normalized = email, email
            changed["email"] = email
        self._activate(session, found, changed)
        try:
            await session.commit()
        except IntegrityError:  # the address was taken at this very moment
            await session.rollback()
            return in_use
        return self._accepted_page(found)

    def _activate(self, session: AsyncSession, found: "Invitation", changed: dict[str, Any]) -> None:
        """The membership (if any) and the user become ACTIVE; the link is used up (R29: audited)."""
        now = self.runtime.now()
        user, membership = found.user, found.membership
        found.row.used_at = now
        before: dict[str, Any] = {"email": None} if "email" in changed else {}
        after: dict[str, Any] = dict(changed)
        if user.status is UserStatus.INVITED:
            before["userStatus"], after["userStatus"] = user.status.value, UserStatus.ACTIVE.value
            user.status = UserStatus.ACTIVE
        if membership is not None:
            before["status"], after["status"] = membership.status.value, MembershipStatus.ACTIVE.value
            membership.status, membership.activated_at = MembershipStatus.ACTIVE, now
        session.add(AuditEvent(
            firm_id=found.row.firm_id,
            company_id=membership.company_id if membership else None,
            occurred_at=now,
            action="membership.invitation_accepted" if membership else "user.account_set_up",
            actor_user_id=user.id,
            client_id=None,
            summary=f"{user.name} finished {found.what}"[:500],
            subject_id=global_ids.of(membership if membership is not None else user),
            before=json.dumps(before, sort_keys=True),
            after=json.dumps(after, sort_keys=True),
        ))

    def _accepted_page(self, found: "Invitation") -> HttpResponse:
        where = f" Welcome to <strong>{e(found.company.name)}</strong>." if found.company else ""
        return page("Invitation accepted" if found.company else "Account ready", (
            f"<p>All done.{where} You can now sign in from your app with "
            f"{e(found.user.email or 'your email')} and your password.</p>"))


@dataclass
class Invitation:
    """A valid link: accepting a membership (membership and company set) or setting up an account."""

    row: InvitationToken
    user: User
    membership: Membership | None
    company: Company | None

    @property
    def what(self) -> str:
        if self.company is not None:
            return f"accepting the invitation to {self.company.name}"
        return "setting up your account"


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def oauth_routes(runtime: Runtime, limits: AttemptLimits | None = None) -> list[Route]:
    """The authorization server's routes, for the app's route list."""
    secure = runtime.settings.issuer.startswith("https://")
    routes = OAuthRoutes(runtime, AttemptLimiter(runtime.database.sessions, runtime.now, limits),
                         Csrf(runtime.database, secure))
    return [
        Route("/oauth/authorize", routes.authorize, methods=["GET", "POST"]),
        Route("/oauth/token", routes.token, methods=["POST"]),
        Route("/oauth/revoke", routes.revoke, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", routes.metadata, methods=["GET"]),
        Route("/invitations/{token}", routes.invitation, methods=["GET", "POST"]),
    ]

