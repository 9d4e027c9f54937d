"""One log line per request (R91): its id (the caller's X-Request-Id when sane, else a new one),
returned in the header and in `extensions.requestId`; the operation, the client, the duration and
the outcome; client errors at INFO, never ERROR; and the JSON format of `bureau serve`."""

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from observability.logs import json_formatter
from resolvers.runtime import Runtime
from tests.api.client import Api, new_pin
from tests.api.test_metrics import ROOT, free_port, output

INVITE = ("mutation Invite($input: InviteUserInput!) { inviteUser(input: $input) { membership { id } "
          "userErrors { code } } }")
GENERATED = re.compile(r"[0-9a-f]{32}")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bureau.request"]


def line_for(caplog: pytest.LogCaptureFixture, request_id: str) -> logging.LogRecord:
    [record] = [r for r in request_lines(caplog) if getattr(r, "request_id", None) == request_id]
    return record


async def test_a_sane_request_id_is_kept_and_answered_in_the_header_and_the_extensions(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    firm = await api.firm()
    for sent in ("req-1.2:3_x", "A" * 64, "0b6f2d7c-5d1e-4c1e-9f51-2d3c6f1a9e11"):
        response = await api.http.post("/graphql", json={"query": "query Mine { viewer { clientId } }"},
                                       headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": sent})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == sent
        assert response.json()["extensions"]["requestId"] == sent
        line = line_for(caplog, sent)
        assert line.levelno == logging.INFO and line.exc_info is None
        fields = {k: getattr(line, k) for k in ("method", "path", "status", "operation", "operation_type",
                                                "client_id", "error_codes", "user_error_codes")}
        assert fields == {"method": "POST", "path": "/graphql", "status": 200, "operation": "Mine",
                          "operation_type": "query", "client_id": api.app_client_id, "error_codes": [],
                          "user_error_codes": []}
        assert isinstance(vars(line)["duration_ms"], float) and vars(line)["duration_ms"] > 0


@pytest.mark.parametrize("sent", ["A" * 65, "two words", 'quote"d', "line\\nbreak", "caf\u00e9", "", "a/b",
                                  "<script>"])
async def test_an_unsafe_request_id_is_replaced_by_a_new_one(api: Api, sent: str) -> None:
    response = await api.http.post("/graphql", json={"query": "{ __typename }"},
                                   headers={b"X-Request-Id": sent.encode("utf-8")})
    given = response.headers["x-request-id"]
    assert GENERATED.fullmatch(given) and given != sent
    assert response.json()["extensions"]["requestId"] == given  # a 401 in GraphQL's shape has it too


async def test_every_request_gets_its_own_id_on_every_path(api: Api) -> None:
    ids = set()
    for path in ("/graphql", "/healthz", "/.well-known/jwks.json", "/no/such/page"):
        response = await api.http.get(path)
        assert GENERATED.fullmatch(response.headers["x-request-id"]), path
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 4
    # Two headers: neither is trusted.
    response = await api.http.get("/healthz", headers=[("X-Request-Id", "one"), ("X-Request-Id", "two")])
    assert GENERATED.fullmatch(response.headers["x-request-id"])


async def test_client_errors_are_info_and_only_the_unexpected_is_error(
        api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO)
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    reader = await api.token(firm.admin_email, scopes=["companies:read"])
    admin = {"Authorization": f"Bearer {firm.admin}"}
    cases: dict[str, tuple[dict[str, Any], dict[str, str], int, list[str], list[str]]] = {
        "unauthenticated": ({"query": "{ viewer { clientId } }"}, {}, 401, ["UNAUTHENTICATED"], []),
        "validation": ({"query": "{ viewer { noSuchField } }"}, admin, 200, ["GRAPHQL_VALIDATION_FAILED"], []),
        "forbidden": ({"query": INVITE, "variables": {"input": {
            "companyId": company_id, "name": "X", "role": "ADMINISTRATOR", "licenseType": "NAMED",
            "personalIdentityNumber": new_pin()}}},
            {"Authorization": f"Bearer {reader}"}, 200, ["FORBIDDEN"], []),
        "bad input": ({"query": "query($id: ID!, $s: String) { firm(id: $id) { agreements(search: $s) { "
                                "totalCount } } }", "variables": {"id": firm.id, "s": 5}},
                      admin, 200, ["BAD_USER_INPUT"], []),
        "user error": ({"query": INVITE, "variables": {"input": {
            "companyId": company_id, "name": "X", "role": "REPORTER", "licenseType": "NAMED",
            "personalIdentityNumber": "19000101-0000"}}}, admin, 200, [], ["INVALID_PERSONAL_IDENTITY_NUMBER"]),
    }
    for case, (body, headers, status, codes, user_codes) in cases.items():
        response = await api.http.post("/graphql", json=body, headers={**headers, "X-Request-Id": f"case-{id(body)}"})
        assert response.status_code == status, (case, response.text)
        line = line_for(caplog, f"case-{id(body)}")
        outcome = (line.levelno, vars(line)["error_codes"], vars(line)["user_error_codes"])
        assert outcome == (logging.INFO, codes, user_codes), case
    too_large = await api.http.post("/graphql", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                                    headers={"Content-Type": "application/json", "X-Request-Id": "too-large"})
    assert too_large.status_code == 413 and too_large.json()["extensions"]["requestId"] == "too-large"
    assert vars(line_for(caplog, "too-large"))["error_codes"] == ["REQUEST_TOO_LARGE"]
    not_json = await api.http.post("/graphql", content=b"{nope", headers={**admin, "X-Request-Id": "not-json",
                                                                            "Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert vars(line_for(caplog, "not-json"))["error_codes"] == ["BAD_REQUEST"]
    client_errors = [r for r in caplog.records if r.name.startswith("bureau")]
    assert client_errors and all(r.levelno < logging.ERROR and r.exc_info is None for r in client_errors)

    from loaders import relations

    async def broken(self: Any, keys: Any) -> Any:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(relations.FirmByIdLoader, "batch_load_fn", broken)
    # The firm's loader breaks on the resolvers; compiled, the read would not use it (R79).
    monkeypatch.setattr(api.runtime, "settings", replace(api.runtime.settings, compiled_reads=False))
    response = await api.http.post("/graphql", json={"query": "query($id: ID!) { firm(id: $id) { name } }",
                                                     "variables": {"id": firm.id}},
                                   headers={**admin, "X-Request-Id": "unexpected"})
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    line = line_for(caplog, "unexpected")
    assert (line.levelno, vars(line)["error_codes"]) == (logging.ERROR, ["INTERNAL_SERVER_ERROR"])
    assert line.exc_info is None  # the traceback is logged once, with the error id (R66)


async def test_the_json_line_holds_no_variable_value_token_or_link_secret(
        api: Api, runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    firm = await api.firm()
    needle = "needle-" + os.urandom(6).hex()
    query = "query Search($id: ID!, $s: String) { firm(id: $id) { agreements(search: $s) { totalCount } } }"
    await api.http.post("/graphql", json={"query": query, "variables": {"id": firm.id, "s": needle}},
                        headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": "json-post"})
    # A GET carries its variables in the query string, a link its secret in the path.
    await api.http.get("/graphql", params={"query": query, "variables": json.dumps({"id": firm.id, "s": needle})},
                       headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": "json-get"})
    link_secret = "s3cr3t" + os.urandom(8).hex()
    await api.http.get(f"/invitations/{link_secret}?token={link_secret}", headers={"X-Request-Id": "json-link"})
    formatter = json_formatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.name.startswith(("bureau", "uvicorn"))]
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in (needle, firm.admin, link_secret):
        assert secret not in text
    by_id = {line["request_id"]: line for line in lines if line["logger"] == "bureau.request"}
    assert by_id["json-post"]["operation"] == "Search" and by_id["json-get"]["operation"] == "Search"
    assert by_id["json-get"]["path"] == "/graphql"
    assert by_id["json-link"]["path"] == "/invitations/[redacted]"
    assert {"time", "level", "logger", "message", "status", "duration_ms", "client_id"} <= set(by_id["json-post"])
    assert by_id["json-post"]["level"] == "INFO" and by_id["json-post"]["client_id"] == api.app_client_id


def serve_environment(database_url: str, env: dict[str, str]) -> dict[str, str]:
    """`bureau serve`'s environment: this one without bureau's own settings, and `env`."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("BUREAU_", "OTEL_")) and k not in ("PROMETHEUS_MULTIPROC_DIR", "SMTP_URL")}
    return {**environment, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **env}


async def serve_and_log(database_url: str, log: Path, env: dict[str, str]) -> list[str]:
    """`bureau serve` with `env`: three requests, then what it wrote to stderr, line by line."""
    port = free_port()
    environment = serve_environment(database_url, env)
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       cwd=ROOT, env=environment, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(240):
                if process.returncode is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/healthz", headers={"X-Request-Id": "ready"})).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            assert process.returncode is None, output(log)
            await http.post(f"{base}/graphql", json={"query": "query Who { viewer { clientId } }"},
                            headers={"X-Request-Id": "served-1", "Authorization": "Bearer not-a-token"})
            await http.get(f"{base}/invitations/abcdef0123?x=1", headers={"X-Request-Id": "served-2"})
        # R112: the lines wait in a buffer, but not for the server to stop: its timer sends them.
        for _ in range(100):
            if "served-2" in output(log):
                break
            await asyncio.sleep(0.1)
        assert "served-2" in output(log), "the request's line did not leave the buffer while the server ran"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
    return output(log).splitlines()


async def test_bureau_serve_writes_one_json_object_a_line_by_default(database_url: str, tmp_path: Path) -> None:
    lines = await serve_and_log(database_url, tmp_path / "serve.log", {})
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged, lines
    requests = [line for line in logged if line["logger"] == "bureau.request"]
    by_id = {line["request_id"]: line for line in requests}
    assert by_id["served-1"]["status"] == 401 and by_id["served-1"]["error_codes"] == ["UNAUTHENTICATED"]
    assert by_id["served-1"]["level"] == "INFO"
    assert by_id["served-2"]["path"] == "/invitations/[redacted]" and "abcdef0123" not in "\n".join(lines)
    # One line a request: uvicorn's access log would repeat it.
    assert not [line for line in logged if line["logger"] == "uvicorn.access"]
    # Everything the server says is JSON, uvicorn's own start-up lines too.
    printed = {"GraphiQL:", "metrics:"}
    assert all(line.startswith("{") or line.split(" ", 1)[0] in printed for line in lines if line.strip()), lines


async def test_bureau_serve_writes_text_when_asked(database_url: str, tmp_path: Path) -> None:
    lines = await serve_and_log(database_url, tmp_path / "serve.log", {"BUREAU_LOG_FORMAT": "text"})
    [line] = [line for line in lines if "[served-1]" in line]
    assert "INFO bureau.request: POST /graphql 401" in line and not line.startswith("{")


async def test_a_browser_app_may_send_a_request_id_and_read_the_answered_one(api: Api) -> None:
    from app import create_app
    from settings import Settings

    origin = "https://app.example.com"
    app = create_app(runtime=Runtime.create(api.runtime.database, Settings(cors_origins=(origin,))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        preflight = await http.options("/graphql", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-request-id"})
        assert preflight.status_code == 200, preflight.text
        assert "x-request-id" in preflight.headers["access-control-allow-headers"].lower()
        response = await http.post("/graphql", json={"query": "{ __typename }"},
                                   headers={"Origin": origin, "X-Request-Id": "from-the-spa"})
    assert response.headers["x-request-id"] == "from-the-spa"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_terminated_server_still_writes_its_last_lines(database_url: str, tmp_path: Path,
                                                                workers: int) -> None:
    """R112: uvicorn ends a graceful SIGTERM shutdown by raising the signal again, so the process dies of it,
    without atexit: the lines gathered for writing go out first, in every worker."""
    port = free_port()
    environment = serve_environment(database_url, {"BUREAU_LOG_FLUSH_SECONDS": "60"})
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       "--workers", str(workers), cwd=ROOT, env=environment,
                                                       stdout=sink, stderr=sink)
    sent = [f"last-{workers}-{n}" for n in range(6)]
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(240):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            for request_id in sent:  # new connections: with two workers, both answer some
                async with httpx.AsyncClient(timeout=10) as fresh:
                    await fresh.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": request_id})
    finally:
        process.terminate()  # at once: the lines wait for a minute's timer
        await asyncio.wait_for(process.wait(), 30)
    written = output(log)
    assert all(f'"request_id":"{request_id}"' in written for request_id in sent), written
