"""Who am I, for every token (R89): `viewer` tells a client-credentials token its client and firm,
through HTTP, as the README's partner-dashboard example uses it."""

import httpx

from models import ids as global_ids
from tests.api.client import Api
from tests.api.test_oauth import new_client

WHO = """{ viewer { clientId client { clientId name } firm { id name }
           firms { totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage } } } }"""


async def client_credentials(api: Api, client_id: str, secret: str, scope: str) -> str:
    response = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                                   auth=httpx.BasicAuth(client_id, secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_a_client_credentials_token_finds_its_client_and_firm(api: Api) -> None:
    firm = await api.firm()
    await api.agreement(firm)
    client_id, secret = await new_client(api, public=False, redirect_uris=[],
                                         firm_id=global_ids.decode_as(firm.id, "Firm"),
                                         scopes=["firms:read", "agreements:read"])
    assert secret is not None
    token = await client_credentials(api, client_id, secret, "firms:read agreements:read")

    viewer = (await api.ok(WHO, token=token))["viewer"]
    assert viewer["clientId"] == client_id
    assert viewer["client"]["clientId"] == client_id and viewer["client"]["name"].startswith("Test app ")
    assert viewer["firm"]["id"] == firm.id
    assert viewer["firms"]["totalCount"] == 1
    assert [edge["node"]["id"] for edge in viewer["firms"]["edges"]] == [firm.id]
    assert viewer["firms"]["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False}

    # The README's partner dashboard: the firm's ID from the API, then the firm's agreements.
    firm_id = (await api.ok("{ viewer { firm { id } } }", token=token))["viewer"]["firm"]["id"]
    data = await api.ok("query($id: ID!) { firm(id: $id) { name agreements { totalCount } } }", {"id": firm_id},
                        token=token)
    assert data["firm"]["agreements"]["totalCount"] == 1

    # Paging past the one firm, or asking for none, gives none.
    cursor = viewer["firms"]["edges"][0]["cursor"]
    after = (await api.ok("query($after: String) { viewer { firms(after: $after) { totalCount edges { node { id } } "
                          "pageInfo { hasPreviousPage } } } }", {"after": cursor}, token=token))["viewer"]["firms"]
    assert after == {"totalCount": 1, "edges": [], "pageInfo": {"hasPreviousPage": True}}
    none = (await api.ok("{ viewer { firms(first: 0) { edges { node { id } } } } }", token=token))["viewer"]
    assert none["firms"]["edges"] == []


async def test_the_firm_needs_firms_read(api: Api) -> None:
    firm = await api.firm()
    client_id, secret = await new_client(api, public=False, redirect_uris=[],
                                         firm_id=global_ids.decode_as(firm.id, "Firm"),
                                         scopes=["firms:read", "agreements:read"])
    assert secret is not None
    token = await client_credentials(api, client_id, secret, "agreements:read")
    body = await api.gql("{ viewer { firm { id } } }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["data"] is None
    # Its client it may always read.
    client = (await api.ok("{ viewer { client { clientId } } }", token=token))["viewer"]["client"]
    assert client == {"clientId": client_id}


async def test_a_users_token_has_a_client_and_no_firm_of_its_own(api: Api) -> None:
    firm = await api.firm()
    viewer = (await api.ok(WHO, token=firm.admin))["viewer"]
    assert viewer["client"] == {"clientId": api.app_client_id, "name": "partner app"}
    assert viewer["firm"] is None  # a person's firms are under `firms`, as their staff roles
    assert [edge["node"]["id"] for edge in viewer["firms"]["edges"]] == [firm.id]


async def test_a_client_of_no_firm_has_none(api: Api) -> None:
    viewer = (await api.ok(WHO, token=await api.vendor()))["viewer"]
    assert viewer["client"] == {"clientId": api.vendor_client_id, "name": "vendor back office"}
    assert viewer["firm"] is None and viewer["firms"]["totalCount"] == 0 and viewer["firms"]["edges"] == []
