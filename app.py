"""The Starlette app: GraphQL, keys, health and metrics (DESIGN.md section 6).

HTTP -> app -> schema -> resolvers -> (auth, licensing, loaders) -> models.
"""

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

import orjson
from cross_web import HTTPException
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
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
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

import observability.logs
from auth.authenticate import MissingCredentials, authenticate, load_grants
from auth.external import NumberRules, TrustedIssuers
from auth.principal import Principal
from auth.tokens import InvalidToken
from licensing import identity
from live.listener import listening
from loaders.base import RequestDb
from models.data_versions import next_change, read_versions
from models.db import Database, connect
from models.outage import DatabaseUnavailable
from observability import metrics as observed_metrics
from observability import requests as observed_requests
from observability import tracing
from resolvers import accounts
from resolvers.base import run_in_transaction
from resolvers.outbox import record_backlog as email_backlog
from resolvers.runtime import Runtime
from resolvers.webhook_delivery import record_backlog as webhook_backlog
from schema import schema
from schema.context import Context
from schema.cost import budget_key
from schema.persisted_queries import PersistedQueries, Refused
from schema.subscriptions import LiveContext
from settings import Settings
from web.front_door import FrontDoor
from web.guard import replay_body
from web.ide import graphiql_asset, graphiql_page
from web.outage import outage_response
from web.problems import graphql_error, problem
from web.read_lane import AUTHENTICATED, CACHE_KEY, ReadLane
from web.response_cache import (
    Entry,
    Read,
    ResponseCache,
    cache_key,
    cacheable,
    hit_answer,
    only_queries,
    version_scopes,
    visible_firms,
)
from web.response_cache import decode_json as decode_request_json
from web.routes import web_routes
from web.serving import collect_fully, tune_allocator, tune_garbage_collector

log = logging.getLogger("bureau.http")

REQUESTS, LATENCY = observed_metrics.GRAPHQL_REQUESTS, observed_metrics.GRAPHQL_LATENCY


# A request strawberry could not take as GraphQL (not JSON, not an object, a GET mutation).
HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class TextFrames(ASGIWebSocketAdapter):
    """R57: graphql-transport-ws messages in text frames, as the protocol says; strawberry would send
    encode_json's bytes (orjson) as binary frames, which graphql-ws in a browser cannot read."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


MAX_PENDING = 100  # hashes of one websocket connection waiting for their operation to run (R74)


class PersistedSubscribe(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with R74: a subscribe message's `extensions.persistedQuery` is resolved as
    on HTTP (strawberry would drop it); a refusal is the operation's `error` message."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload, context = message.get("payload"), self.context
        extensions = payload.get("extensions") if isinstance(payload, dict) else None
        if not (self.connection_acknowledged and isinstance(extensions, dict) and isinstance(context, LiveContext)
                and isinstance(context.persisted, PersistedQueries) and message.get("id") not in self.operations):
            await super().handle_subscribe(message)  # strawberry's own answers (4401, 4409, ...)
            return
        query = payload.get("query")
        try:
            resolved = await context.persisted.resolve(query if isinstance(query, str) else None, extensions)
        except Refused as exc:
            await self.send_message({"id": message["id"], "type": "error",
                                     "payload": [{"message": exc.message, "extensions": {"code": exc.code}}]})
            return
        if resolved.register is not None and len(context.persisted_pending) < MAX_PENDING:
            context.persisted_pending.add(resolved.register)  # bounded: operations that never run leave theirs
        if resolved.query is not None:
            message = {**message, "payload": {**payload, "query": resolved.query}}
        await super().handle_subscribe(message)


class GraphQLApp(GraphQL[Context, None]):
    runtime: Runtime
    graphql_transport_ws_handler_class = PersistedSubscribe
    cache: ResponseCache | None = None
    websocket_adapter_class = TextFrames  # type: ignore[assignment]
    persisted: PersistedQueries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # As strawberry's own, but a refused request gets a GraphQL error, not text/plain (R60).
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = graphql_error(exc.status_code, exc.reason, HTTP_ERROR_CODES.get(exc.status_code, "BAD_REQUEST"))
        except Refused as exc:  # R74, R75: a persisted query that does not run; never kept by a cache (a CDN's
            # PersistedQueryNotFound would outlive the registration), as Apollo Router answers it
            response = graphql_error(exc.status, exc.message, exc.code,
                                     headers={"Cache-Control": "private, no-cache, must-revalidate"})
        await response(scope, receive, send)

    async def execute_single(self, request: Request, request_adapter: Any, sub_response: Any,  # type: ignore[override]
                             context: Context, root_value: None, request_data: GraphQLRequestData) -> ExecutionResult:
        """R74: an APQ request runs its document's text, found by its hash; Refused when it must not run."""
        resolved = await self.persisted.resolve(request_data.query, request_data.extensions)
        request_data.query = resolved.query
        context.persisted_register = resolved.register
        return await super().execute_single(request, request_adapter, sub_response, context, root_value,
                                            request_data)

    def encode_json(self, data: object) -> bytes:
        """orjson: the same JSON as strawberry's json.dumps (UTF-8 left unescaped), several times faster (R78)."""
        return orjson.dumps(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """As strawberry's, but a GET of a persisted query by its hash alone is a GraphQL request (R74)."""
        return super().should_render_graphql_ide(request) and "extensions" not in request.query_params

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()  # our own page and files, no CDN (R88)

    def decode_json(self, data: str | bytes) -> object:
        """UTF-8 JSON only, an object (batching is off) or, for `variables` and `extensions`, a
        value strawberry checks itself; deep nesting is refused, never a RecursionError (R58)."""
        try:
            value = decode_request_json(data)
        except UnicodeDecodeError:
            raise HTTPException(400, "The request body is not UTF-8.") from None
        except RecursionError:
            raise HTTPException(400, "The JSON is nested too deeply.") from None
        except ValueError:
            raise HTTPException(400, "The request body is not JSON.") from None
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object with a `query`.")
        return value

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # graphql-transport-ws: on_ws_connect authenticates the connection_init payload's token.
            live = LiveContext(self.runtime, external=getattr(request.app.state, "trusted_issuers", None),
                               authorization=request.headers.get("authorization"))
            live.persisted = self.persisted  # R74 and R75 hold on the websocket too (PersistedSubscribe)
            return live
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
        # R54: a database outage during execution answers the whole request as one (web.front_door).
        if any((error.extensions or {}).get("code") == "SERVICE_UNAVAILABLE" for error in result.errors or ()):
            raise DatabaseUnavailable()
        response = await super().process_result(request, result)
        context = getattr(request.state, "context", None)
        if self.cache is not None and isinstance(context, Context) and context.cache_key and context.is_query \
                and not result.errors and result.data is not None:
            # R83: a query's answer without errors, with the costs it was charged, so that a hit costs the same.
            cost = (result.extensions or {}).get("cost", {})
            data = self.encode_json(result.data)
            record = observed_requests.current()  # the operation, as schema.observation noted it
            await self.cache.put(context.cache_key, self.cache.entry(
                data.encode() if isinstance(data, str) else data,
                int(cost.get("requestedQueryCost", 0)), int(cost.get("actualQueryCost", 0)), context.cache_until,
                (record.operation, record.operation_type) if record is not None else (None, None)))
        return response


def rejected(exc: InvalidToken, *, graphql: bool = True) -> Response:
    """The 401 for a failed authentication, with the RFC 6750 error code of its kind: a GraphQL
    error on /graphql, problem details elsewhere (R60)."""
    error = "invalid_request" if isinstance(exc, MissingCredentials) else "invalid_token"
    if graphql:
        return unauthenticated(str(exc), error)
    return problem(401, "Authentication required: " + str(exc), code="UNAUTHENTICATED",
                   headers={"WWW-Authenticate": _challenge(str(exc), error)})


def _challenge(reason: str, error: str) -> str:
    description = reason.replace("\\", "").replace('"', "'")  # a quoted-string may not hold them
    return f'Bearer realm="bureau", error="{error}", error_description="{description}"'


def _wants_ide(request: Request) -> bool:
    # A GET of a persisted query by its hash alone carries `extensions` instead (R74).
    return (request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params and "extensions" not in request.query_params)


def unauthenticated(reason: str, error: str = "invalid_token") -> Response:
    """RFC 6750: 401 with a WWW-Authenticate challenge; the body is a GraphQL error. `error` is
    invalid_request for a missing or malformed Authorization header, else invalid_token."""
    return graphql_error(401, "Authentication required: " + reason, "UNAUTHENTICATED",
                         headers={"WWW-Authenticate": _challenge(reason, error)})


class GraphQLEndpoint:
    """Authenticates every request before strawberry sees it; one read session per request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.graphql = GraphQLApp(schema, graphql_ide="graphiql", allow_queries_via_get=True,
                                  subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                                  allowed_origins=runtime.settings.cors_origins)
        self.graphql.runtime = runtime
        if runtime.settings.response_cache:
            self.graphql.cache = ResponseCache(runtime.settings, runtime.now)
        self.graphql.persisted = PersistedQueries(runtime.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.graphql(scope, receive, send)
            return
        request = Request(scope, receive)
        if _wants_ide(request):
            await self.graphql(scope, receive, send)
            return
        started = time.perf_counter()
        # R110: a principal the prepared lane read already, with the clock it was read at.
        handed: tuple[Principal, datetime] | None = scope.get("state", {}).pop(AUTHENTICATED, None)
        now = self.runtime.now() if handed is None else handed[1]  # one clock per request: grants (R52), reads
        async with self.runtime.database.reads() as session:
            try:
                principal = await self._principal(session, request, now) if handed is None else handed[0]
                observed_requests.note_client(principal.client_id)
                # End the auth read (none when the principal was kept): SQLite's writers wait for readers.
                await session.rollback()
                await self._signed_in_with_number(session, principal, now)
            except InvalidToken as exc:
                REQUESTS.labels("unauthenticated").inc()
                await rejected(exc)(scope, receive, send)
                return
            db = RequestDb(session, now)
            context = Context(principal=principal, db=db, runtime=self.runtime, persisted=self.graphql.persisted)
            scope.setdefault("state", {})["context"] = context
            # R117: the key this request computes for others waiting, and its flight
            leads: tuple[str, asyncio.Future[Entry | None]] | None = None
            if self.graphql.cache is not None and cacheable(principal):
                read, receive = await self._read(request, receive, context)
                if read is not None and only_queries(read.query):
                    # R110: the key the front door's lane computed for this very request, when it did.
                    context.cache_key = scope["state"].pop(CACHE_KEY, None) \
                        or await self._cache_key(session, principal, read, now)
                    cache = self.graphql.cache
                    entry = await cache.get(context.cache_key)
                    if entry is None:  # R117: one request of this process computes a key at a time
                        running, first = cache.flight(context.cache_key)
                        if first:
                            leads = context.cache_key, running
                        else:
                            await session.rollback()  # no connection held while waiting
                            entry = await cache.landed(running)
                    cached = None if entry is None else await self._cached(principal, request, entry)
                    if cached is None:  # R84: a miss is kept until its answer would change with time
                        try:
                            context.cache_until = await next_change(session, visible_firms(principal), now)
                        except BaseException:
                            if leads is not None:
                                cache.land(*leads)
                            raise
                    else:
                        await db.close()
                        if context.persisted_register is not None:  # R74: a cached answer was let through
                            await self.graphql.persisted.store(context.persisted_register, read.query)
                        await cached(scope, receive, send)
                        observed_metrics.GRAPHQL_OK.inc()
                        LATENCY.observe(time.perf_counter() - started)
                        return
            try:
                await self.graphql(scope, receive, send)
            finally:
                if leads is not None:  # R117: kept or not, its waiters go on (put() landed a kept one)
                    assert self.graphql.cache is not None
                    self.graphql.cache.land(*leads)
                await db.close()
                # The context holds the request, whose scope holds the context: a cycle that kept every
                # request's session and answer alive until the cyclic collector ran (R100).
                scope["state"].pop("context", None)
        observed_metrics.GRAPHQL_OK.inc()
        LATENCY.observe(time.perf_counter() - started)

    async def _read(self, request: Request, receive: Receive, context: Context) -> tuple[Read | None, Receive]:
        """The GraphQL request as the cache keys it, and the body for strawberry to read again. None for
        what strawberry would refuse or does not take as JSON; it answers those itself."""
        if request.method == "GET":
            value = Read.value_of_params(request.query_params)
            return (None if value is None else Read.of_json(await self._persisted(value, context))), receive
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method != "POST" or content_type != "application/json":
            return None, receive
        body = await request.body()
        try:
            value = decode_request_json(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            value = None
        return Read.of_json(await self._persisted(value, context)), replay_body(body, receive)

    async def _persisted(self, value: object, context: Context) -> object:
        """R74: an APQ request is keyed by its document, as if its text had been sent (and not kept when it
        would be refused: strawberry's path answers it). R75: a text outside the allow-list is not kept."""
        if not isinstance(value, dict):
            return value
        query, extensions = value.get("query"), value.get("extensions")
        store = self.graphql.persisted
        if isinstance(extensions, dict) and extensions.get("persistedQuery") is not None \
                and (query is None or isinstance(query, str)):
            try:
                resolved = await store.resolve(query, extensions)
            except Refused:
                return None
            query, context.persisted_register = resolved.query, resolved.register
            rest = {key: item for key, item in extensions.items() if key != "persistedQuery"}
            value = {**value, "query": query, "extensions": rest or None}
        if isinstance(query, str) and not store.allows(query):
            return None
        return value

    async def _cache_key(self, session: AsyncSession, principal: Principal, read: Read, now: datetime) -> str:
        """R82: the caller's grants, the data versions of every firm it may see, the date and the request."""
        assert self.graphql.cache is not None
        secret = await self.graphql.cache.secret(self.runtime.database)
        versions = await read_versions(self.runtime.database, session, version_scopes(principal),
                                       on_driver=not tracing.enabled())
        return cache_key(secret, principal, versions, now.astimezone(UTC).date(), read)

    async def _cached(self, principal: Principal, request: Request, entry: Entry) -> Response | None:
        """R84: a hit charged as the miss was; None when the budget cannot pay it."""
        assert self.graphql.cache is not None
        body = await hit_answer(entry, self.runtime.budget, budget_key(principal, request))
        return None if body is None else Response(body, media_type="application/json")

    async def _principal(self, session: AsyncSession, request: Request, now: datetime) -> Principal:
        """The caller; with BUREAU_INTROSPECTION=on one without any token is let through as nobody,
        whom ScopeCheck allows introspection alone."""
        try:
            return await authenticate(self.runtime.tokens, session, request.headers.get("authorization"),
                                      external=getattr(request.app.state, "trusted_issuers", None), now=now,
                                      cache=self.runtime.principals)
        except MissingCredentials:
            if self.runtime.settings.introspection != "on" or "authorization" in request.headers:
                raise
            return Principal(client_id="", scopes=frozenset(), authenticated=False)

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


async def outbox_metrics(database: Database) -> None:
    """Both outboxes' gauges, read before a scrape: email (R20) and webhooks (R70)."""
    await email_backlog(database)
    await webhook_backlog(database)


def metrics_endpoint(token: str, settings: Settings, refresh: Callable[[], Awaitable[None]] | None = None,
                     ) -> Callable[[Request], Awaitable[Response]]:
    """/metrics for the holders of BUREAU_METRICS_TOKEN only: they show traffic and timings of every firm.
    `refresh` reads what the database holds (the outbox backlog) before each scrape."""
    expected = token.encode()
    challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}

    async def metrics(request: Request) -> Response:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return problem(401, "Send the metrics token as 'Authorization: Bearer <token>'.", code="UNAUTHENTICATED",
                           headers=challenge)
        # Constant time, so that response times do not tell how much of a guess was right.
        if not hmac.compare_digest(credentials.strip().encode(), expected):
            return problem(401, "The metrics token is not valid.", code="UNAUTHENTICATED", headers=challenge)
        if refresh is not None:
            try:
                await refresh()
            except Exception as exc:  # noqa: BLE001 - a scrape answers while the database is down, with what it has
                log.warning("metrics: the database could not be read (%s)", type(exc).__name__)
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
                   command_timeout=settings.db_command_timeout, pool_size=settings.db_pool_size)


def create_app(database: Database | None = None, settings: Settings | None = None,
               runtime: Runtime | None = None, tracer_provider: TracerProvider | None = None) -> Starlette:
    """`tracer_provider`: where spans go; by default per OTEL_* (settings.traces_exporters), else nowhere."""
    observability.logs.install()
    if runtime is None:
        settings = settings or Settings()
        runtime = Runtime.create(database or server_database(settings), settings)
    tracer_provider = tracer_provider or tracing.provider_from(runtime.settings.traces_exporters)
    tracing.install(tracer_provider)
    tracing.trace_sql(runtime.database.engine, tracer_provider)
    observed_metrics.watch_pool(runtime.database.engine)

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

        async with runtime.database.reads() as session:
            try:
                principal = await authenticate(runtime.tokens, session, request.headers.get("authorization"),
                                               external=getattr(request.app.state, "trusted_issuers", None),
                                               now=runtime.now(), cache=runtime.principals)
            except InvalidToken as exc:
                return rejected(exc, graphql=False)
        if principal.email_required:  # R51, as schema.email_gate decides for GraphQL
            return problem(403, "Give your email first (requestEmailChange).", code="EMAIL_REQUIRED")
        if not principal.has_scope("billing:read"):
            return problem(403, "The access token lacks the scope billing:read.", code="FORBIDDEN",
                           headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="billing:read"'})
        firm, month = request.query_params.get("firm"), request.query_params.get("month")
        missing = [name for name, value in (("firm", firm), ("month", month)) if not value]
        if missing:
            return problem(400, f"Give the parameters {' and '.join(missing)}.", code="INVALID_INPUT")
        assert firm is not None and month is not None
        try:
            outcome = await run_in_transaction(runtime, principal, lambda uow: reinvoicing_csv(uow, firm, month),
                                               dry_run=True)
        except Forbidden:
            return problem(403, "Only the firm's own staff may export its re-invoicing.", code="FORBIDDEN")
        if outcome.errors:
            error = outcome.errors[0]
            return problem(404 if error.code.value == "NOT_FOUND" else 400, error.message, code=error.code.value)
        assert outcome.value is not None
        return Response(outcome.value.text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{outcome.value.filename}"'})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tune_garbage_collector(runtime.settings)  # after the imports and the schema: R78
        tune_allocator(runtime.settings)  # R109
        collector = asyncio.create_task(collect_fully(runtime.settings.gc_full_seconds, runtime.settings)) \
            if runtime.settings.gc_full_seconds > 0 else None
        stop = asyncio.Event()
        worker = None
        if runtime.settings.smtp_url:
            # The outbox worker runs beside the server only when SMTP_URL is set (R20).
            from resolvers.outbox import parse_smtp_url, run_worker

            worker = asyncio.create_task(run_worker(runtime.database, parse_smtp_url(runtime.settings.smtp_url),
                                                    runtime.now, stop, sender=runtime.settings.mail_from,
                                                    issuer=runtime.settings.issuer))
        hooks = None
        if runtime.settings.webhooks_worker:
            # Webhook deliveries (R70); SKIP LOCKED lets every instance and worker run one.
            from resolvers.webhook_delivery import run_worker as deliver_webhooks

            hooks = asyncio.create_task(deliver_webhooks(
                runtime.database, runtime.now, stop, request_seconds=runtime.settings.webhook_timeout,
                allow_loopback=runtime.settings.webhooks_allow_http_loopback))
        # Live events: this process LISTENs for every instance's (DESIGN.md section 5).
        async with listening(runtime.database.engine):
            yield
        stop.set()
        if collector is not None:
            collector.cancel()
        if worker is not None:
            await worker
        if hooks is not None:
            await hooks
        await runtime.budget.close()
        if graphql.graphql.cache is not None:
            await graphql.graphql.cache.close()
        await graphql.graphql.persisted.close()
        await runtime.database.dispose()

    # Browser apps on BUREAU_CORS_ORIGINS call the API with bearer tokens, never cookies.
    cors_options: dict[str, Any] = dict(
        allow_origins=list(runtime.settings.cors_origins), allow_methods=["GET", "POST"],
        # A browser app may send its own request id and read the one answered (R91).
        allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
        expose_headers=["X-Request-Id"], allow_credentials=False, max_age=600)
    cors = [Middleware(CORSMiddleware, **cors_options)]

    graphql = GraphQLEndpoint(runtime)
    # R110: a prepared read is answered before routing, with the headers the /graphql route would give.
    lane = ReadLane(runtime, CORSMiddleware(graphql, **cors_options), graphql.graphql.cache)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "OPTIONS"], middleware=cors),
            WebSocketRoute("/graphql", graphql),
            Route("/graphiql/{name}", graphiql_asset),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            # Closed by default (404); with BUREAU_METRICS_PORT only on the separate listener.
            *([Route("/metrics", metrics_endpoint(runtime.settings.metrics_token, runtime.settings,
                                                  lambda: outbox_metrics(runtime.database)))]
              if runtime.settings.metrics_token else []),
            Route("/.well-known/jwks.json", jwks),
            Route("/exports/reinvoicing.csv", reinvoicing_export, methods=["GET", "OPTIONS"], middleware=cors),
            *web_routes(runtime),
        ],
        lifespan=lifespan,
        # The request's server span (R93), then one layer for its id, log line and metrics (R91, R92), the
        # checks before any endpoint (R58, R59) and a database outage as one 503 in the family's shape (R54).
        middleware=[*tracing.middleware(tracer_provider),
                    Middleware(FrontDoor, limits=runtime.settings.limits, retry_after=runtime.settings.retry_after,
                               shortcut=lane)],
    )
    app.state.runtime = runtime
    app.state.response_cache = graphql.graphql.cache
    app.state.persisted_queries = graphql.graphql.persisted
    app.state.trusted_issuers = lane.external = TrustedIssuers.from_env(
        own_issuer=runtime.settings.issuer, clock=runtime.now,
        numbers=NumberRules(identity.canonical_personnummer, identity.personnummer_digest))
    return app
