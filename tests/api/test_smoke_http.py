"""Authentication at the door, health endpoints and error shape."""

from tests.api.client import Api


async def test_graphql_needs_a_bearer_token(api: Api) -> None:
    response = await api.post("{ viewer { clientId } }")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_garbage_token_is_unauthenticated(api: Api) -> None:
    response = await api.post("{ viewer { clientId } }", token="not.a.token")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_viewer_reports_client_and_scopes(api: Api) -> None:
    token = await api.token(scopes=["firms:read"])
    data = await api.ok("{ viewer { clientId scopes user { id } } }", token=token)
    assert data["viewer"] == {"clientId": api.app_client_id, "scopes": ["firms:read"], "user": None}


async def test_missing_scope_is_forbidden_before_anything_runs(api: Api) -> None:
    firm = await api.firm()
    token = await api.token(firm.admin_email, scopes=["firms:read"])
    body = await api.gql("query($id: ID!) { firm(id: $id) { agreements { totalCount } } }", {"id": firm.id},
                         token=token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["extensions"]["missingScopes"] == ["agreements:read"]


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.http.get("/healthz")).status_code == 200
    assert (await api.http.get("/readyz")).text == "ready"
    assert (await api.http.get("/metrics")).status_code == 404  # closed by default (test_metrics.py)


async def test_bad_arguments_are_bad_user_input(api: Api) -> None:
    firm = await api.firm()
    body = await api.gql("{ viewer { firms(first: -1) { totalCount } } }", token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await api.gql("{ viewer { firms(after: \"nonsense\") { totalCount } } }", token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_jwks_publishes_public_keys_only(api: Api) -> None:
    keys = (await api.http.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all("d" not in key and key["kid"] for key in keys)
