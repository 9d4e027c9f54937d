"""Who may read the Prometheus metrics: nobody by default, holders of BUREAU_METRICS_TOKEN, or whoever
reaches the separate listener of BUREAU_METRICS_PORT; with several workers, a scrape sums them all."""

import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from app import create_app, start_metrics_listener
from models.db import Database
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + secrets.token_urlsafe(24)
METRIC = "bureau_graphql_requests_total"
CHALLENGE = 'Bearer realm="metrics"'


def settings(**metrics: Any) -> Settings:
    """The test settings with metrics closed, whatever the environment says, then `metrics` on top."""
    closed: dict[str, Any] = {"metrics_token": None, "metrics_port": None, "metrics_multiproc_dir": None}
    return dataclasses.replace(Settings(), **{**closed, **metrics})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def app_with(database: Database, chosen: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=Runtime.create(database, chosen))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
        yield http


def unauthenticated_count(exposition: str) -> float:
    found = re.search(rf'^{METRIC}{{outcome="unauthenticated"}} (\S+)$', exposition, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_metrics_are_closed_by_default(database: Database) -> None:
    async with app_with(database, settings()) as http:
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 404
            assert METRIC not in response.text
        assert (await http.get("/healthz")).status_code == 200


async def test_the_metrics_token_opens_metrics_on_the_api(database: Database, api: Api) -> None:
    async with app_with(database, settings(metrics_token=TOKEN)) as http:
        await http.post("/graphql", json={"query": "{ __typename }"})  # one unauthenticated request to count
        for scheme in ("Bearer", "bearer"):  # RFC 9110: the scheme is case-insensitive
            opened = await http.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
            assert opened.status_code == 200
            assert opened.headers["content-type"].startswith("text/plain")
            assert unauthenticated_count(opened.text) >= 1
        access_token = await api.token()  # an OAuth access token is no metrics token
        refused = {"missing": {}, "empty": {"Authorization": "Bearer "},
                   "wrong": {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"},
                   "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
                   "longer": {"Authorization": f"Bearer {TOKEN}x"},
                   "basic": {"Authorization": f"Basic {TOKEN}"}, "bare": {"Authorization": TOKEN},
                   "oauth": {"Authorization": f"Bearer {access_token}"}}
        for case, headers in refused.items():
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 401, case
            assert response.headers["www-authenticate"] == CHALLENGE, case
            assert response.headers["content-type"] == "application/problem+json", case
            body = response.json()
            assert {k: body[k] for k in ("type", "title", "status")} == {
                "type": "about:blank", "title": "Unauthorized", "status": 401}, case
            assert body["detail"] and TOKEN not in body["detail"], case
            assert METRIC not in response.text, case


async def test_the_metrics_port_serves_them_apart_and_the_api_not_at_all(database: Database) -> None:
    chosen = settings(metrics_port=free_port())
    async with app_with(database, chosen) as http:
        await http.post("/graphql", json={"query": "{ __typename }"})
        assert (await http.get("/metrics")).status_code == 404
    listener = start_metrics_listener(chosen)
    assert listener is not None
    server, _ = listener
    try:
        assert server.server_address[0] == "127.0.0.1"  # loopback unless BUREAU_METRICS_HOST says otherwise
        async with httpx.AsyncClient() as plain:
            response = await plain.get(f"http://127.0.0.1:{chosen.metrics_port}/metrics")
        assert response.status_code == 200
        assert unauthenticated_count(response.text) >= 1
    finally:
        server.shutdown()
        server.server_close()
    assert start_metrics_listener(settings()) is None


def output(log: Path) -> str:
    return log.read_text(errors="replace")


async def serve_with_two_workers(database_url: str, log: Path, env: dict[str, str], *, scrape: str,
                                 headers: dict[str, str], closed: int, count: int = 30) -> list[float]:
    """`bureau serve --workers 2` as operators run it: `count` unauthenticated GraphQL requests, each on its
    own connection so that both workers take some, then five scrapes of `scrape` ("{base}" is the API);
    returns what each scrape counted. `closed` is what the API's /metrics answers without a token."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("BUREAU_METRICS_") and k not in ("PROMETHEUS_MULTIPROC_DIR", "SMTP_URL")}
    environment.update({"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **env})
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "serve", "--workers", "2", "--port", str(port), cwd=ROOT,
            env=environment, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(headers={"Connection": "close"}, timeout=10) as http:
            for _ in range(240):
                if process.returncode is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("bureau serve did not start:\n" + output(log))
            assert process.returncode is None, output(log)
            answers = await asyncio.gather(*(http.post(f"{base}/graphql", json={"query": "{ __typename }"})
                                             for _ in range(count)))
            assert {answer.status_code for answer in answers} == {401}
            assert (await http.get(f"{base}/metrics")).status_code == closed
            scrapes = [await http.get(scrape.replace("{base}", base), headers=headers) for _ in range(5)]
            assert {response.status_code for response in scrapes} == {200}, [r.text for r in scrapes]
            return [unauthenticated_count(response.text) for response in scrapes]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_with_two_workers_the_metrics_port_sums_both(database_url: str, tmp_path: Path) -> None:
    metrics_port = free_port()
    counted = await serve_with_two_workers(database_url, tmp_path / "serve.log",
                                           {"BUREAU_METRICS_PORT": str(metrics_port)},
                                           scrape=f"http://127.0.0.1:{metrics_port}/metrics", headers={}, closed=404)
    assert counted == [30.0] * 5


async def test_with_two_workers_the_metrics_token_scrape_sums_both(database_url: str, tmp_path: Path) -> None:
    counted = await serve_with_two_workers(database_url, tmp_path / "serve.log", {"BUREAU_METRICS_TOKEN": TOKEN},
                                           scrape="{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                                           closed=401)
    assert counted == [30.0] * 5


def test_serve_refuses_a_token_and_a_port_together(tmp_path: Path) -> None:
    environment = {**os.environ, "BUREAU_METRICS_TOKEN": TOKEN, "BUREAU_METRICS_PORT": str(free_port()),
                   "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", str(free_port())], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "not both" in done.stderr
