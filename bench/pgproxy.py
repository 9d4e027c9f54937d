"""A TCP proxy in front of PostgreSQL that counts the statements its clients send.

It reads the frontend side of the wire protocol: every simple Query ('Q') and every Execute
('E') of the extended protocol is one statement, BEGIN and COMMIT included. So any
contender, whatever its driver, is counted alike, without an extension in the server.
"""

import asyncio
import struct
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class StatementCounter:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.statements = 0
        # When a list: each statement as sent, a simple Query's text or b"EXECUTE" (a prepared one).
        self.log: list[bytes] | None = None
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Untyped start-up messages first: an SSL or GSS request (refused by the server with
        # one byte, then another start-up message follows) and the start-up message itself.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                break
        while True:
            head = await reader.readexactly(5)
            kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            body = await reader.readexactly(length - 4)
            if kind in (b"Q", b"E"):
                self.statements += 1
                if self.log is not None:
                    self.log.append(body.rstrip(b"\0") if kind == b"Q" else b"EXECUTE")
            writer.write(head + body)
            await writer.drain()

    @staticmethod
    async def _server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        tasks = [asyncio.create_task(_until_closed(self._client_to_server(client_reader, server_writer))),
                 asyncio.create_task(_until_closed(self._server_to_client(server_reader, client_writer)))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()


async def _until_closed(pump: Coroutine[Any, Any, None]) -> None:
    try:
        await pump
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # either side hung up: the other is closed next


@contextmanager
def counting_proxy(upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> Iterator[StatementCounter]:
    """The proxy on a loopback port of its own, in a thread of its own: whatever the caller
    blocks on, the contender's connections keep flowing."""
    counter = StatementCounter(upstream_host, upstream_port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> None:
        counter.server = await asyncio.start_server(counter._serve, "127.0.0.1", 0)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
    ready.wait()
    try:
        yield counter
    finally:
        assert counter.server is not None
        loop.call_soon_threadsafe(counter.server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
