"""The query budget shared through Redis (R64): two server processes on one PostgreSQL database
and one Redis draw on the same buckets; a Redis outage falls back to per-process buckets."""

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from auth.budget import RedisBudget
from settings import Settings
from tests.api.client import Api

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
# Ten aliases of two fields: 20 points requested and returned, so a bucket of 100 takes five.
TWENTY = "{ " + " ".join(f"v{n}: viewer {{ clientId }}" for n in range(10)) + " }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def output(log: Path) -> str:
    return log.read_text(errors="replace")


def prefix() -> str:
    """Keys of this test alone, in the Redis every test shares."""
    return f"bureau-test:{secrets.token_hex(6)}:"


@contextlib.asynccontextmanager
async def serve(database_url: str, log: Path, **env: str) -> AsyncIterator[str]:
    """`bureau serve` in a process of its own; yields its base URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BUREAU_", "REDIS_")) and k != "SMTP_URL"}
    # The issuer of the tests' tokens (made in this process), not the port's address that serve defaults to.
    environment.update({"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "BUREAU_COST_LIMIT": "100",
                        "BUREAU_ISSUER": Settings().issuer,
                        "BUREAU_COST_BUCKET": "100", "BUREAU_COST_RESTORE_RATE": "1", **env})
    with log.open("wb") as sink:
        # One worker: a process's own bucket is what the outage test counts on (the default is one per core).
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       "--workers", "1", cwd=ROOT, env=environment, stdout=sink,
                                                       stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(240):
                assert process.returncode is None, output(log)
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("bureau serve did not start:\n" + output(log))
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def spend(base: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{base}/graphql", json={"query": TWENTY}, headers={"Authorization": f"Bearer {token}"})


async def test_two_servers_share_one_budget(database_url: str, api: Api, tmp_path: Path) -> None:
    keys = prefix()
    token = await api.vendor()
    async with serve(database_url, tmp_path / "a.log", REDIS_URL=REDIS, BUREAU_COST_KEY_PREFIX=keys) as a, \
            serve(database_url, tmp_path / "b.log", REDIS_URL=REDIS, BUREAU_COST_KEY_PREFIX=keys) as b:
        answers = [await spend(base, token) for base in (a, b, a, b, a, b)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 200, 429]
    left = [answer.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for answer in answers[:5]]
    # One bucket, drawn on by both (each answer may have refilled a point or two meanwhile).
    assert all(80 - 20 * n <= seen <= 80 - 20 * n + 3 for n, seen in enumerate(left)), left
    assert answers[5].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(answers[5].headers["Retry-After"]) >= 1


async def test_without_redis_each_process_keeps_its_own(database_url: str, api: Api, tmp_path: Path) -> None:
    token = await api.vendor()
    async with serve(database_url, tmp_path / "a.log") as a, serve(database_url, tmp_path / "b.log") as b:
        answers = [await spend(base, token) for base in (a, b) * 5]
    assert {answer.status_code for answer in answers} == {200}  # 100 points each, 100 spent on each


async def test_the_script_takes_atomically() -> None:
    keys = prefix()
    budget = RedisBudget(REDIS, capacity=100, rate=1, prefix=keys)
    try:
        outcomes = await asyncio.gather(*(budget.take("client", 10) for _ in range(40)))
        assert sum(outcome.allowed for outcome in outcomes) == 10
        assert await budget.client.exists(keys + "client") == 1  # in Redis, not in the fallback
        assert await budget.give_back("client", 30) == pytest.approx(30, abs=2)
    finally:
        await budget.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A redis-server of this test's own, which it may stop and start again."""
    assert shutil.which("redis-server"), "redis-server is needed"
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    yield port, processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_redis(port: int, processes: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(process)
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
            return
        time.sleep(0.05)
    raise AssertionError("redis-server did not start")


def redis_keys(port: int, pattern: str) -> list[str]:
    done = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", pattern], capture_output=True,
                          text=True, check=True, timeout=10)
    return done.stdout.split()


async def test_a_redis_outage_falls_back_to_the_process_budget(
    database_url: str, api: Api, tmp_path: Path, own_redis: tuple[int, list[subprocess.Popen[bytes]]]
) -> None:
    port, processes = own_redis
    keys = prefix()
    start_redis(port, processes, tmp_path)
    token = await api.vendor()
    log = tmp_path / "server.log"
    async with serve(database_url, log, REDIS_URL=f"redis://127.0.0.1:{port}/0", BUREAU_COST_KEY_PREFIX=keys) as base:
        assert (await spend(base, token)).status_code == 200
        assert redis_keys(port, keys + "*") != []  # the bucket lives in Redis
        processes[0].kill()
        processes[0].wait()
        during = [await spend(base, token) for _ in range(5)]
        # Fail open to the process's own bucket: served and costed, and still limited (100 points).
        assert [answer.status_code for answer in during] == [200, 200, 200, 200, 200]
        assert all("cost" in answer.json()["extensions"] for answer in during)
        assert (await spend(base, token)).status_code == 429
        start_redis(port, processes, tmp_path)
        back = await spend(base, token)
        assert back.status_code == 200  # a new Redis holds a full bucket
        assert redis_keys(port, keys + "*") != []
    text = output(log)
    assert text.count("Redis unreachable for query budgets") == 1, text  # one warning, not one per request
    assert "Redis reachable again" in text
