"""The README's copy-paste examples, pasted (R89, R90): against `bureau demo` and `bureau serve` on
an SQLite file, with only the port changed, in bash, as a reader would run them."""

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_metrics import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(start: str, end: str) -> str:
    return README[README.index(start):README.index(end)]


def indented_block(text: str, first_line: str) -> str:
    """The indented code block that begins with `first_line`."""
    lines = text[text.index("    " + first_line):].splitlines()
    block = []
    for line in lines:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block)


def fenced_block(text: str) -> str:
    match = re.search(r"```sh\n(.*?)```", text, re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Path, dict[str, str], int]]:
    """(folder, environment, port) of a running demo server; `.venv/bin/bureau` works in the folder."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "bureau").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cli "$@"\n')
    (bin_dir / "bureau").chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if k != "BUREAU_ISSUER"},
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT)}
    port = free_port()
    await shell(f".venv/bin/bureau demo --port {port} >/dev/null", tmp_path, env)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       cwd=tmp_path, env=env, stdout=sink, stderr=sink)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(240):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(log.read_text(errors="replace"))
        yield tmp_path, env, port
    finally:
        process.terminate()
        await process.wait()


async def shell(script: str, cwd: Path, env: dict[str, str], port: int | None = None) -> str:
    if port is not None:
        # The reader's server is on 8000; this one on a free port, and its tokens name that port (R90).
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(
            "bureau demo", f"bureau demo --port {port}")
    process = await asyncio.create_subprocess_exec("bash", "-euo", "pipefail", "-c", script, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, f"{script}\n{err.decode()}"
    return out.decode()


async def test_the_first_query_with_the_demo_token(served: tuple[Path, dict[str, str], int]) -> None:
    folder, env, port = served
    block = indented_block(section("## Set-up", "## The `bureau` command"), "TOKEN=$(.venv/bin/bureau demo")
    answer = json.loads(await shell(block, folder, env, port))
    assert answer["data"]["viewer"]["firms"]["edges"][0]["node"]["name"] == "Demo Redovisning AB"


async def test_the_partner_dashboard_example(served: tuple[Path, dict[str, str], int]) -> None:
    folder, env, port = served
    text = section("### A partner dashboard or integration", "### Signing keys")
    register = indented_block(text, "TOKEN=$(.venv/bin/bureau demo")
    created = json.loads((await shell(register, folder, env, port)).strip().splitlines()[-1])
    dashboard = fenced_block(text)
    assert dashboard.startswith("CLIENT_ID=bc_...; CLIENT_SECRET=...")
    dashboard = dashboard.replace("CLIENT_ID=bc_...; CLIENT_SECRET=...",
                                  f"CLIENT_ID={created['client_id']}; CLIENT_SECRET={created['client_secret']}", 1)
    answer = json.loads(await shell(dashboard, folder, env, port))
    assert answer["data"]["firm"]["name"] == "Demo Redovisning AB"
    assert answer["data"]["firm"]["agreements"]["totalCount"] == 3

    # The operator's commands the README shows next to it.
    listed = json.loads(await shell(".venv/bin/bureau clients list", folder, env))
    assert created["client_id"] in [c["client_id"] for c in listed]
    await shell(f'.venv/bin/bureau clients revoke "{created["client_id"]}"', folder, env)
    token_request = dashboard.split("\nFIRM_ID=")[0]
    revoked = await asyncio.create_subprocess_exec("bash", "-euo", "pipefail", "-c",
                                                   token_request.replace("127.0.0.1:8000", f"127.0.0.1:{port}"),
                                                   cwd=folder, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    await revoked.communicate()
    assert revoked.returncode != 0  # no token for a revoked client: the response has no access_token


async def test_the_persisted_query_handshake(served: tuple[Path, dict[str, str], int]) -> None:
    """R74: the README's three curls, the hash alone, the query with its hash, the hash alone over GET."""
    folder, env, port = served
    block = indented_block(section("## Persisted queries", "## Load and soak"), "QUERY='{ viewer")
    out = await shell("TOKEN=$(.venv/bin/bureau demo | tail -n 1)\n" + block, folder, env, port)
    decoder, answers, at = json.JSONDecoder(), [], 0
    while at < len(out.strip()):
        answer, at = decoder.raw_decode(out, at)
        answers.append(answer)
    assert [a.get("errors", [{}])[0].get("message") for a in answers] == ["PersistedQueryNotFound", None, None]
    assert answers[0]["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert answers[1]["data"] == answers[2]["data"] and answers[2]["data"]["viewer"]["user"]["name"]
