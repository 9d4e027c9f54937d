"""What /metrics tells (R92): requests and latency per operation name with bounded labels, errors
and userErrors per code, rate-limit refusals, the database pool in use, and the outbox's backlog and
failed deliveries, all read through a real scrape."""

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.db import Database, connect
from models.migrate import migrate
from observability import metrics
from resolvers.outbox import deliver_due, parse_smtp_url
from resolvers.runtime import Runtime
from tests.api.client import Api, new_pin, unique
from tests.api.test_metrics import TOKEN, app_with, free_port, settings
from tests.conftest import create_database, drop_database

SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await http.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def scraped(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with app_with(database, settings(metrics_token=TOKEN)) as client:
        yield client


async def test_requests_and_latency_are_counted_per_operation_name(scraped: httpx.AsyncClient, api: Api) -> None:
    http = scraped
    firm = await api.firm()
    auth = {"Authorization": f"Bearer {firm.admin}"}
    name = unique("Dashboard")
    before = await scrape(http)
    for _ in range(3):
        assert (await http.post("/graphql", json={"query": f"query {name} {{ viewer {{ clientId }} }}"},
                                headers=auth)).status_code == 200
    await http.post("/graphql", json={"query": f"query {name} {{ viewer {{ nope }} }}"}, headers=auth)
    after = await scrape(http)
    assert value(after, "bureau_graphql_operations_total", operation=name, outcome="ok") == 3
    assert value(after, "bureau_graphql_operations_total", operation=name, outcome="error") == 1
    assert value(after, "bureau_graphql_operation_seconds_count", operation=name) == 4
    assert value(after, "bureau_graphql_operation_seconds_sum", operation=name) > 0
    failed = "GRAPHQL_VALIDATION_FAILED"
    assert (value(after, "bureau_graphql_errors_total", code=failed)
            - value(before, "bureau_graphql_errors_total", code=failed)) == 1


async def test_anonymous_unknown_and_surplus_operation_names_share_labels(
        scraped: httpx.AsyncClient, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    http = scraped
    firm = await api.firm()
    auth = {"Authorization": f"Bearer {firm.admin}"}
    before = await scrape(http)
    sent = [{"query": "{ viewer { clientId } }"},  # anonymous
            {"query": "query A { viewer { clientId } }", "operationName": "NotInTheDocument"},
            {"query": f"query {'L' * 65} {{ viewer {{ clientId }} }}"}]  # longer than a label may be
    for body in sent:
        await http.post("/graphql", json=body, headers=auth)
    # Past the cap, a new name of this process gets no label of its own; names labelled already keep theirs.
    monkeypatch.setattr(metrics, "MAX_OPERATIONS", len(metrics._labelled))
    surplus = unique("Surplus")
    await http.post("/graphql", json={"query": f"query {surplus} {{ viewer {{ clientId }} }}"}, headers=auth)
    after = await scrape(http)
    assert sum(value(after, "bureau_graphql_operation_seconds_count", operation=label)
               - value(before, "bureau_graphql_operation_seconds_count", operation=label)
               for label in (metrics.ANONYMOUS,)) == 3
    assert (value(after, "bureau_graphql_operation_seconds_count", operation=metrics.OTHER)
            - value(before, "bureau_graphql_operation_seconds_count", operation=metrics.OTHER)) == 1
    labels = {dict(labels).get("operation") for (name, labels) in after if name.startswith("bureau_graphql_oper")}
    assert surplus not in labels and "NotInTheDocument" not in labels and "L" * 65 not in labels


async def test_user_errors_and_refusals_are_counted_per_code(scraped: httpx.AsyncClient, api: Api) -> None:
    http = scraped
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    before = await scrape(http)
    invite = ("mutation($input: InviteUserInput!) { inviteUser(input: $input) { membership { id } "
              "userErrors { code } } }")
    bad = {"companyId": company_id, "name": "X", "role": "REPORTER", "licenseType": "NAMED",
           "personalIdentityNumber": "19000101-0000"}
    for _ in range(2):
        body = (await http.post("/graphql", json={"query": invite, "variables": {"input": bad}},
                                headers={"Authorization": f"Bearer {firm.admin}"})).json()
        assert body["data"]["inviteUser"]["userErrors"] == [{"code": "INVALID_PERSONAL_IDENTITY_NUMBER"}]
    await http.post("/graphql", json={"query": "{ viewer { clientId } }"})  # no token
    after = await scrape(http)
    code = "INVALID_PERSONAL_IDENTITY_NUMBER"
    assert (value(after, "bureau_graphql_user_errors_total", code=code)
            - value(before, "bureau_graphql_user_errors_total", code=code)) == 2
    assert (value(after, "bureau_graphql_errors_total", code="UNAUTHENTICATED")
            - value(before, "bureau_graphql_errors_total", code="UNAUTHENTICATED")) == 1


async def test_rate_limit_refusals_are_counted(database: Database, api: Api) -> None:
    # `{ viewer { clientId } }` costs 2 and uses all 2: a bucket of 2 that refills at 1 a second is empty after one.
    tight = settings(metrics_token=TOKEN, cost_limit=2, cost_bucket=2, cost_restore_rate=1)
    firm = await api.firm()
    async with app_with(database, tight) as http:
        before = await scrape(http)
        statuses = [(await http.post("/graphql", json={"query": "{ viewer { clientId } }"},
                                     headers={"Authorization": f"Bearer {firm.admin}"})).status_code
                    for _ in range(3)]
        assert 429 in statuses
        after = await scrape(http)
    refused = statuses.count(429)
    assert (value(after, "bureau_rate_limited_total", limit="query_budget")
            - value(before, "bureau_rate_limited_total", limit="query_budget")) == refused
    assert (value(after, "bureau_graphql_errors_total", code="RATE_LIMITED")
            - value(before, "bureau_graphql_errors_total", code="RATE_LIMITED")) == refused


async def test_the_pool_gauges_follow_connections_in_use(database_url: str) -> None:
    own = connect(database_url)
    try:
        async with app_with(own, settings(metrics_token=TOKEN)) as http:
            idle = await scrape(http)
            assert value(idle, "bureau_db_pool_size") >= 10
            async with own.engine.connect() as first, own.engine.connect() as second:
                await first.exec_driver_sql("SELECT 1")
                await second.exec_driver_sql("SELECT 1")
                busy = await scrape(http)
            done = await scrape(http)
    finally:
        await own.dispose()
    # The scrape itself reads the outbox backlog: it checks out a connection and returns it before answering.
    assert value(busy, "bureau_db_pool_checked_out") - value(idle, "bureau_db_pool_checked_out") == 2
    assert value(done, "bureau_db_pool_checked_out") == value(idle, "bureau_db_pool_checked_out")
    assert value(busy, "bureau_db_pool_connections") >= value(busy, "bureau_db_pool_checked_out")


@pytest.fixture
async def own_database() -> AsyncIterator[Database]:
    """A database of this test's own: its outbox is no other test's."""
    url = await create_database("bureau_outbox_metrics")
    await migrate(url)
    db = connect(url)
    yield db
    await db.dispose()
    await drop_database(url)


async def test_the_outbox_backlog_and_its_failed_deliveries(own_database: Database) -> None:
    from auth.clients import ALL_SCOPES
    from tests.conftest import register_client  # the same helper the session's api fixture uses

    runtime = Runtime.create(own_database, settings(metrics_token=TOKEN))
    app_http = app_with(own_database, dataclasses.replace(runtime.settings))
    async with own_database.sessions.begin() as session:
        vendor = await register_client(session, name="vendor", scopes=list(ALL_SCOPES))
        partner = await register_client(session, name="partner", scopes=list(ALL_SCOPES))
    async with app_http as http:
        api = Api(http, runtime, vendor_client_id=vendor.client_id, app_client_id=partner.client_id)
        empty = await scrape(http)
        assert value(empty, "bureau_outbox_backlog", outbox="email") == 0
        firm = await api.firm()
        agreement_id, company_id = await api.agreement(firm)
        await api.subscription(firm, agreement_id)
        for _ in range(2):
            await api.mutate("inviteUser", {"companyId": company_id, "name": "Berit", "role": "REPORTER",
                                            "email": unique("b") + "@x.example", "licenseType": "NAMED",
                                            "personalIdentityNumber": new_pin()}, "membership { id }",
                             token=firm.admin)
        waiting = await scrape(http)
        backlog = value(waiting, "bureau_outbox_backlog", outbox="email")
        assert backlog >= 2 and value(waiting, "bureau_outbox_failing", outbox="email") == 0
        failed_before = value(waiting, "bureau_outbox_deliveries_total", outbox="email", outcome="failed")
        # Nothing listens on this port: every due message fails once and waits for its next attempt.
        report = await deliver_due(own_database, parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"),
                                   runtime.now() + timedelta(seconds=1))
        assert report.failed == backlog
        failing = await scrape(http)
    assert value(failing, "bureau_outbox_backlog", outbox="email") == backlog
    assert value(failing, "bureau_outbox_failing", outbox="email") == backlog
    assert value(failing, "bureau_outbox_deliveries_total", outbox="email", outcome="failed") - failed_before \
        == backlog


async def test_sign_in_refusals_are_counted(scraped: httpx.AsyncClient, api: Api, runtime: Runtime) -> None:
    from tests.api.test_oauth import WRONG, new_address, site, user_with_password

    http = scraped
    bureau = await site(api, runtime)
    email, address = await user_with_password(api), new_address()
    before = await scrape(http)
    statuses = [await bureau.status(address, email, WRONG) for _ in range(12)]
    assert 429 in statuses
    after = await scrape(http)
    assert (value(after, "bureau_rate_limited_total", limit="sign_in")
            - value(before, "bureau_rate_limited_total", limit="sign_in")) == statuses.count(429)
