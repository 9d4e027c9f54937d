"""The response cache of repeated reads (R82-R84), through HTTP on PostgreSQL: a repeated query
is answered without a data statement; every kind of write makes the next read fresh; no caller
gets another's answer, no answer crosses firms; entries end after the TTL; a hit is charged."""

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update

from app import create_app
from models import Company, LicenseSession, ids
from models.data_versions import DataVersion
from models.db import Database
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import USER_SCOPES, Api, Firm, unique
from tests.api.test_accountant_until import ENDS, LAST_MOMENT, NOV_11, grant
from tests.api.test_memberships import invite, setup
from tests.api.test_sessions import clock as session_clock
from tests.api.test_sessions import concurrent_company, concurrent_in_use, start
from tests.conftest import StatementCounter
from web.response_cache import ResponseCache

DASHBOARD = """query($id: ID!) { firm(id: $id) { name agreements(first: 10) { edges { node { name
  subscription { id seats { licenseType purchased inUse } }
  companies(first: 10) { edges { node { id name
    members(first: 20) { edges { node { id status role user { email } } } } } } } } } } } }"""
COMPANY = "query($id: ID!) { company(id: $id) { id name members(first: 20) { edges { node { id role } } } } }"
VIEWER = "{ viewer { clientId scopes user { email } } }"


@dataclasses.dataclass
class Cached:
    api: Api
    cache: ResponseCache
    runtime: Runtime


@pytest.fixture
async def cached(database: Database, api: Api) -> AsyncIterator[Cached]:
    """An app of this test's own (its cache starts empty), on the session's database and clients."""
    settings = dataclasses.replace(Settings(), response_cache=True, response_cache_ttl=10.0)
    runtime = Runtime.create(database, settings)
    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        yield Cached(Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id),
                     app.state.response_cache, runtime)


@contextmanager
def frozen(runtime: Runtime, when: datetime) -> Iterator[None]:
    previous = runtime.clock
    runtime.clock = lambda: when
    try:
        yield
    finally:
        runtime.clock = previous


async def read(api: Api, statements: StatementCounter, query: str, variables: dict[str, Any] | None,
               token: str) -> tuple[dict[str, Any], list[str]]:
    statements.reset()
    response = await api.post(query, variables, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body, list(statements.statements)


def data_statements(seen: list[str], bare: list[str]) -> list[str]:
    """What a request sent beyond authentication (one statement, or none while the principal is
    kept, R77: told by its text) and what `bare` (the version read) sends."""
    rest = [s for s in seen if not (" AS kind, " in s and "UNION ALL" in s)]
    for statement in bare:
        if statement in rest:
            rest.remove(statement)
    return rest


async def bare_statements(api: Api, statements: StatementCounter, token: str) -> list[str]:
    """A query that reads no data: authentication and the versions only."""
    await read(api, statements, "{ viewer { clientId } }", None, token)  # the cache's secret is made once
    return (await read(api, statements, "{ __typename viewer { clientId } }", None, token))[1]


async def dashboard(api: Api, statements: StatementCounter, firm: Firm, token: str | None = None) \
        -> tuple[dict[str, Any], list[str]]:
    return await read(api, statements, DASHBOARD, {"id": firm.id}, token or firm.admin)


def names(body: dict[str, Any]) -> list[str]:
    return [c["node"]["name"] for a in body["data"]["firm"]["agreements"]["edges"]
            for c in a["node"]["companies"]["edges"]]


def pools(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    agreement = body["data"]["firm"]["agreements"]["edges"][0]["node"]
    return {p["licenseType"]: p for p in agreement["subscription"]["seats"]}


def members(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["node"]["id"], m["node"]["status"]) for a in body["data"]["firm"]["agreements"]["edges"]
            for c in a["node"]["companies"]["edges"] for m in c["node"]["members"]["edges"]]


async def test_a_repeated_read_is_answered_from_the_cache(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    await invite(api, firm, company_id)
    bare = await bare_statements(api, statements, firm.admin)
    cold, cold_statements = await dashboard(api, statements, firm)
    warm, warm_statements = await dashboard(api, statements, firm)
    assert data_statements(cold_statements, bare), "the first read reads the data"
    assert data_statements(warm_statements, bare) == [], "the second is the cache's"
    assert sum("data_versions" in s for s in warm_statements) == 1
    assert warm["data"] == cold["data"]
    # The same cost as the miss, in the same shape.
    assert warm["extensions"]["cost"]["requestedQueryCost"] == cold["extensions"]["cost"]["requestedQueryCost"]
    assert warm["extensions"]["cost"]["actualQueryCost"] == cold["extensions"]["cost"]["actualQueryCost"]
    assert set(warm["extensions"]["cost"]["throttleStatus"]) == set(cold["extensions"]["cost"]["throttleStatus"])
    # Another token of the same user with the same scopes shares the answer.
    other_token = await api.token(firm.admin_email)
    shared, shared_statements = await dashboard(api, statements, firm, other_token)
    assert data_statements(shared_statements, bare) == [] and shared["data"] == cold["data"]


async def test_a_hit_is_charged_as_the_miss_was(database: Database, api: Api) -> None:
    settings = dataclasses.replace(Settings(), response_cache=True, cost_limit=5000, cost_bucket=5000,
                                   cost_restore_rate=1)
    runtime = Runtime.create(database, settings)
    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        own = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        firm, _, company_id = await setup(api)
        token = await own.token(firm.admin_email)
        answers = [(await own.post(COMPANY, {"id": company_id}, token)).json() for _ in range(3)]
    assert all("errors" not in answer for answer in answers), answers
    costs = [answer["extensions"]["cost"] for answer in answers]
    actual = costs[0]["actualQueryCost"]
    assert actual > 0 and {c["actualQueryCost"] for c in costs} == {actual}
    left = [c["throttleStatus"]["currentlyAvailable"] for c in costs]
    # Each answer, cached or not, took its actual cost (a point or two may have come back meanwhile).
    assert all(left[n] - actual - 2 <= left[n + 1] <= left[n] - actual + 2 for n in range(2)), (left, actual)


async def test_a_rename_makes_the_next_read_fresh(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    await dashboard(api, statements, firm)
    await api.mutate("updateCompany", {"companyId": company_id, "name": "Renamed AB"}, "company { id }",
                     token=firm.admin)
    assert names((await dashboard(api, statements, firm))[0]) == ["Renamed AB"]


async def test_changing_seats_makes_the_next_read_fresh(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, _ = await setup(api, named=5)
    before = pools((await dashboard(api, statements, firm))[0])
    await api.mutate("changeSeats", {"subscriptionId": (await dashboard(api, statements, firm))[0]["data"]["firm"]
                                     ["agreements"]["edges"][0]["node"]["subscription"]["id"],
                                     "licenseType": "NAMED", "seats": 7}, "subscription { id }", token=firm.admin)
    after = pools((await dashboard(api, statements, firm))[0])
    assert (before["NAMED"]["purchased"], after["NAMED"]["purchased"]) == (5, 7)


async def test_invitations_and_deactivations_make_the_next_read_fresh(cached: Cached,
                                                                      statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    await invite(api, firm, company_id, role="ADMINISTRATOR")  # the company's administrator (R21)
    first = (await dashboard(api, statements, firm))[0]
    membership_id, _ = await invite(api, firm, company_id, role="ADMINISTRATOR")
    invited = (await dashboard(api, statements, firm))[0]
    assert len(members(invited)) == len(members(first)) + 1 and (membership_id, "INVITED") in members(invited)
    assert pools(invited)["NAMED"]["inUse"] == pools(first)["NAMED"]["inUse"] + 1
    await api.mutate("deactivateMembership", {"membershipId": membership_id}, "membership { id }", token=firm.admin)
    after = (await dashboard(api, statements, firm))[0]
    assert (membership_id, "DEACTIVATED") in members(after)
    assert pools(after)["NAMED"]["inUse"] == pools(first)["NAMED"]["inUse"]


async def test_a_deactivated_member_no_longer_sees_the_company(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    await invite(api, firm, company_id, role="ADMINISTRATOR")  # so that the other may go (R21)
    membership_id, email = await invite(api, firm, company_id, role="ADMINISTRATOR")
    token = await api.token(email)
    bare = await bare_statements(api, statements, token)
    seen = [await read(api, statements, COMPANY, {"id": company_id}, token) for _ in range(2)]
    assert seen[0][0]["data"]["company"]["id"] == company_id and seen[1][0]["data"] == seen[0][0]["data"]
    assert data_statements(seen[1][1], bare) == []  # the company is in the cache for this user
    await api.mutate("deactivateMembership", {"membershipId": membership_id}, "membership { id }", token=firm.admin)
    after = await api.post(COMPANY, {"id": company_id}, token)
    assert after.json()["data"] == {"company": None}, after.text


async def test_no_caller_gets_another_callers_answer(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    _, admin_email = await invite(api, firm, company_id, role="ADMINISTRATOR")
    reporter_id, reporter_email = await invite(api, firm, company_id, role="REPORTER")
    admin, reporter = await api.token(admin_email), await api.token(reporter_email)
    by_admin = (await read(api, statements, COMPANY, {"id": company_id}, admin))[0]
    assert len(by_admin["data"]["company"]["members"]["edges"]) == 2
    # The same document and variables: a reporter sees only its own membership (R-roles), not the admin's answer.
    by_reporter = (await read(api, statements, COMPANY, {"id": company_id}, reporter))[0]
    assert [e["node"]["id"] for e in by_reporter["data"]["company"]["members"]["edges"]] == [reporter_id]
    # Users of the same roles are still different callers: `viewer` names each.
    viewers = [(await read(api, statements, VIEWER, None, token))[0]["data"]["viewer"]["user"]["email"]
               for token in (admin, reporter, admin)]
    assert viewers == [admin_email, reporter_email, admin_email]
    # The same user with fewer scopes is refused, not served the answer of its wider token.
    narrow = await api.token(admin_email, scopes=["firms:read"])
    refused = (await api.post(COMPANY, {"id": company_id}, narrow)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Another client of the same user and scopes: its clientId differs, so does its answer.
    by_vendor_client = await api.token(admin_email, scopes=USER_SCOPES, client_id=api.vendor_client_id)
    assert (await read(api, statements, VIEWER, None, by_vendor_client))[0]["data"]["viewer"]["clientId"] \
        == api.vendor_client_id


async def test_an_answer_never_crosses_firms(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    other, _, other_company = await setup(api)
    await dashboard(api, statements, firm)
    assert (await dashboard(api, statements, firm, other.admin))[0]["data"] == {"firm": None}
    assert (await read(api, statements, COMPANY, {"id": company_id}, other.admin))[0]["data"] == {"company": None}
    # A write in the other firm leaves this firm's answer cached: the versions are per firm. (The
    # write makes kept principals stale, R77: the bare requests after it authenticate again.)
    await api.mutate("updateCompany", {"companyId": other_company, "name": unique("Other ")}, "company { id }",
                     token=other.admin)
    bare = await bare_statements(api, statements, firm.admin)
    assert data_statements((await dashboard(api, statements, firm))[1], bare) == []


async def test_entries_end_after_the_ttl(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, _ = await setup(api)
    bare = await bare_statements(api, statements, firm.admin)
    start = datetime.now(UTC).replace(hour=12)  # mid-day: the date in the key stays the same
    with frozen(cached.runtime, start):
        await dashboard(api, statements, firm)
    with frozen(cached.runtime, start + timedelta(seconds=9)):
        assert data_statements((await dashboard(api, statements, firm))[1], bare) == []
    with frozen(cached.runtime, start - timedelta(seconds=1)):  # a clock set back: not taken for young
        assert data_statements((await dashboard(api, statements, firm))[1], bare) != []
    with frozen(cached.runtime, start + timedelta(seconds=10)):
        assert data_statements((await dashboard(api, statements, firm))[1], bare) != []


async def test_the_vendor_mutations_and_errors_are_never_cached(cached: Cached, statements: StatementCounter) -> None:
    api = cached.api
    firm, _, company_id = await setup(api)
    vendor = await api.vendor()
    before = len(cached.cache.local.entries)
    await read(api, statements, DASHBOARD, {"id": firm.id}, vendor)
    await api.mutate("updateCompany", {"companyId": company_id, "name": unique("Name ")}, "company { id }",
                     token=firm.admin)
    errors = await api.post("query($id: ID!) { company(id: $id) { id nope } }", {"id": company_id}, firm.admin)
    assert errors.json()["errors"]
    # An error while executing (a field rule refuses a non-null field): partial data, never kept.
    _, member_email = await invite(api, firm, company_id, role="ADMINISTRATOR")
    member = await api.token(member_email)
    refused = "query($id: ID!) { company(id: $id) { id firm { name resellerDiscountPercent } } }"
    for _ in range(2):
        body = (await api.post(refused, {"id": company_id}, member)).json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    narrow = await api.token(firm.admin_email, scopes=["firms:read"])
    assert (await api.post(COMPANY, {"id": company_id}, narrow)).json()["errors"]
    assert len(cached.cache.local.entries) == before


async def test_writes_outside_graphql_bump_the_versions(cached: Cached, statements: StatementCounter) -> None:
    """The rollover, the CLI and the invitation pages write through sessions too: an ORM change, a bulk
    UPDATE and raw SQL through a session all make the next read fresh."""
    api = cached.api
    firm, _, company_id = await setup(api)
    pk = ids.decode_as(company_id, "Company")
    await dashboard(api, statements, firm)
    async with cached.runtime.database.sessions.begin() as session:
        company = await session.scalar(select(Company).where(Company.id == pk))
        assert company is not None
        company.name = "By the ORM"
    assert names((await dashboard(api, statements, firm))[0]) == ["By the ORM"]
    async with cached.runtime.database.sessions.begin() as session:
        await session.execute(update(Company).where(Company.id == pk).values(name="By a bulk update"))
    assert names((await dashboard(api, statements, firm))[0]) == ["By a bulk update"]
    async with cached.runtime.database.sessions.begin() as session:
        await session.execute(text("UPDATE companies SET name = 'By raw SQL' WHERE id = :id"), {"id": pk})
    assert names((await dashboard(api, statements, firm))[0]) == ["By raw SQL"]
    async with cached.runtime.database.sessions() as session:
        versions = dict((await session.execute(select(DataVersion.scope, DataVersion.version))).all())
    firm_pk = ids.decode_as(firm.id, "Firm")
    assert versions[f"firm:{firm_pk}"] >= 2 and versions["global"] >= 1


async def test_an_accountant_access_that_ends_ends_its_cached_answers(cached: Cached,
                                                                      statements: StatementCounter) -> None:
    """R52: access ends at a set time with no write; the grants read at each request then change, and
    with them the key: the answer cached a moment before the end is not served after it."""
    api = cached.api
    with frozen(cached.runtime, NOV_11):
        firm, agreement_id, company_id = await setup(api, named=2)
        _, email = await grant(api, firm, company_id)
        # Access to another company of the firm, without an end: the firms the accountant sees stay the same.
        await invite(api, firm, await api.company(firm, agreement_id), email=email, role="REPORTER")
        accountant = await api.token(email)
    with frozen(cached.runtime, LAST_MOMENT):
        bare = await bare_statements(api, statements, accountant)
        for _ in range(2):
            seen, sent = await read(api, statements, COMPANY, {"id": company_id}, accountant)
            assert seen["data"]["company"]["id"] == company_id
        assert data_statements(sent, bare) == []
    with frozen(cached.runtime, ENDS):
        assert (await api.post(COMPANY, {"id": company_id}, accountant)).json()["data"] == {"company": None}


async def test_bulk_statements_bump_the_firms_of_their_rows(cached: Cached) -> None:
    """A bulk UPDATE or DELETE bumps the firms of the rows it touches, not everyone's; one that moves
    rows to another firm cannot tell the new firm from its rows and bumps the global version."""
    api = cached.api
    firm, _, company_id = await setup(api)
    pk, firm_pk = ids.decode_as(company_id, "Company"), ids.decode_as(firm.id, "Firm")

    async def versions() -> dict[str, int]:
        async with cached.runtime.database.sessions() as session:
            return dict((await session.execute(select(DataVersion.scope, DataVersion.version))).all())

    before = await versions()
    async with cached.runtime.database.sessions.begin() as session:
        await session.execute(update(Company).where(Company.id == pk).values(name=unique("Bulk ")))
        await session.execute(delete(LicenseSession).where(LicenseSession.company_id == pk))
    after = await versions()
    assert after[f"firm:{firm_pk}"] == before[f"firm:{firm_pk}"] + 1
    assert after.get("global") == before.get("global")
    async with cached.runtime.database.sessions.begin() as session:
        await session.execute(update(Company).where(Company.id == pk).values(firm_id=firm_pk))
    assert (await versions())["global"] == (after.get("global") or 0) + 1


async def test_an_answer_is_kept_no_longer_than_until_it_changes_with_time(cached: Cached,
                                                                           statements: StatementCounter) -> None:
    """R84: a session expiring frees its seat with no write; the answer read a second before is kept
    only until that moment, not for the whole TTL."""
    api = cached.api
    firm, company_id, subscription_id, (ann, _) = await concurrent_company(api, seats=1, users=2)
    bare = await bare_statements(api, statements, firm.admin)
    with session_clock(api) as now:
        await start(api, ann, company_id)
        now.advance(minutes=14, seconds=58)
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        now.advance(seconds=1)
        statements.reset()
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        assert data_statements(statements.statements, bare) == [], "still cached a second before the end"
        now.advance(seconds=1)  # expires_at <= now: the seat is free, nobody called endSession
        assert await concurrent_in_use(api, firm, subscription_id) == 0


async def test_misses_of_one_key_at_once_read_the_data_once(cached: Cached, statements: StatementCounter) -> None:
    """R117: eight requests that miss together send the data statements of one; every one is answered
    alike and charged as a hit is."""
    api = cached.api
    firm, _, company_id = await setup(api)
    await invite(api, firm, company_id)
    bare = await bare_statements(api, statements, firm.admin)
    _, cold_statements = await read(api, statements, COMPANY, {"id": company_id}, firm.admin)
    one_miss = data_statements(cold_statements, bare)
    assert one_miss
    await api.mutate("updateCompany", {"companyId": company_id, "name": unique("Herd ")}, "company { id }",
                     token=firm.admin)  # a new version: the next reads all miss
    await bare_statements(api, statements, firm.admin)
    shared = cached.cache.shared_misses
    # The first keeps its answer only once the seven others wait for it: else they could come late
    # enough (a pool connection to wait for) to be hits, and prove nothing.
    cache, waiting, all_wait = cached.cache, [0], asyncio.Event()
    landed, put = cache.landed, cache.put

    async def counted(running: Any) -> Any:
        waiting[0] += 1
        if waiting[0] == 7:
            all_wait.set()
        return await landed(running)

    async def put_when_all_wait(key: str, entry: Any) -> None:
        await asyncio.wait_for(all_wait.wait(), timeout=30)
        await put(key, entry)

    cache.landed, cache.put = counted, put_when_all_wait  # type: ignore[method-assign]
    statements.reset()
    try:
        responses = await asyncio.wait_for(asyncio.gather(
            *(api.post(COMPANY, {"id": company_id}, firm.admin) for _ in range(8))), timeout=60)
    finally:
        cache.landed, cache.put = landed, put  # type: ignore[method-assign]
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 and "errors" not in b for r, b in zip(responses, bodies, strict=True))
    assert len({json.dumps(b["data"]) for b in bodies}) == 1
    assert all(b["extensions"]["cost"]["actualQueryCost"] == bodies[0]["extensions"]["cost"]["actualQueryCost"]
               for b in bodies)
    assert data_statements(list(statements.statements), bare * 8) == one_miss, "one miss read the data"
    assert cached.cache.shared_misses == shared + 7 and cached.cache._flights == {}


async def test_misses_of_an_answer_with_errors_each_read_their_own(cached: Cached) -> None:
    """R117: what is not kept (an error while executing) leaves every waiter to answer for itself."""
    api = cached.api
    firm, _, company_id = await setup(api)
    _, member_email = await invite(api, firm, company_id, role="ADMINISTRATOR")
    member = await api.token(member_email)
    refused = "query($id: ID!) { company(id: $id) { id firm { name resellerDiscountPercent } } }"
    shared = cached.cache.shared_misses
    responses = await asyncio.wait_for(asyncio.gather(
        *(api.post(refused, {"id": company_id}, member) for _ in range(4))), timeout=60)
    for response in responses:
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]
    assert cached.cache.shared_misses == shared and cached.cache._flights == {}
