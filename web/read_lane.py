"""R110: repeated reads answered in the front door, before routing.

A POST /graphql of JSON, without a query string or persisted-query extensions, from a caller whose
token verifies, is answered here when it is
- with the response cache off (its default): a prepared read (schema.prepared_reads, R106), its
  statement run on the driver;
- with the response cache on: a point read's prepared read (R113: a few rows by key, which cost
  what the data versions cost, and the key costs more), else a hit (web.response_cache, R82-R84),
  the data versions read on the driver; a miss goes on with the key computed here.
The answer is the app's own: the same body, the same headers (CORS as CORSMiddleware gives them),
the same log line and metrics. Anything else, and anything that turns out less simple on the way (a
token that does not verify, a sign-in with work to do, a budget that cannot pay, a statement that
fails), goes on to the app unchanged: nothing was charged and nothing was sent.
"""

import functools
import time
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope, Send

from auth.authenticate import authenticate, kept_principal
from auth.external import TrustedIssuers
from auth.principal import Principal
from auth.principals import detached
from auth.tokens import InvalidToken
from models.data_versions import read_versions
from observability import requests, tracing
from observability.metrics import GRAPHQL_LATENCY, GRAPHQL_OK
from resolvers.runtime import Runtime
from schema import prepared_reads
from schema.cost import budget_key
from schema.prepared_reads import PREPARED
from web.response_cache import Read, ResponseCache, cache_key, cacheable, hit_answer, only_queries, version_scopes

AUTHENTICATED = "bureau.authenticated"  # in the scope's state: the principal read here and the request's clock
CACHE_KEY = "bureau.cache_key"  # in the scope's state: a miss's key, computed here
_JSON_HEADERS = [(b"content-type", b"application/json")]
_NO_ORIGIN_HEADERS = [*_JSON_HEADERS, (b"vary", b"Origin")]


class ReadLane:
    def __init__(self, runtime: Runtime, cors: CORSMiddleware, cache: ResponseCache | None) -> None:
        self.runtime = runtime
        self.cors = cors  # the /graphql route's own, so that a browser's answer carries the same headers
        self.cache = cache
        self.external: TrustedIssuers | None = None  # the app's, once it has them (create_app)

    async def __call__(self, scope: Scope, body: bytes, send: Send) -> bool:
        """True when the request was answered here."""
        runtime = self.runtime
        if scope["method"] != "POST" or scope["path"] != "/graphql" or scope["query_string"] \
                or runtime.database.is_sqlite or runtime.settings.persisted_only or tracing.enabled():
            return False  # with tracing on, each statement is a span of its own: the app's path makes them
        prepared = bool(len(PREPARED)) and prepared_reads.enabled(runtime.settings, sqlite=False)
        if self.cache is None and not prepared:
            return False
        authorization = content_type = None
        origin = False
        for name, value in scope["headers"]:  # the first of each, as the app's request.headers.get takes
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"origin":
                origin = True
        if authorization is None or content_type is None \
                or content_type.split(b";")[0].strip().lower() != b"application/json":
            return False
        read = Read.of_body(body)  # decoded as the app decodes it
        if read is None or read.extensions is not None:
            return False
        started = time.perf_counter()
        now = runtime.now()  # one clock per request: its grants (R52) and its read agree
        header = authorization.decode("latin-1")
        # The kept principal itself (the lane only reads it), copied if the app is to have it.
        principal = await kept_principal(runtime.tokens, header, self.external, now=now, cache=runtime.principals,
                                         shared=True)
        kept = principal is not None
        if principal is None:  # read, and kept for the next request
            try:
                async with runtime.database.reads() as session:
                    principal = await authenticate(runtime.tokens, session, header, external=self.external, now=now,
                                                   cache=runtime.principals)
            except InvalidToken:
                return False  # the app answers 401 with its challenge
        # R113: with the cache on, a point read is still a prepared read: as cheap as a hit, and fresh.
        answer = await self._prepared(principal, read, now, points_only=self.cache is not None) if prepared else None
        if answer is None and self.cache is not None:
            answer = await self._cached(scope, self.cache, principal, read, now)
        if answer is None:
            # The app goes on with this principal and this clock: the request is not authenticated twice,
            # and a cache key computed here is the one it would compute.
            scope.setdefault("state", {})[AUTHENTICATED] = detached(principal) if kept else principal, now
            return False
        requests.note_client(principal.client_id)
        if origin:  # CORSMiddleware's headers for this Origin
            await _respond(functools.partial(self.cors.send, send=send, request_headers=Headers(scope=scope)),
                           answer)
        else:  # without one, CORSMiddleware adds only Vary: Origin
            await _respond(send, answer, _NO_ORIGIN_HEADERS)
        GRAPHQL_OK.inc()
        GRAPHQL_LATENCY.observe(time.perf_counter() - started)
        return True

    async def _prepared(self, principal: Principal, read: Read, now: datetime, *, points_only: bool) -> bytes | None:
        if not prepared_reads.eligible(principal):
            return None
        prepared = PREPARED.find(prepared_reads.key_of(read.query, read.operation_name, read.variables, principal),
                                 self.runtime.settings, points_only=points_only)
        if prepared is None:
            return None
        return await prepared_reads.answer(prepared, self.runtime.database, now, principal, self.runtime.budget)

    async def _cached(self, scope: Scope, cache: ResponseCache, principal: Principal, read: Read,
                      now: datetime) -> bytes | None:
        if not cacheable(principal) or not only_queries(read.query):
            return None
        database = self.runtime.database
        versions = await read_versions(database, None, version_scopes(principal))  # PostgreSQL: the lane's only
        key = cache_key(await cache.secret(database), principal, versions, now.astimezone(UTC).date(), read)
        scope.setdefault("state", {})[CACHE_KEY] = key  # a miss: the app keeps its answer under this key
        entry = await cache.get(key)
        if entry is None:
            return None
        return await hit_answer(entry, self.runtime.budget, budget_key(principal, None))


async def _respond(send: Send, body: bytes, headers: list[tuple[bytes, bytes]] = _JSON_HEADERS) -> None:
    """As starlette's Response(body, media_type="application/json") sends it."""
    start: dict[str, Any] = {"type": "http.response.start", "status": 200,
                             "headers": [(b"content-length", str(len(body)).encode()), *headers]}
    await send(start)
    await send({"type": "http.response.body", "body": body})
