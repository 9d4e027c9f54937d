"""R77 and R78 through the app and `bureau serve` itself: the collector is tuned when the app
starts, responses are orjson's (the same JSON), and no access log unless asked."""

import asyncio
import dataclasses
import gc
import json
import os
import sys
from pathlib import Path

import pytest

from app import create_app
from models.db import connect
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, unique
from tests.api.test_metrics import free_port
from tests.api.test_slow_clients import HEALTH, exchange, until_healthy

ROOT = Path(__file__).resolve().parents[2]


async def test_the_app_tunes_the_collector_when_it_starts(database_url: str) -> None:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    settings = dataclasses.replace(Settings(), gc_thresholds=(23_456, 7, 8), gc_freeze=True)
    app = create_app(runtime=Runtime.create(connect(database_url), settings))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == (23_456, 7, 8)
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_responses_are_the_same_json_in_utf_8(api: Api) -> None:
    firm = await api.firm()
    name = unique("Åsa & Öl \"citat\" \\ ") + " 日本 \U0001f600"
    await api.mutate("updateFirm", {"firmId": firm.id, "name": name}, "firm { id }", token=firm.admin)
    response = await api.post("query($id: ID!) { firm(id: $id) { name } }", {"id": firm.id}, firm.admin)
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content) == {"data": {"firm": {"name": name}}, "extensions": response.json()[
        "extensions"]}
    # orjson writes UTF-8 as it is, where json.dumps would escape it (\u00c5): the same value either way.
    assert "Åsa".encode() in response.content and b"\\u00c5" not in response.content


async def _serve(tmp_path: Path, *flags: str) -> str:
    """Starts `bureau serve` with `flags`, asks it for /healthz twice, stops it: its log."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT)}
    log = tmp_path / f"serve{len(flags)}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       *flags, cwd=tmp_path, env=env, stdout=sink, stderr=sink)
    try:
        await until_healthy(port, log)
        assert (await exchange(port, HEALTH))[0] == 200
    finally:
        process.terminate()
        await process.wait()
    return log.read_text(errors="replace")


@pytest.mark.parametrize(("flags", "access", "started"), [
    ((), False, True),
    (("--access-log",), True, True),
    (("--log-level", "warning", "--access-log"), False, False),  # access lines are INFO
])
async def test_serve_logs_a_line_per_request_only_when_asked(tmp_path: Path, flags: tuple[str, ...], access: bool,
                                                             started: bool) -> None:
    log = await _serve(tmp_path, *flags)
    assert ("GET /healthz HTTP/1.1" in log) is access, log  # uvicorn's line, in either log format
    assert ("Uvicorn running on" in log) is started, log
