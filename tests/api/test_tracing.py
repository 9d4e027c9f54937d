"""OpenTelemetry tracing (R93), read from the SDK's in-memory exporter: one request makes one server
span, with the GraphQL operation, the loader batches and units of work, and a client span per SQL
statement below it; the spans carry the operation name and the request id, and never a variable's
value, a token, a query string or a link's secret."""

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import create_app
from models.db import Database, connect
from observability import tracing
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api

SEARCH = "query Search($id: ID!, $s: String) { firm(id: $id) { name agreements(search: $s) { totalCount } } }"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


@pytest.fixture
async def traced(database_url: str, exporter: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:
    """The app with tracing to memory, on an engine of its own (SQL tracing is per engine)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    own = connect(database_url)
    # On the resolvers, whose loaders are traced; a compiled read is one statement (R79).
    app = create_app(runtime=Runtime.create(own, replace(Settings(), compiled_reads=False)), tracer_provider=provider)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
            yield http
    finally:
        tracing.install(None)
        tracing.stop_tracing_sql()
        provider.shutdown()
        await own.dispose()


def trace_of(exporter: InMemorySpanExporter, request_id: str) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The server span that carries `request_id`, and every span of its trace."""
    spans = list(exporter.get_finished_spans())
    [server] = [s for s in spans if s.kind == SpanKind.SERVER and (s.attributes or {}).get("bureau.request_id")
                == request_id]
    assert server.context is not None
    return server, [s for s in spans if s.context is not None and s.context.trace_id == server.context.trace_id]


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def every_value(spans: list[ReadableSpan]) -> str:
    return json.dumps([[s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events]]
                       for s in spans], default=str)


async def test_a_request_is_a_server_span_with_the_operation_the_loaders_and_the_sql_below(
        traced: httpx.AsyncClient, api: Api, exporter: InMemorySpanExporter) -> None:
    firm = await api.firm()
    needle = "needle-9f3c1e"
    response = await traced.post("/graphql", json={"query": SEARCH, "variables": {"id": firm.id, "s": needle}},
                                 headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": "traced-1"})
    assert response.status_code == 200 and not response.json().get("errors")
    server, spans = trace_of(exporter, "traced-1")
    assert server.name == "POST /graphql"
    assert (server.attributes or {})["graphql.operation.name"] == "Search"
    [operation] = [s for s in spans if s.name == "query Search"]
    assert (operation.attributes or {})["bureau.request_id"] == "traced-1"
    assert server in ancestors(operation, spans)
    sql = [s for s in spans if s.kind == SpanKind.CLIENT and (s.attributes or {}).get("db.system") == "postgresql"]
    assert len(sql) >= 2  # authentication's reads, then the firm and its agreements
    assert all(server in ancestors(s, spans) for s in sql)
    loads = [s for s in spans if s.name.startswith("load ")]
    assert loads and all(operation in ancestors(s, spans) for s in loads)
    assert any(ancestors(s, spans)[0] in loads for s in sql)  # a loader's statement is the loader's child
    text = every_value(spans)
    assert needle not in text and firm.admin not in text and firm.id not in text


async def test_a_mutation_traces_its_unit_of_work(traced: httpx.AsyncClient, api: Api,
                                                  exporter: InMemorySpanExporter) -> None:
    vendor = await api.vendor()
    secret_name = "Firm secret-7d2a"
    mutation = ("mutation New($input: CreateFirmInput!) { createFirm(input: $input) { firm { id } "
                "userErrors { code } } }")
    response = await traced.post("/graphql", json={"query": mutation, "variables": {"input": {
        "name": secret_name, "country": "SE", "currency": "SEK"}}},
        headers={"Authorization": f"Bearer {vendor}", "X-Request-Id": "traced-2"})
    assert response.json()["data"]["createFirm"]["userErrors"] == []
    server, spans = trace_of(exporter, "traced-2")
    [unit] = [s for s in spans if s.name == "unit of work"]
    inserts = [s for s in spans if s.kind == SpanKind.CLIENT and "INSERT" in str((s.attributes or {}).get(
        "db.statement", ""))]
    assert inserts and all(unit in ancestors(s, spans) for s in inserts)
    text = every_value(spans)
    assert secret_name not in text and vendor not in text


async def test_query_strings_links_and_authorization_stay_out_of_spans(
        traced: httpx.AsyncClient, api: Api, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    firm = await api.firm()
    needle = "needle-get-51aa"
    await traced.get("/graphql", params={"query": SEARCH, "variables": json.dumps({"id": firm.id, "s": needle})},
                     headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": "traced-get"})
    link = "linksecret0123456789"
    await traced.get(f"/invitations/{link}?token={link}", headers={"X-Request-Id": "traced-link"})
    server, spans = trace_of(exporter, "traced-get")
    link_server, link_spans = trace_of(exporter, "traced-link")
    assert link_server.name == "GET /invitations/[redacted]"
    text = every_value(spans + link_spans)
    for secret in (needle, firm.admin, link, "variables="):
        assert secret not in text, secret


async def test_tracing_is_off_without_otel_settings(api: Api, database: Database,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().traces_exporters == ()
    app = create_app(runtime=Runtime.create(database, Settings()))
    assert not tracing.enabled()
    assert not any("OpenTelemetry" in str(m.cls) for m in app.user_middleware)


def test_the_otel_variables_choose_the_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    cases: list[tuple[dict[str, str], Any]] = [
        ({}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, ()),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, ValueError),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ValueError),
    ]
    names = {name for env, _ in cases for name in env}
    for env, expected in cases:
        for name in names:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if expected is ValueError:
            with pytest.raises(ValueError):
                Settings()
        else:
            assert Settings().traces_exporters == expected, env
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "bureau-eu")
    provider = tracing.provider_from(Settings().traces_exporters)
    assert provider is not None and provider.resource.attributes["service.name"] == "bureau-eu"
    provider.shutdown()


def test_the_url_attributes_of_either_semantic_conventions_lose_their_secrets(exporter: InMemorySpanExporter) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=http makes the instrumentation write url.path and url.query instead of
    http.target and http.url (decided once per process): the hook rewrites both vocabularies."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    secret = "linksecret9876"
    sent = {"http.target": f"/invitations/{secret}?token={secret}",
            "http.url": f"http://bureau.test/invitations/{secret}?token={secret}",
            "url.path": f"/invitations/{secret}", "url.query": f"token={secret}&variables=%7B%7D",
            "url.full": f"http://bureau.test/graphql?variables={secret}"}
    with provider.get_tracer("test").start_as_current_span("GET", attributes=sent) as span:
        tracing._without_secrets(span, {})
    [finished] = exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == {
        "http.target": "/invitations/[redacted]", "http.url": "http://bureau.test/invitations/[redacted]",
        "url.path": "/invitations/[redacted]", "url.query": "[redacted]", "url.full": "http://bureau.test/graphql"}
    provider.shutdown()


class OtlpReceiver:
    """A collector's OTLP/HTTP traces endpoint on loopback: keeps every export request it is sent."""

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[bytes] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(name, attributes, resource attributes) of every span received."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        def plain(attributes: Any) -> dict[str, Any]:
            return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in attributes}

        found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for body in self.received:
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                resource = plain(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((s.name, plain(s.attributes), resource) for s in scope_spans.spans)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_bureau_serve_sends_spans_to_the_otlp_endpoint_of_the_environment(
        database_url: str, api: Api, tmp_path: Any) -> None:
    import asyncio
    import contextlib
    import os
    import signal
    import sys

    from tests.api.test_metrics import ROOT, free_port, output

    receiver = OtlpReceiver()
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BUREAU_", "OTEL_"))}
    # The tokens are the test's, so the server keeps its issuer (else it follows --port, R90).
    environment.update({"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
                        "BUREAU_ISSUER": api.runtime.settings.issuer,
                        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
                        "OTEL_SERVICE_NAME": "bureau-test", "OTEL_BSP_SCHEDULE_DELAY": "100"})
    log = tmp_path / "serve.log"
    firm = await api.firm()
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                       cwd=ROOT, env=environment, stdout=sink, stderr=sink)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(240):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            assert process.returncode is None, output(log)
            response = await http.post("/graphql", json={"query": "query Named { viewer { clientId } }"},
                                       headers={"Authorization": f"Bearer {firm.admin}", "X-Request-Id": "otlp-1"})
            assert response.status_code == 200
            for _ in range(100):
                if any(attributes.get("bureau.request_id") == "otlp-1" and name == "POST /graphql"
                       for name, attributes, _ in receiver.spans()):
                    break
                await asyncio.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        receiver.close()
    spans = receiver.spans()
    [server] = [(n, a, r) for n, a, r in spans if n == "POST /graphql" and a.get("bureau.request_id") == "otlp-1"]
    assert server[1]["graphql.operation.name"] == "Named" and server[2]["service.name"] == "bureau-test"
    assert any(name == "query Named" for name, _, _ in spans)
    assert any(attributes.get("db.system") == "postgresql" for _, attributes, _ in spans)
    assert firm.admin not in json.dumps([[n, a] for n, a, _ in spans], default=str)
