"""The first layer of every HTTP request, in one wrapper of `send` (DESIGN.md section 6):

- its id, and when it ends its log line and metrics (web.observation, R91, R92);
- the checks before any endpoint reads it: the URL, the body's size and time, a form's fields
  (web.guard, R58, R59), refused in the endpoint family's shape;
- a database outage that escapes an endpoint before its response began: the family's 503
  (web.outage, R54). Any other exception goes on as it was (a bug stays a bug).

They were three middleware, each wrapping `send` again; together they were a sixth of a small read.
"""

import logging
import time
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.outage import is_outage
from observability import tracing
from observability.requests import HEADER, begin, end, request_id_from
from settings import Limits
from web.guard import Refused, check_form, check_url, read_body, replay_body
from web.observation import describe, report
from web.outage import outage_response
from web.problems import refusal

log = logging.getLogger("bureau.http")

_HEADER = HEADER.lower().encode()

# What may answer a request before the app does (web.read_lane): given the scope, its body and the
# wrapped send, True when it has answered.
Shortcut = Callable[[Scope, bytes, Send], Awaitable[bool]]


class FrontDoor:
    def __init__(self, app: ASGIApp, limits: Limits, retry_after: int, shortcut: Shortcut | None = None) -> None:
        self.app = app
        self.limits = limits
        self.retry_after = retry_after
        self.shortcut = shortcut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        sent = [value for name, value in headers if name == _HEADER]
        record, token = begin(request_id_from(sent[0].decode("latin-1") if len(sent) == 1 else None))
        id_header = (_HEADER, record.request_id.encode())
        status = 500  # unless the app answers
        started = False
        began = time.perf_counter()
        span = trace.get_current_span() if tracing.enabled() else trace.INVALID_SPAN  # observability.tracing's

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                describe(span, record)  # now: the instrumentation ends the span with the response
                message = {**message, "headers": [*(h for h in message.get("headers", ()) if h[0].lower() != _HEADER),
                                                  id_header]}
            await send(message)

        try:
            try:
                check_url(scope)
                body = await read_body(scope, receive, self.limits)
                check_form(dict(headers).get(b"content-type", b"").split(b";")[0].strip().lower(), body)
            except Refused as refused:
                response = refusal(scope["path"], refused.status, refused.code, refused.message,
                                   headers={"Connection": "close"} if refused.status in (408, 413) else None)
                await response(scope, receive, send_with_id)
                return
            try:
                if self.shortcut is None or not await self.shortcut(scope, body, send_with_id):
                    await self.app(scope, replay_body(body, receive), send_with_id)
            except Exception as error:
                if started or not is_outage(error):
                    raise
                # The type only: driver messages may name hosts and users.
                log.warning("database unavailable (%s) on %s %s", type(error).__name__, scope["method"],
                            scope["path"])
                await outage_response(scope["path"], self.retry_after)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - began
            end(token)
            report(scope, record, status, seconds)
