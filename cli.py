"""The `bureau` command (DESIGN.md section 6). A command that prints a result prints it last."""

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import select

from models import ids
from settings import Settings, serve_port

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in range, else a one-line error and exit code 2 (R58)."""

    def parse(text: str) -> int:
        if re.fullmatch(r"-?[0-9]+", text.strip()) is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            within = f"from {minimum} to {maximum}" if maximum is not None else f"of {minimum} or more"
            raise argparse.ArgumentTypeError(f"{value} is not a number {within}")
        return value

    return parse


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _runtime():  # type: ignore[no-untyped-def]
    from models.db import connect
    from resolvers.runtime import Runtime

    return Runtime.create(connect())


async def _migrate() -> None:
    from models.migrate import migrate

    await migrate()


def cmd_migrate(args: argparse.Namespace) -> int:
    asyncio.run(_migrate())
    print("database is at the newest schema")
    return 0


def _multiprocess_metrics(settings: Settings, workers: int) -> tuple[Settings, str | None]:
    """Several workers are several processes, each with its own counters: prometheus-client's multiprocess
    mode lets every worker write them to one directory and any scrape sum them up. Returns the settings to
    serve with, and the directory this command made (to remove afterwards)."""
    import dataclasses
    import tempfile

    if settings.metrics_multiproc_dir is not None:
        # The operator's directory: prometheus-client wants it emptied before the processes start.
        Path(settings.metrics_multiproc_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(settings.metrics_multiproc_dir).glob("*.db"):
            stale.unlink()
        return settings, None
    if workers <= 1 or (settings.metrics_token is None and settings.metrics_port is None):
        return settings, None
    made = tempfile.mkdtemp(prefix="bureau-metrics-")
    # Workers are spawned with this environment: their prometheus-client and Settings both read it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return dataclasses.replace(settings, metrics_multiproc_dir=made), made


def _issuer_for(host: str, port: int) -> None:
    """Without BUREAU_ISSUER, the issuer is the address served on, so that the OAuth metadata and the
    tokens `bureau demo` prints name the port given. Workers read it from the environment, as Settings does."""
    if not os.environ.get("BUREAU_ISSUER"):
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound
        os.environ["BUREAU_ISSUER"] = f"http://{f'[{reachable}]' if ':' in reachable else reachable}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    import shutil

    import uvicorn

    from models.db import database_url
    from observability.logs import log_config
    from web.serving import default_workers, uvicorn_options

    _issuer_for(args.host, args.port)
    try:
        settings = Settings()
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    if database_url().startswith("sqlite"):
        asyncio.run(_migrate())  # the embedded default migrates itself on first start
    workers = args.workers if args.workers is not None else default_workers(database_url())
    settings, made = _multiprocess_metrics(settings, workers)
    listener = None
    try:
        if settings.metrics_port is not None:
            from app import start_metrics_listener

            # In this process only, so that several workers never compete for the port.
            listener = start_metrics_listener(settings)
            print(f"metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics", flush=True)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"GraphiQL: http://{host}:{args.port}/graphql (send a bearer token; `bureau demo` prints one)",
              flush=True)
        # The app logs one line per request (web.observation); uvicorn's access log would repeat it, so it
        # is off unless asked for (--access-log, R78).
        uvicorn.run("app:create_app", factory=True, host=args.host, port=args.port, workers=workers,
                    log_level=args.log_level,
                    log_config=log_config(settings.log_format, flush_seconds=settings.log_flush_seconds),
                    access_log=args.access_log, **uvicorn_options(settings.limits))
    finally:
        if listener is not None:
            listener[0].shutdown()
            listener[0].server_close()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


async def _issue_token(client_id: str, user_email: str | None, scopes: list[str], ttl: int | None) -> str:
    from auth.clients import find_client
    from models import User
    from models.enums import UserStatus

    runtime = _runtime()
    try:
        async with runtime.database.sessions() as session:
            client = await find_client(session, client_id)
            if client is None:
                raise SystemExit(f"no OAuth client {client_id}")
            granted = set(client.scopes.split())
            if not set(scopes) <= granted:
                raise SystemExit(f"the client may not have: {' '.join(sorted(set(scopes) - granted))}")
            subject = client_id
            if user_email:
                user = await session.scalar(select(User).where(User.email_normalized == user_email.strip().lower()))
                if user is None or user.status is UserStatus.DEACTIVATED:
                    raise SystemExit(f"no active or invited user with email {user_email}")
                subject = ids.of(user)
        return await runtime.tokens.issue(subject=subject, client_id=client_id, scopes=scopes, ttl=ttl)
    finally:
        await runtime.database.dispose()


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    print(asyncio.run(_issue_token(args.client_id, args.user_email, args.scopes.split(), args.ttl)))
    return 0


async def _create_client(args: argparse.Namespace) -> dict[str, str | None]:
    from auth.clients import register_client

    firm_id = None
    if args.firm:
        firm_id = ids.decode_as(args.firm, "Firm")
        if firm_id is None:
            raise SystemExit("--firm takes a Firm's global ID")
    runtime = _runtime()
    try:
        async with runtime.database.sessions.begin() as session:
            client = await register_client(
                session, name=args.name, scopes=args.scopes.split(), firm_id=firm_id,
                redirect_uris=args.redirect_uri or [], public=args.public)
    finally:
        await runtime.database.dispose()
    return {"client_id": client.client_id, "client_secret": client.client_secret}


def cmd_clients_create(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_create_client(args))))
    return 0


async def _demo() -> str:
    from demo import load_demo

    await _migrate()
    runtime = _runtime()
    try:
        client_id, email = await load_demo(runtime)
    finally:
        await runtime.database.dispose()
    from auth.clients import ALL_SCOPES

    scopes = [s for s in ALL_SCOPES if s != "platform:admin"]
    return await _issue_token(client_id, email, scopes, 8 * 3600)


def cmd_demo(args: argparse.Namespace) -> int:
    _issuer_for(args.host, args.port)  # the token's issuer is the server's that `serve` with the same options runs
    token = asyncio.run(_demo())
    print("Demo firm loaded. Open GraphiQL at the address `bureau serve` prints and paste into its Headers:")
    print(f'  {{"Authorization": "Bearer {token}"}}')
    print("The firm admin's access token, valid 8 hours (for scripts: TOKEN=$(bureau demo | tail -n 1)):")
    print(token)
    return 0


async def _clients() -> list[dict[str, object]]:
    from auth.clients import list_clients

    runtime = _runtime()
    try:
        async with runtime.database.sessions() as session:
            clients = await list_clients(session)
    finally:
        await runtime.database.dispose()
    return [{"client_id": c.client_id, "name": c.name, "public": c.public, "firm": ids.encode("Firm", c.firm_id)
             if c.firm_id is not None else None, "scopes": c.scopes, "redirect_uris": c.redirect_uris,
             "created_at": c.created_at.isoformat()} for c in clients]


def cmd_clients_list(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_clients())))
    return 0


async def _revoke_client(client_id: str) -> bool:
    from auth.clients import revoke_client

    runtime = _runtime()
    try:
        async with runtime.database.sessions.begin() as session:
            return await revoke_client(session, client_id)
    finally:
        await runtime.database.dispose()


def cmd_clients_revoke(args: argparse.Namespace) -> int:
    if not asyncio.run(_revoke_client(args.client_id)):
        raise SystemExit(f"no OAuth client {args.client_id}")
    print(json.dumps({"revoked": args.client_id}))
    return 0


async def _deliver(once: bool) -> str:
    import signal

    from resolvers.outbox import deliver_due, parse_smtp_url, run_worker

    runtime = _runtime()
    settings = runtime.settings
    if not settings.smtp_url:
        raise SystemExit("SMTP_URL is not set")
    try:
        target = parse_smtp_url(settings.smtp_url)
    except ValueError as exc:
        raise SystemExit(f"SMTP_URL: {exc}") from exc
    try:
        if once:
            report = await deliver_due(runtime.database, target, runtime.now(), sender=settings.mail_from,
                                         issuer=settings.issuer)
            return json.dumps({"sent": report.sent, "failed": report.failed})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(runtime.database, target, runtime.now, stop, sender=settings.mail_from,
                         issuer=settings.issuer)
        return "stopped"
    finally:
        await runtime.database.dispose()


async def _deliver_webhooks(once: bool) -> str:
    import signal

    from resolvers.webhook_delivery import deliver_due, run_worker

    runtime = _runtime()
    settings = runtime.settings
    options = {"request_seconds": settings.webhook_timeout, "allow_loopback": settings.webhooks_allow_http_loopback}
    try:
        if once:
            report = await deliver_due(runtime.database, runtime.now(), **options)  # type: ignore[arg-type]
            return json.dumps({"delivered": report.delivered, "failed": report.failed, "dead": report.dead})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(runtime.database, runtime.now, stop, **options)  # type: ignore[arg-type]
        return "stopped"
    finally:
        await runtime.database.dispose()


def cmd_webhooks_deliver(args: argparse.Namespace) -> int:
    print(asyncio.run(_deliver_webhooks(args.once)))
    return 0


async def _rollover(on: date | None) -> tuple[dict[str, object], list[int]]:
    from resolvers.rollover import rollover

    runtime = _runtime()
    try:
        until = on or runtime.today()
        report = await rollover(runtime, until)
    finally:
        await runtime.database.dispose()
    failed = [ids.encode("Firm", firm_id) for firm_id in report.failed_firms]
    return {"date": until.isoformat(), "periodsStarted": report.periods_started,
            "changesApplied": report.changes_applied, "invoicesIssued": report.invoices_issued,
            "failedFirms": failed}, report.failed_firms


def cmd_rollover(args: argparse.Namespace) -> int:
    summary, failed = asyncio.run(_rollover(args.date))
    print(json.dumps(summary))
    if failed:
        # The others were invoiced; a rerun completes these once the cause is fixed.
        names = " ".join(ids.encode("Firm", firm_id) for firm_id in failed)
        print(f"rollover: {len(failed)} firm(s) failed: {names} (see the log; run it again once fixed)",
              file=sys.stderr)
        return 1
    return 0


def cmd_outbox_deliver(args: argparse.Namespace) -> int:
    print(asyncio.run(_deliver(args.once)))
    return 0


def cmd_schema_export(args: argparse.Namespace) -> int:
    from schema import schema

    Path(args.path).write_text(schema.as_str() + "\n")
    print(f"wrote {args.path}")
    return 0


def cmd_persisted_queries_add(args: argparse.Namespace) -> int:
    """R75: adds documents to the Apollo persisted query manifest that BUREAU_PERSISTED_QUERIES names, each
    checked against the schema and the limits first, so that a mobile build learns of a bad one, not its users."""
    from graphql import GraphQLError, parse, specified_rules, validate

    from schema import schema
    from schema.limits import document_rules
    from schema.persisted_queries import manifest_operation, read_manifest, write_manifest

    path = args.manifest or Settings().persisted_queries
    if path is None:
        print("bureau: give --manifest or set BUREAU_PERSISTED_QUERIES", file=sys.stderr)
        return 2
    try:
        operations = read_manifest(path) if Path(path).exists() else {}
    except ValueError as exc:
        print(f"bureau: {exc}", file=sys.stderr)
        return 1
    limits = Settings().limits
    added = []
    for name in args.files:
        try:
            body = Path(name).read_text(encoding="utf-8")
            operation = manifest_operation(body)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            print(f"bureau: {name}: {exc}", file=sys.stderr)
            return 1
        if len(body.encode()) > limits.max_query_bytes:
            print(f"bureau: {name}: larger than BUREAU_MAX_QUERY_BYTES ({limits.max_query_bytes})", file=sys.stderr)
            return 1
        try:
            errors = validate(schema._schema, parse(body, max_tokens=limits.max_tokens),
                              [*specified_rules, *document_rules(limits)])
        except GraphQLError as exc:
            errors = [exc]
        if errors:
            print(f"bureau: {name}: {errors[0].message}", file=sys.stderr)
            return 1
        operations[operation.id] = operation
        added.append({"id": operation.id, "name": operation.name, "type": operation.type, "file": name})
    write_manifest(path, operations)
    print(json.dumps({"manifest": path, "added": added}))
    return 0


async def _keys(action: str, older_than: int | None) -> dict[str, object]:
    from datetime import timedelta

    from models.oauth import SigningKey

    runtime = _runtime()
    if runtime.settings.signing_key_file:
        raise SystemExit("BUREAU_SIGNING_KEY_FILE is set: rotate by replacing the file on every instance")
    try:
        result: dict[str, object]
        if action == "rotate":
            result = {"activeKid": await runtime.keys.rotate()}
        else:
            assert older_than is not None
            result = {"removed": await runtime.keys.prune(timedelta(seconds=older_than))}
        async with runtime.database.sessions() as session:
            rows = (await session.scalars(select(SigningKey).order_by(SigningKey.id))).all()
        result["keys"] = [{"kid": row.kid, "retiredAt": row.retired_at.isoformat() if row.retired_at else None}
                          for row in rows]
        return result
    finally:
        await runtime.database.dispose()


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_keys("rotate", None))))
    return 0


def cmd_keys_prune(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_keys("prune", args.older_than))))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bureau", description="Partner licensing server")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_whole(1, 65535), default=serve_port())
    serve.add_argument("--workers", type=_whole(1), default=None,
                       help="server processes (default: one per core; one on SQLite)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="uvicorn's log level (default info)")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                       help="log a line per request (default off)")
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="bring the database to the newest schema").set_defaults(run=cmd_migrate)
    demo = sub.add_parser("demo", help="load demo data and print a token")
    # serve's options, so that scripts/demo passes its arguments to both: the token's issuer follows them.
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_whole(1, 65535), default=serve_port())
    demo.add_argument("--workers", type=_whole(1), default=1, help=argparse.SUPPRESS)
    demo.set_defaults(run=cmd_demo)

    clients = sub.add_parser("clients", help="OAuth clients").add_subparsers(dest="clients_command", required=True)
    create = clients.add_parser("create", help="register an OAuth client")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True)
    create.add_argument("--firm")
    create.add_argument("--redirect-uri", action="append")
    create.add_argument("--public", action="store_true")
    create.set_defaults(run=cmd_clients_create)
    clients.add_parser("list", help="the registered OAuth clients as JSON (never their secrets)").set_defaults(
        run=cmd_clients_list)
    revoke = clients.add_parser("revoke", help="remove an OAuth client: its tokens stop working at once")
    revoke.add_argument("client_id", metavar="CLIENT_ID")
    revoke.set_defaults(run=cmd_clients_revoke)

    tokens = sub.add_parser("tokens", help="access tokens").add_subparsers(dest="tokens_command", required=True)
    issue = tokens.add_parser("issue", help="print a signed access token")
    issue.add_argument("--client-id", required=True)
    issue.add_argument("--user-email")
    issue.add_argument("--scopes", required=True)
    issue.add_argument("--ttl", type=_whole(1), help="seconds the token is valid")
    issue.set_defaults(run=cmd_tokens_issue)

    keys = sub.add_parser("keys", help="token signing keys (kept in the database)").add_subparsers(
        dest="keys_command", required=True)
    keys.add_parser("rotate", help="make a new active signing key; older keys keep validating").set_defaults(
        run=cmd_keys_rotate)
    prune = keys.add_parser("prune", help="remove keys retired longer ago than the longest token lifetime")
    prune.add_argument("--older-than", type=_whole(0), required=True, metavar="SECONDS",
                       help="remove keys retired more than this many seconds ago (at least the longest token TTL)")
    prune.set_defaults(run=cmd_keys_prune)

    roll = sub.add_parser("rollover", help="the period change and monthly invoices (idempotent)")
    roll.add_argument("--date", type=_iso_date, help="YYYY-MM-DD; today (UTC) when absent")
    roll.set_defaults(run=cmd_rollover)

    outbox = sub.add_parser("outbox", help="the email outbox (R20)").add_subparsers(dest="outbox_command",
                                                                                  required=True)
    deliver = outbox.add_parser("deliver", help="send queued email over SMTP_URL")
    deliver.add_argument("--once", action="store_true", help="one pass over all due mail, then exit")
    deliver.set_defaults(run=cmd_outbox_deliver)

    persisted = sub.add_parser("persisted-queries", help="the allow-list of persisted queries (R75)").add_subparsers(
        dest="persisted_command", required=True)
    add = persisted.add_parser("add", help="add .graphql documents to the persisted query manifest")
    add.add_argument("files", nargs="+", metavar="FILE.graphql")
    add.add_argument("--manifest", help="the manifest to write (default: BUREAU_PERSISTED_QUERIES)")
    add.set_defaults(run=cmd_persisted_queries_add)

    webhooks = sub.add_parser("webhooks", help="webhooks for partner integrations (R70)").add_subparsers(
        dest="webhooks_command", required=True)
    deliver_hooks = webhooks.add_parser("deliver", help="send due webhook deliveries, signed, with retries")
    deliver_hooks.add_argument("--once", action="store_true", help="one pass over all due deliveries, then exit")
    deliver_hooks.set_defaults(run=cmd_webhooks_deliver)

    schema_cmd = sub.add_parser("schema", help="the GraphQL schema").add_subparsers(dest="schema_command",
                                                                                   required=True)
    export = schema_cmd.add_parser("export", help="write the SDL")
    export.add_argument("path", nargs="?", default="schema.graphql")
    export.set_defaults(run=cmd_schema_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
