"""R106: a compiled read seen before is answered without GraphQL execution.

When strawberry's path has answered a query from one compiled statement and nothing else
(schema.compiled_reads, no subtree left to the resolvers), all it decided on the way (the document
valid and within the limits, the caller's scopes, the requested cost, the statement) followed from
the request's text, operation name and variables, the caller's grants (the statement cache's
principal key) and the settings. A later request equal in all of these is answered from what was
recorded, as PostGraphile answers from a prepared plan: the budget charged as QueryCost charges it
(the requested cost taken, the unused part given back), the statement run at the request's clock,
the operation noted for the logs and metrics as Observation notes it, and the answer written as
strawberry writes it. Whatever is not so simple takes strawberry's path: a persisted-query
request, tracing on, the response cache on (but for a point read, R113: a few rows by key), a
caller who must give an email first, a budget that cannot pay, a statement that fails or finds a
non-null object gone.
"""

import json
import logging
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select

from auth.budget import Budget
from auth.principal import Principal
from compiled.compiler import MISSING_TEXT, NOW, fields_in
from models.db import Database, DriverStatement
from models.outage import is_outage
from observability import requests, tracing
from schema.cost import answered_extensions, budget_key
from settings import Settings

log = logging.getLogger("bureau.compiled")

SIZE = 256  # requests kept, the least recently answered going first


@dataclass(frozen=True)
class Prepared:
    driver: DriverStatement  # the statement as asyncpg runs it, the request's clock its one parameter
    requested: int  # the requested cost (schema.cost.requested_cost) QueryCost charged
    operation: tuple[str | None, str | None]  # name and kind, as Observation notes them
    settings: Settings  # what it was decided under: any other settings decide again
    point: bool = False  # a few rows by key and no list: answered so with the response cache on too (R113)


_KEY_ENCODER = json.JSONEncoder(sort_keys=True)  # once: json.dumps with an argument makes one every call


def variables_key(variables: Mapping[str, Any] | None) -> str:
    # Python's json, not orjson: integers beyond 64 bits stay exact, and a float's infinity is not null.
    return _KEY_ENCODER.encode(variables)


def principal_key(principal: Principal) -> Hashable:
    grants = principal.grants
    return (principal.scopes, principal.user_id, principal.client_firm_id,
            frozenset(grants.firm_roles.items()), frozenset(grants.companies.items()))


def key_of(query: str, operation_name: str | None, variables: Mapping[str, Any] | None,
           principal: Principal) -> Hashable:
    """The statement cache's key (schema.compiled_reads), which a prepared read shares."""
    return query, operation_name, variables_key(variables), principal_key(principal)


class PreparedReads:
    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, Prepared] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, key: Hashable, prepared: Prepared) -> None:
        self._entries[key] = prepared
        self._entries.move_to_end(key)
        while len(self._entries) > SIZE:
            self._entries.popitem(last=False)

    def find(self, key: Hashable, settings: Settings, *, points_only: bool = False) -> Prepared | None:
        prepared = self._entries.get(key)
        if prepared is None or prepared.settings is not settings or (points_only and not prepared.point):
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return prepared


PREPARED = PreparedReads()  # one per process, as the statement cache is


def enabled(settings: Settings, *, sqlite: bool) -> bool:
    """Whether, under these settings, a request may be answered from a prepared read; with the
    response cache on, only a point read is (R113)."""
    return settings.compiled_reads and not sqlite and not settings.persisted_only and not tracing.enabled()


def eligible(principal: Principal) -> bool:
    """Whether this caller's request may be: one with a sign-in to complete, or an email to give first,
    takes strawberry's path."""
    return principal.authenticated and not principal.email_required and (
        principal.pin_sign_in is None or not principal.pin_sign_in.needs_work)


def prepare(statement: Select[Any], database: Database, now: datetime, requested: int,
            operation: tuple[str | None, str | None], settings: Settings, *, point: bool = False) -> Prepared | None:
    """None when the statement cannot run on the driver: strawberry's path answers it each time."""
    try:
        driver = DriverStatement.of(statement, database.engine.dialect, NOW, now)
    except ValueError:
        log.warning("a compiled read could not be prepared for the driver")
        return None
    return Prepared(driver, requested, operation, settings, point)


async def answer(prepared: Prepared, database: Database, now: datetime, principal: Principal,
                 budget: Budget) -> bytes | None:
    """The response body, or None for strawberry's path to answer (having charged nothing)."""
    key = budget_key(principal, None)  # an eligible caller is authenticated: its bucket is its client's
    throttle = await budget.take(key, prepared.requested)
    if not throttle.allowed:
        return None  # strawberry's path refuses it, RATE_LIMITED with its Retry-After
    try:
        text = await database.driver_scalar(prepared.driver, now)
    except Exception as exc:
        await budget.give_back(key, prepared.requested)
        if is_outage(exc):
            raise  # web.outage answers 503 (R54)
        log.exception("prepared read failed; answering through strawberry")
        return None
    if not isinstance(text, str) or MISSING_TEXT in text:
        await budget.give_back(key, prepared.requested)
        return None
    actual = min(prepared.requested, fields_in(text))
    available = throttle.available
    if prepared.requested > actual:  # as QueryCost: the points the query did not use come back
        available = await budget.give_back(key, prepared.requested - actual)
    requests.note_operation(*prepared.operation)
    extensions = answered_extensions(prepared.requested, actual, available, budget)
    return orjson.dumps({"data": orjson.loads(text), "extensions": extensions})
