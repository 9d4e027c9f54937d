"""Every statement one (e) changeSeats and one (f) inviteUser send, as PostgreSQL receives them.

    .venv/bin/python -m bench.trace_writes          # the small dataset, bureau in-process

The counts are the wire's (bench/pgproxy.py's rule: a simple Query or an Execute is one statement,
BEGIN, COMMIT and the pool's ping included); the listing adds the text, taken from the Parse that
prepared the executed statement.
"""

import asyncio
import struct
import sys
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from app import create_app, server_database
from bench.generate import SMALL, generate
from bench.run import _tokens
from bench.workloads import CHANGE_SEATS, INVITE
from resolvers.runtime import Runtime
from settings import Settings
from tests.conftest import create_database, drop_database


class Tracer:
    """A loopback proxy that keeps the text of each statement executed, per client connection."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self, upstream: tuple[str, int]) -> int:
        self.upstream = upstream
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        tasks = [asyncio.create_task(self._frontend(reader, up_writer)),
                 asyncio.create_task(self._pump(up_reader, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            up_writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        statements: dict[bytes, str] = {}
        portals: dict[bytes, str] = {}
        try:
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                writer.write(head + await reader.readexactly(length - 8))
                if code not in (80877103, 80877104):
                    break
            while True:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                body = await reader.readexactly(length - 4)
                if kind == b"Q":
                    self.sent.append(body.rstrip(b"\0").decode())
                elif kind == b"P":
                    name, rest = body.split(b"\0", 1)
                    statements[name] = rest.split(b"\0", 1)[0].decode()
                elif kind == b"B":
                    portal, rest = body.split(b"\0", 1)
                    portals[portal] = statements.get(rest.split(b"\0", 1)[0], "?")
                elif kind == b"E":
                    self.sent.append(portals.get(body.split(b"\0", 1)[0], "?"))
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


def listing(sent: list[str]) -> str:
    return "\n".join(f"  {n:2}. {' '.join(s.split())[:220]}" for n, s in enumerate(sent, 1))


async def main(repeat: int = 3) -> None:
    url = await create_database("bureau_trace_writes")
    tracer = Tracer()
    try:
        manifest = await generate(url, SMALL)
        manifest["tokens"] = await _tokens(url, manifest["admins"])
        target = make_url(url)
        port = await tracer.start((target.host or "127.0.0.1", target.port or 5432))
        proxied = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        settings = Settings()
        runtime = Runtime.create(server_database(settings, proxied), settings)  # as `bureau serve` makes it
        app = create_app(runtime=runtime)
        token = {"Authorization": f"Bearer {manifest['tokens']['big']}"}
        subscription = manifest["objects"]["big_subscription"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
            seats = await http.post("/graphql", headers=token, json={"query": "query($id: ID!) { node(id: $id) { "
                                    "... on LicenseSubscription { seats { licenseType purchased } } } }",
                                    "variables": {"id": subscription}})
            named = next(p["purchased"] for p in seats.json()["data"]["node"]["seats"] if p["licenseType"] == "NAMED")

            async def change(n: int) -> Any:
                return await http.post("/graphql", headers=token, json={"query": CHANGE_SEATS, "variables": {
                    "input": {"subscriptionId": subscription, "licenseType": "NAMED", "seats": named + n + 1}}})

            async def invite(n: int) -> Any:
                return await http.post("/graphql", headers=token, json={"query": INVITE, "variables": {"input": {
                    "companyId": manifest["objects"]["big_company_for_invites"], "name": f"Traced {n}",
                    "email": f"traced-{n}@bench.example", "role": "REPORTER", "licenseType": "CONCURRENT",
                    "sendWelcomeEmail": False}}})

            for title, send in (("changeSeats +1", change), ("inviteUser", invite)):
                await send(0)  # warm, as the benchmark does
                for n in range(1, repeat + 1):
                    tracer.sent.clear()
                    response = await send(n)
                    assert "errors" not in response.json(), response.text
                    print(f"{title} #{n}: {len(tracer.sent)} statements\n{listing(tracer.sent)}")
        await runtime.database.dispose()
    finally:
        tracer.close()
        await drop_database(url)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
