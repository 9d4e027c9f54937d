"""Slow and greedy clients against `bureau serve` itself (R59): uvicorn with web.serving's options
and web.guard in front of every endpoint, over real sockets."""

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.test_metrics import free_port

ROOT = Path(__file__).resolve().parents[2]
HEADER_TIMEOUT, BODY_TIMEOUT, MAX_BODY, MAX_HEADERS = 1, 1, 1000, 2000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT),
           "BUREAU_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "BUREAU_BODY_TIMEOUT": str(BODY_TIMEOUT),
           "BUREAU_MAX_BODY_BYTES": str(MAX_BODY), "BUREAU_MAX_HEADER_BYTES": str(MAX_HEADERS)}
    with (tmp_path / "serve.log").open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       cwd=tmp_path, env=env, stdout=sink, stderr=sink)
    try:
        await until_healthy(port, tmp_path / "serve.log")
        yield port
    finally:
        process.terminate()
        await process.wait()


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def until_healthy(port: int, log: Path) -> None:
    """Waits (up to a minute) for a started `bureau serve` to answer /healthz; fails with its log."""
    for _ in range(240):
        try:
            if (await exchange(port, HEALTH))[0] == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(await asyncio.to_thread(log.read_text, errors="replace"))


async def exchange(port: int, data: bytes, *, wait: float = 10) -> tuple[int, bytes]:
    """Sends `data` and reads until the server closes: (status, body), status 0 when it answered nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
    if not answer:
        return 0, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_headers_that_never_end_lose_the_connection(server: int) -> None:
    started = time.monotonic()
    status, _ = await exchange(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    assert status == 0 and HEADER_TIMEOUT <= time.monotonic() - started < HEADER_TIMEOUT + 3


async def test_a_body_that_never_ends_is_a_408(server: int) -> None:
    started = time.monotonic()
    status, body = await exchange(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Content-Length: 100\r\n\r\n{\"query\":")
    assert status == 408 and BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 3
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"


async def test_a_body_declared_too_large_is_refused_before_it_is_sent(server: int) -> None:
    status, body = await exchange(server, b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                                          b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1), wait=3)
    assert status == 413 and json.loads(body)["error"] == "invalid_request"


async def test_a_prompt_client_is_served(server: int) -> None:
    query = json.dumps({"query": "{ viewer { clientId } }"}).encode()
    status, body = await exchange(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                  % (len(query), query))
    assert status == 401 and json.loads(body)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_answers_do_not_name_the_server_software(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    try:
        writer.write(HEALTH)
        await writer.drain()
        head = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")[0].lower()
    finally:
        writer.close()
    assert head.startswith(b"http/1.1 200") and b"\r\ndate: " in head
    assert b"\r\nserver:" not in head and b"uvicorn" not in head


async def test_headers_too_large_are_a_431(server: int) -> None:
    """R107: httptools has no bound of its own; the protocol counts what arrives before the headers end."""
    big = b"X-Padding: " + b"p" * MAX_HEADERS + b"\r\n"
    status, _ = await exchange(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n", wait=3)
    assert status == 431
    # The same in pieces, and a header that never ends: counted as it arrives.
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ")
        for _ in range(5):
            writer.write(b"y" * (MAX_HEADERS // 4))
            await writer.drain()
            await asyncio.sleep(0.05)
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_body_sent_with_its_headers_is_not_counted_as_headers(server: int) -> None:
    query = json.dumps({"query": "{ viewer { clientId } }", "pad": "z" * (MAX_HEADERS * 2)}).encode()
    assert len(query) < MAX_BODY * 10
    status, _ = await exchange(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(query), query))
    assert status == 413  # over BUREAU_MAX_BODY_BYTES (web.guard), not 431: the body is not a header


async def test_keep_alive_requests_are_each_counted_afresh(server: int) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"q" * (MAX_HEADERS // 2) + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    try:
        for _ in range(4):  # together above the bound, each below it
            writer.write(one)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
    finally:
        writer.close()
