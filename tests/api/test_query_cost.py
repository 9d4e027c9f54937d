"""Query cost (R63, R64): every operation is costed before it runs, refused above
BUREAU_COST_LIMIT, and drawn from its client's leaky bucket (auth.budget)."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app import create_app
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, Firm
from tests.conftest import StatementCounter

# The query of issue 12: agreement -> companies -> agreement -> companies, three levels, no `first`.
CYCLIC = """query($id: ID!) { agreement(id: $id) { companies { edges { node { agreement {
  companies { edges { node { agreement { companies { edges { node { name } } } } } } } } } } } } }"""


async def statements_of(api: Api, statements: StatementCounter, query: str, variables: dict[str, Any],
                        token: str) -> tuple[int, dict[str, Any], float]:
    statements.reset()
    started = time.perf_counter()
    body = await api.gql(query, variables, token=token)
    return statements.count, body, time.perf_counter() - started


@pytest.fixture(scope="module")
async def thirty(api: Api) -> tuple[Firm, str]:
    """A firm whose agreement has 30 companies."""
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    for _ in range(29):
        await api.company(firm, agreement_id)
    return firm, agreement_id


async def test_every_response_reports_its_cost(api: Api) -> None:
    firm = await api.firm()
    body = await api.gql("query($id: ID!) { firm(id: $id) { name agreements(first: 3) { edges { node { name } } } } }",
                         {"id": firm.id}, token=firm.admin)
    assert "errors" not in body
    cost = body["extensions"]["cost"]
    # firm, name, agreements + 3 x (edges, node, name)
    assert cost["requestedQueryCost"] == 3 + 3 * 3
    assert cost["actualQueryCost"] == 4  # no agreement yet: firm, name, agreements and an empty edges
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == Settings().cost_bucket
    assert status["restoreRate"] == Settings().cost_restore_rate
    assert 0 < status["currentlyAvailable"] <= status["maximumAvailable"]


async def test_the_cyclic_query_is_refused_before_any_sql(
    api: Api, statements: StatementCounter, thirty: tuple[Firm, str]
) -> None:
    firm, agreement_id = thirty
    await api.post("{ __typename }", token=firm.admin)  # the principal read and kept (R77)
    baseline, _, _ = await statements_of(api, statements, "{ __typename }", {}, firm.admin)  # authentication only
    count, body, seconds = await statements_of(api, statements, CYCLIC, {"id": agreement_id}, firm.admin)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["limit"] == Settings().cost_limit
    assert error["extensions"]["cost"] > Settings().cost_limit
    assert count == baseline, statements.statements
    assert seconds < 0.5
    assert body["extensions"]["cost"]["actualQueryCost"] == 0


@pytest.mark.parametrize("first", [30, 500])
async def test_the_cyclic_query_with_pages_of_its_size_is_refused_too(
    api: Api, statements: StatementCounter, thirty: tuple[Firm, str], first: int
) -> None:
    firm, agreement_id = thirty
    query = CYCLIC.replace("companies {", "companies(first: $first) {").replace("$id: ID!", "$id: ID!, $first: Int")
    body = await api.gql(query, {"id": agreement_id, "first": first}, token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_two_levels_of_the_same_query_run(api: Api, thirty: tuple[Firm, str]) -> None:
    firm, agreement_id = thirty
    query = """query($id: ID!) { agreement(id: $id) { companies { edges { node { agreement {
      companies { edges { node { name } } } } } } } } }"""
    data = await api.ok(query, {"id": agreement_id}, token=firm.admin)
    assert len(data["agreement"]["companies"]["edges"]) == 30


@pytest.fixture
async def small_budget(runtime: Runtime, api: Api) -> AsyncIterator[Api]:
    """The app on a runtime of its own whose clients get 100 points, refilled at 1 a second."""
    own = Runtime.create(runtime.database, Settings(cost_limit=100, cost_bucket=100, cost_restore_rate=1))
    transport = httpx.ASGITransport(app=create_app(runtime=own))
    async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
        yield Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)


PAGE_OF_40 = "query($id: ID!) { firm(id: $id) { agreements(first: 13) { edges { node { name } } } } }"  # 2 + 13 x 3


async def test_a_spent_budget_answers_429_with_retry_after(
    api: Api, small_budget: Api, statements: StatementCounter
) -> None:
    firm = await api.firm()
    for _ in range(5):
        await api.agreement(firm, company=False)
    first = await small_budget.post(PAGE_OF_40, {"id": firm.id}, firm.admin)
    cost = first.json()["extensions"]["cost"]
    assert first.status_code == 200 and cost["requestedQueryCost"] == 41
    # Five agreements came back, not thirteen: the unused points were given back.
    assert cost["actualQueryCost"] == 3 + 5 * 2  # firm, agreements, edges; node and name five times
    assert 100 - 13 <= cost["throttleStatus"]["currentlyAvailable"] <= 100 - 13 + 1
    assert cost["throttleStatus"] == {**cost["throttleStatus"], "maximumAvailable": 100, "restoreRate": 1}

    # A user of another firm has a bucket of its own.
    other = await api.firm()
    for _ in range(4):  # 4 x 13 more: 35 points left, fewer than the 41 the query asks for
        assert (await small_budget.post(PAGE_OF_40, {"id": firm.id}, firm.admin)).status_code == 200
    statements.reset()
    await small_budget.post("{ __typename }", {}, firm.admin)
    baseline = statements.count  # authentication's statements
    statements.reset()
    refused = await small_budget.post(PAGE_OF_40, {"id": firm.id}, firm.admin)
    assert statements.count == baseline, statements.statements  # refused before execution
    assert refused.status_code == 429
    body = refused.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["cost"] == 41
    retry = int(refused.headers["Retry-After"])
    assert retry == error["extensions"]["retryAfter"]
    assert 1 <= retry <= 41  # at one point a second, the missing points
    assert body["extensions"]["cost"]["actualQueryCost"] == 0
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 41
    assert (await small_budget.post(PAGE_OF_40, {"id": other.id}, other.admin)).status_code == 200


async def test_the_budget_refills_at_its_rate(api: Api, runtime: Runtime) -> None:
    own = Runtime.create(runtime.database, Settings(cost_limit=50, cost_bucket=50, cost_restore_rate=20))
    transport = httpx.ASGITransport(app=create_app(runtime=own))
    async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
        fast = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        firm = await api.firm()
        query = "query($id: ID!) { firm(id: $id) { agreements(first: 15) { edges { node { name } } } } }"  # 47
        statuses = [(await fast.post(query, {"id": firm.id}, firm.admin)).status_code for _ in range(3)]
        assert statuses[0] == 200 and 429 in statuses
        await asyncio.sleep(47 / 20 + 0.2)  # the refill is measured in wall time
        assert (await fast.post(query, {"id": firm.id}, firm.admin)).status_code == 200
