"""The Starlette app: GraphQL, keys, health and metrics (DESIGN.md section 6).

HTTP -> app -> schema -> resolvers -> (auth, licensing, loaders) -> models.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

import observability.logs
from auth.authenticate import MissingCredentials, authenticate, load_grants
from auth.external import NumberRules, TrustedIssuers
from auth.principal import Principal
from auth.tokens import InvalidToken
from licensing import identity
from loaders.base import RequestDb
from models.db import Database, connect
from models.outage import DatabaseUnavailable
from resolvers import accounts
from resolvers.base import run_in_transaction
from resolvers.events import hub_for
from resolvers.runtime import Runtime
from schema import schema
from schema.context import Context
from schema.subscriptions import LiveContext
from settings import Settings
from web.outage import OutageGuard, outage_response
from web.routes import web_routes

log = logging.getLogger("bureau.http")

REQUESTS = Counter("bureau_graphql_requests_total", "GraphQL requests", ["outcome"])
LATENCY = Histogram("bureau_graphql_request_seconds", "GraphQL request latency")


class GraphQLApp(GraphQL[Context, None]):
    runtime: Runtime

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # graphql-transport-ws: on_ws_connect authenticates the connection_init payload's token.
            return LiveContext(self.runtime, external=getattr(request.app.state, "trusted_issuers", None),
                               authorization=request.headers.get("authorization"))
        context: Context = request.state.context if hasattr(request.state, "context") else None  # type: ignore[assignment]
        if context is not None:
            context.request, context.response = request, response
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Refuses the connection (close 4403) unless connection_init carries a valid token."""
        if not isinstance(context, LiveContext):
            raise ConnectionRejectionError()
        try:
            await context.connect()
        except InvalidToken as exc:
            REQUESTS.labels("unauthenticated").inc()
            raise ConnectionRejectionError({"message": "Authentication required: " + str(exc)}) from exc
        return UNSET

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # R54: a database outage during execution answers the whole request as one (OutageGuard).
        if any((error.extensions or {}).get("code") == "SERVICE_UNAVAILABLE" for error in result.errors or ()):
            raise DatabaseUnavailable()
        return await super().process_result(request, result)


def rejected(exc: InvalidToken) -> Response:
    """The 401 for a failed authentication, with the RFC 6750 error code of its kind."""
    return unauthenticated(str(exc), "invalid_request" if isinstance(exc, MissingCredentials) else "invalid_token")


def _wants_ide(request: Request) -> bool:
    return (request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params)


def unauthenticated(reason: str, error: str = "invalid_token") -> Response:
    """RFC 6750: 401 with a WWW-Authenticate challenge; the body is a GraphQL error. `error` is
    invalid_request for a missing or malformed Authorization header, else invalid_token."""
    body = {"data": None, "errors": [{"message": "Authentication required: " + reason,
                                      "extensions": {"code": "UNAUTHENTICATED"}}]}
    description = reason.replace("\\", "").replace('"', "'")  # a quoted-string may not hold them
    challenge = f'Bearer realm="bureau", error="{error}", error_description="{description}"'
    return Response(json.dumps(body), status_code=401, media_type="application/json",
                    headers={"WWW-Authenticate": challenge})


class GraphQLEndpoint:
    """Authenticates every request before strawberry sees it; one read session per request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.graphql = GraphQLApp(schema, graphql_ide="graphiql", allow_queries_via_get=True,
                                  subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                                  allowed_origins=runtime.settings.cors_origins)
        self.graphql.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.graphql(scope, receive, send)
            return
        request = Request(scope, receive)
        if _wants_ide(request):
            await self.graphql(scope, receive, send)
            return
        started = time.perf_counter()
        now = self.runtime.now()  # one clock per request: its grants (R52) and its reads agree
        async with self.runtime.database.sessions() as session:
            try:
                principal = await authenticate(self.runtime.tokens, session, request.headers.get("authorization"),
                                               external=getattr(request.app.state, "trusted_issuers", None), now=now)
                await session.rollback()  # end the auth read; the request's reads start fresh
                await self._signed_in_with_number(session, principal, now)
            except InvalidToken as exc:
                REQUESTS.labels("unauthenticated").inc()
                await rejected(exc)(scope, receive, send)
                return
            db = RequestDb(session, now)
            scope.setdefault("state", {})["context"] = Context(principal=principal, db=db, runtime=self.runtime)
            try:
                await self.graphql(scope, receive, send)
            finally:
                await db.close()
        REQUESTS.labels("ok").inc()
        LATENCY.observe(time.perf_counter() - started)

    async def _signed_in_with_number(self, session: AsyncSession, principal: Principal, now: datetime) -> None:
        """R51: a BankID sign-in links the provider's subject and accepts the pending invitations,
        in a unit of work of its own (resolvers.accounts) before the request runs. InvalidToken
        when the subject turned out to be taken meanwhile."""
        sign_in = principal.pin_sign_in
        if sign_in is None or not sign_in.needs_work:
            return
        outcome = await run_in_transaction(self.runtime, principal,
                                           lambda uow: accounts.sign_in_with_number(uow, sign_in))
        if outcome.errors:
            raise InvalidToken(outcome.errors[0].message)
        assert principal.user_id is not None
        principal.grants = await load_grants(session, principal.user_id, now)  # their statuses changed
        await session.rollback()


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def metrics_registry(settings: Settings) -> CollectorRegistry:
    """What a scrape shows: in prometheus-client's multiprocess mode (several workers) the sum of every
    worker's metrics, read from the shared directory; else this process's own."""
    if settings.metrics_multiproc_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=settings.metrics_multiproc_dir)
    return registry


def _problem(status: int, title: str, detail: str, headers: dict[str, str]) -> Response:
    """An RFC 9457 problem details response."""
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json", headers=headers)


def metrics_endpoint(token: str, settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """/metrics for the holders of BUREAU_METRICS_TOKEN only: they show traffic and timings of every firm."""
    expected = token.encode()
    challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}

    async def metrics(request: Request) -> Response:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _problem(401, "Unauthorized", "Send the metrics token as 'Authorization: Bearer <token>'.",
                            challenge)
        # Constant time, so that response times do not tell how much of a guess was right.
        if not hmac.compare_digest(credentials.strip().encode(), expected):
            return _problem(401, "Unauthorized", "The metrics token is not valid.", challenge)
        return Response(generate_latest(metrics_registry(settings)), media_type=CONTENT_TYPE_LATEST)

    return metrics


def start_metrics_listener(settings: Settings) -> tuple[WSGIServer, threading.Thread] | None:
    """With BUREAU_METRICS_PORT: prometheus-client's plain HTTP listener on its own port, in a daemon
    thread. `bureau serve` starts it once, in its own process, so that several workers never compete for
    the port; their metrics reach it through the multiprocess directory."""
    if settings.metrics_port is None:
        return None
    return start_http_server(settings.metrics_port, settings.metrics_host, registry=metrics_registry(settings))


def server_database(settings: Settings, url: str | None = None) -> Database:
    """The server's engine (DATABASE_URL unless `url`), with the outage timeouts of R54."""
    return connect(url, connect_timeout=settings.db_connect_timeout, pool_timeout=settings.db_pool_timeout,
                   command_timeout=settings.db_command_timeout)


def create_app(database: Database | None = None, settings: Settings | None = None,
               runtime: Runtime | None = None) -> Starlette:
    observability.logs.install()
    if runtime is None:
        settings = settings or Settings()
        runtime = Runtime.create(database or server_database(settings), settings)

    async def readyz(request: Request) -> Response:
        try:
            async with runtime.database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("not ready: %s", type(exc).__name__)
            return outage_response(request.url.path, runtime.settings.retry_after)
        return PlainTextResponse("ready")

    async def jwks(request: Request) -> Response:
        key_set = await runtime.keys.key_set()
        return JSONResponse(key_set.as_dict(private=False), headers={"Cache-Control": "public, max-age=300"})

    async def reinvoicing_export(request: Request) -> Response:
        """R25: GET /exports/reinvoicing.csv?firm=ID&month=YYYY-MM with billing:read."""
        from auth.policy import Forbidden
        from resolvers.exports import reinvoicing_csv

        async with runtime.database.sessions() as session:
            try:
                principal = await authenticate(runtime.tokens, session, request.headers.get("authorization"),
                                               external=getattr(request.app.state, "trusted_issuers", None),
                                               now=runtime.now())
            except InvalidToken as exc:
                return rejected(exc)
        if principal.email_required:  # R51, as schema.email_gate decides for GraphQL
            return JSONResponse({"error": "EMAIL_REQUIRED", "message": "Give your email first (requestEmailChange)."},
                                status_code=403)
        if not principal.has_scope("billing:read"):
            return JSONResponse({"error": "insufficient_scope", "scope": "billing:read"}, status_code=403,
                                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", '
                                                             'scope="billing:read"'})
        firm, month = request.query_params.get("firm", ""), request.query_params.get("month", "")
        try:
            outcome = await run_in_transaction(runtime, principal, lambda uow: reinvoicing_csv(uow, firm, month),
                                               dry_run=True)
        except Forbidden:
            return JSONResponse({"error": "forbidden"}, status_code=403)
        if outcome.errors:
            error = outcome.errors[0]
            status = 404 if error.code.value == "NOT_FOUND" else 400
            return JSONResponse({"error": error.code.value, "message": error.message}, status_code=status)
        assert outcome.value is not None
        return Response(outcome.value.text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{outcome.value.filename}"'})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = None
        if runtime.settings.smtp_url:
            # The outbox worker runs beside the server only when SMTP_URL is set (R20).
            from resolvers.outbox import parse_smtp_url, run_worker

            worker = asyncio.create_task(run_worker(runtime.database, parse_smtp_url(runtime.settings.smtp_url),
                                                    runtime.now, stop, sender=runtime.settings.mail_from,
                                                    issuer=runtime.settings.issuer))
        # Live events: this process LISTENs for every instance's (DESIGN.md section 5).
        async with hub_for(runtime.database.engine).running(runtime.database.engine):
            yield
        stop.set()
        if worker is not None:
            await worker
        await runtime.database.dispose()

    # Browser apps on BUREAU_CORS_ORIGINS call the API with bearer tokens, never cookies.
    cors = [Middleware(CORSMiddleware, allow_origins=list(runtime.settings.cors_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                       allow_credentials=False, max_age=600)]

    graphql = GraphQLEndpoint(runtime)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "OPTIONS"], middleware=cors),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            # Closed by default (404); with BUREAU_METRICS_PORT only on the separate listener.
            *([Route("/metrics", metrics_endpoint(runtime.settings.metrics_token, runtime.settings))]
              if runtime.settings.metrics_token else []),
            Route("/.well-known/jwks.json", jwks),
            Route("/exports/reinvoicing.csv", reinvoicing_export, methods=["GET", "OPTIONS"], middleware=cors),
            *web_routes(runtime),
        ],
        lifespan=lifespan,
        middleware=[Middleware(OutageGuard, retry_after=runtime.settings.retry_after)],
    )
    app.state.runtime = runtime
    app.state.trusted_issuers = TrustedIssuers.from_env(
        own_issuer=runtime.settings.issuer, clock=runtime.now,
        numbers=NumberRules(identity.canonical_personnummer, identity.personnummer_digest))
    return app
