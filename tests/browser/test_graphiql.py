"""GraphiQL as a new user meets it (R88): `bureau demo`, `bureau serve`, then /graphql in headless
Chromium (Debian's chromium, driven by Playwright for Python; no browser is downloaded)."""

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from tests.api.test_metrics import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")


def readme_first_query() -> str:
    match = re.search(r'"query":"([^"]+)"', (ROOT / "README.md").read_text())
    assert match is not None, "the README shows no query"
    return match.group(1)


def environment(tmp_path: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "BUREAU_ISSUER"}
    return {**inherited, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT)}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """`./scripts/demo --port P`, the README's first command (on a database of this test's own):
    (the address it printed, the token it printed)."""
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(str(ROOT / "scripts" / "demo"), "--port", str(port),
                                                       env=environment(tmp_path), stdout=sink, stderr=sink,
                                                       start_new_session=True)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(480):
                assert process.returncode is None, log.read_text(errors="replace")
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(log.read_text(errors="replace"))
        printed = log.read_text()
        address = re.search(r"GraphiQL: (\S+)", printed)
        assert address is not None, printed
        tokens = [line for line in printed.splitlines() if line.startswith("eyJ")]
        assert tokens, printed
        yield address.group(1), tokens[-1]
    finally:
        process.terminate()
        await process.wait()


def editor(section: str) -> str:
    """The shown CodeMirror editor of a GraphiQL section (the variables one hides beside the headers one)."""
    return f"[aria-label='{section}'] .graphiql-editor:not(.hidden) .CodeMirror"


async def editor_text(page: Page, section: str) -> str:
    return str(await page.evaluate("(s) => document.querySelector(s).CodeMirror.getValue()", editor(section)))


async def paste_into(page: Page, section: str, text: str) -> None:
    """As a person would: click into the editor, select everything, paste."""
    await page.click(f"{editor(section)} .CodeMirror-lines")
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(text)


async def test_graphiql_runs_the_readme_query_with_the_demo_token(demo: tuple[str, str], tmp_path: Path) -> None:
    address, token = demo
    origin = re.match(r"https?://[^/]+", address)
    assert origin is not None
    elsewhere: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            # Nothing may come from anywhere but the server itself (no CDN).
            page.on("request", lambda request: None if request.url.startswith(("data:", origin.group(0)))
                    else elsewhere.append(request.url))
            await page.goto(address)
            await page.wait_for_selector("[aria-label='Query Editor'] .CodeMirror")
            assert "bureau demo" in await page.inner_text("#bureau-note")

            # The token exactly as `bureau demo` printed it, into the header editor it opens with.
            await page.wait_for_function("(s) => document.querySelector(s)?.CodeMirror.getValue() !== ''",
                                         arg=editor("Headers"))
            assert '"Bearer "' in await editor_text(page, "Headers")
            await paste_into(page, "Headers", json.dumps({"Authorization": f"Bearer {token}"}))

            # With the token the schema loads: the docs show the Query type's fields.
            await page.click("[aria-label='Show Documentation Explorer']")
            await page.get_by_role("link", name="Query").click()
            await page.wait_for_selector(".graphiql-doc-explorer >> text=viewer", timeout=15000)

            # Validation: a field the schema lacks is marked.
            await paste_into(page, "Query Editor", "{ viewer { noSuchField } }")
            await page.wait_for_selector(".CodeMirror-lint-mark-error", timeout=15000)

            # Completion: typing offers the Viewer's fields.
            await paste_into(page, "Query Editor", "{ viewer {  } }")
            for _ in range(4):
                await page.keyboard.press("ArrowLeft")
            await page.keyboard.type("clie", delay=50)
            hints = page.locator(".CodeMirror-hints")
            await hints.wait_for(timeout=15000)
            assert "clientId" in await hints.inner_text()
            await page.keyboard.press("Escape")

            # The README's first query, run with the play button; the demo firm answers.
            await paste_into(page, "Query Editor", readme_first_query())
            await page.click(".graphiql-execute-button")
            result = page.locator(".result-window")
            await result.get_by_text("Demo Redovisning AB").wait_for(timeout=15000)
            assert "Anna Admin" in await result.inner_text()
            assert "errors" not in await result.inner_text()
            await page.screenshot(path=str(tmp_path / "graphiql.png"), full_page=True)
        finally:
            await browser.close()
    assert elsewhere == []
    assert (tmp_path / "graphiql.png").stat().st_size > 10_000


async def test_the_page_says_how_to_install_its_files_when_they_are_missing(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    from web import ide

    monkeypatch.setitem(ide.ASSETS, "graphiql.min.js", (tmp_path / "absent.js", "text/javascript"))
    page = ide.graphiql_page()
    assert page.status_code == 503
    assert b"npm ci --prefix web/graphiql" in page.body
