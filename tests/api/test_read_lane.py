"""R110: a prepared read is answered in the front door, before routing, exactly as the app would answer it:
its body (test_prepared_reads), its headers with CORS, its request id, its log line and metrics; and what
is not so simple reaches the app unchanged, authenticated once."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import String, TypeDecorator, bindparam, func, select

from app import create_app
from models import Company, Membership
from models.db import DriverStatement, connect
from resolvers.runtime import Runtime
from schema.prepared_reads import PREPARED
from settings import Settings
from tests.api.client import Api, Firm
from tests.conftest import StatementCounter

ORIGIN = "https://dashboard.example"
QUERY = "query Lane($id: ID!) { company(id: $id) { id name } }"  # a point read (R113)
LIST = "query Lane($id: ID!) { company(id: $id) { id name members(first: 5) { edges { node { id } } } } }"


@pytest.fixture
async def lane(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, Firm, str]]:
    """An app of its own, with a browser origin allowed, and a company of a firm of its own."""
    app = create_app(runtime=Runtime.create(api.runtime.database, Settings(cors_origins=(ORIGIN,))))
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    assert company_id is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        yield http, firm, company_id


async def _twice(http: httpx.AsyncClient, token: str, company_id: str, path: str = "/graphql", query: str = QUERY,
                 **headers: str) -> tuple[httpx.Response, httpx.Response, int]:
    body = {"query": query, "operationName": "Lane", "variables": {"id": company_id}}
    sent = {"Authorization": f"Bearer {token}", **headers}
    await http.post("/graphql", json={"query": "{ __typename }"}, headers=sent)  # the principal kept
    first = await http.post(path, json=body, headers=sent)
    hits = PREPARED.hits
    second = await http.post(path, json=body, headers=sent)
    return first, second, PREPARED.hits - hits


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.multi_items()
            if name not in ("x-request-id", "content-length")]


@pytest.mark.parametrize("origin", [None, ORIGIN, "https://elsewhere.example"])
async def test_the_lane_answers_with_the_app_s_headers(lane: tuple[httpx.AsyncClient, Firm, str],
                                                       origin: str | None) -> None:
    http, firm, company_id = lane
    first, second, hits = await _twice(http, firm.admin, company_id, **({"Origin": origin} if origin else {}))
    assert hits == 1, "the second request was not a prepared read"
    assert _headers(second) == _headers(first)
    allowed = second.headers.get("access-control-allow-origin")
    assert allowed == (ORIGIN if origin == ORIGIN else None)
    if origin == ORIGIN:
        assert second.headers["access-control-expose-headers"] == "X-Request-Id"


async def test_the_caller_s_request_id_comes_back(lane: tuple[httpx.AsyncClient, Firm, str]) -> None:
    http, firm, company_id = lane
    _, second, hits = await _twice(http, firm.admin, company_id, **{"X-Request-Id": "dash-42"})
    assert hits == 1
    assert second.headers["x-request-id"] == "dash-42"
    assert second.json()["extensions"]["requestId"] == "dash-42"


async def test_the_lane_writes_the_request_s_log_line_and_metrics(lane: tuple[httpx.AsyncClient, Firm, str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    http, firm, company_id = lane
    before = REGISTRY.get_sample_value("bureau_graphql_operations_total", {"operation": "Lane", "outcome": "ok"}) or 0
    with caplog.at_level(logging.INFO, logger="bureau.request"):
        _, second, hits = await _twice(http, firm.admin, company_id)
    assert hits == 1
    line = [r for r in caplog.records if r.name == "bureau.request"][-1]
    assert (line.status, line.operation, line.operation_type, line.path) == (200, "Lane", "query", "/graphql")  # type: ignore[attr-defined]
    assert line.request_id == second.headers["x-request-id"] and line.client_id  # type: ignore[attr-defined]
    after = REGISTRY.get_sample_value("bureau_graphql_operations_total", {"operation": "Lane", "outcome": "ok"})
    assert after == before + 2  # the two reads, strawberry's and the lane's


async def test_what_the_lane_does_not_take_reaches_the_app(lane: tuple[httpx.AsyncClient, Firm, str]) -> None:
    """A query string, a form, a missing token: the app's own answers, and no prepared read."""
    http, firm, company_id = lane
    first, second, hits = await _twice(http, firm.admin, company_id, path="/graphql?debug=1")
    assert hits == 0 and second.json() == {**first.json(), "extensions": second.json()["extensions"]}
    body = {"query": QUERY, "operationName": "Lane", "variables": {"id": company_id}}
    await _twice(http, firm.admin, company_id)  # prepared now
    hits = PREPARED.hits
    missing = await http.post("/graphql", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await http.post("/graphql", json=body, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    text = await http.post("/graphql", content=b"query=x", headers={"Authorization": f"Bearer {firm.admin}",
                                                                     "Content-Type": "text/plain"})
    assert text.status_code in (400, 415)
    assert PREPARED.hits == hits


async def test_a_driver_statement_runs_as_sqlalchemy_runs_it(api: Api) -> None:
    """IN lists expanded, bind casts and processors applied, the clock bound anew each time."""
    database = api.runtime.database
    now = bindparam("now", type_=Membership.__table__.c.access_ends_at.type, required=True)
    statement = select(func.json_build_object(
        "count", select(func.count()).select_from(Company).where(Company.id.in_([1, 2, 3, -1])).scalar_subquery(),
        "empty", select(func.count()).select_from(Company).where(Company.id.in_([])).scalar_subquery(),
        "later", now > datetime(2026, 1, 1, tzinfo=UTC),
        "at", func.to_char(func.timezone("UTC", now), "YYYY-MM-DD HH24:MI"),
    ).cast(Company.name.type))
    driver = DriverStatement.of(statement, database.engine.dialect, "now", datetime.now(UTC))
    for at in (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), datetime(2028, 2, 29, 12, 0, tzinfo=UTC)):
        async with database.reads() as session:
            expected: Any = await session.scalar(statement, {"now": at})
        assert await database.driver_scalar(driver, at) == expected


class Shouted(TypeDecorator[str]):
    """A type whose bind processor changes the value, as a digest or an enum stored by name would."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.upper()


async def test_every_bind_processor_applies_on_the_driver(api: Api) -> None:
    """Those of the fixed parameters and the variable's, not only the IN lists' (the expanded state's)."""
    database = api.runtime.database
    statement = select(func.concat(bindparam("fixed", "abc", type_=Shouted()), "-",
                                   bindparam("asked", type_=Shouted())))
    driver = DriverStatement.of(statement, database.engine.dialect, "asked", "x")
    async with database.reads() as session:
        expected = await session.scalar(statement, {"asked": "xyz"})
    assert expected == "ABC-XYZ"
    assert await database.driver_scalar(driver, "xyz") == expected


async def test_a_held_connection_idle_past_the_ping_interval_is_pinged(database_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """R97 for held connections: given back to the pool it would look freshly checked in, and never pinged."""
    import asyncio

    import models.db

    database = connect(database_url, pool_size=4)
    try:
        one = DriverStatement.of(select(bindparam("n", type_=Company.name.type)), database.engine.dialect, "n", "")
        assert await database.driver_scalar(one, "first") == "first"
        [(held, _)] = database._held
        seen: list[str] = []
        held.driver_connection.add_query_logger(lambda record: seen.append(record.query))  # type: ignore[union-attr]
        monkeypatch.setattr(models.db, "IDLE_PING_SECONDS", -1.0)
        assert await database.driver_scalar(one, "second") == "second"
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon after, not at once
        assert seen == ["SELECT 1", one.sql] and database._held[0][0] is held  # pinged, sound, used, held again
        monkeypatch.setattr(models.db, "IDLE_PING_SECONDS", 30.0)
        assert await database.driver_scalar(one, "third") == "third"
        await asyncio.sleep(0.05)
        assert seen == ["SELECT 1", one.sql, one.sql]  # not idle: no ping
    finally:
        await database.dispose()


async def test_the_first_authorization_header_decides_in_the_lane_as_in_the_app(
        api: Api, lane: tuple[httpx.AsyncClient, Firm, str]) -> None:
    http, firm, company_id = lane
    other = await api.firm()
    body = {"query": QUERY, "operationName": "Lane", "variables": {"id": company_id}}
    both = [("Authorization", f"Bearer {firm.admin}"), ("Authorization", f"Bearer {other.admin}")]
    first = await http.post("/graphql", json=body, headers=both)
    hits = PREPARED.hits
    second = await http.post("/graphql", json=body, headers=both)
    assert PREPARED.hits == hits + 1, "the second request was not a prepared read"
    assert first.json()["data"]["company"]["id"] == company_id == second.json()["data"]["company"]["id"]


@pytest.fixture
async def cached_lane(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, Firm, str, Any]]:
    """As `lane`, with the response cache on (R82): the lane answers hits, and prepared reads of points (R113)."""
    app = create_app(runtime=Runtime.create(api.runtime.database, Settings(cors_origins=(ORIGIN,),
                                                                             response_cache=True)))
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    assert company_id is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        yield http, firm, company_id, app.state.response_cache


async def test_a_cache_hit_in_the_lane_is_the_app_s_answer(cached_lane: tuple[httpx.AsyncClient, Firm, str, Any],
                                                          statements: StatementCounter,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Its body, headers, request id and log line; one statement, the data versions' (R82, R84, R91)."""
    http, firm, company_id, cache = cached_lane
    _, _, prepared = await _twice(http, firm.admin, company_id, query=LIST)  # a miss, then a hit
    assert prepared == 0  # a list is not a point read (R113)
    body = {"query": LIST, "operationName": "Lane", "variables": {"id": company_id}}
    bearer = {"Authorization": f"Bearer {firm.admin}", "Origin": ORIGIN, "X-Request-Id": "hit-1"}
    statements.reset()
    with caplog.at_level(logging.INFO, logger="bureau.request"):
        hit = await http.post("/graphql", json=body, headers=bearer)
    assert [s for s in statements.statements if "data_versions" not in s] == [], statements.statements
    assert len(statements.statements) == 1
    miss = await http.post("/graphql", json={**body, "variables": {"id": company_id}, "operationName": "Lane",
                                             "query": LIST + " "}, headers=bearer)  # another document: a miss
    assert _headers(hit) == _headers(miss) and hit.headers["access-control-allow-origin"] == ORIGIN
    assert hit.json()["data"] == miss.json()["data"]
    assert hit.json()["extensions"]["requestId"] == hit.headers["x-request-id"] == "hit-1"
    line = next(r for r in caplog.records if r.name == "bureau.request" and r.request_id == "hit-1")  # type: ignore[attr-defined]
    assert (line.status, line.operation, line.operation_type) == (200, "Lane", "query")  # type: ignore[attr-defined]


async def test_a_write_makes_the_lane_s_next_answer_fresh(api: Api,
                                                          cached_lane: tuple[httpx.AsyncClient, Firm, str, Any],
                                                          statements: StatementCounter) -> None:
    http, firm, company_id, _ = cached_lane
    _, second, _ = await _twice(http, firm.admin, company_id, query=LIST)
    await api.mutate("updateCompany", {"companyId": company_id, "name": "Renamed By R110"}, "company { id }",
                     token=firm.admin)
    body = {"query": LIST, "operationName": "Lane", "variables": {"id": company_id}}
    statements.reset()
    fresh = await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {firm.admin}"})
    assert fresh.json()["data"]["company"]["name"] == "Renamed By R110" != second.json()["data"]["company"]["name"]
    # The miss reads the versions once (the lane's key is the app's), then the data.
    assert sum("data_versions" in s for s in statements.statements) == 1, statements.statements


async def test_with_the_cache_on_a_point_read_is_still_a_prepared_read(
        api: Api, cached_lane: tuple[httpx.AsyncClient, Firm, str, Any], statements: StatementCounter) -> None:
    """R113: one statement, the data's, not the versions': as cheap as a hit, no key, and fresh."""
    http, firm, company_id, _ = cached_lane
    first, second, prepared = await _twice(http, firm.admin, company_id)
    assert prepared == 1 and second.json()["data"] == first.json()["data"]
    assert _headers(second) == _headers(first)
    await api.mutate("updateCompany", {"companyId": company_id, "name": "Renamed By R113"}, "company { id }",
                     token=firm.admin)
    body = {"query": QUERY, "operationName": "Lane", "variables": {"id": company_id}}
    statements.reset()
    fresh = await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {firm.admin}"})
    assert fresh.json()["data"]["company"]["name"] == "Renamed By R113"
    # The write made the kept principal stale (R77): it is read again, then the data; never the versions.
    assert [s for s in statements.statements if "data_versions" in s] == [], statements.statements
    assert statements.statements[-1].startswith("SELECT CAST(json_build_object"), statements.statements
    statements.reset()
    again = await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {firm.admin}"})
    assert again.json()["data"] == fresh.json()["data"]
    assert len(statements.statements) == 1 and "data_versions" not in statements.statements[0], statements.statements


async def test_driver_statements_hold_half_the_pool_and_give_it_back(database_url: str) -> None:
    """R110: connections stay checked out between driver statements, at most `hold` (half the pool)."""
    import asyncio

    from sqlalchemy import literal, text

    database = connect(database_url, pool_size=4)
    try:
        pool = database.engine.sync_engine.pool
        assert database.hold == 2
        nap = DriverStatement.of(select(func.pg_sleep(bindparam("s")).cast(Company.name.type)),
                                 database.engine.dialect, "s", 0.0)
        await asyncio.gather(*(database.driver_scalar(nap, 0.05) for _ in range(5)))
        assert pool.checkedout() == 2  # type: ignore[attr-defined]
        # An error of the statement's own leaves its connection sound, and held.
        broken = DriverStatement.of(select((literal(1) / bindparam("zero")).cast(Company.name.type)),
                                    database.engine.dialect, "zero", 1)
        with pytest.raises(Exception, match="division by zero"):
            await database.driver_scalar(broken, 0)
        assert pool.checkedout() == 2  # type: ignore[attr-defined]
        # A held connection the server closed is replaced, not used.
        async with database.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                     "AND application_name = '' AND backend_type = 'client backend'"))
        await asyncio.sleep(0.2)  # asyncpg sees its sockets closed
        assert await database.driver_scalar(nap, 0.0) == ""
        await database.release_held()
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_the_app_is_handed_a_copy_of_the_kept_principal(api: Api) -> None:
    """The lane reads the kept principal itself; a request it leaves to the app gets a copy, whose grants the
    app may change without changing what the next request is given (R112)."""
    from starlette.middleware.cors import CORSMiddleware

    from auth.principals import PrincipalCache
    from web.read_lane import AUTHENTICATED, ReadLane

    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    runtime = api.runtime
    for _ in range(2):  # the principal kept, and a read prepared: the lane is open
        await api.http.post("/graphql", json={"query": QUERY, "operationName": "Lane", "variables": {"id": company_id}},
                            headers={"Authorization": f"Bearer {firm.admin}"})
    assert len(PREPARED)
    cache: PrincipalCache = runtime.principals
    now = runtime.now()
    kept = cache.get(firm.admin, now, shared=True)
    assert kept is not None and cache.get(firm.admin, now, shared=True) is kept
    async def nothing(*_: Any) -> None:
        raise AssertionError("CORS is the lane's concern here, not an app's")

    lane = ReadLane(runtime, CORSMiddleware(app=nothing), None)
    body = b'{"query": "query NotPrepared { viewer { clientId } }"}'
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/graphql", "query_string": b"",
                             "headers": [(b"authorization", f"Bearer {firm.admin}".encode()),
                                         (b"content-type", b"application/json")]}

    async def send(message: Any) -> None:
        raise AssertionError("the lane answered a read it has never prepared")

    assert not await lane(scope, body, send)
    handed, _ = scope["state"][AUTHENTICATED]
    assert handed == kept and handed is not kept and handed.grants.firm_roles is not kept.grants.firm_roles
    handed.grants.firm_roles.clear()
    assert cache.get(firm.admin, now, shared=True).grants.firm_roles  # type: ignore[union-attr]
