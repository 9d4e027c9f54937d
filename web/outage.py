"""The answer to a request while the database is down (R54): 503 with Retry-After, at once,
in the error shape of the endpoint's family, never a text/plain 500.

- /graphql: a GraphQL error with `extensions.code` SERVICE_UNAVAILABLE;
- /oauth/*: OAuth's own error, `temporarily_unavailable` (RFC 6749 section 4.1.2.1);
- everything else (/exports/..., /readyz, /invitations/..., keys): RFC 9457 problem details.

Which exceptions are an outage is decided in models/outage.py.
"""

import json
import logging

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.outage import MESSAGE, is_outage
from observability import requests

log = logging.getLogger("bureau.http")


def outage_response(path: str, retry_after: int) -> Response:
    """The 503 for `path`'s endpoint family."""
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    requests.note_errors(["SERVICE_UNAVAILABLE"])
    if path == "/graphql" or path.startswith("/graphql/"):
        body: dict[str, object] = {"data": None, "errors": [
            {"message": MESSAGE, "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}
        if requests.current_id() is not None:
            body["extensions"] = {"requestId": requests.current_id()}
        media_type = "application/json"
    elif path.startswith("/oauth/"):
        body = {"error": "temporarily_unavailable", "error_description": MESSAGE}
        media_type = "application/json"
    else:
        body = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": MESSAGE}
        media_type = "application/problem+json"
    return Response(json.dumps(body), status_code=503, media_type=media_type, headers=headers)


class OutageGuard:
    """ASGI middleware: an outage exception that escapes an endpoint before its response began
    becomes the family's 503. Any other exception goes on as it was (a bug stays a bug)."""

    def __init__(self, app: ASGIApp, retry_after: int) -> None:
        self.app = app
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as error:
            if started or not is_outage(error):
                raise
            # The type only: driver messages may name hosts and users.
            log.warning("database unavailable (%s) on %s %s", type(error).__name__, scope["method"], scope["path"])
            await outage_response(scope["path"], self.retry_after)(scope, receive, send)
