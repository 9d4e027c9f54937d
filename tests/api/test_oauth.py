"""The authorization server through HTTP: authorization code with PKCE (S256 only), the sign-in
page, exact redirect URIs, rotating refresh tokens with reuse detection, client credentials,
revocation (RFC 7009), metadata (RFC 8414), key rotation and the sign-in attempt limits."""

import asyncio
import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update
from starlette.applications import Starlette

from auth.clients import register_client
from auth.passwords import AttemptLimits, hash_password
from models import User
from models import ids as global_ids
from models.enums import UserStatus
from resolvers.runtime import Runtime
from tests.api.client import Api, unique
from web.routes import web_routes

PASSWORD = "correct horse battery staple"
SPA_REDIRECT = "https://spa.example/callback"
MOBILE_REDIRECT = "com.example.bureau:/oauth/callback"
VIEWER = "{ viewer { clientId scopes user { email } } }"


# ----------------------------------------------------------------------------- helpers


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


async def new_client(api: Api, *, public: bool = True, scopes: list[str] | None = None,
                     redirect_uris: list[str] | None = None, firm_id: int | None = None) -> tuple[str, str | None]:
    async with api.runtime.database.sessions.begin() as session:
        registered = await register_client(
            session, name=unique("Test app "), scopes=scopes or ["users:read", "companies:read", "firms:read"],
            redirect_uris=[SPA_REDIRECT] if redirect_uris is None else redirect_uris, public=public,
            firm_id=firm_id,
        )
    return registered.client_id, registered.client_secret


async def user_with_password(api: Api, password: str = PASSWORD) -> str:
    """A firm admin who can sign in with a password; returns the email."""
    firm = await api.firm()
    hashed = await hash_password(password)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(User).where(User.email_normalized == firm.admin_email.lower())
                              .values(password_hash=hashed, status=UserStatus.ACTIVE))
    return firm.admin_email


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the page's form (csrf_token and the OAuth parameters)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def unescape(value: str) -> str:
    import html

    return html.unescape(value)


def authorize_params(client_id: str, pkce: Pkce | None, **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": SPA_REDIRECT,
              "scope": "users:read companies:read", "state": secrets.token_urlsafe(8)}
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params |= extra
    return params


async def sign_in(http: httpx.AsyncClient, params: dict[str, str], email: str, password: str = PASSWORD,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    page = await http.get("/oauth/authorize", params=params, headers=headers)
    assert page.status_code == 200, page.text
    fields = {k: unescape(v) for k, v in form_fields(page.text).items()}
    return await http.post("/oauth/authorize", data={**fields, "email": email, "password": password},
                           headers=headers)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_for(api: Api, client_id: str, email: str, pkce: Pkce, **extra: str) -> str:
    params = authorize_params(client_id, pkce, **extra)
    response = await sign_in(api.http, params, email)
    query = redirect_query(response)
    assert query["state"] == params["state"]
    return query["code"]


async def exchange(http: httpx.AsyncClient, client_id: str, code: str, verifier: str | None,
                   redirect_uri: str = SPA_REDIRECT, **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
            **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    return await http.post("/oauth/token", data=data)


async def tokens_for(api: Api, client_id: str, email: str) -> dict[str, Any]:
    pkce = Pkce.new()
    code = await code_for(api, client_id, email, pkce)
    response = await exchange(api.http, client_id, code, pkce.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(http: httpx.AsyncClient, client_id: str, refresh_token: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                 "client_id": client_id, **extra})


async def viewer(api: Api, access_token: str) -> httpx.Response:
    return await api.post(VIEWER, token=access_token)


# ----------------------------------------------------------------------------- the code flow


async def test_authorization_code_with_pkce_round_trip(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    pkce = Pkce.new()
    params = authorize_params(client_id, pkce)

    page = await api.http.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text.lower()
    assert '<label for="email">' in page.text and '<label for="password">' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    fields = {k: unescape(v) for k, v in form_fields(page.text).items()}
    assert fields["code_challenge"] == pkce.challenge and fields["csrf_token"]

    signed_in = await api.http.post("/oauth/authorize", data={**fields, "email": email.upper(), "password": PASSWORD})
    assert signed_in.status_code == 303  # RFC 9700 4.12: never 307 after credentials
    assert signed_in.headers["location"].startswith(SPA_REDIRECT + "?")
    query = redirect_query(signed_in)
    assert query["state"] == params["state"]
    assert query["iss"] == api.runtime.settings.issuer  # RFC 9207

    token = await exchange(api.http, client_id, query["code"], pkce.verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["expires_in"] == api.runtime.settings.access_token_ttl
    assert set(body["scope"].split()) == {"users:read", "companies:read"}
    assert token.headers["cache-control"] == "no-store"

    claims = (await api.runtime.tokens.validate(body["access_token"])).raw
    assert claims["client_id"] == client_id and claims["aud"] == api.runtime.settings.audience
    response = await viewer(api, body["access_token"])
    assert response.status_code == 200, response.text
    data = response.json()["data"]["viewer"]
    assert data["user"]["email"] == email and data["clientId"] == client_id
    assert set(data["scopes"]) == {"users:read", "companies:read"}


async def test_a_code_is_single_use_and_a_second_use_revokes_its_tokens(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    pkce = Pkce.new()
    code = await code_for(api, client_id, email, pkce)
    first = await exchange(api.http, client_id, code, pkce.verifier)
    assert first.status_code == 200
    again = await exchange(api.http, client_id, code, pkce.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # RFC 6749 4.1.2: what the first use gave is revoked.
    assert (await viewer(api, first.json()["access_token"])).status_code == 401
    assert (await refresh(api.http, client_id, first.json()["refresh_token"])).json()["error"] == "invalid_grant"


async def test_the_code_verifier_must_match(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    pkce = Pkce.new()
    code = await code_for(api, client_id, email, pkce)
    missing = await exchange(api.http, client_id, code, None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = await exchange(api.http, client_id, code, Pkce.new().verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # A failed attempt does not burn the code for its rightful holder.
    assert (await exchange(api.http, client_id, code, pkce.verifier)).status_code == 200


async def test_pkce_is_s256_only_and_required(api: Api) -> None:
    client_id, _ = await new_client(api)
    verifier = secrets.token_urlsafe(48)
    for extra in ({"code_challenge": verifier, "code_challenge_method": "plain"},
                  {"code_challenge": verifier},  # no method means plain (RFC 7636 4.3)
                  {}):
        params = authorize_params(client_id, None, **extra)
        response = await api.http.get("/oauth/authorize", params=params)
        query = redirect_query(response)  # the redirect URI is valid: the error goes there
        assert query["error"] == "invalid_request", query
        assert query["state"] == params["state"]
        assert "code" not in query
    metadata = (await api.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]


async def test_redirect_uris_match_exactly(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api, redirect_uris=[SPA_REDIRECT, MOBILE_REDIRECT])
    pkce = Pkce.new()
    for near_miss in (SPA_REDIRECT + "/", SPA_REDIRECT + "?x=1", SPA_REDIRECT.upper(), "https://spa.example/",
                      "https://evil.example/callback", SPA_REDIRECT.replace("https", "http")):
        response = await api.http.get("/oauth/authorize",
                                      params=authorize_params(client_id, pkce, redirect_uri=near_miss))
        assert response.status_code == 400, near_miss
        assert "location" not in response.headers  # never redirected to an unregistered URI
    # With two registered URIs, one must be named.
    params = authorize_params(client_id, pkce)
    del params["redirect_uri"]
    assert (await api.http.get("/oauth/authorize", params=params)).status_code == 400
    # The registered ones work, and the token request must name the same one.
    code = await code_for(api, client_id, email, pkce, redirect_uri=MOBILE_REDIRECT)
    wrong = await exchange(api.http, client_id, code, pkce.verifier, redirect_uri=SPA_REDIRECT)
    assert wrong.json()["error"] == "invalid_grant"
    assert (await exchange(api.http, client_id, code, pkce.verifier, redirect_uri=MOBILE_REDIRECT)).status_code == 200


async def test_scopes_are_limited_to_the_clients_registration(api: Api) -> None:
    client_id, _ = await new_client(api, scopes=["users:read"])
    for scope in ("users:read users:write", "platform:admin", "nonsense"):
        response = await api.http.get("/oauth/authorize",
                                      params=authorize_params(client_id, Pkce.new(), scope=scope))
        assert redirect_query(response)["error"] == "invalid_scope", scope
    # None asked: the registered ones are granted.
    email = await user_with_password(api)
    pkce = Pkce.new()
    params = authorize_params(client_id, pkce)
    del params["scope"]
    code = redirect_query(await sign_in(api.http, params, email))["code"]
    token = await exchange(api.http, client_id, code, pkce.verifier)
    assert token.json()["scope"] == "users:read"


async def test_unknown_client_gets_an_error_page_not_a_redirect(api: Api) -> None:
    response = await api.http.get("/oauth/authorize", params=authorize_params("bc_nobody", Pkce.new()))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text


async def test_wrong_password_and_unknown_email_get_the_same_answer(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    params = authorize_params(client_id, Pkce.new())
    wrong = await sign_in(api.http, params, email, "not the password at all")
    unknown = await sign_in(api.http, params, unique("nobody") + "@x.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or the password is not right." in wrong.text
    assert "The email or the password is not right." in unknown.text
    assert 'role="alert"' in wrong.text and 'aria-invalid="true"' in wrong.text


async def test_the_sign_in_form_needs_its_csrf_token(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    params = authorize_params(client_id, Pkce.new())
    page = await api.http.get("/oauth/authorize", params=params)
    fields = {k: unescape(v) for k, v in form_fields(page.text).items()}
    forged = {**fields, "csrf_token": "1.forged", "email": email, "password": PASSWORD}
    assert (await api.http.post("/oauth/authorize", data=forged)).status_code == 400
    # A token without the browser's cookie (another browser, a cross-site form) fails too.
    async with httpx.AsyncClient(transport=api.http._transport, base_url=str(api.http.base_url)) as other:
        response = await other.post("/oauth/authorize", data={**fields, "email": email, "password": PASSWORD})
        assert response.status_code == 400
    assert (await api.http.post("/oauth/authorize",
                                data={**fields, "email": email, "password": PASSWORD})).status_code == 303


async def test_cancel_returns_access_denied(api: Api) -> None:
    client_id, _ = await new_client(api)
    params = authorize_params(client_id, Pkce.new())
    page = await api.http.get("/oauth/authorize", params=params)
    fields = {k: unescape(v) for k, v in form_fields(page.text).items()}
    response = await api.http.post("/oauth/authorize", data={**fields, "cancel": "1"})
    assert redirect_query(response)["error"] == "access_denied"


async def test_deactivated_users_cannot_sign_in(api: Api) -> None:
    email = await user_with_password(api)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(User).where(User.email_normalized == email.lower())
                              .values(status=UserStatus.DEACTIVATED))
    client_id, _ = await new_client(api)
    response = await sign_in(api.http, authorize_params(client_id, Pkce.new()), email)
    assert response.status_code == 401


# ----------------------------------------------------------------------------- refresh tokens


async def test_refresh_tokens_rotate(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    first = await tokens_for(api, client_id, email)
    second = await refresh(api.http, client_id, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert (await viewer(api, body["access_token"])).status_code == 200
    # A narrower scope may be asked for; a wider one may not.
    narrower = await refresh(api.http, client_id, body["refresh_token"], scope="users:read")
    assert narrower.status_code == 200 and narrower.json()["scope"] == "users:read"
    wider = await refresh(api.http, client_id, narrower.json()["refresh_token"], scope="users:read firms:read")
    assert wider.json()["error"] == "invalid_scope"
    # The rotated token keeps the grant's full scope.
    again = await refresh(api.http, client_id, narrower.json()["refresh_token"])
    assert set(again.json()["scope"].split()) == {"users:read", "companies:read"}


async def test_reusing_a_refresh_token_revokes_its_family(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    first = await tokens_for(api, client_id, email)
    second = (await refresh(api.http, client_id, first["refresh_token"])).json()
    third = (await refresh(api.http, client_id, second["refresh_token"])).json()
    assert (await viewer(api, third["access_token"])).status_code == 200

    # An attacker replays the first (already rotated) refresh token.
    replay = await refresh(api.http, client_id, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The whole family is gone: the newest refresh token and the live access tokens too.
    latest = await refresh(api.http, client_id, third["refresh_token"])
    assert latest.status_code == 400 and latest.json()["error"] == "invalid_grant"
    for access in (first["access_token"], second["access_token"], third["access_token"]):
        assert (await viewer(api, access)).status_code == 401
    # Another sign-in of the same user is a family of its own, unaffected.
    other = await tokens_for(api, client_id, email)
    assert (await refresh(api.http, client_id, other["refresh_token"])).status_code == 200


async def test_a_refresh_token_belongs_to_its_client(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    other_id, _ = await new_client(api)
    tokens = await tokens_for(api, client_id, email)
    stolen = await refresh(api.http, other_id, tokens["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"
    assert (await refresh(api.http, client_id, tokens["refresh_token"])).status_code == 200


# ----------------------------------------------------------------------------- client credentials


async def test_client_credentials_for_a_confidential_client(api: Api) -> None:
    firm = await api.firm()
    firm_pk = global_ids.decode_as(firm.id, "Firm")
    client_id, secret = await new_client(api, public=False, redirect_uris=[], firm_id=firm_pk,
                                         scopes=["firms:read", "agreements:read"])
    assert secret is not None
    basic = httpx.BasicAuth(client_id, secret)
    response = await api.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and set(body["scope"].split()) == {"firms:read", "agreements:read"}
    claims = (await api.runtime.tokens.validate(body["access_token"])).raw
    assert claims["sub"] == client_id == claims["client_id"]
    # The token acts for the client's firm.
    data = await api.ok("query($id: ID!) { node(id: $id) { ... on Firm { id } } }", {"id": firm.id},
                        token=body["access_token"])
    assert data["node"] == {"id": firm.id}
    # The README's example query.
    readme = await api.ok("query($id: ID!) { firm(id: $id) { name agreements { totalCount } } }", {"id": firm.id},
                          token=body["access_token"])
    assert readme["firm"]["agreements"]["totalCount"] == 0

    # client_secret_post works too, with a narrower scope.
    posted = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                       "client_secret": secret, "scope": "firms:read"})
    assert posted.status_code == 200 and posted.json()["scope"] == "firms:read"
    # Wrong secret, unregistered scope, no secret at all: refused.
    wrong = await api.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=httpx.BasicAuth(client_id, secret + "x"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    scope = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "billing:read"},
                                auth=basic)
    assert scope.json()["error"] == "invalid_scope"
    bare = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id})
    assert bare.json()["error"] == "invalid_client"


async def test_client_credentials_refused_to_a_public_client(api: Api) -> None:
    client_id, secret = await new_client(api, public=True)
    assert secret is None
    response = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id})
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_client_secrets_are_stored_hashed(api: Api) -> None:
    from models import OAuthClient

    client_id, secret = await new_client(api, public=False)
    assert secret is not None
    async with api.runtime.database.sessions() as session:
        stored = await session.scalar(select(OAuthClient.secret_hash).where(OAuthClient.client_id == client_id))
    assert stored is not None and secret not in stored


async def test_a_confidential_client_must_authenticate_for_the_code_grant(api: Api) -> None:
    email = await user_with_password(api)
    client_id, secret = await new_client(api, public=False)
    assert secret is not None
    pkce = Pkce.new()
    code = await code_for(api, client_id, email, pkce)
    anonymous = await exchange(api.http, client_id, code, pkce.verifier)
    assert anonymous.json()["error"] == "invalid_client"
    ok = await exchange(api.http, client_id, code, pkce.verifier, client_secret=secret)
    assert ok.status_code == 200, ok.text


# ----------------------------------------------------------------------------- revocation, metadata, keys


async def test_revocation(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    tokens = await tokens_for(api, client_id, email)
    # An access token: refused from then on.
    response = await api.http.post("/oauth/revoke", data={"token": tokens["access_token"],
                                                          "token_type_hint": "access_token", "client_id": client_id})
    assert response.status_code == 200
    assert (await viewer(api, tokens["access_token"])).status_code == 401
    # A refresh token: its whole grant goes.
    fresh = await tokens_for(api, client_id, email)
    response = await api.http.post("/oauth/revoke", data={"token": fresh["refresh_token"], "client_id": client_id})
    assert response.status_code == 200
    assert (await refresh(api.http, client_id, fresh["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await viewer(api, fresh["access_token"])).status_code == 401
    # An unknown token is no error (RFC 7009 2.2); another client's token is refused.
    assert (await api.http.post("/oauth/revoke", data={"token": "nonsense", "client_id": client_id})).status_code == 200
    other_id, _ = await new_client(api)
    mine = await tokens_for(api, client_id, email)
    refused = await api.http.post("/oauth/revoke", data={"token": mine["refresh_token"], "client_id": other_id})
    assert refused.status_code == 400
    assert (await refresh(api.http, client_id, mine["refresh_token"])).status_code == 200


async def test_client_credentials_tokens_can_be_revoked(api: Api) -> None:
    client_id, secret = await new_client(api, public=False, redirect_uris=[])
    assert secret is not None
    basic = httpx.BasicAuth(client_id, secret)
    token = (await api.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic)).json()
    assert (await viewer(api, token["access_token"])).status_code == 200
    assert (await api.http.post("/oauth/revoke", data={"token": token["access_token"]}, auth=basic)).status_code == 200
    assert (await viewer(api, token["access_token"])).status_code == 401


async def test_metadata_document(api: Api) -> None:
    response = await api.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    issuer = api.runtime.settings.issuer
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert metadata["token_endpoint"] == f"{issuer}/oauth/token"
    assert metadata["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                      "none"}
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "platform:admin" in metadata["scopes_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    # authlib's RFC 8414 checks pass (on an https issuer, which the RFC requires).
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    https = {k: v.replace("http://", "https://") if isinstance(v, str) else v for k, v in metadata.items()}
    AuthorizationServerMetadata(https).validate()


async def test_jwks_and_key_rotation(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    before = await tokens_for(api, client_id, email)
    old_kid = (await api.runtime.tokens.validate(before["access_token"])).raw
    new_kid = await api.runtime.keys.rotate()
    after = await tokens_for(api, client_id, email)
    jwks = (await api.http.get("/.well-known/jwks.json")).json()
    kids = {key["kid"] for key in jwks["keys"]}
    assert new_kid in kids and all("d" not in key for key in jwks["keys"])
    # Old tokens keep working until they expire; new ones are signed with the new key.
    assert (await viewer(api, before["access_token"])).status_code == 200
    assert (await viewer(api, after["access_token"])).status_code == 200
    from joserfc import jws

    assert jws.extract_compact(after["access_token"].encode()).protected["kid"] == new_kid
    assert old_kid


async def test_a_spa_may_call_the_token_endpoint_from_its_own_origin_only(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    pkce = Pkce.new()
    code = await code_for(api, client_id, email, pkce)
    response = await api.http.post("/oauth/token", headers={"Origin": "https://spa.example"}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": SPA_REDIRECT, "client_id": client_id,
        "code_verifier": pkce.verifier})
    assert response.headers["access-control-allow-origin"] == "https://spa.example"
    evil = await refresh(api.http, client_id, response.json()["refresh_token"])
    assert "access-control-allow-origin" not in evil.headers
    other = await api.http.post("/oauth/token", headers={"Origin": "https://evil.example"},
                                data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id})
    assert "access-control-allow-origin" not in other.headers


# ----------------------------------------------------------------------------- attempt limits

WRONG = "wrong password!!"


class FakeClock:
    """The time the limiter sees: tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def new_address() -> str:
    """A client address no other test uses (the database is shared by the whole run)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def other_email() -> str:
    return unique("nobody") + "@x.example"


@dataclass
class Site:
    """The authorization server with a clock and limits of its own, for clients at any address."""

    app: Starlette
    clock: FakeClock
    params: dict[str, str]

    async def sign_in(self, address: str, email: str, password: str = PASSWORD) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as browser:
            return await sign_in(browser, self.params, email, password)

    async def status(self, address: str, email: str, password: str = PASSWORD) -> int:
        return (await self.sign_in(address, email, password)).status_code

    async def retry_after(self, address: str, email: str, password: str = PASSWORD) -> int:
        """The wait of a refused attempt (fails the test when the attempt is not refused)."""
        response = await self.sign_in(address, email, password)
        assert response.status_code == 429, response.status_code
        assert "Too many sign-in attempts" in response.text
        return int(response.headers["retry-after"])

    async def fail_after_waiting(self, address: str, email: str) -> None:
        """One more failure of the pair, after whatever wait it has."""
        response = await self.sign_in(address, email, WRONG)
        if response.status_code == 429:
            self.clock.advance(int(response.headers["retry-after"]))
            response = await self.sign_in(address, email, WRONG)
        assert response.status_code == 401, response.status_code


async def site(api: Api, runtime: Runtime, limits: AttemptLimits | None = None) -> Site:
    clock = FakeClock()
    app = Starlette(routes=web_routes(replace(runtime, clock=clock), limits))
    client_id, _ = await new_client(api)
    return Site(app, clock, authorize_params(client_id, Pkce.new()))


async def test_a_flood_from_one_address_does_not_keep_the_owner_out(api: Api, runtime: Runtime) -> None:
    email = await user_with_password(api)
    bureau = await site(api, runtime)
    attacker = new_address()
    for _ in range(30):  # far past the free failures, to the longest wait
        await bureau.fail_after_waiting(attacker, email)
    for _ in range(20):  # and more, while waiting
        assert await bureau.status(attacker, email, WRONG) == 429
    assert await bureau.retry_after(attacker, email) == 15 * 60  # even the right password, from there
    assert "Try again in 15 minutes." in (await bureau.sign_in(attacker, email)).text
    assert await bureau.status(new_address(), email) == 303  # the owner, elsewhere
    assert await bureau.status(attacker, other_email(), WRONG) == 401  # and the attacker's other pairs


async def test_delays_grow_after_the_free_failures(api: Api, runtime: Runtime) -> None:
    email = await user_with_password(api)
    bureau = await site(api, runtime)
    address = new_address()
    for _ in range(AttemptLimits().free_failures + 1):  # the free ones, and one that starts the waits
        assert await bureau.status(address, email, WRONG) == 401
    assert "Try again in 2 seconds." in (await bureau.sign_in(address, email)).text
    for expected in (2, 4, 8, 16):
        assert await bureau.retry_after(address, email) == expected  # the right password waits too
        bureau.clock.advance(expected - 1)
        assert await bureau.retry_after(address, email, WRONG) == 1
        bureau.clock.advance(1)
        assert await bureau.status(address, email, WRONG) == 401
    bureau.clock.advance(32)
    assert await bureau.status(address, email) == 303


async def test_waiting_is_not_extended_by_more_attempts_and_is_capped(api: Api, runtime: Runtime) -> None:
    email = await user_with_password(api)
    bureau = await site(api, runtime)
    address = new_address()
    for _ in range(AttemptLimits().free_failures + 1):
        assert await bureau.status(address, email, WRONG) == 401
    waits: list[int] = []
    for _ in range(13):
        wait = await bureau.retry_after(address, email, WRONG)
        for _ in range(5):  # refused attempts are no failures: the wait stays as it is
            assert await bureau.retry_after(address, email, WRONG) == wait
        bureau.clock.advance(wait)
        assert await bureau.status(address, email, WRONG) == 401
        waits.append(wait)
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
    assert await bureau.retry_after(address, email) == 900
    # Failures are forgotten after a day: the pair's free failures are free again.
    bureau.clock.advance(timedelta(hours=24).total_seconds())
    for _ in range(AttemptLimits().free_failures + 1):
        assert await bureau.status(address, email, WRONG) == 401


async def test_a_success_clears_that_pair_only(api: Api, runtime: Runtime) -> None:
    owner, someone = await user_with_password(api), await user_with_password(api)
    bureau = await site(api, runtime)
    home, elsewhere = new_address(), new_address()
    for address, email in ((home, owner), (elsewhere, owner), (home, someone)):
        for _ in range(AttemptLimits().free_failures + 1):
            assert await bureau.status(address, email, WRONG) == 401
        assert await bureau.retry_after(address, email) == 2
    bureau.clock.advance(2)
    assert await bureau.status(home, owner) == 303
    # The pair starts afresh: its free failures are free again.
    for _ in range(AttemptLimits().free_failures + 1):
        assert await bureau.status(home, owner, WRONG) == 401
    assert await bureau.retry_after(home, owner) == 2
    # Not so the owner's account from elsewhere, nor the address with another account.
    for address, email in ((elsewhere, owner), (home, someone)):
        assert await bureau.status(address, email, WRONG) == 401
        assert await bureau.retry_after(address, email) == 4


async def test_the_per_address_limit_throttles_a_spraying_address_only(api: Api, runtime: Runtime) -> None:
    owner = await user_with_password(api)
    bureau = await site(api, runtime, AttemptLimits(address_failures=5))
    sprayer, shared, office = new_address(), new_address(), new_address()
    assert await bureau.status(shared, owner) == 303  # the owner has signed in from there
    for address in (sprayer, shared):
        for _ in range(5):
            assert await bureau.status(address, other_email(), WRONG) == 401
        assert await bureau.retry_after(address, other_email(), WRONG) == 15 * 60
    assert await bureau.retry_after(sprayer, owner) == 15 * 60  # new to the owner's account
    assert await bureau.status(shared, owner) == 303  # known for it
    assert await bureau.status(new_address(), owner) == 303  # and any other address
    # Waiting: more attempts do not extend it; after it, the address may try again.
    bureau.clock.advance(60)
    for _ in range(5):
        assert await bureau.retry_after(sprayer, other_email(), WRONG) == 14 * 60
    bureau.clock.advance(14 * 60)
    assert await bureau.status(sprayer, other_email(), WRONG) == 401
    # A success clears the failures of its pair, but they still count for the address.
    for _ in range(4):
        assert await bureau.status(office, owner, WRONG) == 401
    assert await bureau.status(office, owner) == 303
    assert await bureau.status(office, other_email(), WRONG) == 401
    assert await bureau.retry_after(office, other_email(), WRONG) > 0
    assert await bureau.status(office, owner) == 303


async def test_many_failing_addresses_throttle_new_addresses_but_not_known_ones(api: Api, runtime: Runtime) -> None:
    owner, someone = await user_with_password(api), await user_with_password(api)
    bureau = await site(api, runtime, AttemptLimits(account_addresses=3, known_for=timedelta(days=2)))
    home = new_address()
    assert await bureau.status(home, owner) == 303
    first, second, third = new_address(), new_address(), new_address()
    for _ in range(10):  # one address, however many failures, is one address
        await bureau.fail_after_waiting(first, owner)
    assert await bureau.status(second, owner, WRONG) == 401
    travelling = new_address()
    assert await bureau.status(travelling, owner) == 303  # two addresses are not yet an attack
    assert await bureau.status(third, owner, WRONG) == 401
    # Three failing addresses: new ones wait, including the right password...
    assert await bureau.retry_after(new_address(), owner) == 60 * 60
    assert await bureau.retry_after(second, owner) == 60 * 60
    # ... but not addresses the owner signed in from, nor other accounts.
    assert await bureau.status(home, owner) == 303
    assert await bureau.status(travelling, owner) == 303
    assert await bureau.status(new_address(), someone) == 303
    # Until the failures age out of the window.
    bureau.clock.advance(60 * 60)
    assert await bureau.status(new_address(), owner) == 303
    # An address is known for as long as the last success there is.
    bureau.clock.advance(timedelta(days=2).total_seconds())
    for _ in range(3):
        assert await bureau.status(new_address(), owner, WRONG) == 401
    assert await bureau.retry_after(home, owner) == 60 * 60


async def test_parallel_guesses_do_not_slip_through_together(api: Api, runtime: Runtime) -> None:
    email = await user_with_password(api)
    bureau = await site(api, runtime)
    address = new_address()
    for _ in range(AttemptLimits().free_failures):
        assert await bureau.status(address, email, WRONG) == 401
    # One more failure is free of a wait; of parallel ones, each later check sees the earlier.
    statuses = await asyncio.gather(*(bureau.status(address, email, WRONG) for _ in range(8)))
    # At most one gets through (401, a wrong password); the others wait (429).
    assert sorted(statuses)[1:] == [429] * 7, statuses


# ----------------------------------------------------------------------------- the embedded default


async def test_the_flow_on_sqlite(tmp_path: Any) -> None:
    from app import create_app
    from models.db import connect
    from models.migrate import migrate
    from settings import Settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}"
    await migrate(url)
    database = connect(url)
    runtime = Runtime.create(database, Settings())
    try:
        async with database.sessions.begin() as session:
            session.add(User(name="Lite", email="lite@x.example", email_normalized="lite@x.example",
                             status=UserStatus.ACTIVE, password_hash=await hash_password(PASSWORD)))
        transport = httpx.ASGITransport(app=create_app(runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
            api = Api(http, runtime, vendor_client_id="", app_client_id="")
            client_id, _ = await new_client(api)
            first = await tokens_for(api, client_id, "lite@x.example")
            assert (await viewer(api, first["access_token"])).json()["data"]["viewer"]["user"]["email"] == \
                "lite@x.example"
            second = (await refresh(http, client_id, first["refresh_token"])).json()
            assert (await refresh(http, client_id, first["refresh_token"])).json()["error"] == "invalid_grant"
            assert (await refresh(http, client_id, second["refresh_token"])).json()["error"] == "invalid_grant"
            assert (await viewer(api, second["access_token"])).status_code == 401
    finally:
        await database.dispose()
