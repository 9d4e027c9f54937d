"""Webhook costs (R68, R70): what writing events adds to a mutation, and how fast one worker
delivers to a receiver on loopback. Makes its own database on the test server and drops it.

    .venv/bin/python -m bench.webhooks [--invites 100] [--deliveries 500]
"""

import argparse
import asyncio
import dataclasses
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from app import create_app
from auth.clients import ALL_SCOPES, register_client
from models.db import connect
from models.migrate import migrate
from resolvers.runtime import Runtime
from resolvers.webhook_delivery import deliver_due
from settings import Settings
from tests.api.client import Api, unique
from tests.api.webhook_receiver import Receiver
from tests.conftest import create_database, drop_database


async def _invite_times(api: Api, token: str, company: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await api.invite(token, company, email=f"{unique('bench')}@client.example", sendWelcomeEmail=False)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main(invites: int, deliveries: int) -> dict[str, Any]:
    url = await create_database("bureau_bench_webhooks")
    await migrate(url)
    database = connect(url)
    try:
        async with database.sessions.begin() as session:
            client = await register_client(session, name="bench", scopes=list(ALL_SCOPES))
        runtime = Runtime.create(database, dataclasses.replace(Settings(), webhooks_allow_http_loopback=True))
        transport = httpx.ASGITransport(app=create_app(runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
            api = Api(http, runtime, vendor_client_id=client.client_id, app_client_id=client.client_id)
            firm = await api.firm()
            agreement, company = await api.agreement(firm)
            assert company is not None
            await api.subscription(firm, agreement, named=invites * 3 + deliveries + 10)
            await _invite_times(api, firm.admin, company, 5)  # warm up
            without = await _invite_times(api, firm.admin, company, invites)
            with Receiver().start() as receiver:
                for _ in range(3):
                    await api.mutate("createWebhookEndpoint", {"firmId": firm.id, "url": receiver.url,
                                                               "eventTypes": ["MEMBERSHIP_INVITED",
                                                                              "SEAT_USAGE_CHANGED"]},
                                     "secret", token=firm.admin)
                with_hooks = await _invite_times(api, firm.admin, company, invites)
                await deliver_due(database, datetime.now(UTC), allow_loopback=True)  # what the above queued
                # Each invitation makes 2 events for each of 3 endpoints: 6 deliveries.
                await _invite_times(api, firm.admin, company, deliveries // 6)
                started = time.perf_counter()
                report = await deliver_due(database, datetime.now(UTC), allow_loopback=True)
                elapsed = time.perf_counter() - started
        return {
            "inviteUser ms, no endpoints (median)": round(statistics.median(without), 2),
            "inviteUser ms, 3 endpoints x 2 event types (median)": round(statistics.median(with_hooks), 2),
            "deliveries in one pass": report.delivered,
            "deliveries per second (one worker, loopback receiver)": round(report.delivered / elapsed, 1),
        }
    finally:
        await database.dispose()
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invites", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=600)
    args = parser.parse_args()
    for name, value in asyncio.run(main(args.invites, args.deliveries)).items():
        print(f"{name}: {value}")
