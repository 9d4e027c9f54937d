"""The Prometheus metrics of requests, the pool and the outboxes (R92). Every label is bounded:
operation names are client-chosen, so only the first MAX_OPERATIONS distinct valid names of a
process get a label of their own; the rest, and anonymous or unknown operations, share one.

Gauges name their multiprocess mode: with several workers (`bureau serve --workers N`) a scrape
sums the pool's connections over the live workers and shows the latest backlog any worker read."""

import functools
import threading
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

ANONYMOUS = "(anonymous)"  # no name, or a name the document does not hold
OTHER = "(other)"  # a valid name beyond MAX_OPERATIONS
MAX_OPERATIONS = 100

GRAPHQL_REQUESTS = Counter("bureau_graphql_requests_total", "GraphQL requests", ["outcome"])
GRAPHQL_LATENCY = Histogram("bureau_graphql_request_seconds", "GraphQL request latency")
# Once: prometheus-client finds a child by its labels, under a lock, on every labels() call (R118).
GRAPHQL_OK = GRAPHQL_REQUESTS.labels("ok")
OPERATIONS = Counter("bureau_graphql_operations_total", "GraphQL requests by operation name and outcome (ok, error)",
                     ["operation", "outcome"])
OPERATION_SECONDS = Histogram("bureau_graphql_operation_seconds", "GraphQL request latency by operation name",
                              ["operation"])
ERRORS = Counter("bureau_graphql_errors_total", "Top-level GraphQL errors and refusals by extensions.code", ["code"])
USER_ERRORS = Counter("bureau_graphql_user_errors_total", "userErrors in mutation payloads by code", ["code"])
RATE_LIMITED = Counter("bureau_rate_limited_total",
                       "Requests refused for a rate limit: query_budget (RATE_LIMITED) or sign_in (HTTP 429)",
                       ["limit"])

POOL_SIZE = Gauge("bureau_db_pool_size", "Connections the database pool keeps (pool_size)",
                  multiprocess_mode="livesum")
POOL_OPEN = Gauge("bureau_db_pool_connections", "Database connections open", multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("bureau_db_pool_checked_out",
                         "Database connections in use (checked out of the pool, those driver statements hold too)",
                         multiprocess_mode="livesum")

OUTBOX_BACKLOG = Gauge("bureau_outbox_backlog", "Messages waiting in an outbox (unsent, not discarded)", ["outbox"],
                       multiprocess_mode="mostrecent")
OUTBOX_FAILING = Gauge("bureau_outbox_failing", "Waiting messages whose last delivery attempt failed", ["outbox"],
                       multiprocess_mode="mostrecent")
OUTBOX_DELIVERIES = Counter("bureau_outbox_deliveries_total",
                            "Delivery attempts by outcome (sent, failed; dead for a webhook given up)",
                            ["outbox", "outcome"])
# Webhooks use the three above with outbox="webhook"; this one counts what they gave up on (R70).
WEBHOOKS_DEAD = Gauge("bureau_webhook_deliveries_dead", "Webhook deliveries given up after a day of failures",
                      multiprocess_mode="mostrecent")

_labelled: set[str] = set()
_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    """The label of an operation name already checked by observability.requests.operation_name."""
    if name is None:
        return ANONYMOUS
    if name in _labelled:  # the usual case, read without the lock: names are only ever added
        return name
    with _lock:
        if name in _labelled:
            return name
        if len(_labelled) < MAX_OPERATIONS:
            _labelled.add(name)
            return name
    return OTHER


@functools.cache
def operation_metrics(label: str) -> tuple[Any, Any, Any]:
    """An operation label's children (ok, error, seconds): prometheus-client finds them by label under a
    lock on every call; there are at most MAX_OPERATIONS + 2 labels."""
    return OPERATIONS.labels(label, "ok"), OPERATIONS.labels(label, "error"), OPERATION_SECONDS.labels(label)


def watch_pool(engine: AsyncEngine) -> None:
    """Counts the engine's open and checked-out connections from the pool's own events."""
    sync_engine = engine.sync_engine
    # An engine's listeners leave SQLAlchemy's registry with it (a new engine at its address is not
    # taken for watched: checked), unlike a collected session class's (models.db.add_hooks).
    if event.contains(sync_engine, "checkout", _checked_out):
        return
    pool = sync_engine.pool
    if callable(getattr(pool, "size", None)):  # a queue pool (PostgreSQL); SQLite's may keep no count
        POOL_SIZE.inc(pool.size())  # type: ignore[attr-defined]
        # Connections made before the app began watching (a test's engine, the migration's).
        POOL_OPEN.inc(pool.checkedin() + pool.checkedout())  # type: ignore[attr-defined]
        POOL_CHECKED_OUT.inc(pool.checkedout())  # type: ignore[attr-defined]
    event.listen(sync_engine, "connect", _opened)
    event.listen(sync_engine, "close", _closed)
    event.listen(sync_engine, "checkout", _checked_out)
    event.listen(sync_engine, "checkin", _checked_in)


def _opened(dbapi_connection: object, record: object) -> None:
    POOL_OPEN.inc()


def _closed(dbapi_connection: object, record: object) -> None:
    POOL_OPEN.dec()


def _checked_out(dbapi_connection: object, record: object, proxy: object) -> None:
    POOL_CHECKED_OUT.inc()


def _checked_in(dbapi_connection: object, record: object) -> None:
    POOL_CHECKED_OUT.dec()
