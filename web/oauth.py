"""The authorization server's HTTP endpoints (DESIGN.md section 6):

- GET/POST /oauth/authorize: the authorization endpoint with a plain HTML sign-in page
  (email and password; no JavaScript; CSRF-protected; attempts limited);
- POST /oauth/token: authorization code (PKCE S256), refresh token (rotating) and client
  credentials grants;
- POST /oauth/revoke: RFC 7009 revocation;
- GET /.well-known/oauth-authorization-server: RFC 8414 metadata.

The protocol work is authlib's (auth/oauth_server.py); here are only pages and plumbing.
Every URL this server announces is made from BUREAU_ISSUER, never from the request's host.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
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
from auth.passwords import AttemptLimiter, Limited, upgrade_hash, verify_password
from models import User
from models.enums import UserStatus
from resolvers.runtime import Runtime
from settings import Settings
from web.csrf import Csrf
from web.pages import client_address, e, error_block, field, form_text, hidden, page, wait_text

SIGN_IN_FIELDS = frozenset({"email", "password", "csrf_token", "cancel"})
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method")


def _strings(items: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if isinstance(v, str)]


def to_http(response: Response, *, status: int | None = None) -> HttpResponse:
    headers = dict(response.headers)
    if isinstance(response.body, dict | list):
        headers.pop("Content-Type", None)
        return JSONResponse(response.body, status_code=status or response.status, headers=headers)
    return HttpResponse(response.body or b"", status_code=status or response.status, headers=headers)


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
            if not await self.csrf.check(request, form_text(form, "csrf_token"), "authorize"):
                return await self._sign_in_page(request, client, oauth_items, email=form_text(form, "email"),
                                                error="The form had expired. Please sign in again.", status=400)
            if form_text(form, "cancel"):
                response = await session.run_sync(
                    lambda _: server.create_authorization_response(oauth_request, grant_user=None, grant=grant))
                return to_http(response, status=303 if response.status == 302 else None)
            email, password = form_text(form, "email").strip(), form_text(form, "password")
            if not email or not password:
                return await self._sign_in_page(request, client, oauth_items, email=email, status=400,
                                                error="Enter your email and your password.")
            attempt = await self.limiter.begin(email, client_address(request))
            if isinstance(attempt, Limited):
                return await self._sign_in_page(
                    request, client, oauth_items, email=email, status=429,
                    error=f"Too many sign-in attempts. Try again in {wait_text(attempt.retry_after)}.",
                    headers={"Retry-After": str(attempt.retry_after)})
            user = await session.scalar(select(User).where(User.email_normalized == email.lower()))
            usable = user is not None and user.status is UserStatus.ACTIVE
            if not await verify_password(user.password_hash if usable and user else None, password):
                return await self._sign_in_page(request, client, oauth_items, email=email, status=401,
                                                error="The email or the password is not right.")
            assert user is not None and user.password_hash is not None
            await self.limiter.succeeded(attempt)
            await upgrade_hash(user, password)
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



def oauth_routes(runtime: Runtime, limiter: AttemptLimiter, csrf: Csrf) -> list[Route]:
    """The authorization server's routes, for the app's route list."""
    routes = OAuthRoutes(runtime, limiter, csrf)
    return [
        Route("/oauth/authorize", routes.authorize, methods=["GET", "POST"]),
        Route("/oauth/token", routes.token, methods=["POST"]),
        Route("/oauth/revoke", routes.revoke, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", routes.metadata, methods=["GET"]),
    ]
