"""Every HTTP request gets an id and, when it ends, one log line and its metrics (R91, R92).

The id is the caller's X-Request-Id when that is sane (observability.requests), else a new one;
it is sent back in X-Request-Id and, on /graphql, in `extensions.requestId`. The line says what
was asked (method, path with its secrets blanked, GraphQL operation), by whom (OAuth client id),
how long it took and how it ended (status, error codes). Query strings are never logged: a GET
/graphql carries its variables there. A client's mistake is INFO, an outage WARNING, and only an
unexpected error (500, INTERNAL_SERVER_ERROR) ERROR; its traceback is logged where it happened.
"""

import logging

from opentelemetry import trace
from starlette.types import Scope

from observability import metrics
from observability.logs import log_fields, redact
from observability.requests import RequestRecord

log = logging.getLogger("bureau.request")

UNEXPECTED = "INTERNAL_SERVER_ERROR"
OUTAGE = "SERVICE_UNAVAILABLE"


def describe(span: trace.Span, record: RequestRecord) -> None:
    """The request's server span (observability.tracing) learns what the record knows, as the response starts."""
    if span.is_recording():
        span.set_attribute("bureau.request_id", record.request_id)
        if record.operation is not None:
            span.set_attribute("graphql.operation.name", record.operation)
        if record.client_id is not None:
            span.set_attribute("bureau.client_id", record.client_id)


def report(scope: Scope, record: RequestRecord, status: int, seconds: float) -> None:
    """The request's log line and metrics, as it ends."""
    path = redact(scope["path"])
    graphql = scope["path"] == "/graphql"
    if graphql:
        ok, error, timing = metrics.operation_metrics(metrics.operation_label(record.operation))
        (error if status >= 400 or record.errors else ok).inc()
        timing.observe(seconds)
        for code in record.errors:
            metrics.ERRORS.labels(code).inc()
        for code in record.user_errors:
            metrics.USER_ERRORS.labels(code).inc()
    if status == 500 or UNEXPECTED in record.errors:
        level = logging.ERROR
    elif status == 503 or OUTAGE in record.errors:
        level = logging.WARNING
    else:
        level = logging.INFO
    method = scope["method"]
    log_fields(log, level, {
        "request_id": record.request_id, "method": method, "path": path, "status": status,
        "duration_ms": round(seconds * 1000, 3), "operation": record.operation,
        "operation_type": record.operation_type, "client_id": record.client_id,
        "error_codes": record.errors, "user_error_codes": record.user_errors},
        "%s %s %s %.1f ms", method, path, status, seconds * 1000)
