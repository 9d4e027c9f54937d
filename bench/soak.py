"""Load and soak (issue 12 item 9): two uvicorn server processes on a fresh PostgreSQL database
with demo-like data for several firms, mixed reads and writes from every firm at once, on
loopback only and for a bounded time.

    .venv/bin/python bench/soak.py --duration 180

It reports errors, p50/p99 latency per operation and the RSS of each server process over time,
and exits 1 on any error (a non-200, a GraphQL error, a userError, a write one server did not
show the other) or when a server's RSS grows more than --max-rss-growth-mb between the first and
the last third of the run. The last line printed is a JSON summary.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_DURATION = 6 * 3600

VIEWER = "{ viewer { firms { edges { node { id name } } } } }"
FIRM = """query($id: ID!) { firm(id: $id) { name agreements(first: 20) { totalCount edges { node {
    id name companyCount companies(first: 10) { edges { node { id name } } }
    subscription { seats { licenseType purchased inUse available } } } } } } }"""
COMPANY = """query($id: ID!) { node(id: $id) { ... on Company { id name agreement { name }
    members(first: 10) { totalCount } } } }"""


class Failed(Exception):
    """One request that did not do what it should; the soak counts it as an error."""


@dataclass
class FirmData:
    id: str
    token: str
    company_ids: list[str]
    subscription_ids: list[str]


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rss: list[tuple[float, list[int]]] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


# ------------------------------------------------------------------ GraphQL over HTTP


async def graphql(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise Failed(f"HTTP {response.status_code}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        codes = sorted({str((e.get("extensions") or {}).get("code")) for e in body["errors"]})
        raise Failed(f"GraphQL errors {codes}: {body['errors'][0].get('message', '')[:120]}")
    data: dict[str, Any] = body["data"]
    return data


async def mutate(client: httpx.AsyncClient, name: str, input: dict[str, Any], selection: str,
                 token: str) -> dict[str, Any]:
    document = f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ {selection} " \
               "userErrors { code message field } } }"
    payload: dict[str, Any] = (await graphql(client, document, {"input": input}, token))[name]
    if payload["userErrors"]:
        raise Failed(f"{name} userErrors {[e['code'] for e in payload['userErrors']]}")
    return payload


# ------------------------------------------------------------------ database and data


def admin_url(server: str | None) -> str:
    url = server or os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        url = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    parsed = make_url(url).set(drivername="postgresql+asyncpg", database="postgres")
    if parsed.host not in LOOPBACK:
        raise SystemExit(f"the soak runs on loopback only; {parsed.host} is not")
    return parsed.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    from models.migrate import migrate

    name = f"bureau_soak_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate(url)
        yield url
    finally:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await engine.dispose()


async def seed(url: str, client: httpx.AsyncClient, firms: int, ttl: int) -> list[FirmData]:
    """Demo-like data, made through the API: per firm an admin, three customer agreements with
    two companies each and a licence subscription each."""
    from auth.clients import ALL_SCOPES, register_client
    from models.db import connect
    from resolvers.runtime import Runtime

    runtime = Runtime.create(connect(url))
    try:
        async with runtime.database.sessions.begin() as session:
            vendor_client = await register_client(session, name="soak vendor", scopes=list(ALL_SCOPES))
            app_client = await register_client(session, name="soak app", scopes=list(ALL_SCOPES))
        vendor = await runtime.tokens.issue(subject=vendor_client.client_id, client_id=vendor_client.client_id,
                                            scopes=list(ALL_SCOPES), ttl=ttl)
        user_scopes = [scope for scope in ALL_SCOPES if scope != "platform:admin"]
        made = []
        for number in range(firms):
            firm_id = (await mutate(client, "createFirm", {"name": f"Soak Firm {number}", "country": "SE",
                                                           "currency": "SEK"}, "firm { id }", vendor))["firm"]["id"]
            staff = await mutate(client, "addFirmStaff", {
                "firmId": firm_id, "name": f"Admin {number}", "email": f"admin{number}@soak.example",
                "role": "FIRM_ADMIN"}, "firmMember { user { id } }", vendor)
            token = await runtime.tokens.issue(subject=staff["firmMember"]["user"]["id"],
                                               client_id=app_client.client_id, scopes=user_scopes, ttl=ttl)
            data = FirmData(firm_id, token, [], [])
            for customer in range(3):
                created = await mutate(client, "createAgreement", {
                    "firmId": firm_id, "name": f"Customer {number}.{customer}", "billingMode": "CUSTOMER",
                    "company": {"name": f"Company {number}.{customer}.0", "country": "SE"}},
                    "agreement { id } company { id }", token)
                agreement_id = created["agreement"]["id"]
                second = await mutate(client, "createCompany", {"agreementId": agreement_id, "company": {
                    "name": f"Company {number}.{customer}.1", "country": "SE"}}, "company { id }", token)
                subscription = await mutate(client, "createSubscription", {
                    "ownerId": agreement_id, "editionCode": "STANDARD", "billingInterval": "MONTHLY",
                    "seats": [{"licenseType": "NAMED", "count": 5}, {"licenseType": "CONCURRENT", "count": 2}]},
                    "subscription { id }", token)
                data.company_ids += [created["company"]["id"], second["company"]["id"]]
                data.subscription_ids.append(subscription["subscription"]["id"])
            made.append(data)
        return made
    finally:
        await runtime.database.dispose()


# ------------------------------------------------------------------ the servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss(self) -> int:
        """Resident set size in bytes, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


def launch(url: str, log: Path) -> Server:
    """One uvicorn process of the app on 127.0.0.1 (one worker), on `url`'s database."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, stdout=output, stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", log)


def stop(started: list[Server]) -> None:
    for server in started:
        server.process.terminate()
    for server in started:
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.asynccontextmanager
async def servers(url: str, count: int, workdir: Path) -> AsyncIterator[list[Server]]:
    """`count` server processes sharing the database, ready to serve."""
    started: list[Server] = []
    try:
        for number in range(count):
            started.append(launch(url, workdir / f"server{number}.log"))
        async with httpx.AsyncClient() as probe:
            for server in started:
                deadline = time.monotonic() + 60
                while True:
                    assert server.process.poll() is None, f"a server exited: {server.log.read_text()[-2000:]}"
                    with contextlib.suppress(httpx.TransportError):
                        if (await probe.get(server.url + "/readyz")).status_code == 200:
                            break
                    assert time.monotonic() < deadline, "a server did not become ready"
                    await asyncio.sleep(0.2)
        yield started
    finally:
        stop(started)


# ------------------------------------------------------------------ the load


Operation = Callable[[list[httpx.AsyncClient], FirmData, random.Random], Awaitable[None]]


async def read_viewer(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    firms = (await graphql(rng.choice(clients), VIEWER, {}, firm.token))["viewer"]["firms"]["edges"]
    if [edge["node"]["id"] for edge in firms] != [firm.id]:
        raise Failed("viewer shows other firms than its own")


async def read_firm(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    data = await graphql(rng.choice(clients), FIRM, {"id": firm.id}, firm.token)
    if data["firm"] is None or data["firm"]["agreements"]["totalCount"] != len(firm.subscription_ids):
        raise Failed("the firm's agreements are not all there")


async def read_company(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    company_id = rng.choice(firm.company_ids)
    node = (await graphql(rng.choice(clients), COMPANY, {"id": company_id}, firm.token))["node"]
    if node is None or node["id"] != company_id:
        raise Failed("a company of the firm's own is not visible")


# One rename of a company at a time: two workers renaming the same company at once would each
# read back the other's name, which says nothing about the servers.
RENAMING: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)


async def rename_company(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    """A write on one server, read back on the other: both instances see the same database."""
    company_id, name = rng.choice(firm.company_ids), f"Company {secrets.token_hex(4)}"
    writer, reader = rng.sample(clients, 2) if len(clients) > 1 else (clients[0], clients[0])
    async with RENAMING[company_id]:
        await mutate(writer, "updateCompany", {"companyId": company_id, "name": name}, "company { id }", firm.token)
        node = (await graphql(reader, COMPANY, {"id": company_id}, firm.token))["node"]
    if node is None or node["name"] != name:
        raise Failed("a committed rename was not visible on the other server")


async def change_seats(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    await mutate(rng.choice(clients), "changeSeats", {
        "subscriptionId": rng.choice(firm.subscription_ids), "licenseType": "NAMED", "seats": rng.randint(5, 8)},
        "subscription { id }", firm.token)


async def add_company(clients: list[httpx.AsyncClient], firm: FirmData, rng: random.Random) -> None:
    firm_data = await graphql(rng.choice(clients), FIRM, {"id": firm.id}, firm.token)
    agreement = rng.choice(firm_data["firm"]["agreements"]["edges"])["node"]
    await mutate(rng.choice(clients), "createCompany", {"agreementId": agreement["id"], "company": {
        "name": f"Company {secrets.token_hex(4)}", "country": "SE"}}, "company { id }", firm.token)


# Mostly reads, as in use; every kind of write a firm's admin does often.
MIX: list[tuple[Operation, int]] = [(read_viewer, 20), (read_firm, 30), (read_company, 30), (rename_company, 10),
                                    (change_seats, 6), (add_company, 4)]


async def worker(clients: list[httpx.AsyncClient], firm: FirmData, until: float, results: Results,
                 rng: random.Random, measured_from: float) -> None:
    operations, weights = zip(*MIX, strict=True)
    while time.monotonic() < until:
        operation = rng.choices(operations, weights)[0]
        started = time.monotonic()
        try:
            await operation(clients, firm, rng)
        except (Failed, httpx.HTTPError, KeyError, TypeError, ValueError) as error:
            results.errors[f"{operation.__name__}: {type(error).__name__}: {str(error)[:160]}"] += 1
            continue
        if started >= measured_from:
            results.latencies[operation.__name__].append(time.monotonic() - started)


async def sample_rss(running: list[Server], until: float, results: Results, started: float) -> None:
    while time.monotonic() < until:
        results.rss.append((time.monotonic() - started, [server.rss() for server in running]))
        await asyncio.sleep(1)


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def rss_growth(samples: list[tuple[float, list[int]]], duration: float, server: int) -> tuple[float, float]:
    """Mean RSS (MB) of the first and of the last third of the measured run."""
    first = [rss[server] for at, rss in samples if 0 <= at < duration / 3]  # at < 0: the warm-up
    last = [rss[server] for at, rss in samples if at >= duration * 2 / 3]
    if not first or not last:
        raise SystemExit("too few RSS samples: run longer")
    return statistics.fmean(first) / 2**20, statistics.fmean(last) / 2**20


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bureau-soak-") as workdir:
        async with fresh_database(admin_url(args.database_url)) as url, \
                servers(url, args.servers, Path(workdir)) as running:
            limits = httpx.Limits(max_connections=args.clients * 2)
            clients = [httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) for server in running]
            try:
                ttl = int(args.duration + args.warmup) + 600
                firms = await seed(url, clients[0], args.firms, ttl)
                print(f"seeded {len(firms)} firms; {args.clients} clients on {len(running)} servers for "
                      f"{args.warmup:g} s warm-up and {args.duration:g} s", flush=True)
                rng = random.Random(args.seed)  # noqa: S311 - load, not secrets
                begin = time.monotonic()
                measured_from = begin + args.warmup
                until = measured_from + args.duration
                sampler = asyncio.create_task(sample_rss(running, until, results, measured_from))
                reporter = asyncio.create_task(report_progress(results, running, begin, until, args.duration))
                await asyncio.gather(*(worker(clients, firms[number % len(firms)], until, results,
                                              random.Random(rng.random()), measured_from)  # noqa: S311
                                       for number in range(args.clients)))
                await sampler
                reporter.cancel()
                for server in running:
                    if server.process.poll() is not None:
                        results.errors[f"a server exited: {server.log.read_text()[-500:]}"] += 1
            finally:
                for client in clients:
                    await client.aclose()
    return summary(results, args, len(running))


async def report_progress(results: Results, running: list[Server], begin: float, until: float,
                          duration: float) -> None:
    every = max(5.0, duration / 10)
    while time.monotonic() < until:
        await asyncio.sleep(every)
        done = sum(len(values) for values in results.latencies.values())
        rss = " ".join(f"{server.rss() / 2**20:.0f}" for server in running)
        print(f"t={time.monotonic() - begin:6.0f}s requests={done} errors={results.error_count} rss_mb=[{rss}]",
              flush=True)


def summary(results: Results, args: argparse.Namespace, server_count: int) -> dict[str, Any]:
    every = [value for values in results.latencies.values() for value in values]
    growth = {}
    for server in range(server_count):
        first, last = rss_growth(results.rss, args.duration, server)
        growth[f"server{server + 1}"] = {"first_third_mb": round(first, 1), "last_third_mb": round(last, 1),
                                         "growth_mb": round(last - first, 1)}
    flat = all(entry["growth_mb"] <= args.max_rss_growth_mb for entry in growth.values())
    return {
        "ok": results.error_count == 0 and flat and bool(every),
        "duration_s": args.duration,
        "requests": len(every),
        "requests_per_s": round(len(every) / args.duration, 1),
        "errors": results.error_count,
        "error_kinds": dict(sorted(results.errors.items(), key=lambda item: -item[1])[:10]),
        "p50_ms": round(percentile(every, 50) * 1000, 1),
        "p99_ms": round(percentile(every, 99) * 1000, 1),
        "per_operation": {name: {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
                                 "p99_ms": round(percentile(values, 99) * 1000, 1)}
                          for name, values in sorted(results.latencies.items())},
        "rss": growth,
        "rss_samples_mb": [[round(at, 1), *(round(value / 2**20, 1) for value in rss)] for at, rss in results.rss],
        "max_rss_growth_mb": args.max_rss_growth_mb,
        "memory_flat": flat,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds measured (default 180)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (default 5)")
    parser.add_argument("--firms", type=int, default=4, help="firms with their own data (default 4)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, spread over the firms")
    parser.add_argument("--servers", type=int, default=2, help="uvicorn server processes (default 2)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=25.0,
                        help="largest RSS growth of a server between the first and last third (default 25)")
    parser.add_argument("--database-url", help="the PostgreSQL server (on loopback) to make a fresh database on; "
                                               "default DATABASE_URL or postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=12, help="random seed of the traffic")
    args = parser.parse_args(argv)
    if not 3 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be from 3 to {MAX_DURATION} seconds")
    if not (args.firms >= 1 and args.clients >= 1 and args.servers >= 1 and args.warmup >= 0):
        parser.error("--firms, --clients and --servers must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = asyncio.run(soak(args))
    samples = result.pop("rss_samples_mb")
    print("rss over time (s, MB per server): " + " ".join(
        f"{row[0]:.0f}:{'/'.join(f'{v:.0f}' for v in row[1:])}" for row in samples[:: max(1, len(samples) // 12)]))
    print(f"{result['requests']} requests ({result['requests_per_s']}/s), {result['errors']} errors, "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; memory "
          f"{'flat' if result['memory_flat'] else 'GROWING'}: "
          + ", ".join(f"{name} {entry['first_third_mb']} -> {entry['last_third_mb']} MB"
                      for name, entry in result["rss"].items()))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
