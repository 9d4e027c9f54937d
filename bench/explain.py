"""Every statement a workload sends, with PostgreSQL's EXPLAIN (ANALYZE) of it (issue 13 item 2):
shows which plans grow with the firm rather than with the answer.

It runs bureau in process against a benchmark database (made by bench.run), captures each
statement with its parameters, runs it again under EXPLAIN (ANALYZE, BUFFERS) and prints them
slowest first with the rows each plan node read.

    .venv/bin/python -m bench.explain --database bureau_bench --workloads a,b,d
"""

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app import create_app
from bench.run import DATA, DEFAULT_SERVER, _tokens
from bench.workloads import BY_KEY
from models.db import connect
from resolvers.runtime import Runtime
from settings import Settings


def _largest_reads(plan: dict[str, Any], found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(rows read, node) of every scan in the plan: actual rows times loops, plus rows filtered out."""
    if "Relation Name" in plan or "Index Name" in plan:
        loops = int(plan.get("Actual Loops", 1))
        read = (int(plan.get("Actual Rows", 0)) + int(plan.get("Rows Removed by Filter", 0))) * loops
        found.append((read, f"{plan['Node Type']} {plan.get('Index Name') or plan.get('Relation Name')}"))
    for child in plan.get("Plans", []):
        _largest_reads(child, found)
    return found


async def explain(url: str, manifest: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    database = connect(url)
    runtime = Runtime.create(database, Settings())
    captured: list[tuple[str, str, Any]] = []
    current = [""]

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((current[0], statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    # A read seen before is run on the driver (R110), where SQLAlchemy's events do not see it.
    database.driver_listeners.append(lambda statement, parameters: capture(None, None, statement, parameters))
    app = create_app(runtime=runtime)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for key in keys:
                workload = BY_KEY[key]
                token = manifest["tokens"][workload.firm]
                for warm in (True, False):  # the first run warms the caches and the plans
                    current[0] = "" if warm else key
                    response = await client.post("/graphql", json=workload.body(manifest),
                                                 headers={"Authorization": f"Bearer {token}"})
                    body = response.json()
                    if "errors" in body:
                        raise SystemExit(f"{key}: {body['errors']}")
        event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
        results = []
        async with database.engine.connect() as connection:
            for key, statement, parameters in captured:
                if not key or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                rows = await connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
                plan = rows.scalar_one()
                plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
                reads = sorted(_largest_reads(plan["Plan"], []), reverse=True)
                text = await connection.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
                results.append({"workload": key, "ms": plan["Execution Time"], "statement": statement,
                                "largest_reads": reads[:3], "plan": "\n".join(r[0] for r in text)})
            await connection.rollback()
        return results
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_DATABASE_SERVER", DEFAULT_SERVER))
    parser.add_argument("--database", default="bureau_bench", help="a database bench.run generated")
    parser.add_argument("--manifest", help="its manifest (default bench/.data/<database>.json)")
    parser.add_argument("--workloads", default=",".join(BY_KEY))
    parser.add_argument("--top", type=int, default=8, help="how many statements to print")
    parser.add_argument("--plans", action="store_true", help="print their plans too")
    args = parser.parse_args()
    url = make_url(args.server).set(database=args.database).render_as_string(hide_password=False)
    manifest = json.loads(Path(args.manifest or DATA / f"{args.database}.json").read_text())
    # Fresh tokens: the manifest's may have expired (they last 8 hours).
    manifest["tokens"] = asyncio.run(_tokens(url, manifest["admins"]))
    results = asyncio.run(explain(url, manifest, args.workloads.split(",")))
    for key in args.workloads.split(","):
        mine = [r for r in results if r["workload"] == key]
        print(f"== {key}: {len(mine)} SELECTs, {sum(r['ms'] for r in mine):.2f} ms in PostgreSQL")
    print()
    for result in sorted(results, key=lambda r: -r["ms"])[: args.top]:
        reads = ", ".join(f"{node} ({rows} rows)" for rows, node in result["largest_reads"])
        print(f"{result['workload']:6} {result['ms']:8.2f} ms  {reads}")
        print("       " + " ".join(result["statement"].split())[:400])
        if args.plans:
            print(result["plan"])


if __name__ == "__main__":
    main()
