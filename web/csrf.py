"""CSRF protection for the HTML forms, without server-side sessions."""

import base64
import hashlib
import hmac
import secrets
import time

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from auth.secrets import server_secret
from models.db import Database

CSRF_KEY = "csrf-key"  # noqa: S105 - the name of a server secret, not a secret
CSRF_MAX_AGE = 3600


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
