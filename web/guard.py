"""The first check of every HTTP request, before any endpoint reads it (R58, R59):

- a body larger than BUREAU_MAX_BODY_BYTES is refused with 413 REQUEST_TOO_LARGE as soon as
  its Content-Length says so, or as soon as the bytes counted pass the limit: never read whole;
- a body that does not arrive within BUREAU_BODY_TIMEOUT seconds is refused with 408 (one that had
  arrived whole, as `bureau serve` tells, is read with no timer: R118);
- a control character in the path, the query string or a form field is refused with 400
  INVALID_INPUT: no endpoint has a use for one, and PostgreSQL cannot store a NUL.

web.front_door runs these checks and answers a refusal in the shape of the endpoint family
(web.problems). WebSocket messages are bounded by uvicorn's ws_max_size (`bureau serve`) and
checked by schema.input_checks.
"""

import asyncio
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope

from schema.input_checks import has_control_character
from settings import Limits
from web.serving import BODY_RECEIVED


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_url(scope: Scope) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = [scope["path"], *(part for pair in parse_qsl(query, keep_blank_values=True) for part in pair)] \
        if query else [scope["path"]]
    if any(has_control_character(value) for value in values):
        raise Refused(400, "INVALID_INPUT", "The address holds a control character.")


async def read_body(scope: Scope, receive: Receive, limits: Limits) -> bytes:
    limit = limits.max_body_bytes
    too_large = Refused(413, "REQUEST_TOO_LARGE", f"The request body is larger than {limit} bytes.")
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "BAD_REQUEST", "Content-Length is not a number.")
        if int(declared) > limit:
            raise too_large
    if (scope.get("extensions") or {}).get(BODY_RECEIVED):
        # R118: it is in, so reading it cannot wait, and asyncio.timeout's timer (a twentieth of a small
        # read's instructions) has nothing to bound.
        return await _receive_all(receive, limit, too_large)
    try:
        async with asyncio.timeout(limits.body_timeout):
            return await _receive_all(receive, limit, too_large)
    except TimeoutError:
        raise Refused(408, "REQUEST_TIMEOUT",
                      f"The request body did not arrive within {limits.body_timeout} seconds.") from None


async def _receive_all(receive: Receive, limit: int, too_large: Refused) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_form(content_type: bytes, body: bytes) -> None:
    if content_type != b"application/x-www-form-urlencoded" or not body:
        return
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refused(400, "INVALID_INPUT", "The form is not UTF-8.") from None
    if any(has_control_character(part) for pair in fields for part in pair):
        raise Refused(400, "INVALID_INPUT", "A form field holds a control character.")


def replay_body(body: bytes, receive: Receive) -> Receive:
    """The body read already, handed to the endpoint as one message; then the client's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
