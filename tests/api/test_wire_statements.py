"""Statements per request as PostgreSQL receives them (R97; issue 13's goal: at most 3).

tests/api/test_statement_pins.py counts what SQLAlchemy sends; this counts the wire, through
bench/pgproxy.py, so that BEGIN, ROLLBACK and the pool's pings count too. A read runs without a
transaction of its own and a pooled connection is not pinged on every checkout, so a compiled
read is its one statement, plus authentication's one when the principal is not kept (R77).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import create_app
from bench.generate import generate
from bench.pgproxy import StatementCounter, counting_proxy
from bench.run import _tokens
from bench.workloads import BY_KEY, CHANGE_SEATS
from models.db import connect
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.test_statement_pins import PINNED_SIZE
from tests.conftest import create_database, drop_database


@dataclass
class Wire:
    counter: StatementCounter
    manifest: dict[str, Any]
    apps: dict[str, httpx.AsyncClient]  # "kept" (the principal cache on), "unkept" (off)
    url: str

    async def sent(self, body: dict[str, Any], token: str, app: str = "kept") -> tuple[int, dict[str, Any]]:
        http = self.apps[app]
        headers = {"Authorization": f"Bearer {token}"}
        await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)  # keeps the principal
        before = self.counter.statements
        response = await http.post("/graphql", json=body, headers=headers)
        answer = response.json()
        assert response.status_code == 200 and "errors" not in answer, answer
        return self.counter.statements - before, answer["data"]


@pytest.fixture(scope="module")
async def wire() -> AsyncIterator[Wire]:
    url = await create_database("bureau_wire")
    try:
        manifest = await generate(url, PINNED_SIZE)
        manifest["tokens"] = await _tokens(url, manifest["admins"])
        with counting_proxy() as counter:
            proxied = make_url(url).set(host="127.0.0.1", port=counter.port).render_as_string(hide_password=False)
            database = connect(proxied)
            kept = create_app(runtime=Runtime.create(database, Settings()))
            unkept = create_app(runtime=Runtime.create(database, replace(Settings(), principal_cache_seconds=0)))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=kept), base_url="http://bureau.test") as a, \
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=unkept), base_url="http://bureau.test") as b:
                stage = Wire(counter, manifest, {"kept": a, "unkept": b}, url)
                for workload in BY_KEY.values():  # the first requests connect and prepare the statements
                    for app in stage.apps:
                        await stage.sent(workload.body(manifest), manifest["tokens"][workload.firm], app)
                yield stage
            await database.dispose()
    finally:
        await drop_database(url)


@pytest.mark.parametrize("key", sorted(BY_KEY))
async def test_a_compiled_read_is_one_statement_on_the_wire(wire: Wire, key: str) -> None:
    workload = BY_KEY[key]
    sent, _ = await wire.sent(workload.body(wire.manifest), wire.manifest["tokens"][workload.firm])
    assert sent == 1, f"workload {key}: {sent} statements on the wire"


@pytest.mark.parametrize("key", sorted(BY_KEY))
async def test_a_read_that_authenticates_is_two(wire: Wire, key: str) -> None:
    workload = BY_KEY[key]
    sent, _ = await wire.sent(workload.body(wire.manifest), wire.manifest["tokens"][workload.firm], "unkept")
    assert sent == 2, f"workload {key} with its authentication: {sent} statements on the wire"


async def test_a_mutation_is_one_transaction(wire: Wire) -> None:
    """Writes keep their transaction (R26): BEGIN first, COMMIT last, and nothing outside them but
    the authentication the write's commit made stale."""
    token = wire.manifest["tokens"]["big"]
    subscription = wire.manifest["objects"]["big_subscription"]
    _, data = await wire.sent({"query": "query($id: ID!) { node(id: $id) { ... on LicenseSubscription "
                                        "{ seats { licenseType purchased } } } }", "variables": {"id": subscription}},
                              token)
    named = next(p["purchased"] for p in data["node"]["seats"] if p["licenseType"] == "NAMED")
    log: list[bytes] = []
    wire.counter.log = log
    try:
        _, data = await wire.sent({"query": CHANGE_SEATS, "variables": {"input": {
            "subscriptionId": subscription, "licenseType": "NAMED", "seats": named + 1}}}, token)
    finally:
        wire.counter.log = None
    assert data["changeSeats"]["userErrors"] == []
    words = [statement.split()[0].upper().rstrip(b";") for statement in log if statement.strip()]
    begins = [n for n, word in enumerate(words) if word == b"BEGIN"]
    commits = [n for n, word in enumerate(words) if word == b"COMMIT"]
    assert len(begins) == 1 and len(commits) == 1 and begins[0] < commits[0], words


async def test_a_connection_the_server_closed_is_replaced_before_use(wire: Wire) -> None:
    """Without a ping per checkout, a pooled connection whose backend was terminated (a restart, an
    administrator) must still never reach a request: asyncpg knows its socket closed."""
    workload = BY_KEY["c"]
    body, token = workload.body(wire.manifest), wire.manifest["tokens"][workload.firm]
    await wire.sent(body, token)
    admin = connect(wire.url)
    try:
        async with admin.engine.connect() as connection:
            name = make_url(wire.url).database
            terminated = await connection.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            assert terminated >= 1
            for _ in range(100):  # until the backends are gone and their sockets closed
                left = await connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": name})
                if left == 0:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the closing sockets reach this event loop
    finally:
        await admin.dispose()
    for _ in range(3):  # every pooled connection was terminated; each request must still be answered
        sent, data = await wire.sent(body, token)
        assert data["node"]["name"]


async def test_a_connection_idle_for_long_is_pinged_first(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    """One the network may have dropped silently is pinged before the read: a prepared read's held
    connection (R110) with one `SELECT 1`; a pooled one by SQLAlchemy's ping (BEGIN, ";", ROLLBACK, R97)."""
    import models.db

    workload = BY_KEY["c"]
    for _ in range(2):  # prepared under this app's settings, then answered by the lane: a connection is held
        await wire.sent(workload.body(wire.manifest), wire.manifest["tokens"][workload.firm])
    monkeypatch.setattr(models.db, "IDLE_PING_SECONDS", -1.0)  # every connection counts as idle
    log: list[bytes] = []
    wire.counter.log = log
    try:
        sent, _ = await wire.sent(workload.body(wire.manifest), wire.manifest["tokens"][workload.firm])
    finally:
        wire.counter.log = None
    assert sent == 2 and b"SELECT 1" in log[-2], log  # the held connection's ping, then the read
    # A GET is the app's (the lane takes POSTs): its read session's pooled connection gets the pool's ping.
    body = workload.body(wire.manifest)

    async def get() -> int:
        before = wire.counter.statements
        response = await wire.apps["kept"].get("/graphql", params={
            "query": body["query"], "operationName": body["operationName"],
            "variables": json.dumps(body["variables"])},
            headers={"Authorization": f"Bearer {wire.manifest['tokens'][workload.firm]}"})
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return wire.counter.statements - before

    await get()  # a connection checked in: every one the pool now hands out was, and counts as idle
    assert await get() == 4
