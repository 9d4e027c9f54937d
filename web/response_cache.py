"""The response cache of repeated reads (R82-R84): partner dashboards send the same query many
times a minute, and its answer changes only when a write commits or time passes.

A cached answer is the `data` of a query that ran without errors. Its key is an HMAC (with a secret
of the database, so that two deployments sharing one Redis never share answers) of:
- the caller's grants: user, client, client firm, scopes, firm roles and company grants (field-level
  read rules follow the roles, so they are in it too), and whether an email is still owed (R51);
- the data versions (models.data_versions) of every firm the caller may see, its own user's and the
  global one;
- the request's UTC date, the document, the operation name, the variables and the extensions.
The vendor (`platform:admin`) sees every firm and is never cached; nor are mutations, subscriptions
(websocket) or answers with errors. A point read, which costs what a hit costs, is answered by its
prepared read instead, in the read lane (R113).

Entries live response_cache_ttl seconds at most, and never past the moment their firms' answers next
change with time alone (a session expiring, an invitation lapsing, an access ending: R84). Access is
never extended by it: authentication and the grants are read fresh on every request, and an access
that ended (R52) changes the grants and so the key. The store is this process's (least recently used
first out, by bytes), and Redis's when REDIS_URL is set; while Redis cannot be reached the process
keeps to its own (fail open).
"""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from auth.budget import Budget
from auth.principal import Principal
from auth.secrets import server_secret
from models.data_versions import GLOBAL, firm_scope, user_scope
from models.db import Database
from observability import requests
from schema.cost import answered_extensions
from settings import Settings

log = logging.getLogger("bureau.response_cache")

SECRET_NAME = "response-cache-key"  # noqa: S105 - the name of a secret, not one


def not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")  # Python's json would take NaN and Infinity


# Made once: json.loads with an argument makes a decoder, and its scanner, on every call.
_DECODER = json.JSONDecoder(parse_constant=not_json)


def decode_json(data: str | bytes) -> Any:
    """A request's JSON as the app takes it: UTF-8, exact integers, no NaN or Infinity. Raises ValueError
    (UnicodeDecodeError among them) or RecursionError, as json.loads does."""
    return _DECODER.decode(data.decode("utf-8") if isinstance(data, bytes) else data)
_REQUEST_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Read:
    """What of a request decides its answer, besides the caller: the GraphQL request itself."""

    query: str
    operation_name: str | None
    variables: Mapping[str, Any] | None
    extensions: Mapping[str, Any] | None

    @classmethod
    def of_body(cls, body: bytes) -> "Read | None":
        """A POST body as the app decodes it (app.GraphQLApp.decode_json: Python's json, exact integers,
        no NaN or Infinity); None for what does not decode."""
        try:
            return cls.of_json(decode_json(body))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None

    @classmethod
    def of_json(cls, value: object) -> "Read | None":
        if not isinstance(value, dict) or not isinstance(value.get("query"), str):
            return None
        name, variables, extensions = value.get("operationName"), value.get("variables"), value.get("extensions")
        if not (name is None or isinstance(name, str)) or not (variables is None or isinstance(variables, dict)) \
                or not (extensions is None or isinstance(extensions, dict)):
            return None  # strawberry answers these with an error; nothing to cache
        return cls(value["query"], name, variables, extensions)

    @classmethod
    def of_params(cls, params: Mapping[str, str]) -> "Read | None":
        value = cls.value_of_params(params)
        return None if value is None else cls.of_json(value)

    @staticmethod
    def value_of_params(params: Mapping[str, str]) -> dict[str, Any] | None:
        """A GET request's parameters as a JSON request holds them; None for JSON that does not decode."""
        try:
            decoded = {key: json.loads(params[key]) for key in ("variables", "extensions") if params.get(key)}
        except (ValueError, RecursionError):
            return None
        return {"query": params.get("query"), "operationName": params.get("operationName"), **decoded}


# Strings and comments, which may hold anything; then braces and the keywords that start an operation.
_QUOTED = re.compile(r'"""(?:\\"""|(?!""").)*"""|"(?:\\.|[^"\\\n])*"|#[^\n\r]*', re.DOTALL)
_OPERATION_WORDS = re.compile(r"[{}]|(?<![$\w])(?:mutation|subscription)(?!\w)")


def only_queries(document: str) -> bool:
    """Whether the document can hold no mutation and no subscription: neither keyword at the top level,
    where operations are defined. Before any parsing, so that a mutation costs no version read; a
    word in the wrong place only means its answer is not kept."""
    depth = 0
    for match in _OPERATION_WORDS.finditer(_QUOTED.sub(" ", document)):
        word = match.group()
        if word == "{":
            depth += 1
        elif word == "}":
            depth -= 1
        elif depth <= 0:
            return False
    return True


def cacheable(principal: Principal) -> bool:
    """The vendor sees every firm: its answers would depend on every write, so they are not kept."""
    return principal.authenticated and not principal.is_platform_admin and \
        (principal.pin_sign_in is None or not principal.pin_sign_in.needs_work)


def visible_firms(principal: Principal) -> list[int]:
    """Every firm whose rows the caller may read: its staff firms and the firms of its granted companies."""
    return sorted(principal.staff_firm_ids() | principal.grants.member_firm_ids())


def version_scopes(principal: Principal) -> list[str]:
    """The data versions an answer to this caller may depend on: every firm whose rows it may read,
    its own user row and what no firm owns."""
    scopes = [GLOBAL, *(firm_scope(firm_id) for firm_id in visible_firms(principal))]
    if principal.user_id is not None:
        scopes.append(user_scope(principal.user_id))
    return scopes


def _grants(principal: Principal) -> list[Any]:
    grants = principal.grants
    return [
        principal.client_id, principal.user_id, principal.client_firm_id, sorted(principal.scopes),
        principal.email_required,
        sorted((firm_id, role.value) for firm_id, role in grants.firm_roles.items()),
        sorted((g.company_id, g.agreement_id, g.firm_id, g.role.value, g.license_type.value, g.status.value)
               for g in grants.companies.values()),
    ]


def cache_key(secret: bytes, principal: Principal, versions: Mapping[str, int], today: date, read: Read) -> str:
    # The request's variables and extensions by Python's json, as they were decoded (exact integers; a
    # float's infinity is not null); the rest, ids, names and text, by orjson, several times faster.
    request = _REQUEST_ENCODER.encode([read.variables, read.extensions])
    material = [_grants(principal), sorted(versions.items()), today.isoformat(), read.query, read.operation_name,
                request]
    try:
        encoded = orjson.dumps(material, default=str)
    except TypeError:  # an integer beyond 64 bits: no id or version is one
        encoded = json.dumps(material, separators=(",", ":"), default=str).encode()
    return hmac.new(secret, encoded, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A query's answer: its `data` as JSON, and the two costs it was charged (schema.cost)."""

    data: bytes
    requested: int
    actual: int
    stored: float  # the runtime clock's POSIX times: an entry is good from stored until expires
    expires: float
    operation: tuple[str | None, str | None] = (None, None)  # its name and kind, for the log line (R91)

    def fresh(self, now: float) -> bool:
        # A clock set back (tests move it) is not taken for the entry being young.
        return self.stored <= now < self.expires

    def dump(self) -> bytes:
        return json.dumps([self.requested, self.actual, self.stored, self.expires, *self.operation]).encode() \
            + b"\n" + self.data

    @classmethod
    def load(cls, raw: bytes) -> "Entry | None":
        head, _, data = raw.partition(b"\n")
        try:
            requested, actual, stored, expires, *operation = json.loads(head)
            name, kind = operation or (None, None)  # an entry another version stored has none
            return cls(data, int(requested), int(actual), float(stored), float(expires),
                       (name if isinstance(name, str) else None, kind if isinstance(kind, str) else None))
        except (ValueError, TypeError):
            return None


async def hit_answer(entry: Entry, budget: Budget, key: str) -> bytes | None:
    """R84: the body of a cached answer, charged as the miss was (the requested cost taken, the unused
    part given back), with the request's id and its operation noted as an executed one has them (R91);
    None when the budget cannot pay it, so that the request runs and is refused as any other."""
    throttle = await budget.take(key, entry.requested)
    if not throttle.allowed:
        return None
    available = throttle.available
    if entry.requested > entry.actual:
        available = await budget.give_back(key, entry.requested - entry.actual)
    requests.note_operation(*entry.operation)
    extensions = answered_extensions(entry.requested, entry.actual, available, budget)
    return b'{"data":' + entry.data + b',"extensions":' + orjson.dumps(extensions) + b"}"


class LocalStore:
    """This process's entries, least recently used first out, bounded by the bytes they hold."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0

    def get(self, key: str, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if not entry.fresh(now):
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        if len(entry.data) > self.max_bytes // 4:
            return  # one huge answer would push out every other
        if key in self.entries:
            self._drop(key)
        self.entries[key] = entry
        self.size += len(entry.data)
        while self.size > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: str) -> None:
        self.size -= len(self.entries.pop(key).data)


class ResponseCache:
    WARN_EVERY = 60.0

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.ttl = settings.response_cache_ttl
        self.clock = clock
        self.local = LocalStore(settings.response_cache_bytes)
        self.prefix = settings.response_cache_key_prefix
        self.redis = None
        if settings.redis_url:
            # Short timeouts, as for the budgets: a Redis that hangs must not hold requests up.
            self.redis = redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._warned_at: float | None = None
        self._secret: bytes | None = None
        # R117: the keys a request of this process is computing now, and what its waiters will get.
        self._flights: dict[str, asyncio.Future[Entry | None]] = {}
        self.shared_misses = 0  # requests answered by another's miss (tests, and a reader of the figures)

    async def secret(self, database: Database) -> bytes:
        """The HMAC key of every entry, the database's own (shared by every instance)."""
        if self._secret is None:
            async with database.sessions.begin() as session:
                self._secret = await server_secret(session, SECRET_NAME)
        return self._secret

    def _now(self) -> float:
        return self.clock().timestamp()

    def entry(self, data: bytes, requested: int, actual: int, until: datetime | None = None,
              operation: tuple[str | None, str | None] = (None, None)) -> Entry:
        """An answer read now, good for the TTL, and never past `until` (when it next changes with time)."""
        now = self._now()
        expires = now + self.ttl if until is None else min(now + self.ttl, until.timestamp())
        return Entry(data, requested, actual, now, expires, operation)

    async def get(self, key: str) -> Entry | None:
        now = self._now()
        entry = self.local.get(key, now)
        if entry is not None or self.redis is None:
            return entry
        try:
            raw = await self.redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return None
        self._reachable()
        entry = Entry.load(raw) if isinstance(raw, bytes) else None
        if entry is None or not entry.fresh(now):
            return None
        self.local.put(key, entry)
        return entry

    def flight(self, key: str) -> "tuple[asyncio.Future[Entry | None], bool]":
        """R117, on a miss: the answer being computed for `key` in this process, and whether this
        request computes it (the first to miss it: it must `land` it when done) or waits (`landed`)."""
        running = self._flights.get(key)
        if running is not None:
            return running, False
        running = self._flights[key] = asyncio.get_running_loop().create_future()
        return running, True

    async def landed(self, running: "asyncio.Future[Entry | None]") -> Entry | None:
        """What the computing request kept, if it is still fresh; None when it kept nothing (an error,
        a budget that could not pay, a request cancelled), and then the waiter computes its own."""
        entry = await asyncio.shield(running)  # a waiter cancelled does not cancel the others' wait
        if entry is None or not entry.fresh(self._now()):
            return None
        self.shared_misses += 1
        return entry

    def land(self, key: str, running: "asyncio.Future[Entry | None] | None" = None, entry: Entry | None = None) -> None:
        """A computation of `key` is done: its waiters get `entry`. put() lands whichever flight the key
        has; the computing request lands its own (`running`) when it ends, never a later one's."""
        if running is None:
            running = self._flights.get(key)
        if running is None:
            return
        if self._flights.get(key) is running:
            del self._flights[key]
        if not running.done():
            running.set_result(entry)

    async def put(self, key: str, entry: Entry) -> None:
        self.local.put(key, entry)
        self.land(key, entry=entry)  # before Redis is written: the waiters need not wait for it
        if self.redis is None:
            return
        try:
            await self.redis.set(self.prefix + key, entry.dump(), px=max(1, int(self.ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return
        self._reachable()

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
            self._warned_at = now
            log.warning("Redis unreachable for the response cache (%s); this process keeps its own until it is back",
                        type(exc).__name__)

    def _reachable(self) -> None:
        if self._warned_at is not None:
            self._warned_at = None
            log.warning("Redis reachable again: cached responses are shared again")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
