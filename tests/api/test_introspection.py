"""Introspection and field suggestions (R65) follow BUREAU_INTROSPECTION; unexpected errors are
masked with a reference (R66, tests/api/test_logs.py)."""

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from graphql import build_client_schema, get_introspection_query

from app import create_app
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api

INTROSPECTION = get_introspection_query(descriptions=True)  # what GraphiQL sends
TYPO = "{ viewer { clientid } }"  # clientId
# An enum value one letter off, in a variable: graphql-core suggests the right one at execution.
ENUM_TYPO = ("mutation($input: CancelScheduledChangeInput!) { cancelScheduledChange(input: $input) "
             "{ userErrors { code } } }", {"input": {"subscriptionId": "x", "kind": "CANCELATION"}})

Serve = Callable[[str], AbstractAsyncContextManager[Api]]


@pytest.fixture
def serve(runtime: Runtime, api: Api) -> Serve:
    """The app on a runtime of its own whose BUREAU_INTROSPECTION is `mode`."""

    @asynccontextmanager
    async def served(mode: str) -> AsyncIterator[Api]:
        own = Runtime.create(runtime.database, dataclasses.replace(Settings(), introspection=mode))
        transport = httpx.ASGITransport(app=create_app(runtime=own))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
            yield Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)

    return served


async def test_by_default_any_valid_token_may_introspect(api: Api) -> None:
    firm = await api.firm()
    narrow = await api.token(firm.admin_email, scopes=["firms:read"])
    for token in (firm.admin, narrow, await api.vendor()):
        body = await api.gql(INTROSPECTION, token=token)
        assert "errors" not in body, body
        schema = build_client_schema(body["data"])  # GraphiQL's schema, whole
        assert "Agreement" in schema.type_map and "createAgreement" in schema.mutation_type.fields  # type: ignore
    assert (await api.post(INTROSPECTION)).status_code == 401  # but not without one


async def test_by_default_suggestions_are_given_to_whoever_may_introspect(api: Api) -> None:
    firm = await api.firm()
    [error] = (await api.gql(TYPO, token=firm.admin))["errors"]
    assert "Did you mean 'clientId'" in error["message"]  # or 'client' too
    assert "Did you mean the enum value 'CANCELLATION'?" in str(await api.gql(*ENUM_TYPO, token=firm.admin))


async def test_off_refuses_introspection_and_suggestions_to_everyone(api: Api, serve: Serve) -> None:
    vendor = await api.vendor()
    async with serve("off") as closed:
        body = await closed.gql(INTROSPECTION, token=vendor)
        assert body["data"] is None
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in body["errors"][0]["message"].lower()
        assert "errors" in await closed.gql('{ __type(name: "Firm") { name } }', token=vendor)
        [typo] = (await closed.gql(TYPO, token=vendor))["errors"]
        assert typo["message"] == "Cannot query field 'clientid' on type 'Viewer'."
        # Suggestions of enum values in variables too, which graphql-core makes at execution.
        bad_enum = await closed.gql(*ENUM_TYPO, token=vendor)
        assert bad_enum["errors"] and all("Did you mean" not in e["message"] for e in bad_enum["errors"])
        assert "did you mean" not in str(bad_enum).lower()
        # __typename is no introspection of the schema: clients need it for unions and caches.
        assert (await closed.ok("{ __typename viewer { __typename } }", token=vendor))["__typename"] == "Query"


async def test_on_opens_introspection_and_nothing_else_without_a_token(api: Api, serve: Serve) -> None:
    async with serve("on") as open_:
        anonymous = await open_.post(INTROSPECTION)
        assert anonymous.status_code == 200 and "errors" not in anonymous.json()
        build_client_schema(anonymous.json()["data"])
        assert "Did you mean 'queryType'?" in str((await open_.post("{ __schema { queryTyp { name } } }")).json())
        for query in ("{ viewer { clientId } }", "{ __typename catalog { editions { code } } }",
                      '{ __schema { queryType { name } } node(id: "x") { id } }'):
            refused = await open_.post(query)
            assert refused.status_code == 401, refused.text
            assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert refused.json()["data"] is None
        # A token that is sent must still be valid: no falling back to anonymous with a bad one.
        assert (await open_.post(INTROSPECTION, token="not-a-token")).status_code == 401
        firm = await api.firm()
        assert (await open_.ok("{ viewer { clientId } }", token=firm.admin))["viewer"]["clientId"]


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUREAU_INTROSPECTION", "sometimes")
    with pytest.raises(ValueError, match="BUREAU_INTROSPECTION"):
        Settings()
    monkeypatch.setenv("BUREAU_INTROSPECTION", "OFF")
    assert Settings().introspection == "off"
