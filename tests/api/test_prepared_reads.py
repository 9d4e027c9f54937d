"""Prepared reads (R106): a compiled read seen before is answered without GraphQL execution, and
the answer is strawberry's own, byte for byte (its request id and the budget's currentlyAvailable
aside), for every query of the compiled path's corpus and every kind of caller."""

import json
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compiled.compiler import fields_in
from models.db import Database
from schema.cost import actual_cost
from schema.prepared_reads import PREPARED
from tests.api.test_compiled_reads import CORPUS, _variables, all_targets, targets
from tests.api.test_permission_matrix import CALLERS, World, world  # noqa: F401 - the shared world fixture
from tests.conftest import StatementCounter


def comparable(response: httpx.Response) -> tuple[int, str | None, str]:
    body = response.json()
    extensions = body.get("extensions", {})
    extensions.pop("requestId", None)
    extensions.get("cost", {}).get("throttleStatus", {}).pop("currentlyAvailable", None)
    return response.status_code, response.headers.get("content-type"), json.dumps(body)


async def twice(world: World,  # noqa: F811
                query: str, variables: dict[str, Any], token: str) -> tuple[httpx.Response, httpx.Response, int]:
    """The same request twice: strawberry answers the first, the second may be prepared."""
    api = world.api
    await api.post("{ __typename }", {}, token)  # the principal kept: both see the same grants
    first = await api.post(query, variables, token)
    hits = PREPARED.hits
    second = await api.post(query, variables, token)
    return first, second, PREPARED.hits - hits


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "query", "target"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_a_prepared_read_answers_as_strawberry_does(world: World, statements: StatementCounter,  # noqa: F811
                                                          name: str, query: str, target: str, caller: str) -> None:
    variables = _variables(query, all_targets(world) if target == "all" else targets(world)[target])
    first, second, hits = await twice(world, query, variables, world.tokens[caller])
    assert comparable(second) == comparable(first)
    if first.json().get("errors") is None:
        assert hits == 1, "the second request was not answered from its prepared read"
        assert second.headers.get("x-request-id") and second.json()["extensions"]["requestId"]


async def test_a_prepared_read_is_fresh_and_charged_as_the_first(world: World) -> None:  # noqa: F811
    """The statement runs each time: a change shows at once; and the cost is strawberry's."""
    api, firm = world.api, world.firm
    query = "query($id: ID!) { company(id: $id) { id name } }"
    first, second, hits = await twice(world, query, {"id": world.company_id}, firm.admin)
    assert hits == 1 and second.json()["extensions"]["cost"] == {
        **first.json()["extensions"]["cost"], "throttleStatus": second.json()["extensions"]["cost"]["throttleStatus"]}
    await api.mutate("updateCompany", {"companyId": world.company_id, "name": "Renamed For R106"}, "company { id }",
                     token=firm.admin)
    before = PREPARED.hits
    again = await api.post(query, {"id": world.company_id}, firm.admin)
    assert again.json()["data"]["company"]["name"] == "Renamed For R106"
    assert PREPARED.hits == before + 1


async def test_other_settings_decide_again(world: World) -> None:  # noqa: F811
    import dataclasses

    api = world.api
    query = "query($id: ID!) { company(id: $id) { id } }"
    await twice(world, query, {"id": world.company_id}, world.firm.admin)
    settings = api.runtime.settings
    api.runtime.settings = dataclasses.replace(settings, cost_limit=1)
    try:
        before = PREPARED.hits
        refused = await api.post(query, {"id": world.company_id}, world.firm.admin)
        assert PREPARED.hits == before
        assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    finally:
        api.runtime.settings = settings


POINTS = [  # R113: what counts as a point read (a few rows by key, no list)
    ("one row", "query($id: ID!) { company(id: $id) { id name } }", True),
    ("four rows by key", "query($id: ID!) { company(id: $id) { firm { name } agreement { name firm { id } } } }",
     True),
    ("five rows", "query($id: ID!) { company(id: $id) { firm { name } agreement { name firm { id } "
                  "subscription { id } } } }", False),
    ("a connection", "query($id: ID!) { company(id: $id) { members(first: 1) { edges { node { id } } } } }", False),
    ("a subscription's seats", "query($id: ID!) { company(id: $id) { agreement { subscription { seats { "
                               "licenseType } } } } }", False),
]


@pytest.mark.parametrize(("name", "query", "point"), POINTS, ids=[p[0] for p in POINTS])
async def test_a_point_read_is_known_as_one(world: World, name: str, query: str, point: bool) -> None:  # noqa: F811
    first, _, hits = await twice(world, query, {"id": world.company_id}, world.firm.admin)
    assert "errors" not in first.json() and hits == 1
    newest = next(reversed(PREPARED._entries.values()))  # the one just answered
    assert newest.point is point


# Pieces of what the count looks for, and any text at all (PostgreSQL's text holds no NUL).
HOSTILE = st.lists(st.sampled_from(['" : ', '"', "\\", " : ", ":", " ", ",", "{}", "[", "\n", "é", "\u2028"])
                   | st.characters(blacklist_characters="\x00"), max_size=8).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(HOSTILE, max_size=4))
@example(values=['" : ', '\\" : x', 'a\\', '\\\\" : "'])
async def test_the_fields_of_an_answer_are_counted_on_its_text(database: Database, values: list[str]) -> None:
    """R115: PostgreSQL's json_build_object text, whatever its strings hold, counts as its parsed data does."""
    statement = sa.text("SELECT CAST(json_build_object('values', coalesce(json_agg(json_build_object("
                        "'name', v, 'inner', json_build_object('same', v, 'none', NULL), 'empty', json_build_object(),"
                        " 'list', json_build_array(v, json_build_object('in_list', v))) ORDER BY n), '[]'), 'count', "
                        "count(*)) AS TEXT) FROM unnest(CAST(:values AS text[])) WITH ORDINALITY AS t(v, n)")
    async with database.engine.connect() as connection:
        text = await connection.scalar(statement, {"values": values})
    assert fields_in(text) == actual_cost(orjson.loads(text)) == 2 + 7 * len(values), text


async def test_a_name_that_looks_like_json_costs_what_strawberry_says(world: World) -> None:  # noqa: F811
    """R115 through HTTP: a prepared read's actualQueryCost is strawberry's for a name full of quotes and colons."""
    firm = world.firm
    name = 'A "b" : \\" : {"c" : 1}, \\\\'
    await world.api.mutate("updateCompany", {"companyId": world.company_id, "name": name}, "company { id }",
                           token=firm.admin)
    query = ("query($id: ID!) { company(id: $id) { id name agreement { id name companies(first: 3) { edges { node "
             "{ id name } } } } } }")
    first, second, hits = await twice(world, query, {"id": world.company_id}, firm.admin)
    assert hits == 1 and comparable(second) == comparable(first)
    assert second.json()["data"]["company"]["name"] == name
    cost = second.json()["extensions"]["cost"]
    assert cost["actualQueryCost"] < cost["requestedQueryCost"]  # counted, not the requested cost given back
