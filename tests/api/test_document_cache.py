"""R76: a document is parsed and validated once per process; what depends on the request (its
variables, the caller's scopes and email, the budget) is still decided on every request."""

import dataclasses
from collections.abc import Callable
from typing import Any

import graphql
import httpx
import pytest
import strawberry.schema.schema

import schema.documents
from app import create_app
from models.db import Database
from resolvers.runtime import Runtime
from schema import schema as bureau_schema
from schema.documents import DOCUMENTS, DocumentCache
from schema.prepared_reads import PREPARED
from schema.scopes import required_scopes
from settings import Limits, Settings
from tests.api.client import Api, unique


class Calls:
    """Counts the calls of a function it then calls as it was."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.count = function, 0

    def reset(self) -> None:
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def parsing(monkeypatch: pytest.MonkeyPatch) -> tuple[Calls, Calls]:
    parse = Calls(strawberry.schema.schema.parse)  # what strawberry parses a request's query with
    validate = Calls(schema.documents.validate_document)
    monkeypatch.setattr(strawberry.schema.schema, "parse", parse)
    monkeypatch.setattr(schema.documents, "validate_document", validate)
    return parse, validate


async def test_a_document_sent_again_is_neither_parsed_nor_validated(api: Api, parsing: tuple[Calls, Calls]) -> None:
    parse, validate = parsing
    firm = await api.firm()
    parse.reset()
    validate.reset()
    query = f"query {unique('Again')}($id: ID!) {{ firm(id: $id) {{ id name }} }}"  # new to the cache
    first = await api.ok(query, {"id": firm.id}, token=firm.admin)
    assert (parse.count, validate.count) == (1, 1)
    hits = DOCUMENTS.hits + PREPARED.hits
    for _ in range(3):
        assert await api.ok(query, {"id": firm.id}, token=firm.admin) == first
    assert (parse.count, validate.count) == (1, 1)
    assert DOCUMENTS.hits + PREPARED.hits == hits + 3  # found again, or answered without execution (R106)


async def test_a_hostile_document_is_refused_every_time_it_is_sent(api: Api, parsing: tuple[Calls, Calls]) -> None:
    firm = await api.firm()
    deep = "query " + unique("Deep") + " { viewer { " + "user { " * 30 + "id" + " }" * 30 + " } }"
    control = "query " + unique("Control") + ' { firm(id: "a\\u0001b") { id } }'
    aliases = "query " + unique("Aliases") + " { " + " ".join(f"a{i}: __typename" for i in range(60)) + " }"
    for query, code in ((deep, "QUERY_TOO_DEEP"), (control, "INVALID_INPUT"), (aliases, "TOO_MANY_ALIASES")):
        for _ in range(3):
            body = await api.gql(query, token=firm.admin)
            assert body.get("data") is None and body["errors"][0]["extensions"]["code"] == code, body


async def test_variables_are_checked_on_every_request(api: Api, parsing: tuple[Calls, Calls]) -> None:
    parse, validate = parsing
    firm = await api.firm()
    parse.reset()
    validate.reset()
    query = f"mutation {unique('Vars')}($input: UpdateFirmInput!) {{ updateFirm(input: $input) {{ firm {{ name }} }} }}"
    good = {"input": {"firmId": firm.id, "name": "Fine"}}
    assert (await api.ok(query, good, token=firm.admin))["updateFirm"]["firm"]["name"] == "Fine"
    for bad in ({"input": {"firmId": firm.id, "name": "a\x00b"}},
                {"input": {"firmId": firm.id, "name": "x" * (api.runtime.settings.limits.max_string_length + 1)}}):
        body = await api.gql(query, bad, token=firm.admin)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    assert (parse.count, validate.count) == (1, 1)  # the document itself was checked once
    assert (await api.ok(query, good, token=firm.admin))["updateFirm"]["firm"]["name"] == "Fine"


async def test_scopes_and_the_email_gate_are_decided_per_caller(api: Api, parsing: tuple[Calls, Calls]) -> None:
    firm = await api.firm()
    narrow = await api.token(firm.admin_email, scopes=["users:read"])
    parsing[1].reset()
    query = f"query {unique('Scoped')}($id: ID!) {{ firm(id: $id) {{ id name }} }}"
    assert (await api.ok(query, {"id": firm.id}, token=firm.admin))["firm"]["id"] == firm.id
    body = await api.gql(query, {"id": firm.id}, token=narrow)
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "missingScopes": ["firms:read"]}
    assert (await api.ok(query, {"id": firm.id}, token=firm.admin))["firm"]["id"] == firm.id
    assert parsing[1].count == 1


def test_the_cache_keeps_the_most_recently_used_within_both_bounds() -> None:
    cache = DocumentCache()
    rules = tuple(graphql.specified_rules)

    def check(query: str, size: int = 2, text_size: int = 1000) -> None:
        cache.check(bureau_schema._schema, query, graphql.parse(query), rules, size=size, text_size=text_size,
                    needs=lambda document: required_scopes(bureau_schema._schema, document))

    one, two, three = "{ a: __typename }", "{ b: __typename }", "{ c: __typename }"
    check(one)
    check(two)
    assert cache.find(one, rules) is not None  # now the most recently used
    check(three)
    assert len(cache) == 2 and cache.find(two, rules) is None and cache.find(one, rules) is not None
    assert cache.find(one, (*rules, graphql.NoSchemaIntrospectionCustomRule)) is None  # other rules, other entry
    assert cache.find(one, rules, (("max_tokens", 8),)) is None  # other parse options too
    check("{ " + "x: __typename " * 10 + "}", size=10, text_size=60)  # 154 characters: never kept
    assert len(cache) == 2
    check("{ d: __typename }", size=10, text_size=40)  # the text bound makes way: two of 17 characters fit
    assert len(cache) == 2 and cache.find(three, rules) is None and cache.find(one, rules) is not None
    cache.clear()
    check(one, size=0)
    assert len(cache) == 0


async def test_a_document_kept_under_other_limits_is_checked_under_these(api: Api, database: Database) -> None:
    """The cache is the process's: an app with a lower token limit does not take another's tree."""
    firm = await api.firm()
    query = "query " + unique("Tokens") + " { viewer { clientId scopes emailRequired } }"
    assert (await api.post(query, token=firm.admin)).status_code == 200
    limits = dataclasses.replace(Limits(), max_tokens=8)
    runtime = Runtime.create(database, dataclasses.replace(Settings(), limits=limits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=runtime)),
                                 base_url="http://bureau.test") as http:
        strict = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        body = (await strict.post(query, token=firm.admin)).json()
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_TOKENS", body
