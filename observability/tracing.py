"""OpenTelemetry tracing (R93), off unless the standard OTEL_* variables ask for it (settings.py):
a server span per HTTP request (opentelemetry-instrumentation-asgi), a span per GraphQL operation,
per loader batch and per unit of work, and a client span per SQL statement
(opentelemetry-instrumentation-sqlalchemy).

No span carries a secret: URLs lose their query string (a GET /graphql holds its variables there)
and the secret part of links (observability.logs.redact), captured headers always blank
Authorization and cookies, SQL spans hold the statement with its placeholders and never its
parameters, and no span records a GraphQL argument or variable.
"""

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import NoOpTracerProvider, Span
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware

from observability.logs import redact

_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)
SENSITIVE_HEADERS = ["authorization", "proxy-authorization", "cookie", "set-cookie", ".*token.*", ".*secret.*"]

_provider: trace.TracerProvider = NoOpTracerProvider()
_engines: "weakref.WeakSet[Any]" = weakref.WeakSet()


def provider_from(exporters: Sequence[str]) -> TracerProvider | None:
    """A tracer provider sending to `exporters` (settings.traces_exporters), None when there are none.
    The SDK reads the rest itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER,
    OTEL_BSP_*, and the OTLP exporter its OTEL_EXPORTER_OTLP_* endpoint, headers and timeout."""
    if not exporters:
        return None
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "bureau"}))  # unless OTEL_SERVICE_NAME names it
    provider = TracerProvider(resource=resource)
    for name in exporters:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install(provider: trace.TracerProvider | None) -> None:
    """Makes `provider` the one this process's own spans (span()) go to; None switches them off."""
    global _provider
    _provider = provider if provider is not None else NoOpTracerProvider()


def enabled() -> bool:
    return not isinstance(_provider, NoOpTracerProvider)


@contextlib.contextmanager
def span(name: str, **attributes: str | int) -> Iterator[Span]:
    """A span of the installed provider, child of the current one; a no-op span when tracing is off."""
    with _provider.get_tracer("bureau").start_as_current_span(name, attributes=attributes) as current:
        yield current


def middleware(provider: TracerProvider | None) -> list[Middleware]:
    """The ASGI middleware that makes each request's server span, for the app's middleware list."""
    if provider is None:
        return []
    return [Middleware(OpenTelemetryMiddleware, tracer_provider=provider, meter_provider=NoOpMeterProvider(),
                       default_span_details=_span_details, server_request_hook=_without_secrets,
                       http_capture_headers_sanitize_fields=SENSITIVE_HEADERS, exclude_spans=["receive", "send"])]


def trace_sql(engine: AsyncEngine, provider: TracerProvider | None) -> None:
    """A client span per SQL statement of `engine`, once per engine."""
    if provider is None or engine.sync_engine in _engines:
        return
    _engines.add(engine.sync_engine)
    usage = NoOpMeterProvider().get_meter("bureau").create_up_down_counter("db.client.connections.usage")
    EngineTracer(provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine.sync_engine, usage,
                 enable_commenter=False)


def stop_tracing_sql() -> None:
    """Removes every engine's SQL tracing (tests)."""
    EngineTracer.remove_all_event_listeners()
    _engines.clear()


def _span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"{scope.get('method', 'HTTP')} {redact(scope.get('path', ''))}".strip(), {}


def _without_secrets(span: Span, scope: dict[str, Any]) -> None:
    """The instrumentation sets the request's URL as it came; put it back without query or secrets."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact(value.split("?", 1)[0]))
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "[redacted]")
