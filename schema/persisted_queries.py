"""Persisted queries (R74, R75): Apollo's automatic persisted queries (APQ) and an allow-list.

APQ, as Apollo Server answers it: a request's `extensions.persistedQuery` is
`{"version": 1, "sha256Hash": <64 lowercase hex>}`.
- hash alone, known: the stored document runs, as if its text had been sent;
- hash alone, unknown: PersistedQueryNotFound (`PERSISTED_QUERY_NOT_FOUND`, HTTP 200), and the client
  sends the query once with its hash;
- hash with the query: the hash must be the query's SHA-256 (else "provided sha does not match query",
  `PERSISTED_QUERY_HASH_MISMATCH`, HTTP 400); the query runs as any other and, once it has parsed,
  validated within the limits of R59 and been let through to execution (scopes, cost), it is stored.
- any other version or form: HTTP 400 `BAD_REQUEST`.
The HTTP endpoint and the websocket's subscribe (app.GraphQLApp, app.PersistedSubscribe) resolve it
before strawberry parses. What runs is the text, so the document cache (R76), the limits (R59, the stored text's size
included), the cost (R63, R64) and the response cache (R83) see a persisted query as they see its text.

The store is this process's (least recently used out, bounded in documents and in characters) and,
with REDIS_URL, Redis's, shared by every instance for BUREAU_PERSISTED_QUERY_TTL seconds. While Redis
cannot be reached each process keeps to its own (fail soft: one warning per outage).

BUREAU_PERSISTED_QUERIES names an Apollo persisted query manifest
(`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "body", "name",
"type"}]}`, as @apollo/generate-persisted-query-manifest or `bureau persisted-queries add` write it):
its operations are known from the start, by their ids, which must be their bodies' SHA-256.
With BUREAU_PERSISTED_ONLY=on they are the only documents that run, on every transport: another hash
is PERSISTED_QUERY_NOT_IN_LIST, another text QUERY_NOT_IN_SAFELIST (Apollo Router's codes), and
nothing is stored, so that no caller can add to the list.
"""

import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql.error import GraphQLSyntaxError
from redis.exceptions import RedisError
from strawberry.extensions import SchemaExtension

from settings import Settings

log = logging.getLogger("bureau.persisted_queries")

MANIFEST_FORMAT = "apollo-persisted-query-manifest"
_HASH = re.compile(r"[0-9a-f]{64}")

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
NOT_IN_SAFELIST_MESSAGE = "The document is not in the persisted query list; this server runs only those"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Refused(Exception):
    """A persisted-query request answered without running: a GraphQL error with `code`, at `status`."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class Persisted:
    """What a request's `extensions.persistedQuery` asks: the hash, well formed."""

    sha256: str

    @classmethod
    def of(cls, extensions: Mapping[str, Any] | None) -> "Persisted | None":
        """None without the extension (or with it null, as Apollo Server reads it); Refused when malformed."""
        if not extensions:
            return None
        value = extensions.get("persistedQuery")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise Refused(400, "extensions.persistedQuery must be an object", "BAD_REQUEST")
        version = value.get("version")
        if isinstance(version, bool) or not isinstance(version, int | float) or version != 1:  # 1 as JSON has it
            raise Refused(400, "Unsupported persisted query version", "BAD_REQUEST")
        digest = value.get("sha256Hash")
        if not isinstance(digest, str) or _HASH.fullmatch(digest) is None:
            raise Refused(400, "extensions.persistedQuery.sha256Hash must be a SHA-256 in 64 lowercase hex digits",
                          "BAD_REQUEST")
        return cls(digest)


@dataclass(frozen=True)
class Operation:
    """One operation of a manifest."""

    id: str
    body: str
    name: str | None
    type: str


def read_manifest(path: str) -> dict[str, Operation]:
    """The operations of an Apollo persisted query manifest, by id; ValueError naming what is wrong."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"BUREAU_PERSISTED_QUERIES: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"BUREAU_PERSISTED_QUERIES: {path} is not JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("format") != MANIFEST_FORMAT or value.get("version") != 1 \
            or not isinstance(value.get("operations"), list):
        raise ValueError(f"BUREAU_PERSISTED_QUERIES: {path} is not an {MANIFEST_FORMAT} of version 1")
    operations: dict[str, Operation] = {}
    for number, item in enumerate(value["operations"]):
        body = item.get("body") if isinstance(item, dict) else None
        if not isinstance(body, str) or not isinstance(item.get("id"), str):
            raise ValueError(f"BUREAU_PERSISTED_QUERIES: operation {number} of {path} needs an id and a body")
        if item["id"] != sha256(body):
            raise ValueError(f"BUREAU_PERSISTED_QUERIES: operation {number} of {path}: its id is not the "
                             "SHA-256 of its body")
        name = item.get("name")
        operations[item["id"]] = Operation(item["id"], body, name if isinstance(name, str) else None,
                                           str(item.get("type") or "query"))
    return operations


def manifest_operation(body: str) -> Operation:
    """A document as a manifest holds it: its one operation's name and type; ValueError if it has not one."""
    try:
        document = parse(body)
    except GraphQLSyntaxError as exc:
        raise ValueError(f"not a GraphQL document: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise ValueError("a persisted document holds exactly one operation")
    operation = operations[0]
    return Operation(sha256(body), body, operation.name.value if operation.name else None, operation.operation.value)


def write_manifest(path: str, operations: Mapping[str, Operation]) -> None:
    document = {"format": MANIFEST_FORMAT, "version": 1, "operations": [
        {"id": op.id, "body": op.body, "name": op.name, "type": op.type} for op in operations.values()]}
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class LocalDocuments:
    """This process's documents by hash, least recently used first out, bounded twice."""

    def __init__(self, size: int, text: int) -> None:
        self.size, self.text = size, text
        self.entries: OrderedDict[str, str] = OrderedDict()
        self.chars = 0

    def get(self, digest: str) -> str | None:
        query = self.entries.get(digest)
        if query is not None:
            self.entries.move_to_end(digest)
        return query

    def put(self, digest: str, query: str) -> None:
        if digest in self.entries or len(query) > self.text:
            return
        self.entries[digest] = query
        self.chars += len(query)
        while len(self.entries) > self.size or self.chars > self.text:
            _, evicted = self.entries.popitem(last=False)
            self.chars -= len(evicted)


@dataclass
class Resolved:
    """The query text to run, and the hash to store it under once it has been let through (None: nothing to store)."""

    query: str | None
    register: str | None = None


class PersistedQueries:
    """The store, the manifest and the protocol, for one app."""

    def __init__(self, settings: Settings) -> None:
        self.only = settings.persisted_only
        self.max_query_bytes = settings.limits.max_query_bytes
        self.manifest = read_manifest(settings.persisted_queries) if settings.persisted_queries else {}
        self.local = LocalDocuments(settings.persisted_query_cache_size, settings.persisted_query_cache_text)
        self.ttl, self.prefix = settings.persisted_query_ttl, settings.persisted_query_key_prefix
        self.redis = None
        if settings.redis_url and not self.only:  # the allow-list is the manifest alone: Redis cannot widen it
            # Short timeouts, as for the budgets: a Redis that hangs must not hold requests up.
            self.redis = redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._down = False

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> Resolved:
        """The document a request runs (R74); Refused when it must not run."""
        persisted = Persisted.of(extensions)
        if persisted is None:
            if query is not None and not self.allows(query):
                raise Refused(200, NOT_IN_SAFELIST_MESSAGE, NOT_IN_SAFELIST)
            return Resolved(query)
        digest = persisted.sha256
        if query is not None:
            if sha256(query) != digest:
                raise Refused(400, "provided sha does not match query", HASH_MISMATCH)
            if self.only and digest not in self.manifest:
                raise Refused(200, f"Persisted query '{digest}' not found in the persisted query list", NOT_IN_LIST)
            known = digest in self.manifest or self.local.get(digest) is not None
            return Resolved(query, None if known or self.only else digest)
        found = await self.find(digest)
        if found is None:
            if self.only:
                raise Refused(200, f"Persisted query '{digest}' not found in the persisted query list", NOT_IN_LIST)
            raise Refused(200, "PersistedQueryNotFound", NOT_FOUND)
        return Resolved(found)

    async def find(self, digest: str) -> str | None:
        operation = self.manifest.get(digest)
        if operation is not None:
            return operation.body
        if self.only:
            return None
        query = self.local.get(digest)
        if query is not None or self.redis is None:
            return query
        try:
            raw = await self.redis.get(self.prefix + digest)
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return None
        self._reachable()
        if not isinstance(raw, bytes):
            return None
        try:
            query = raw.decode()
        except UnicodeDecodeError:
            return None
        # What another instance stored is checked as if sent: its hash here, its size and the rest of R59
        # when it runs (an instance of lower limits refuses it as QUERY_TOO_LARGE).
        if sha256(query) != digest:
            return None
        self.local.put(digest, query)
        return query

    async def store(self, digest: str, query: str) -> None:
        """Stores a document that has been let through to execution (R74); never in persisted-only mode."""
        if self.only or sha256(query) != digest or len(query.encode()) > self.max_query_bytes:
            return
        self.local.put(digest, query)
        if self.redis is None:
            return
        try:
            await self.redis.set(self.prefix + digest, query.encode(), ex=self.ttl)
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return
        self._reachable()

    def allows(self, query: str) -> bool:
        """Persisted-only mode (R75): whether a document's text is one of the manifest's."""
        return not self.only or sha256(query) in self.manifest

    def _unreachable(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning("Redis unreachable for persisted queries (%s); this process keeps its own until it is back",
                        type(exc).__name__)

    def _reachable(self) -> None:
        if self._down:
            self._down = False
            log.warning("Redis reachable again: persisted queries are shared again")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class PersistedOnly(SchemaExtension):
    """R75 on every transport (HTTP and the websocket's subscribe): in persisted-only mode a document
    whose text is not in the manifest is refused before it is validated. R74: a document sent with its
    hash is stored once it reaches execution (parsed, valid, within the limits, allowed)."""

    def on_validate(self) -> Iterator[None]:
        # Before ScopeCheck validates (it validates only what nothing refused yet). On HTTP the endpoint
        # has refused such a text before parsing (PersistedQueries.resolve); this holds on the websocket.
        context = self.execution_context
        store = getattr(context.context, "persisted", None)
        if isinstance(store, PersistedQueries) and context.query is not None and not store.allows(context.query) \
                and context.pre_execution_errors is None:
            context.pre_execution_errors = [GraphQLError(NOT_IN_SAFELIST_MESSAGE, extensions={"code": NOT_IN_SAFELIST})]
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        store = getattr(context.context, "persisted", None)
        if isinstance(store, PersistedQueries) and context.query is not None:
            digest = getattr(context.context, "persisted_register", None)
            # A websocket's operations share one context: each pending hash is matched to its own text.
            pending = getattr(context.context, "persisted_pending", None)
            if digest is not None:
                context.context.persisted_register = None
            elif pending:
                digest = sha256(context.query)
                if digest not in pending:
                    digest = None
                pending.discard(digest)
            if digest is not None:
                await store.store(digest, context.query)
        yield
