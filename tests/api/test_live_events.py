"""Live events over a real websocket (graphql-transport-ws), against the app served by
uvicorn: authentication of the connection, tenancy of the events, seat usage, and events
crossing instances through PostgreSQL LISTEN/NOTIFY (and the in-process hub on SQLite)."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app import create_app
from auth.clients import ALL_SCOPES, register_client
from live.hub import Hub, hub_for
from models.db import connect
from models.migrate import migrate
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import USER_SCOPES, Api, unique

AUDIT = """subscription($firm: ID!) { auditEvents(firmId: $firm) {
    id action summary subjectId actor { email } } }"""
SEATS = """subscription($id: ID!) { seatUsageChanged(subscriptionId: $id) {
    licenseType purchased inUse available nextPeriodPurchased } }"""


@dataclass
class Server:
    url: str
    runtime: Runtime
    hub: Hub

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"


@contextlib.asynccontextmanager
async def serve(runtime: Runtime) -> AsyncIterator[Server]:
    """The app under uvicorn on a free port of 127.0.0.1, lifespan included (the listener)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), lifespan="on", log_level="warning",
                                           timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done())
        assert server.started, "uvicorn did not start"
        hub = hub_for(runtime.database.engine)
        if not runtime.database.is_sqlite:
            await asyncio.wait_for(hub.listening.wait(), 10)
        yield Server(f"http://127.0.0.1:{port}", runtime, hub)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


class Live:
    """A graphql-transport-ws client."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "connection_init", **({"payload": payload} if payload else {})}))
        return await self.receive()

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe",
                                       "payload": {"query": query, "variables": variables}}))

    async def receive(self, within: float = 10.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), within))
        return message

    async def nothing(self, within: float = 1.5) -> None:
        with pytest.raises(TimeoutError):
            message = await self.receive(within)
            raise AssertionError(f"unexpected message {message}")


@contextlib.asynccontextmanager
async def live(server: Server, token: str | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[Live]:
    async with ws_connect(server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")],
                          additional_headers=headers, open_timeout=10) as ws:
        client = Live(ws)
        if token is not None:
            ack = await client.init({"Authorization": f"Bearer {token}"})
            assert ack["type"] == "connection_ack", ack
        yield client


async def subscribed(server: Server, client: Live, op_id: str, query: str, variables: dict[str, Any]) -> None:
    """Subscribes, and waits until the server has read the subscription's starting point."""
    before = server.hub.ready_count
    await client.subscribe(op_id, query, variables)
    await until(lambda: server.hub.ready_count > before)


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[Server]:
    # Its own runtime: the server's lifespan disposes its database when it stops.
    async with serve(Runtime.create(connect(database_url), Settings())) as running:
        yield running


async def test_a_connection_without_a_valid_token_is_refused(server: Server, api: Api) -> None:
    for payload in (None, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        async with live(server) as client:
            with pytest.raises(ConnectionClosed) as closed:
                await client.init(payload)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with live(server) as client:  # subscribing before connection_init
        await client.subscribe("1", AUDIT, {"firm": "x"})
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    firm = await api.firm()
    async with live(server, headers={"Authorization": f"Bearer {firm.admin}"}) as client:
        assert (await client.init())["type"] == "connection_ack"  # non-browser clients may use the header
    async with live(server, firm.admin) as client:  # queries and mutations go over HTTP
        await client.subscribe("1", "query { viewer { clientId } }", {})
        message = await client.receive()
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_subscriber_receives_the_audit_events_of_its_firm(server: Server, api: Api) -> None:
    firm = await api.firm()
    async with live(server, firm.admin) as client:
        await subscribed(server, client, "a", AUDIT, {"firm": firm.id})
        agreement_id, _ = await api.agreement(firm, company=False)  # a mutation over HTTP
        message = await client.receive()
        assert message["type"] == "next" and message["id"] == "a"
        event = message["payload"]["data"]["auditEvents"]
        assert event["action"] == "agreement.created"
        assert event["subjectId"] == agreement_id
        assert event["actor"] == {"email": firm.admin_email}  # fields with resolvers read per event
        await api.company(firm, agreement_id)
        message = await client.receive()
        assert message["payload"]["data"]["auditEvents"]["action"] == "company.created"


async def test_other_firms_receive_nothing(server: Server, api: Api) -> None:
    firm, other = await api.firm(), await api.firm()
    async with live(server, other.admin) as client:
        await subscribed(server, client, "own", AUDIT, {"firm": other.id})
        await api.agreement(firm)
        await client.nothing()
        # Nor may it subscribe to the other firm's events.
        await client.subscribe("theirs", AUDIT, {"firm": firm.id})
        message = await client.receive()
        assert message["type"] == "error" and message["id"] == "theirs"
        assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    no_audit = await api.token(firm.admin_email, scopes=[s for s in USER_SCOPES if s != "audit:read"])
    async with live(server, no_audit) as client:
        await client.subscribe("1", AUDIT, {"firm": firm.id})
        message = await client.receive()
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_seat_usage_changed_yields_the_new_numbers(server: Server, api: Api) -> None:
    firm, other = await api.firm(), await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=5)
    async with live(server, firm.admin) as client:
        await subscribed(server, client, "s", SEATS, {"id": subscription_id})
        await api.invite(firm.admin, company_id, email=unique("seat") + "@client.example")
        message = await client.receive()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["seatUsageChanged"] == {
            "licenseType": "NAMED", "purchased": 5, "inUse": 1, "available": 4, "nextPeriodPurchased": 5}
        await api.agreement(firm, company=False)  # the firm's other changes do not move these seats
        await client.nothing(1.0)
    async with live(server, other.admin) as client:
        await client.subscribe("s", SEATS, {"id": subscription_id})
        message = await client.receive()
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_events_cross_instances(database_url: str, api: Api) -> None:
    firm = await api.firm()
    async with serve(Runtime.create(connect(database_url), Settings())) as first, \
            serve(Runtime.create(connect(database_url), Settings())) as second:
        async with live(second, firm.admin) as client, httpx.AsyncClient(base_url=first.url) as http:
            await subscribed(second, client, "x", AUDIT, {"firm": firm.id})
            on_first = Api(http, first.runtime, vendor_client_id=api.vendor_client_id,
                           app_client_id=api.app_client_id)
            agreement_id, _ = await on_first.agreement(firm, company=False)
            message = await client.receive()
            assert message["payload"]["data"]["auditEvents"]["subjectId"] == agreement_id


async def test_live_events_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}"
    await migrate(url)
    runtime = Runtime.create(connect(url), Settings())
    async with runtime.database.sessions.begin() as session:
        vendor = await register_client(session, name="vendor", scopes=list(ALL_SCOPES))
    async with serve(runtime) as server, httpx.AsyncClient(base_url=server.url) as http:
        api = Api(http, runtime, vendor_client_id=vendor.client_id, app_client_id=vendor.client_id)
        token = await api.vendor()
        firm = await api.mutate("createFirm", {"name": "Lite", "country": "SE", "currency": "SEK"}, "firm { id }",
                                token=token)
        async with live(server, token) as client:
            await subscribed(server, client, "1", AUDIT, {"firm": firm["firm"]["id"]})
            await api.mutate("createAgreement", {"firmId": firm["firm"]["id"], "name": "C", "billingMode": "CUSTOMER"},
                             "agreement { id }", token=token)
            message = await client.receive()
            assert message["payload"]["data"]["auditEvents"]["action"] == "agreement.created"


async def test_the_listener_reconnects_and_subscribers_catch_up(server: Server, api: Api) -> None:
    firm = await api.firm()
    async with live(server, firm.admin) as client:
        await subscribed(server, client, "a", AUDIT, {"firm": firm.id})
        async with api.runtime.database.engine.connect() as connection:
            killed = (await connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'bureau live events' AND datname = current_database()")).all()
        assert killed
        await until(lambda: not server.hub.listening.is_set())
        agreement_id, _ = await api.agreement(firm, company=False)  # announced while nobody listens
        message = await client.receive()  # caught up after the listener is back
        assert message["payload"]["data"]["auditEvents"]["subjectId"] == agreement_id
        assert server.hub.listening.is_set()
        await api.company(firm, agreement_id)  # and live again
        message = await client.receive()
        assert message["payload"]["data"]["auditEvents"]["action"] == "company.created"


async def test_seat_usage_changes_when_a_session_expires(database_url: str, api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=1, concurrent=2)
    email = unique("concurrent") + "@client.example"
    await api.invite(firm.admin, company_id, email=email, license_type="CONCURRENT")
    user = await api.token(email)
    runtime = Runtime.create(connect(database_url), Settings(session_ttl_seconds=2))
    async with serve(runtime) as server, httpx.AsyncClient(base_url=server.url) as http:
        on_server = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        async with live(server, firm.admin) as client:
            await subscribed(server, client, "s", SEATS, {"id": subscription_id})
            await on_server.mutate("startSession", {"companyId": company_id}, "session { id }", token=user)
            message = await client.receive()
            assert message["payload"]["data"]["seatUsageChanged"]["inUse"] == 1
            message = await client.receive()  # no one did anything: the session lapsed
            assert message["payload"]["data"]["seatUsageChanged"] == {
                "licenseType": "CONCURRENT", "purchased": 2, "inUse": 0, "available": 2, "nextPeriodPurchased": 2}
