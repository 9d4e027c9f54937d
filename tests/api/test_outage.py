"""A database outage (R54), against a PostgreSQL cluster of the test's own that it stops, freezes
and starts again, with the app served by uvicorn: every endpoint family answers 503 with
Retry-After in its own error shape within about a second, never a text/plain 500, and the
server recovers by itself once the database is back."""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import server_database
from auth.clients import ALL_SCOPES, register_client
from models import ids
from models.migrate import migrate
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, Firm
from tests.api.pg_cluster import Cluster, own_cluster
from tests.api.test_live_events import serve

FAST = 2.0  # seconds: "within about a second", with room for a loaded test machine
RETRY_AFTER = "5"  # BUREAU_RETRY_AFTER's default
FIRMS = "{ viewer { firms { edges { node { id name } } } } }"


@dataclass
class World:
    cluster: Cluster
    http: httpx.AsyncClient
    api: Api
    firm: Firm
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with own_cluster("bureau_outage") as made:
        yield made


@pytest.fixture(scope="module")
async def world(cluster: Cluster) -> AsyncIterator[World]:
    admin = create_async_engine(cluster.server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql('CREATE DATABASE "bureau"')
    await admin.dispose()
    url = make_url(cluster.server_url).set(database="bureau").render_as_string(hide_password=False)
    await migrate(url)
    settings = Settings()
    runtime = Runtime.create(server_database(settings, url), settings)
    async with serve(runtime) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with runtime.database.sessions.begin() as session:
            vendor = await register_client(session, name="vendor", scopes=list(ALL_SCOPES))
            app_client = await register_client(session, name="app", scopes=list(ALL_SCOPES))
        api = Api(http, runtime, vendor_client_id=vendor.client_id, app_client_id=app_client.client_id)
        firm = await api.firm()
        async with runtime.database.sessions.begin() as session:
            partner = await register_client(session, name="partner", scopes=["firms:read", "billing:read"],
                                            firm_id=ids.decode_as(firm.id, "Firm"))
        assert partner.client_secret is not None
        yield World(cluster, http, api, firm, partner.client_id, partner.client_secret)


# One request of every endpoint family; each returns the response.
def requests(world: World) -> dict[str, Any]:
    http, firm = world.http, world.firm
    bearer = {"Authorization": f"Bearer {firm.admin}"}
    return {
        "graphql POST": lambda: http.post("/graphql", json={"query": FIRMS}, headers=bearer),
        "graphql GET": lambda: http.get("/graphql", params={"query": FIRMS}, headers=bearer),
        "export": lambda: http.get("/exports/reinvoicing.csv", params={"firm": firm.id, "month": "2026-01"},
                                   headers=bearer),
        "oauth token": lambda: http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                         auth=httpx.BasicAuth(world.client_id, world.client_secret)),
        "oauth authorize": lambda: http.get("/oauth/authorize", params={
            "response_type": "code", "client_id": world.api.app_client_id, "redirect_uri": "https://app.example/cb",
            "code_challenge": "x" * 43, "code_challenge_method": "S256"}),
        "invitation page": lambda: http.get("/invitations/" + "a" * 43),
        "readyz": lambda: http.get("/readyz"),
    }


def assert_outage_shape(family: str, response: httpx.Response) -> None:
    assert response.status_code == 503, (family, response.status_code, response.text)
    assert response.headers["retry-after"] == RETRY_AFTER, family
    body = response.json()
    if family.startswith("graphql"):
        assert response.headers["content-type"].startswith("application/json")
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    elif family.startswith("oauth"):
        assert response.headers["content-type"].startswith("application/json")
        assert body["error"] == "temporarily_unavailable" and body["error_description"]
    else:
        assert response.headers["content-type"].startswith("application/problem+json"), family
        assert body["status"] == 503 and body["title"] == "Service Unavailable" and body["type"] == "about:blank"


async def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await call()
    return response, time.perf_counter() - started


async def assert_all_up(world: World) -> None:
    for family, call in requests(world).items():
        response = await call()
        assert response.status_code != 503, (family, response.text)
        assert response.status_code < 500, (family, response.status_code, response.text)
    assert (await world.http.get("/readyz")).text == "ready"


async def test_every_family_answers_503_fast_while_the_database_is_down_and_recovers(world: World) -> None:
    await assert_all_up(world)
    world.cluster.stop()
    try:
        for family, call in requests(world).items():
            response, seconds = await timed(call)
            assert_outage_shape(family, response)
            assert seconds < FAST, (family, seconds)
        # Liveness does not depend on the database: the process is fine, it is the database that is not.
        assert (await world.http.get("/healthz")).status_code == 200
        # Many at once, as under load: every one a 503 of its family, none a 500.
        calls = list(requests(world).items()) * 6
        started = time.perf_counter()
        responses = await asyncio.gather(*(call() for _, call in calls))
        assert time.perf_counter() - started < FAST * 2
        for (family, _), response in zip(calls, responses, strict=True):
            assert_outage_shape(family, response)
    finally:
        world.cluster.start()
    # Recovery by itself: no restart of the server, the pool replaces its dead connections.
    await assert_all_up(world)


async def test_a_database_that_dies_during_execution_answers_503(world: World) -> None:
    """Authenticated while the database was up, then it dies before the query's own read."""
    engine = world.api.runtime.database.engine.sync_engine
    stopped: list[bool] = []

    def crash_before_reading_firms(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not stopped and re.search(r"\bFROM firms\b", statement):
            stopped.append(True)
            world.cluster.stop()

    event.listen(engine, "before_cursor_execute", crash_before_reading_firms)
    try:
        response = await world.http.post("/graphql", json={"query": FIRMS},
                                         headers={"Authorization": f"Bearer {world.firm.admin}"})
    finally:
        event.remove(engine, "before_cursor_execute", crash_before_reading_firms)
        world.cluster.start()
    assert stopped, "the query read no firms: the trap never fired"
    assert_outage_shape("graphql", response)
    await assert_all_up(world)


async def test_a_hung_database_fails_fast_on_the_connect_timeout(world: World) -> None:
    """A host that accepts but never answers: the connect timeout (1 s) decides, not asyncpg's 60 s."""
    await world.api.runtime.database.engine.dispose()  # no pooled connection to fall back on
    with world.cluster.frozen():
        for family in ("graphql POST", "export", "oauth token", "readyz"):
            response, seconds = await timed(requests(world)[family])
            assert_outage_shape(family, response)
            assert seconds < FAST + 1, (family, seconds)  # one connect timeout, and the pool's
    await assert_all_up(world)


async def test_a_restart_between_requests_goes_unnoticed(world: World) -> None:
    """The pool holds connections the restart killed; the driver saw them closed, the pool replaces them (models.db)."""
    bearer = {"Authorization": f"Bearer {world.firm.admin}"}
    for response in await asyncio.gather(*(world.http.post("/graphql", json={"query": FIRMS}, headers=bearer)
                                           for _ in range(4))):
        assert response.status_code == 200
    world.cluster.stop()
    world.cluster.start()
    response = await world.http.post("/graphql", json={"query": FIRMS}, headers=bearer)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"]["firms"]["edges"][0]["node"]["id"] == world.firm.id


async def test_the_driver_s_message_never_reaches_a_client(world: World) -> None:
    """Over a websocket there is no HTTP status: the error itself must say only SERVICE_UNAVAILABLE."""
    from graphql import GraphQLError

    from schema.errors import _classify

    try:
        await world.api.runtime.database.engine.dispose()
        world.cluster.stop()
        async with world.api.runtime.database.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        classified = _classify(GraphQLError(str(exc), original_error=exc), None)  # as graphql-core makes it
    finally:
        world.cluster.start()
    assert classified.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert str(world.cluster.port) not in classified.message and "asyncpg" not in classified.message


async def test_a_prepared_read_answers_503_while_down_and_recovers(world: World) -> None:
    """R110: the front door's prepared lane meets an outage as the app does, and its pool recovers."""
    from schema.prepared_reads import PREPARED

    bearer = {"Authorization": f"Bearer {world.firm.admin}"}
    body = {"query": "query Outage($id: ID!) { firm(id: $id) { id name } }", "variables": {"id": world.firm.id}}
    for _ in range(2):
        assert (await world.http.post("/graphql", json=body, headers=bearer)).status_code == 200
    hits = PREPARED.hits
    world.cluster.stop()
    try:
        response, seconds = await timed(lambda: world.http.post("/graphql", json=body, headers=bearer))
        assert_outage_shape("graphql", response)
        assert seconds < FAST, seconds
    finally:
        world.cluster.start()
    restarted = await world.http.post("/graphql", json=body, headers=bearer)
    assert restarted.status_code == 200 and restarted.json()["data"]["firm"]["id"] == world.firm.id
    assert PREPARED.hits > hits, "the reads after the first were not prepared"
