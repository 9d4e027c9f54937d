"""The response cache shared through Redis (R83): two server processes on one PostgreSQL database
and one Redis answer from the same entries, a write through either makes both fresh, and a Redis
outage falls back to each process's own cache."""

import subprocess
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from models import ids
from tests.api.client import Api, unique
from tests.api.test_memberships import setup
from tests.api.test_query_budget_redis import REDIS, output, own_redis, prefix, redis_keys, serve, start_redis

__all__ = ["own_redis"]  # the fixture, imported for pytest

# A list in it: a point read would be answered by its prepared read, fresh, not from the cache (R113).
NAME = "query($id: ID!) { company(id: $id) { id name members(first: 1) { edges { node { id } } } } }"
BUDGET = {"BUREAU_COST_LIMIT": "50000", "BUREAU_COST_BUCKET": "100000", "BUREAU_COST_RESTORE_RATE": "5000",
          "BUREAU_RESPONSE_CACHE": "on"}


async def name_on(base: str, token: str, company_id: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{base}/graphql", json={"query": NAME, "variables": {"id": company_id}},
                                   headers={"Authorization": f"Bearer {token}"})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return str(body["data"]["company"]["name"])


async def behind_the_cache(database_url: str, company_id: str, name: str) -> None:
    """A change no session sees (a plain connection): no version moves, so only a cached answer hides it."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE companies SET name = :name WHERE id = :id"),
                                     {"name": name, "id": ids.decode_as(company_id, "Company")})
    finally:
        await engine.dispose()


async def test_two_servers_share_the_cache_and_a_write_refreshes_both(database_url: str, api: Api,
                                                                       tmp_path: Path) -> None:
    firm, _, company_id = await setup(api)
    keys = prefix()
    env = {"REDIS_URL": REDIS, "BUREAU_RESPONSE_CACHE_KEY_PREFIX": keys, **BUDGET}
    async with serve(database_url, tmp_path / "a.log", **env) as a, serve(database_url, tmp_path / "b.log", **env) as b:
        first = await name_on(a, firm.admin, company_id)
        assert len(redis_keys(6379, keys + "*")) == 1
        await behind_the_cache(database_url, company_id, "Not seen while cached")
        assert await name_on(b, firm.admin, company_id) == first  # b never read it: a's answer, from Redis
        renamed = unique("Renamed ")
        async with httpx.AsyncClient(timeout=10) as http:
            await http.post(f"{a}/graphql", headers={"Authorization": f"Bearer {firm.admin}"}, json={
                "query": "mutation($input: UpdateCompanyInput!) { updateCompany(input: $input) { company { id } } }",
                "variables": {"input": {"companyId": company_id, "name": renamed}}})
        assert await name_on(b, firm.admin, company_id) == renamed
        assert await name_on(a, firm.admin, company_id) == renamed


async def test_without_redis_each_process_keeps_its_own(database_url: str, api: Api, tmp_path: Path) -> None:
    firm, _, company_id = await setup(api)
    async with serve(database_url, tmp_path / "a.log", **BUDGET) as a, \
            serve(database_url, tmp_path / "b.log", **BUDGET) as b:
        first = await name_on(a, firm.admin, company_id)
        await behind_the_cache(database_url, company_id, "Seen by the other")
        assert await name_on(a, firm.admin, company_id) == first
        assert await name_on(b, firm.admin, company_id) == "Seen by the other"


async def test_a_redis_outage_falls_back_to_the_process_cache(
    database_url: str, api: Api, tmp_path: Path, own_redis: tuple[int, list[subprocess.Popen[bytes]]]
) -> None:
    port, processes = own_redis
    keys = prefix()
    start_redis(port, processes, tmp_path)
    firm, _, company_id = await setup(api)
    log = tmp_path / "server.log"
    async with serve(database_url, log, REDIS_URL=f"redis://127.0.0.1:{port}/0",
                     BUREAU_RESPONSE_CACHE_KEY_PREFIX=keys, **BUDGET) as base:
        first = await name_on(base, firm.admin, company_id)
        assert redis_keys(port, keys + "*") != []
        processes[0].kill()
        processes[0].wait()
        # Served all the same, from this process's own entries, which still follow the versions.
        answers = [await name_on(base, firm.admin, company_id) for _ in range(3)]
        assert answers == [first] * 3
        renamed = unique("Renamed ")
        await api.mutate("updateCompany", {"companyId": company_id, "name": renamed}, "company { id }",
                         token=firm.admin)
        for _ in range(3):
            assert await name_on(base, firm.admin, company_id) == renamed
        start_redis(port, processes, tmp_path)
        await api.mutate("updateCompany", {"companyId": company_id, "name": first}, "company { id }",
                         token=firm.admin)
        assert await name_on(base, firm.admin, company_id) == first
        assert redis_keys(port, keys + "*") != []
    logged = output(log)
    assert logged.count("Redis unreachable for the response cache") == 1, logged
    assert "cached responses are shared again" in logged
