"""CORS for browser apps, and the RFC 6750 challenge of a refused request."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc import jwt

from app import create_app
from auth.keys import ALGORITHM
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api

ORIGIN = "https://app.example.com"
QUERY = {"query": "{ viewer { clientId } }"}


@pytest.fixture
async def cors_http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(cors_origins=(ORIGIN, "http://localhost:5173"))
    app = create_app(runtime=Runtime.create(api.runtime.database, settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        yield http


def test_cors_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUREAU_CORS_ORIGINS", " https://a.example, https://b.example/ ,")
    assert Settings().cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.delenv("BUREAU_CORS_ORIGINS")
    assert Settings().cors_origins == ()


async def test_a_preflight_from_an_allowed_origin(cors_http: httpx.AsyncClient) -> None:
    for path in ("/graphql", "/exports/reinvoicing.csv"):
        response = await cors_http.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST" if path == "/graphql" else "GET",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["access-control-allow-origin"] == ORIGIN
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert "access-control-allow-credentials" not in response.headers


async def test_a_request_from_an_allowed_origin_may_read_the_answer(api: Api, cors_http: httpx.AsyncClient) -> None:
    token = await api.token(scopes=["firms:read"])
    response = await cors_http.post("/graphql", json=QUERY, headers={"Origin": ORIGIN,
                                                                     "Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    # a refusal is readable too, so the app can tell its user to sign in again
    refused = await cors_http.post("/graphql", json=QUERY, headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN


async def test_other_origins_get_no_cors_headers(api: Api, cors_http: httpx.AsyncClient) -> None:
    preflight = await cors_http.options("/graphql", headers={"Origin": "https://evil.example",
                                                             "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    token = await api.token(scopes=["firms:read"])
    response = await cors_http.post("/graphql", json=QUERY, headers={"Origin": "https://evil.example",
                                                                     "Authorization": f"Bearer {token}"})
    assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(api: Api) -> None:
    response = await api.http.options("/graphql", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    token = await api.token(scopes=["firms:read"])
    response = await api.post(QUERY["query"], token=token, headers={"Origin": ORIGIN})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def challenge(response: httpx.Response) -> str:
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    return response.headers["www-authenticate"]


async def test_a_missing_or_malformed_header_is_an_invalid_request(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        header = challenge(await api.http.post("/graphql", json=QUERY, headers=headers))
        assert 'error="invalid_request"' in header, headers
        export = await api.http.get("/exports/reinvoicing.csv", headers=headers)
        assert 'error="invalid_request"' in export.headers["www-authenticate"]


async def test_every_token_failure_is_an_invalid_token(api: Api) -> None:
    key = await api.runtime.keys.signing_key()
    now = int(time.time())
    claims = {"iss": api.runtime.settings.issuer, "aud": api.runtime.settings.audience, "sub": api.app_client_id,
              "client_id": api.app_client_id, "scope": "firms:read", "iat": now, "exp": now + 60}
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}
    missing_jti = jwt.encode(header, claims, key, algorithms=[ALGORITHM])  # joserfc: "missing_claim: ..."
    expired = await api.token(scopes=["firms:read"], ttl=-3600)
    for token in ("not.a.token", missing_jti, expired):
        header_value = challenge(await api.post(QUERY["query"], token=token))
        assert 'error="invalid_token"' in header_value, (token, header_value)
        # the description is a valid quoted-string: no quotes inside
        description = header_value.split('error_description="', 1)[1]
        assert description.endswith('"') and '"' not in description[:-1], header_value
    assert "missing_claim" in challenge(await api.post(QUERY["query"], token=missing_jti))
