"""The operator's `bureau` commands (R90) through a subprocess on the tests' PostgreSQL database:
clients list (no secrets) and revoke (its tokens stop working), and `serve`/`demo` following --port."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from models import ids as global_ids
from tests.api.client import Api
from tests.api.test_metrics import free_port
from tests.api.test_oauth import new_client, refresh, tokens_for, user_with_password

ROOT = Path(__file__).resolve().parents[2]


def bureau(database_url: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "BUREAU_ISSUER"}, "DATABASE_URL": database_url,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


async def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(bureau, database_url, *args)


async def test_clients_list_shows_no_secret_and_revoke_ends_its_tokens(api: Api, database_url: str) -> None:
    firm = await api.firm()
    created = await run(database_url, "clients", "create", "--name", "Acme dashboard", "--firm", firm.id,
                        "--scopes", "firms:read agreements:read")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout.splitlines()[-1])
    client_id, secret = client["client_id"], client["client_secret"]

    listed = await run(database_url, "clients", "list")
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout + listed.stderr and "secret" not in listed.stdout
    mine = [c for c in json.loads(listed.stdout.splitlines()[-1]) if c["client_id"] == client_id]
    assert mine == [{"client_id": client_id, "name": "Acme dashboard", "public": False, "firm": firm.id,
                     "scopes": ["agreements:read", "firms:read"], "redirect_uris": [],
                     "created_at": mine[0]["created_at"]}]

    basic = httpx.BasicAuth(client_id, secret)
    issued = await api.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic)
    token = issued.json()["access_token"]
    assert (await api.post("{ viewer { firm { id } } }", token=token)).status_code == 200
    # A user's sign-in through another client, to see that revoking one leaves the others alone.
    email = await user_with_password(api)
    app_id, _ = await new_client(api)
    signed_in = await tokens_for(api, app_id, email)

    revoked = await run(database_url, "clients", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout.splitlines()[-1]) == {"revoked": client_id}
    after = await refused_within_the_window(api, "{ viewer { firm { id } } }", token)
    assert after.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    again = await api.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert client_id not in (await run(database_url, "clients", "list")).stdout
    assert (await api.post("{ viewer { clientId } }", token=signed_in["access_token"])).status_code == 200

    # A sign-in's refresh token dies with its client too.
    revoke_app = await run(database_url, "clients", "revoke", app_id)
    assert revoke_app.returncode == 0, revoke_app.stderr
    assert (await refresh(api.http, app_id, signed_in["refresh_token"])).status_code in (400, 401)
    await refused_within_the_window(api, "{ viewer { clientId } }", signed_in["access_token"])

    unknown = await run(database_url, "clients", "revoke", "bc_nobody")
    assert unknown.returncode == 1 and "no OAuth client bc_nobody" in unknown.stderr
    assert global_ids.decode_as(firm.id, "Firm") is not None


async def refused_within_the_window(api: Api, query: str, token: str) -> httpx.Response:
    """The CLI revokes from a process of its own: this one refuses the token at once if it had not
    kept its principal, else within the principal cache's window (R77), never later."""
    deadline = time.monotonic() + api.runtime.settings.principal_cache_seconds + 2
    while True:
        answer = await api.post(query, token=token)
        if answer.status_code == 401 or time.monotonic() > deadline:
            assert answer.status_code == 401, answer.text
            return answer
        await asyncio.sleep(0.25)


async def test_serve_and_demo_follow_the_port(tmp_path: Path) -> None:
    """Without BUREAU_ISSUER, the metadata's issuer and the demo token's are the address served on."""
    port = free_port()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}"
    demo = await run(database_url, "demo", "--port", str(port))
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.strip().splitlines()
    token = lines[-1]
    assert f'{{"Authorization": "Bearer {token}"}}' in demo.stdout  # the header, ready to paste
    log = tmp_path / "serve.log"
    env = {**{k: v for k, v in os.environ.items() if k != "BUREAU_ISSUER"}, "DATABASE_URL": database_url,
           "PYTHONPATH": str(ROOT)}
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       cwd=tmp_path, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(240):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(log.read_text(errors="replace"))
            printed = re.search(r"GraphiQL: (\S+)", log.read_text())
            assert printed is not None and printed.group(1) == f"{base}/graphql"
            metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
            assert metadata["issuer"] == base and metadata["token_endpoint"] == f"{base}/oauth/token"
            answer = await http.post("/graphql", json={"query": "{ viewer { user { name } } }"},
                                     headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["data"]["viewer"]["user"]["name"] == "Anna Admin"
    finally:
        process.terminate()
        await process.wait()
