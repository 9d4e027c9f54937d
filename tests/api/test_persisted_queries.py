"""Persisted queries (R74, R75) through HTTP on PostgreSQL and a real Redis: Apollo's automatic
persisted query handshake over POST and GET, hash mismatches, what is and is not stored (the limits,
the cost), two app instances sharing the store through Redis, a Redis outage, the response cache and
the document cache, and persisted-only mode with a manifest on HTTP and the websocket."""

import dataclasses
import json
import logging
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from app import create_app
from models.db import Database, connect
from resolvers.runtime import Runtime
from schema.documents import DOCUMENTS
from schema.persisted_queries import MANIFEST_FORMAT, sha256
from schema.prepared_reads import PREPARED
from settings import Limits, Settings
from tests.api.client import Api, Firm, unique
from tests.api.test_hostile_inputs import HOSTILE_PERSISTED
from tests.api.test_live_events import live, serve, until
from tests.api.test_query_budget_redis import REDIS, own_redis, redis_keys, start_redis
from tests.conftest import StatementCounter

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["own_redis"]  # the fixture, imported for pytest

NOT_FOUND = {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}


def firm_query() -> str:
    """A document no other test has sent (the stores are per process and shared in Redis)."""
    return f"query {unique('Apq')}($id: ID!) {{ firm(id: $id) {{ id name }} }}"


def apq(digest: str, query: str | None = None, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    if variables is not None:
        body["variables"] = variables
    return body


def get_params(body: dict[str, Any]) -> dict[str, str]:
    """A request as Apollo Client's GET sends it: JSON-encoded variables and extensions."""
    params = {key: json.dumps(value) for key, value in body.items() if key in ("variables", "extensions")}
    if "query" in body:
        params["query"] = body["query"]
    return params


@dataclasses.dataclass
class App:
    api: Api
    runtime: Runtime

    async def post(self, body: dict[str, Any], token: str) -> httpx.Response:
        return await self.api.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})

    async def get(self, body: dict[str, Any], token: str) -> httpx.Response:
        return await self.api.http.get("/graphql", params=get_params(body), headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json"})


@asynccontextmanager
async def app_of(database: Database, api: Api, **settings: Any) -> AsyncIterator[App]:
    """An app instance of its own (its process store starts empty), on the session's database and clients."""
    runtime = Runtime.create(database, dataclasses.replace(Settings(), **settings))
    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        try:
            yield App(Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id),
                      runtime)
        finally:  # the lifespan does not run under httpx's transport: its Redis clients are closed here
            await app.state.persisted_queries.close()
            if app.state.response_cache is not None:
                await app.state.response_cache.close()


def prefix() -> str:
    return f"bureau:test:apq:{secrets.token_hex(4)}:"


def data_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, (response.status_code, body)
    return dict(body["data"])


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == status, (response.status_code, body)
    assert body.get("data") is None and len(body["errors"]) == 1, body
    return dict(body["errors"][0])


async def handshake(app: App, firm: Firm, send: str = "post") -> tuple[str, str]:
    """Apollo Client's exchange: the hash alone, PersistedQueryNotFound, then the query with its hash once."""
    query = firm_query()
    digest = sha256(query)
    request = app.post if send == "post" else app.get
    response = await request(apq(digest, variables={"id": firm.id}), firm.admin)
    assert error_of(response, 200) == NOT_FOUND
    assert response.headers["cache-control"] == "private, no-cache, must-revalidate"  # no CDN keeps it
    registered = data_of(await request(apq(digest, query, {"id": firm.id}), firm.admin))
    assert registered["firm"]["id"] == firm.id
    return query, digest


async def test_the_handshake_over_post_stores_the_query_and_runs_it_by_its_hash(
        database: Database, api: Api, statements: StatementCounter) -> None:
    firm = await api.firm()
    async with app_of(database, api) as app:
        query, digest = await handshake(app, firm)
        statements.reset()
        by_text = data_of(await app.post({"query": query, "variables": {"id": firm.id}}, firm.admin))
        text_statements = list(statements.statements)
        statements.reset()
        hits = DOCUMENTS.hits + PREPARED.hits
        by_hash = data_of(await app.post(apq(digest, variables={"id": firm.id}), firm.admin))
        assert by_hash == by_text
        assert statements.statements == text_statements, "a hit reads nothing more than its text would"
        # The stored text is found in the document cache (R76), or its prepared read (R106).
        assert DOCUMENTS.hits + PREPARED.hits == hits + 1, "the stored text is found again"
        # Variables are the request's own, not the registering request's.
        other = await api.firm()
        assert data_of(await app.post(apq(digest, variables={"id": other.id}), other.admin))["firm"]["id"] == other.id


async def test_the_handshake_over_get(database: Database, api: Api) -> None:
    firm = await api.firm()
    async with app_of(database, api) as app:
        query, digest = await handshake(app, firm, send="get")
        assert data_of(await app.get(apq(digest, variables={"id": firm.id}), firm.admin))["firm"]["id"] == firm.id
        # Registered over GET, run over POST: one store.
        assert data_of(await app.post(apq(digest, variables={"id": firm.id}), firm.admin))["firm"]["id"] == firm.id
        # A mutation stays POST-only, by its hash too.
        mutation = f"mutation {unique('Apq')} {{ __typename }}"
        error = error_of(await app.get(apq(sha256(mutation), mutation), firm.admin), 400)
        assert error == {"message": "mutations are not allowed when using GET", "extensions": {"code": "BAD_REQUEST"}}
        assert data_of(await app.post(apq(sha256(mutation), mutation), firm.admin)) == {"__typename": "Mutation"}
        assert error_of(await app.get(apq(sha256(mutation)), firm.admin), 400) == error
        assert data_of(await app.post(apq(sha256(mutation)), firm.admin)) == {"__typename": "Mutation"}


async def test_a_hash_that_is_not_the_querys_is_refused_and_stores_nothing(database: Database, api: Api) -> None:
    firm = await api.firm()
    async with app_of(database, api) as app:
        query = firm_query()
        wrong = sha256(query + " ")
        for request in (app.post, app.get):
            error = error_of(await request(apq(wrong, query, {"id": firm.id}), firm.admin), 400)
            assert error["message"] == "provided sha does not match query"
            assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
        assert error_of(await app.post(apq(wrong, variables={"id": firm.id}), firm.admin), 200) == NOT_FOUND
        assert error_of(await app.post(apq(sha256(query), variables={"id": firm.id}), firm.admin), 200) == NOT_FOUND


async def test_only_a_document_let_through_to_execution_is_stored(database: Database, api: Api) -> None:
    firm = await api.firm()
    limits = dataclasses.replace(Limits(), max_depth=3, max_query_bytes=200)
    async with app_of(database, api, limits=limits, cost_limit=100) as app:
        refused = {
            "not valid": ("{ firm(id: 1) { nosuchfield } }", "GRAPHQL_VALIDATION_FAILED"),
            "too deep (R59)": ("{ viewer { firms(first: 1) { edges { node { id } } } } }", "QUERY_TOO_DEEP"),
            "too large (R59)": ("{ viewer { clientId } } #" + "x" * 200, "QUERY_TOO_LARGE"),
            "too costly (R63)": ("{ viewer { firms(first: 100) { totalCount } } }", "QUERY_TOO_COSTLY"),
            "not parsed": ("{ viewer { ", "GRAPHQL_VALIDATION_FAILED"),
        }
        for name, (query, code) in refused.items():
            query = f"{query} #{unique('x')}"
            body = (await app.post(apq(sha256(query), query), firm.admin)).json()
            assert [e["extensions"]["code"] for e in body["errors"]] == [code], (name, body)
            assert error_of(await app.post(apq(sha256(query)), firm.admin), 200) == NOT_FOUND, name
        # A caller without the scope does not store it either; one who may run it does.
        query = f"query {unique('Scoped')} {{ viewer {{ firms(first: 1) {{ totalCount }} }} }}"
        weak = await api.token(firm.admin_email, scopes=["users:read"])
        body = (await app.post(apq(sha256(query), query), weak)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert error_of(await app.post(apq(sha256(query)), firm.admin), 200) == NOT_FOUND
        data_of(await app.post(apq(sha256(query), query), firm.admin))
        data_of(await app.post(apq(sha256(query)), firm.admin))


async def test_a_stored_text_meets_the_limits_on_every_hit(database: Database, api: Api) -> None:
    """R59 counts the stored text's size: an instance of a lower limit refuses what another stored."""
    firm = await api.firm()
    keys = prefix()
    stored = f"query {unique('Stored')} {{ viewer {{ clientId }} }}"
    async with app_of(database, api, redis_url=REDIS, persisted_query_key_prefix=keys) as roomy, \
            app_of(database, api, redis_url=REDIS, persisted_query_key_prefix=keys,
                   limits=dataclasses.replace(Limits(), max_query_bytes=20)) as tight:
        data_of(await roomy.post(apq(sha256(stored), stored), firm.admin))
        error = error_of(await tight.post(apq(sha256(stored)), firm.admin), 200)
        assert error["extensions"]["code"] == "QUERY_TOO_LARGE", error
        data_of(await roomy.post(apq(sha256(stored)), firm.admin))


async def test_two_instances_share_the_store_through_redis(database: Database, api: Api) -> None:
    firm = await api.firm()
    keys = prefix()
    async with app_of(database, api, redis_url=REDIS, persisted_query_key_prefix=keys) as a, \
            app_of(database, api, redis_url=REDIS, persisted_query_key_prefix=keys) as b:
        query, digest = await handshake(a, firm)
        assert redis_keys(6379, keys + "*") == [keys + digest]
        assert data_of(await b.post(apq(digest, variables={"id": firm.id}), firm.admin))["firm"]["id"] == firm.id
        assert data_of(await b.get(apq(digest, variables={"id": firm.id}), firm.admin))["firm"]["id"] == firm.id
    async with app_of(database, api) as alone:  # without Redis an instance knows only its own
        assert error_of(await alone.post(apq(digest, variables={"id": firm.id}), firm.admin), 200) == NOT_FOUND


async def test_a_text_in_redis_that_is_not_its_hashs_is_not_run(database: Database, api: Api) -> None:
    firm = await api.firm()
    keys = prefix()
    digest = sha256(firm_query())
    client = redis.from_url(REDIS)
    try:
        await client.set(keys + digest, "{ viewer { clientId } }", ex=60)  # another program's, not this hash's text
    finally:
        await client.aclose()
    async with app_of(database, api, redis_url=REDIS, persisted_query_key_prefix=keys) as app:
        assert error_of(await app.post(apq(digest), firm.admin), 200) == NOT_FOUND


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_redis_outage_falls_back_to_the_process_store(database: Database, api: Api,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    firm = await api.firm()
    caplog.set_level(logging.WARNING, "bureau.persisted_queries")
    async with app_of(database, api, redis_url=f"redis://127.0.0.1:{closed_port()}/0") as app:
        query, digest = await handshake(app, firm)
        for _ in range(3):
            assert data_of(await app.post(apq(digest, variables={"id": firm.id}), firm.admin))["firm"]["id"] == firm.id
        assert error_of(await app.post(apq(sha256(firm_query())), firm.admin), 200) == NOT_FOUND
    warnings = [r.getMessage() for r in caplog.records if r.name == "bureau.persisted_queries"]
    assert len(warnings) == 1 and "Redis unreachable for persisted queries" in warnings[0], warnings


async def test_after_a_redis_outage_the_store_is_shared_again(
    database: Database, api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    own_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, processes = own_redis
    start_redis(port, processes, tmp_path)
    firm = await api.firm()
    caplog.set_level(logging.WARNING, "bureau.persisted_queries")
    url = f"redis://127.0.0.1:{port}/0"
    async with app_of(database, api, redis_url=url) as a, app_of(database, api, redis_url=url) as b:
        processes[0].kill()
        processes[0].wait()
        query, digest = await handshake(a, firm)  # served from a's own store meanwhile
        assert data_of(await a.post(apq(digest, variables={"id": firm.id}), firm.admin))
        assert error_of(await b.post(apq(digest, variables={"id": firm.id}), firm.admin), 200) == NOT_FOUND
        start_redis(port, processes, tmp_path)
        later, later_digest = await handshake(a, firm)
        assert data_of(await b.post(apq(later_digest, variables={"id": firm.id}), firm.admin))["firm"]
    messages = [r.getMessage() for r in caplog.records if r.name == "bureau.persisted_queries"]
    assert sum("Redis unreachable for persisted queries" in m for m in messages) == 2, messages  # once each
    assert sum("persisted queries are shared again" in m for m in messages) == 2, messages


async def test_a_hit_is_answered_from_the_response_cache_as_its_text_is(
        database: Database, api: Api, statements: StatementCounter) -> None:
    firm = await api.firm()
    async with app_of(database, api, response_cache=True) as app:
        # With a list: a point read's text would be answered by its prepared read, not the cache (R113).
        query = firm_query().replace("{ id name }", "{ id name agreements(first: 1) { edges { node { id } } } }")
        data_of(await app.post({"query": query, "variables": {"id": firm.id}}, firm.admin))
        data_of(await app.post({"query": query, "variables": {"id": firm.id}}, firm.admin))
        statements.reset()
        data_of(await app.post({"query": query, "variables": {"id": firm.id}}, firm.admin))
        cached = list(statements.statements)
        data_of(await app.post(apq(sha256(query), query, {"id": firm.id}), firm.admin))
        statements.reset()
        by_hash = data_of(await app.post(apq(sha256(query), variables={"id": firm.id}), firm.admin))
        assert statements.statements == cached, "keyed by the document: the text's cached answer"
        assert by_hash["firm"]["id"] == firm.id


def manifest(tmp_path: Path, *bodies: str) -> str:
    path = tmp_path / "persisted-queries.json"
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": [
        {"id": sha256(body), "body": body, "name": None, "type": "query"} for body in bodies]}))
    return str(path)


async def test_persisted_only_runs_the_manifest_and_nothing_else(database: Database, api: Api,
                                                                 tmp_path: Path) -> None:
    firm = await api.firm()
    listed = firm_query()
    keys = prefix()
    async with app_of(database, api, persisted_queries=manifest(tmp_path, listed), persisted_only=True,
                      redis_url=REDIS, persisted_query_key_prefix=keys) as app:
        variables = {"id": firm.id}
        # The manifest's: by its id (no handshake), by its id with its text, by its text alone; GET and POST.
        for request in (app.post, app.get):
            assert data_of(await request(apq(sha256(listed), variables=variables), firm.admin))["firm"]
            assert data_of(await request(apq(sha256(listed), listed, variables), firm.admin))["firm"]
            assert data_of(await request({"query": listed, "variables": variables}, firm.admin))["firm"]
        # Anything else: a text, a text with its hash (no registration), a hash, introspection.
        other = firm_query()
        for request in (app.post, app.get):
            for body in ({"query": other, "variables": variables}, {"query": "{ __schema { queryType { name } } }"}):
                error = error_of(await request(body, firm.admin), 200)
                assert error["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST", error
            for body in (apq(sha256(other), other, variables), apq(sha256(other), variables=variables)):
                error = error_of(await request(body, firm.admin), 200)
                assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST", error
                assert sha256(other) in error["message"]
        assert error_of(await app.post(apq(sha256(other)), firm.admin), 200)["extensions"]["code"] \
            == "PERSISTED_QUERY_NOT_IN_LIST"
        assert redis_keys(6379, keys + "*") == [], "nothing is registered"
        # A mismatch is still a mismatch.
        error = error_of(await app.post(apq(sha256(other), listed), firm.admin), 400)
        assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_persisted_only_holds_on_the_websocket(database_url: str, api: Api, tmp_path: Path) -> None:
    firm = await api.firm()
    listed = "subscription($firm: ID!) { auditEvents(firmId: $firm) { id action } }"
    settings = dataclasses.replace(Settings(), persisted_queries=manifest(tmp_path, listed), persisted_only=True)
    async with serve(Runtime.create(connect(database_url), settings)) as server, live(server, firm.admin) as client:
        await client.subscribe("1", "subscription($firm: ID!) { auditEvents(firmId: $firm) { id } }",
                               {"firm": firm.id})
        message = await client.receive()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
        await client.subscribe("2", listed, {"firm": firm.id})
        await client.nothing(within=1.0)  # subscribed, waiting for events


async def subscribe(client: Any, op_id: str, payload: dict[str, Any]) -> None:
    await client.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def test_the_handshake_over_the_websocket(database_url: str, api: Api) -> None:
    firm = await api.firm()
    query = f"subscription {unique('Apq')}($firm: ID!) {{ auditEvents(firmId: $firm) {{ action }} }}"
    variables = {"firm": firm.id}
    async with serve(Runtime.create(connect(database_url), Settings())) as server:
        async with live(server, firm.admin) as client:
            await subscribe(client, "1", apq(sha256(query), variables=variables))
            assert await client.receive() == {"id": "1", "type": "error", "payload": [NOT_FOUND]}
            await subscribe(client, "2", apq(sha256(query + " "), query, variables))
            message = await client.receive()
            assert message["type"] == "error"
            assert message["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
            for number, value in enumerate(HOSTILE_PERSISTED.values()):  # R58 on this way in too
                await subscribe(client, f"h{number}", {"query": query, "variables": variables,
                                                       "extensions": {"persistedQuery": value}})
                message = await client.receive()
                assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
            await subscribe(client, "3", apq(sha256(query), query, variables))
            await client.nothing(within=1.0)  # subscribed, and so stored
        async with live(server, firm.admin) as client:  # another connection, by the hash alone
            before = server.hub.ready_count
            await subscribe(client, "4", apq(sha256(query), variables=variables))
            await until(lambda: server.hub.ready_count > before)
            await api.agreement(firm, company=False)
            message = await client.receive()
            assert message["type"] == "next" and message["payload"]["data"]["auditEvents"]["action"] \
                == "agreement.created", message


def test_a_manifest_whose_id_is_not_its_bodys_hash_stops_the_start(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": [
        {"id": sha256("{ a }"), "body": "{ b }", "name": None, "type": "query"}]}))
    with pytest.raises(ValueError, match="not the SHA-256 of its body"):
        create_app(runtime=Runtime.create(database, dataclasses.replace(Settings(), persisted_queries=str(path))))
    path.write_text(json.dumps({"format": "something else", "version": 1, "operations": []}))
    with pytest.raises(ValueError, match="apollo-persisted-query-manifest"):
        create_app(runtime=Runtime.create(database, dataclasses.replace(Settings(), persisted_queries=str(path))))
    with pytest.raises(ValueError, match="BUREAU_PERSISTED_QUERIES"):
        dataclasses.replace(Settings(), persisted_only=True, persisted_queries=None)


async def test_the_cli_adds_documents_that_the_server_then_allows(database: Database, api: Api,
                                                                  tmp_path: Path) -> None:
    firm = await api.firm()
    document = tmp_path / "FirmName.graphql"
    document.write_text("query FirmName($id: ID!) { firm(id: $id) { name } }\n")
    path = tmp_path / "manifest.json"

    def bureau(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "persisted-queries", "add", *map(str, files),
                               "--manifest", str(path)], cwd=ROOT, capture_output=True, text=True, check=False)

    added = bureau(document)
    assert added.returncode == 0, added.stderr
    written = json.loads(path.read_text())
    assert written["format"] == MANIFEST_FORMAT and written["version"] == 1
    assert written["operations"] == [{"id": sha256(document.read_text()), "body": document.read_text(),
                                      "name": "FirmName", "type": "query"}]
    bad = tmp_path / "Bad.graphql"
    bad.write_text("query Bad { firm(id: 1) { nosuchfield } }")
    refused = bureau(bad)
    assert refused.returncode == 1 and "nosuchfield" in refused.stderr
    assert json.loads(path.read_text()) == written, "a refused document leaves the manifest as it was"
    async with app_of(database, api, persisted_queries=str(path), persisted_only=True) as app:
        body = apq(sha256(document.read_text()), variables={"id": firm.id})
        assert data_of(await app.post(body, firm.admin))["firm"]["name"]


async def test_a_manifest_without_persisted_only_is_known_from_the_start(database: Database, api: Api,
                                                                         tmp_path: Path) -> None:
    """Apollo's persisted query list IDs work at once; other documents still register by the handshake."""
    firm = await api.firm()
    listed = firm_query()
    async with app_of(database, api, persisted_queries=manifest(tmp_path, listed)) as app:
        assert data_of(await app.get(apq(sha256(listed), variables={"id": firm.id}), firm.admin))["firm"]
        assert data_of(await app.post({"query": firm_query(), "variables": {"id": firm.id}}, firm.admin))["firm"]
        await handshake(app, firm)
