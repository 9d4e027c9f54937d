"""Logs without secrets: requests that carry a personal identity number, passwords, a client
secret, tokens and invitation links, through the app and through a running uvicorn, and then
the captured log is searched for every one of them."""

import asyncio
import logging
import socket
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn

from app import create_app
from loaders import relations
from observability.logs import json_formatter
from resolvers.runtime import Runtime
from tests.api.client import Api, new_pin, unique
from tests.api.mail import MailServer
from tests.api.test_oauth import PASSWORD, Pkce, authorize_params, new_client, sign_in, user_with_password

INVITE = ("mutation($input: InviteUserInput!) { inviteUser(input: $input) { membership { id } "
          "userErrors { code } } }")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_secrets_never_reach_the_log(api: Api, runtime: Runtime, mail: MailServer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    await api.subscription(firm, agreement_id)
    pin, email = new_pin(), unique("logged") + "@x.example"
    secrets: list[str] = [pin, pin.replace("-", ""), firm.admin, PASSWORD, "wrong password, logged?"]

    # A personal identity number in variables: accepted, refused by a rule, refused by validation.
    ok = await api.gql(INVITE, {"input": {"companyId": company_id, "name": "Berit", "email": email,
                                          "personalIdentityNumber": pin, "role": "REPORTER",
                                          "licenseType": "NAMED"}}, token=firm.admin)
    assert ok["data"]["inviteUser"]["userErrors"] == []
    bad_type = await api.gql(INVITE, {"input": {"companyId": company_id, "name": "Berit", "role": "REPORTER",
                                                "licenseType": "NAMED", "personalIdentityNumber": int(
                                                    pin.replace("-", ""))}}, token=firm.admin)
    assert bad_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    forbidden = await api.gql(INVITE, {"input": {"companyId": company_id, "name": "X", "role": "ADMINISTRATOR",
                                                 "licenseType": "NAMED", "personalIdentityNumber": pin}},
                              token=await api.token(firm.admin_email, scopes=["companies:read"]))
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # Passwords and a client secret at the OAuth endpoints.
    account = await user_with_password(api)
    client_id, _ = await new_client(api)
    assert (await sign_in(api.http, authorize_params(client_id, Pkce.new()), account, "wrong password, logged?")
            ).status_code in (400, 401)
    confidential, secret = await new_client(api, public=False, scopes=["firms:read"], firm_id=None)
    assert secret is not None
    secrets.append(secret)
    token = await api.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": confidential,
                                                      "client_secret": secret})
    if token.status_code == 200:
        secrets.append(token.json()["access_token"])

    # An invitation link, mailed and then opened through a real server with its access log.
    link = await mail.link_to(runtime, email)
    secrets.append(link.rsplit("/", 1)[1])
    port = _free_port()
    # Another test may have run uvicorn with its own logging set-up (no propagation): listen directly.
    access_logger = logging.getLogger("uvicorn.access")
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    access_logger.addHandler(caplog.handler)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), host="127.0.0.1", port=port,
                                           log_config=None, access_log=True, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):  # noqa: ASYNC110 - uvicorn offers no event for "started"
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(link)).status_code == 200
            assert (await http.post("/graphql", json={"query": "{ viewer { clientId } }"},
                                    headers={"Authorization": f"Bearer {firm.admin}"})).status_code == 200
    finally:
        server.should_exit = True
        await serving
        access_logger.removeHandler(caplog.handler)

    access = {r.getMessage() for r in caplog.records if r.name == "uvicorn.access"}
    assert any("/invitations/[redacted]" in line for line in access), access
    # The server's log: not the test's own HTTP client and mail server (they log the URLs and mail they see).
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "mail.log"))]
    # As text, and as the JSON lines of `bureau serve` (R91), which hold every extra field of a record.
    for formatter in (logging.Formatter(), json_formatter()):
        logged = "\n".join(formatter.format(r) for r in server_side)
        leaked = [s for s in secrets if s and s in logged]
        assert leaked == [], type(formatter).__name__

    # Expected client errors: INFO, no traceback.
    client_errors = [r for r in caplog.records if r.name == "bureau.graphql"]
    assert client_errors and all(r.levelno == logging.INFO and r.exc_info is None for r in client_errors)


async def test_an_unexpected_error_is_logged_with_an_id_the_client_gets(api: Api, caplog: pytest.LogCaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    firm = await api.firm()

    async def broken(self: Any, keys: Any) -> Any:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(relations.FirmByIdLoader, "batch_load_fn", broken)
    # The firm's loader breaks on the resolvers; compiled, the read would not use it (R79).
    monkeypatch.setattr(api.runtime, "settings", replace(api.runtime.settings, compiled_reads=False))
    caplog.set_level(logging.INFO)
    body = await api.gql("query($id: ID!) { firm(id: $id) { name } }", {"id": firm.id}, token=firm.admin)
    [error] = body["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"Unexpected error; reference {error_id}." and "fell over" not in str(body)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR and error_id in r.getMessage()]
    assert record.exc_info is not None
