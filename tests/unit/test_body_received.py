"""R118: `bureau serve`'s protocol (web.serving.GuardedHttpTools) tells the app, in the scope's
extensions, when a request's body had arrived whole before the app began; web.guard then reads it with
no timer. A body still arriving is read under BUREAU_BODY_TIMEOUT as before. Over a real socket."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from settings import Limits
from web import guard
from web.guard import Refused, read_body
from web.serving import BODY_RECEIVED, GuardedHttpTools

LIMITS = dataclasses.replace(Limits(), body_timeout=1)


@dataclasses.dataclass
class Seen:
    received: list[bool] = dataclasses.field(default_factory=list)  # BODY_RECEIVED as the app began
    bodies: list[bytes] = dataclasses.field(default_factory=list)
    timers: int = 0  # asyncio.timeout entered by read_body


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[int, Seen]]:
    seen = Seen()
    timeout = asyncio.timeout

    def counted(delay: float | None) -> Any:
        seen.timers += 1
        return timeout(delay)

    monkeypatch.setattr(guard.asyncio, "timeout", counted)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.received.append(bool((scope.get("extensions") or {}).get(BODY_RECEIVED)))
        try:
            body, status = await read_body(scope, receive, LIMITS), 200
        except Refused as refused:
            body, status = b"", refused.status
        seen.bodies.append(body)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = Config(app=app, log_level="warning")
    config.load()
    state = ServerState()
    server = await asyncio.get_running_loop().create_server(
        lambda: GuardedHttpTools(config=config, server_state=state, app_state={}), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        for task in list(state.tasks):
            task.cancel()


def request(body: bytes) -> tuple[bytes, bytes]:
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body), body


async def answer(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"ok"), 5)


async def test_a_body_sent_with_its_headers_is_read_without_a_timer(served: tuple[int, Seen]) -> None:
    port, seen = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for n in range(3):  # each request on the connection, each its own scope
            head, body = request(b'{"query": "{ n%d }"}' % n)
            writer.write(head + body)
            assert (await answer(reader)).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
    assert seen.received == [True, True, True] and seen.timers == 0
    assert seen.bodies == [b'{"query": "{ n0 }"}', b'{"query": "{ n1 }"}', b'{"query": "{ n2 }"}']


async def test_a_body_still_arriving_is_read_under_the_timeout(served: tuple[int, Seen]) -> None:
    port, seen = served
    head, body = request(b'{"query": "{ slow }"}')
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body[:5])
        await asyncio.sleep(0.1)
        writer.write(body[5:])
        assert (await answer(reader)).startswith(b"HTTP/1.1 200")
        # The next request on the connection arrives whole: no timer for it.
        writer.write(head + body)
        assert (await answer(reader)).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
    assert seen.received == [False, True] and seen.timers == 1
    assert seen.bodies == [body, body]


async def test_a_body_that_stops_arriving_is_a_408(served: tuple[int, Seen]) -> None:
    port, seen = served
    head, body = request(b'{"query": "{ never }"}')
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body[:5])
        assert (await answer(reader)).startswith(b"HTTP/1.1 408")
    finally:
        writer.close()
    assert seen.received == [False] and seen.timers == 1
