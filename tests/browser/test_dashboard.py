"""The partner dashboard example (examples/dashboard, R56-R57) in headless Chromium: it signs in on
bureau's own sign-in page (authorization code with PKCE, public client), lists the firm's agreements
with their seats, and follows seatUsageChanged over graphql-ws without reloading. bureau runs under
uvicorn on PostgreSQL; the built page is served from another origin, as a partner would host it."""

import asyncio
import contextlib
import functools
import http.server
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, Response, async_playwright
from sqlalchemy import select, update

from app import create_app
from auth.clients import register_client
from auth.passwords import hash_password
from live.hub import hub_for
from models import User
from models import ids as global_ids
from models.db import connect
from models.enums import UserStatus
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import USER_SCOPES, Api, unique
from tests.api.test_live_events import until
from tests.browser.test_graphiql import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "dashboard"
PASSWORD = "correct horse battery staple"
SCOPES = ["firms:read", "agreements:read", "subscriptions:read", "users:read"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def built() -> Path:
    """examples/dashboard/dist, built as the README's test command builds it (a no-op when up to date)."""
    subprocess.run([str(ROOT / "scripts" / "dashboard")], check=True)
    dist = DASHBOARD / "dist"
    assert (dist / "index.html").is_file(), "the dashboard is not built: npm is needed for ./scripts/dashboard"
    return dist


@dataclass
class Site:
    origin: str
    root: Path


@pytest.fixture
def site(built: Path, tmp_path: Path) -> Iterator[Site]:
    """The built page on a static server of its own port: another origin than bureau's."""
    root = tmp_path / "site"
    shutil.copytree(built, root)
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Bureau:
    url: str
    runtime: Runtime


@contextlib.asynccontextmanager
async def bureau(database_url: str, spa_origin: str) -> AsyncIterator[Bureau]:
    """bureau under uvicorn on a free port, its issuer that address, the page's origin allowed (CORS)."""
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runtime = Runtime.create(connect(database_url), Settings(issuer=url, cors_origins=(spa_origin,)))
    server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), lifespan="on", log_level="warning",
                                           timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done())
        assert server.started, "uvicorn did not start"
        await asyncio.wait_for(hub_for(runtime.database.engine).listening.wait(), 10)
        yield Bureau(url, runtime)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


async def mutate(http: httpx.AsyncClient, name: str, input: dict[str, str | int]) -> None:
    kind = name[0].upper() + name[1:] + "Input"
    answer = await http.post("/graphql", json={
        "query": f"mutation($input: {kind}!) {{ {name}(input: $input) {{ userErrors {{ code message }} }} }}",
        "variables": {"input": input}})
    assert answer.json()["data"] == {name: {"userErrors": []}}, answer.text


async def seats_text(page: Page, subscription_id: str, license_type: str) -> str:
    cell = page.locator(f"[data-subscription-id='{subscription_id}'][data-license-type='{license_type}'] strong")
    return await cell.inner_text()


async def test_the_dashboard_signs_in_lists_the_seats_and_follows_changes_live(
        api: Api, database_url: str, site: Site, tmp_path: Path) -> None:
    # A firm like the demo's: two agreements with licences, and an admin who has chosen a password.
    firm = await api.firm()
    owned: dict[str, str] = {}
    companies: dict[str, str] = {}
    for name in ("Bageriet i Byn", "Snickare Svensson"):
        created = await api.mutate("createAgreement", {
            "firmId": firm.id, "name": name, "billingMode": "CUSTOMER",
            "company": {"name": unique(f"{name} AB "), "country": "SE"}},
            "agreement { id } company { id }", token=firm.admin)
        owned[name] = await api.subscription(firm, created["agreement"]["id"], named=5, concurrent=2)
        companies[name] = created["company"]["id"]
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(User).where(User.email_normalized == firm.admin_email.lower())
                              .values(password_hash=await hash_password(PASSWORD), status=UserStatus.ACTIVE))
        admin = await session.scalar(select(User).where(User.email_normalized == firm.admin_email.lower()))
        assert admin is not None
        # As `bureau clients create --public --redirect-uri <the page> --scopes ...` registers it.
        client = await register_client(session, name="Partner dashboard", scopes=SCOPES,
                                       redirect_uris=[site.origin + "/"], public=True)
    admin_id = global_ids.of(admin)

    async with bureau(database_url, site.origin) as server:
        assert server.url != site.origin
        (site.root / "config.json").write_text(json.dumps({"bureauUrl": server.url, "clientId": client.client_id}))
        hub = hub_for(server.runtime.database.engine)
        subscribed_before = hub.ready_count
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 700})
                navigations: list[str] = []
                page.on("framenavigated", lambda frame: navigations.append(frame.url)
                        if frame == page.main_frame else None)
                graphql: list[Response] = []
                page.on("response", lambda response: graphql.append(response)
                        if response.url == server.url + "/graphql" and response.request.method == "POST" else None)

                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))
                await page.goto(site.origin + "/")
                await page.click("#sign-in")
                # bureau's own sign-in page, on bureau's origin.
                await page.wait_for_url(server.url + "/oauth/authorize?*")
                assert "Partner dashboard" in await page.inner_text("body")
                await page.fill("input[name=email]", firm.admin_email)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]:not([name=cancel])")

                # Back on the page, the code exchanged (PKCE), the agreements and their seats shown.
                try:
                    await page.wait_for_selector("#agreements", timeout=15000)
                except Exception as exc:
                    raise AssertionError((page.url, await page.inner_text("body"), console)) from exc
                assert page.url == site.origin + "/", "the code stays out of the address bar"
                table = await page.inner_text("#agreements")
                assert "Bageriet i Byn" in table and "Snickare Svensson" in table
                for subscription_id in owned.values():
                    assert await seats_text(page, subscription_id, "NAMED") == "0 / 5"
                    assert await seats_text(page, subscription_id, "CONCURRENT") == "0 / 2"
                assert graphql and all(r.headers.get("access-control-allow-origin") == site.origin
                                       for r in graphql), "the page read bureau's answers across origins (CORS)"

                # Both seatUsageChanged subscriptions are running on the server (graphql-ws, token in
                # connection_init); from here on the page must not load again.
                try:
                    await until(lambda: hub.ready_count >= subscribed_before + len(owned), within=15)
                except AssertionError as exc:
                    raise AssertionError((await page.inner_text("body"), console)) from exc
                await page.wait_for_selector("#live.connected")
                await page.evaluate("() => { window.sameDocument = 'yes'; }")
                loads = len(navigations)

                # The test buys seats and invites a user through the API, as another person would.
                token = await server.runtime.tokens.issue(subject=admin_id, client_id=api.app_client_id,
                                                          scopes=USER_SCOPES)
                changed = f"[data-subscription-id='{owned['Bageriet i Byn']}'][data-license-type='NAMED'] strong"
                async with httpx.AsyncClient(base_url=server.url,
                                             headers={"Authorization": f"Bearer {token}"}) as http:
                    await mutate(http, "changeSeats", {"subscriptionId": owned["Bageriet i Byn"],
                                                       "licenseType": "NAMED", "seats": 8})
                    await page.wait_for_function("(s) => document.querySelector(s)?.textContent === '0 / 8'",
                                                 arg=changed, timeout=15000)
                    await mutate(http, "inviteUser", {"companyId": companies["Bageriet i Byn"], "name": "New Person",
                                                      "email": unique("new.person") + "@customer.example",
                                                      "role": "REPORTER", "licenseType": "NAMED"})
                    await page.wait_for_function("(s) => document.querySelector(s)?.textContent === '1 / 8'",
                                                 arg=changed, timeout=15000)
                assert await seats_text(page, owned["Snickare Svensson"], "NAMED") == "0 / 5"
                assert await page.evaluate("() => window.sameDocument") == "yes", "the page was reloaded"
                assert len(navigations) == loads, navigations

                shot = tmp_path / "dashboard.png"
                await page.screenshot(path=str(shot), full_page=True)
            finally:
                await browser.close()
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
