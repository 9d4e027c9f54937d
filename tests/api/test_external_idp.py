"""Access tokens of a trusted external OpenID Connect provider: a tiny provider of our own
serves its JWKS on loopback (http.server in a thread) and signs tokens with keys made here."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import update

from app import create_app
from auth.external import ConfigError, TrustedIssuer, TrustedIssuers, link_subject, parse_trusted_issuers
from auth.tokens import InvalidToken
from models import User, ids
from models.enums import UserStatus
from resolvers.runtime import Runtime
from tests.api.client import Api, unique

VIEWER = "{ viewer { clientId scopes user { email } } }"
AUDIENCE = "https://api.bureau.example"


@dataclass
class Provider:
    """An OpenID Connect provider reduced to what a resource server sees: a JWKS and tokens."""

    issuer: str = ""
    keys: list[Any] = field(default_factory=list)
    fetches: int = 0
    down: bool = False
    server: ThreadingHTTPServer | None = None

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks.json"

    def rotate(self, *, keep_old: bool = False, kind: str = "EC") -> Any:
        kid = f"k{len(self.keys) + 1}-{time.perf_counter_ns()}"
        key = (ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}, private=True)
               if kind == "EC" else
               RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True))
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def token(self, key: Any = None, *, typ: str | None = "at+jwt", alg: str | None = None,
              **claims: Any) -> str:
        key = key or self.keys[-1]
        alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": "user-1", "client_id": "partner-spa",
                   "scope": "users:read firms:read", "iat": now, "exp": now + 300, "jti": f"j{time.perf_counter_ns()}",
                   **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        header = {"alg": alg, "kid": key.kid, **({"typ": typ} if typ else {})}
        return jwt.encode(header, payload, key, algorithms=[alg])


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/jwks.json" or state.down:
                self.send_response(404 if not state.down else 503)
                self.end_headers()
                return
            state.fetches += 1
            body = json.dumps(state.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server = server
    state.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    state.rotate()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def trust(provider: Provider, **options: Any) -> TrustedIssuer:
    return TrustedIssuer(provider.issuer, AUDIENCE, provider.jwks_uri, **options)


@pytest.fixture
async def external(runtime: Runtime, provider: Provider) -> TrustedIssuers:
    return TrustedIssuers([trust(provider)], own_issuer=runtime.settings.issuer, refetch_interval=0)


@pytest.fixture
async def resource(runtime: Runtime, external: TrustedIssuers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)
    app.state.trusted_issuers = external
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as client:
        yield client


async def ask(resource: httpx.AsyncClient, token: str) -> httpx.Response:
    return await resource.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"})


async def a_user(api: Api) -> str:
    return (await api.firm()).admin_email


async def user_pk(api: Api, email: str) -> int:
    from sqlalchemy import select

    async with api.runtime.database.sessions() as session:
        pk = await session.scalar(select(User.id).where(User.email_normalized == email.lower()))
    assert pk is not None
    return pk


# ----------------------------------------------------------------------------- mapping to users


async def test_a_verified_email_maps_to_the_user(api: Api, resource: httpx.AsyncClient, provider: Provider) -> None:
    email = await a_user(api)
    token = provider.token(sub=unique("sub-"), email=email.upper(), email_verified=True,
                           scope="users:read firms:read platform:admin")
    response = await ask(resource, token)
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    assert viewer["user"]["email"] == email
    assert viewer["clientId"] == "ext:partner-spa"
    # platform:admin is for this server's own clients only.
    assert set(viewer["scopes"]) == {"users:read", "firms:read"}


async def test_keys_are_cached(api: Api, resource: httpx.AsyncClient, provider: Provider) -> None:
    email = await a_user(api)
    for _ in range(3):
        assert (await ask(resource, provider.token(email=email, email_verified=True))).status_code == 200
    assert provider.fetches == 1


async def test_an_unverified_or_unknown_email_maps_to_nobody(api: Api, resource: httpx.AsyncClient,
                                                             provider: Provider) -> None:
    email = await a_user(api)
    for claims in ({"email": email, "email_verified": False}, {"email": email},
                   {"email": email, "email_verified": "false"},
                   {"email": unique("nobody") + "@x.example", "email_verified": True}, {}):
        response = await ask(resource, provider.token(sub=unique("sub-"), **claims))
        assert response.status_code == 401, claims


async def test_a_subject_link_maps_without_an_email(api: Api, resource: httpx.AsyncClient, provider: Provider) -> None:
    email = await a_user(api)
    subject = unique("linked-")
    async with api.runtime.database.sessions.begin() as session:
        await link_subject(session, provider.issuer, subject, await user_pk(api, email))
    response = await ask(resource, provider.token(sub=subject))
    assert response.status_code == 200 and response.json()["data"]["viewer"]["user"]["email"] == email
    # Someone else at the provider with the same (verified) email does not become this user.
    other = await ask(resource, provider.token(sub=unique("other-"), email=email, email_verified=True))
    assert other.status_code == 401


async def test_a_corrected_identity_loses_its_links(api: Api, resource: httpx.AsyncClient, provider: Provider) -> None:
    """R103: whoever the provider's subject was, it was the user as they were; once the vendor
    corrects who the user is, that subject no longer signs in as them."""
    email = await a_user(api)
    pk = await user_pk(api, email)
    subject = unique("linked-")
    async with api.runtime.database.sessions.begin() as session:
        await link_subject(session, provider.issuer, subject, pk)
    assert (await ask(resource, provider.token(sub=subject))).status_code == 200
    corrected = await api.mutate("correctUserIdentity", {"userId": ids.encode("User", pk),
                                                         "email": unique("right") + "@x.example"},
                                 "user { id }", token=await api.vendor())
    assert corrected["user"]["id"] == ids.encode("User", pk)
    assert (await ask(resource, provider.token(sub=subject))).status_code == 401


async def test_a_deactivated_user_is_refused(api: Api, resource: httpx.AsyncClient, provider: Provider) -> None:
    email = await a_user(api)
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(User).where(User.email_normalized == email.lower())
                              .values(status=UserStatus.DEACTIVATED))
    assert (await ask(resource, provider.token(email=email, email_verified=True))).status_code == 401


# ----------------------------------------------------------------------------- keys


async def test_key_rotation_at_the_provider_triggers_a_refetch(api: Api, resource: httpx.AsyncClient,
                                                               provider: Provider) -> None:
    email = await a_user(api)
    old = provider.keys[-1]
    assert (await ask(resource, provider.token(email=email, email_verified=True))).status_code == 200
    assert provider.fetches == 1
    new = provider.rotate(kind="RSA")  # the provider rotates (and changes algorithm)
    response = await ask(resource, provider.token(new, email=email, email_verified=True))
    assert response.status_code == 200, response.text
    assert provider.fetches == 2  # the unknown kid made one refetch
    assert (await ask(resource, provider.token(new, email=email, email_verified=True))).status_code == 200
    assert provider.fetches == 2
    # The old key was withdrawn: its tokens fail now.
    assert (await ask(resource, provider.token(old, email=email, email_verified=True))).status_code == 401


async def test_refetches_for_unknown_kids_are_rate_limited(api: Api, runtime: Runtime, provider: Provider) -> None:
    external = TrustedIssuers([trust(provider)], refetch_interval=60)
    email = await a_user(api)
    token = provider.token(email=email, email_verified=True)
    async with runtime.database.sessions() as session:
        assert (await external.authenticate(session, token, now=runtime.now())).user_id is not None
        stranger = ECKey.generate_key("P-256", parameters={"kid": "made-up"}, private=True)
        for _ in range(5):
            with pytest.raises(InvalidToken, match="unknown key"):
                await external.authenticate(session, provider.token(stranger, email=email, email_verified=True),
                                            now=runtime.now())
    assert provider.fetches == 1


async def test_a_provider_that_is_down_gives_401_not_500(api: Api, resource: httpx.AsyncClient,
                                                         provider: Provider) -> None:
    provider.down = True
    response = await ask(resource, provider.token(email=await a_user(api), email_verified=True))
    assert response.status_code == 401


# ----------------------------------------------------------------------------- attacks


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_forged_and_misused_tokens_are_refused(api: Api, resource: httpx.AsyncClient,
                                                     provider: Provider) -> None:
    email = await a_user(api)
    good: dict[str, Any] = {"email": email, "email_verified": True}
    assert (await ask(resource, provider.token(**good))).status_code == 200
    key = provider.keys[-1]
    now = int(time.time())
    attacks = {
        "wrong audience": provider.token(aud="someone-else", **good),
        "an ID token (aud is the client, typ JWT)": provider.token(aud="partner-spa", typ="JWT", nonce="n", **good),
        "typ JWT": provider.token(typ="JWT", **good),
        "no typ": provider.token(typ=None, **good),
        "expired": provider.token(exp=now - 120, **good),
        "not yet valid": provider.token(nbf=now + 600, **good),
        "no exp": provider.token(exp=None, **good),
        "no sub": provider.token(sub=None, **good),
        "untrusted issuer": provider.token(iss="http://127.0.0.1:1", **good),
        "signed by a stranger with the provider's kid": jwt.encode(
            {"alg": "ES256", "typ": "at+jwt", "kid": key.kid},
            {"iss": provider.issuer, "aud": AUDIENCE, "sub": "x", "exp": now + 300, **good},
            ECKey.generate_key("P-256", private=True), algorithms=["ES256"]),
    }
    head = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}).encode())
    body = b64(json.dumps({"iss": provider.issuer, "aud": AUDIENCE, "sub": "x", "exp": now + 300, **good}).encode())
    mac = hmac.new(key.as_pem(private=False), f"{head}.{body}".encode(), hashlib.sha256).digest()
    attacks["HS256 with the provider's public key"] = f"{head}.{body}.{b64(mac)}"
    none_head = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": key.kid}).encode())
    attacks["alg none"] = f"{none_head}.{body}."
    valid = provider.token(**good)
    attacks["tampered payload"] = ".".join([valid.split(".")[0], body, valid.split(".")[2]])
    for name, token in attacks.items():
        response = await ask(resource, token)
        assert response.status_code == 401, name


async def test_a_provider_without_typ_can_be_configured(api: Api, runtime: Runtime, provider: Provider) -> None:
    external = TrustedIssuers([trust(provider, typ=None)], refetch_interval=0)
    email = await a_user(api)
    async with runtime.database.sessions() as session:
        principal = await external.authenticate(session, provider.token(typ=None, email=email, email_verified=True),
                                                now=runtime.now())
        assert principal.user_id == await user_pk(api, email)
        with pytest.raises(InvalidToken):  # the audience still keeps ID tokens out
            await external.authenticate(session, provider.token(typ=None, aud="partner-spa", email=email,
                                                                email_verified=True), now=runtime.now())


async def test_only_the_configured_algorithms(api: Api, runtime: Runtime, provider: Provider) -> None:
    external = TrustedIssuers([trust(provider, algorithms=("RS256",))], refetch_interval=0)
    async with runtime.database.sessions() as session:
        with pytest.raises(InvalidToken, match="algorithm"):
            await external.authenticate(session, provider.token(email=await a_user(api), email_verified=True),
                                        now=runtime.now())


async def test_our_own_tokens_still_work_beside_the_provider(api: Api, resource: httpx.AsyncClient) -> None:
    response = await ask(resource, await api.vendor())
    assert response.status_code == 200 and response.json()["data"]["viewer"]["clientId"] == api.vendor_client_id


# ----------------------------------------------------------------------------- configuration


def test_configuration_from_the_environment() -> None:
    raw = json.dumps([{"issuer": "https://login.example.com/", "audience": "bureau",
                       "jwks_uri": "https://login.example.com/jwks"},
                      {"issuer": "https://idp.example", "audience": "api", "jwks_uri": "https://idp.example/k",
                       "algorithms": ["RS256"], "typ": None, "scopes": ["users:read"]}])
    first, second = parse_trusted_issuers(raw)
    assert first.issuer == "https://login.example.com/" and first.typ == "at+jwt"
    assert "platform:admin" not in first.scopes
    assert second.algorithms == ("RS256",) and second.typ is None and second.scopes == {"users:read"}
    assert parse_trusted_issuers(None) == [] and parse_trusted_issuers("") == []


@pytest.mark.parametrize("raw", [
    "not json",
    '{"issuer": "x"}',
    '[{"issuer": "https://a", "audience": "b"}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "http://a.example/jwks"}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "algorithms": ["HS256"]}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "algorithms": ["none"]}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "scopes": ["root"]}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "surprise": 1}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "pin_claim": ""}]',
    '[{"issuer": "https://a", "audience": "b", "jwks_uri": "https://a/jwks", "pin_claim": ["ssn"]}]',
])
def test_bad_configuration_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_trusted_issuers(raw)


def test_this_server_cannot_trust_itself() -> None:
    with pytest.raises(ConfigError):
        TrustedIssuers([TrustedIssuer("http://127.0.0.1:8000", "bureau", "http://127.0.0.1:8000/jwks")],
                       own_issuer="http://127.0.0.1:8000")
