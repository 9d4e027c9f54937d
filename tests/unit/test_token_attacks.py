"""Forged and misused access tokens are refused (RFC 8725, RFC 9068): by TokenService.validate
and, through HTTP, with 401 on /graphql. The forgeries are made by hand here on purpose."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from auth.tokens import InvalidToken
from resolvers.runtime import Runtime
from tests.api.client import Api
from tests.api.test_oauth import new_client, refresh, tokens_for, user_with_password, viewer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def part(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(runtime: Runtime, client: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": runtime.settings.issuer, "aud": runtime.settings.audience, "sub": client,
            "client_id": client, "scope": "firms:read", "iat": now, "nbf": now, "exp": now + 300,
            "jti": f"attack-{now}-{time.perf_counter_ns()}"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


async def signed(runtime: Runtime, payload: dict[str, Any], **header: Any) -> str:
    """Signed with the server's real key: only the claims or the header are wrong."""
    key = await runtime.keys.signing_key()
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, payload, key, algorithms=["ES256"])


@pytest.fixture
async def client_id(api: Api) -> str:
    return api.vendor_client_id


async def refused(runtime: Runtime, api: Api, token: str, reason: str | None = None) -> None:
    with pytest.raises(InvalidToken) as caught:
        await runtime.tokens.validate(token)
    if reason:
        assert reason in str(caught.value)
    response = await api.post("{ viewer { clientId } }", token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_a_well_formed_token_passes(runtime: Runtime, api: Api, client_id: str) -> None:
    token = await signed(runtime, claims(runtime, client_id))
    assert (await runtime.tokens.validate(token)).client_id == client_id
    assert (await api.post("{ viewer { clientId } }", token=token)).status_code == 200


async def test_alg_none(runtime: Runtime, api: Api, client_id: str) -> None:
    key = await runtime.keys.signing_key()
    for alg in ("none", "None", "NONE"):
        token = f"{part({'alg': alg, 'typ': 'at+jwt', 'kid': key.kid})}.{part(claims(runtime, client_id))}."
        await refused(runtime, api, token, "algorithm")


async def test_hs256_signed_with_the_public_key(runtime: Runtime, api: Api, client_id: str) -> None:
    key = await runtime.keys.signing_key()
    for secret in (key.as_pem(private=False), json.dumps(key.as_dict(private=False)).encode(),
                   key.as_bytes(private=False)):
        head = part({"alg": "HS256", "typ": "at+jwt", "kid": key.kid})
        body = part(claims(runtime, client_id, scope="platform:admin"))
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        await refused(runtime, api, f"{head}.{body}.{b64(mac)}", "algorithm")


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS256", "EdDSA"])
async def test_other_algorithms(runtime: Runtime, api: Api, client_id: str, alg: str) -> None:
    key = await runtime.keys.signing_key()
    token = f"{part({'alg': alg, 'typ': 'at+jwt', 'kid': key.kid})}.{part(claims(runtime, client_id))}.c2ln"
    await refused(runtime, api, token, "algorithm")


@pytest.mark.parametrize("change,reason", [
    (lambda r: {"iss": "https://evil.example"}, "iss"),
    (lambda r: {"iss": r.settings.issuer + "/"}, "iss"),
    (lambda r: {"iss": None}, "iss"),
    (lambda r: {"aud": "someone-else"}, "aud"),
    (lambda r: {"aud": ["someone-else", "another"]}, "aud"),
    (lambda r: {"aud": None}, "aud"),
    (lambda r: {"exp": int(time.time()) - 120}, "exp"),
    (lambda r: {"exp": None}, "exp"),
    (lambda r: {"exp": "never"}, "exp"),
    (lambda r: {"nbf": int(time.time()) + 600}, "not yet valid"),
    (lambda r: {"iat": int(time.time()) + 600}, "future"),
    (lambda r: {"jti": None}, "jti"),
    (lambda r: {"client_id": None}, "client_id"),
    (lambda r: {"sub": None}, "sub"),
])
async def test_wrong_claims(runtime: Runtime, api: Api, client_id: str,
                            change: Callable[[Runtime], dict[str, Any]], reason: str) -> None:
    await refused(runtime, api, await signed(runtime, claims(runtime, client_id, **change(runtime))), reason)


async def test_unknown_kid(runtime: Runtime, api: Api, client_id: str) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "not-ours"}, private=True)
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "not-ours"}, claims(runtime, client_id), stranger,
                       algorithms=["ES256"])
    await refused(runtime, api, token, "unknown key")
    missing = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, claims(runtime, client_id), stranger,
                         algorithms=["ES256"])
    await refused(runtime, api, missing, "unknown key")


async def test_our_kid_with_another_key_or_an_embedded_key(runtime: Runtime, api: Api, client_id: str) -> None:
    ours = await runtime.keys.signing_key()
    stranger = ECKey.generate_key("P-256", private=True)
    for extra in ({}, {"jwk": stranger.as_dict(private=False)}, {"jku": "https://evil.example/jwks.json"}):
        token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": ours.kid, **extra}, claims(runtime, client_id),
                           stranger, algorithms=["ES256"])
        await refused(runtime, api, token)


async def test_tampered_payload(runtime: Runtime, api: Api, client_id: str) -> None:
    token = await signed(runtime, claims(runtime, client_id))
    head, _, signature = token.split(".")
    forged = f"{head}.{part(claims(runtime, client_id, scope='platform:admin firms:write'))}.{signature}"
    await refused(runtime, api, forged)
    flipped = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    await refused(runtime, api, flipped)
    await refused(runtime, api, token + ".extra")
    await refused(runtime, api, "not a token")


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+JWT+extra", "application/jwt"])
async def test_missing_or_wrong_typ(runtime: Runtime, api: Api, client_id: str, typ: str | None) -> None:
    await refused(runtime, api, await signed(runtime, claims(runtime, client_id), typ=typ), "not an access token")


async def test_an_id_token_is_no_access_token(runtime: Runtime, api: Api, client_id: str) -> None:
    # Shaped like an OpenID Connect ID token of ours: typ JWT, nonce, auth_time.
    token = await signed(runtime, claims(runtime, client_id, nonce="n-0S6_WzA2Mj", auth_time=int(time.time())),
                         typ="JWT")
    await refused(runtime, api, token, "not an access token")


async def test_an_rsa_key_in_the_header_changes_nothing(runtime: Runtime, api: Api, client_id: str) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa"}, private=True)
    token = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": "rsa"}, claims(runtime, client_id), rsa,
                       algorithms=["RS256"])
    await refused(runtime, api, token, "algorithm")


async def test_a_token_of_an_unknown_client(runtime: Runtime, api: Api) -> None:
    token = await signed(runtime, claims(runtime, "bc_unknown"))
    response = await api.post("{ viewer { clientId } }", token=token)
    assert response.status_code == 401


async def test_a_revoked_refresh_token_reused(api: Api) -> None:
    email = await user_with_password(api)
    client, _ = await new_client(api)
    tokens = await tokens_for(api, client, email)
    revoked = await api.http.post("/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": client})
    assert revoked.status_code == 200
    again = await refresh(api.http, client, tokens["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await viewer(api, tokens["access_token"])).status_code == 401


async def test_a_rotated_refresh_token_reused_after_rotation(api: Api) -> None:
    email = await user_with_password(api)
    client, _ = await new_client(api)
    tokens = await tokens_for(api, client, email)
    rotated = (await refresh(api.http, client, tokens["refresh_token"])).json()
    assert (await refresh(api.http, client, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await refresh(api.http, client, rotated["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await viewer(api, rotated["access_token"])).status_code == 401


async def test_a_refresh_token_is_no_access_token_and_back(api: Api) -> None:
    email = await user_with_password(api)
    client, _ = await new_client(api)
    tokens = await tokens_for(api, client, email)
    assert (await viewer(api, tokens["refresh_token"])).status_code == 401
    assert (await refresh(api.http, client, tokens["access_token"])).json()["error"] == "invalid_grant"


async def test_a_token_verified_before_is_refused_once_it_expires(runtime: Runtime, api: Api, client_id: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """R99: a verified token is kept, its signature not checked again, only while it has not expired."""
    import auth.tokens

    now = time.time()
    token = await signed(runtime, claims(runtime, client_id, exp=int(now) + 60))
    assert (await runtime.tokens.validate(token)).client_id == client_id
    assert (await api.post("{ viewer { clientId } }", token=token)).status_code == 200
    monkeypatch.setattr(auth.tokens.time, "time", lambda: now + 60 + auth.tokens.LEEWAY + 1)
    await refused(runtime, api, token, "expired")


async def test_a_token_verified_before_is_refused_once_its_key_is_gone(runtime: Runtime, api: Api,
                                                                       client_id: str) -> None:
    token = await signed(runtime, claims(runtime, client_id))
    await runtime.tokens.validate(token)
    ring = runtime.keys
    kept = dict(ring._keys)
    ring._keys.clear()

    async def nothing(*, create: bool) -> None:  # as if the key were retired everywhere
        return None

    original = ring.reload
    ring.reload = nothing  # type: ignore[method-assign]
    try:
        await refused(runtime, api, token, "unknown key")
    finally:
        ring.reload = original  # type: ignore[method-assign]
        ring._keys.update(kept)
