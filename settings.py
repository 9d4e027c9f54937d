"""Settings from the environment (DESIGN.md section 6); read once per process."""

import math
import os
from dataclasses import dataclass, field


def _text(name: str) -> str | None:
    """A variable's value without surrounding blanks; unset or blank means None."""
    return os.environ.get(name, "").strip() or None


def _port(name: str) -> int | None:
    value = _text(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ValueError(f"{name} must be a TCP port number from 1 to 65535, not {value!r}")
    return int(value)


def serve_port() -> int:
    """PORT: where `bureau serve` listens without --port, and what the image's health check asks (8000)."""
    return _port("PORT") or 8000


def _positive(name: str, default: int) -> int:
    """A positive whole number (a limit, a size, seconds); unset means the default."""
    value = _text(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{name} must be a whole number above zero, not {value!r}")
    return int(value)


def _count(name: str, default: int) -> int:
    """A whole number of zero or more (a size where 0 switches the thing off); unset means the default."""
    value = _text(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{name} must be a whole number of zero or more, not {value!r}")
    return int(value)


def _switch(name: str, default: bool) -> bool:
    value = (_text(name) or ("on" if default else "off")).lower()
    if value not in ("on", "off"):
        raise ValueError(f"{name} must be on or off, not {value!r}")
    return value == "on"


def _gc_thresholds() -> tuple[int, int, int] | None:
    """BUREAU_GC_THRESHOLDS: three whole numbers for gc.set_threshold, or `python` for Python's own."""
    value = _text("BUREAU_GC_THRESHOLDS") or "50000,50,100"
    if value.lower() == "python":
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts) or int(parts[0]) < 1:
        raise ValueError(f"BUREAU_GC_THRESHOLDS must be three whole numbers (the first above zero), e.g. "
                         f"50000,50,100, or python; not {value!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


INTROSPECTION_MODES = ("authenticated", "on", "off")


def _introspection() -> str:
    value = (_text("BUREAU_INTROSPECTION") or "authenticated").lower()
    if value not in INTROSPECTION_MODES:
        raise ValueError(f"BUREAU_INTROSPECTION must be one of {', '.join(INTROSPECTION_MODES)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (R59). Every limit refuses with its own code."""

    max_body_bytes: int = field(default_factory=lambda: _positive("BUREAU_MAX_BODY_BYTES", 1024 * 1024))
    max_query_bytes: int = field(default_factory=lambda: _positive("BUREAU_MAX_QUERY_BYTES", 32 * 1024))
    max_tokens: int = field(default_factory=lambda: _positive("BUREAU_MAX_TOKENS", 4000))
    max_depth: int = field(default_factory=lambda: _positive("BUREAU_MAX_DEPTH", 20))
    max_aliases: int = field(default_factory=lambda: _positive("BUREAU_MAX_ALIASES", 50))
    max_directives: int = field(default_factory=lambda: _positive("BUREAU_MAX_DIRECTIVES", 50))
    max_duplicate_fields: int = field(default_factory=lambda: _positive("BUREAU_MAX_DUPLICATE_FIELDS", 10))
    max_operations: int = field(default_factory=lambda: _positive("BUREAU_MAX_OPERATIONS", 5))
    max_node_ids: int = field(default_factory=lambda: _positive("BUREAU_MAX_NODE_IDS", 100))
    max_list_items: int = field(default_factory=lambda: _positive("BUREAU_MAX_LIST_ITEMS", 100))
    max_string_length: int = field(default_factory=lambda: _positive("BUREAU_MAX_STRING_LENGTH", 10_000))
    # Slow clients (slowloris): the whole body within this many seconds; request headers within
    # header_timeout of the connection opening or of the last answer on it (`bureau serve`).
    body_timeout: int = field(default_factory=lambda: _positive("BUREAU_BODY_TIMEOUT", 10))
    header_timeout: int = field(default_factory=lambda: _positive("BUREAU_HEADER_TIMEOUT", 10))
    keep_alive_timeout: int = field(default_factory=lambda: _positive("BUREAU_KEEP_ALIVE_TIMEOUT", 5))
    max_header_bytes: int = field(default_factory=lambda: _positive("BUREAU_MAX_HEADER_BYTES", 16 * 1024))
    max_connections: int = field(default_factory=lambda: _positive("BUREAU_MAX_CONNECTIONS", 1000))


def _seconds(name: str, default: float) -> float:
    value = _text(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:  # also refuses nan and inf
        raise ValueError(f"{name} must be a number of seconds above 0 and below 86400, not {value!r}")
    return seconds


LOG_FORMATS = ("json", "text")
TRACES_EXPORTERS = ("otlp", "console")


def _log_format() -> str:
    value = (_text("BUREAU_LOG_FORMAT") or "json").lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"BUREAU_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def _traces_exporters() -> tuple[str, ...]:
    """OpenTelemetry's own variables decide whether spans are sent, and where (R93): OTEL_TRACES_EXPORTER
    (otlp, console, both comma-separated, or none), else otlp when an OTLP endpoint is named; nothing when
    neither is set or OTEL_SDK_DISABLED is true. The SDK reads the rest (endpoint, headers, sampler)."""
    if (_text("OTEL_SDK_DISABLED") or "").lower() == "true":
        return ()
    named = _text("OTEL_TRACES_EXPORTER")
    if named is None:
        endpoint = _text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _text("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ("otlp",) if endpoint else ()
    exporters = tuple(dict.fromkeys(part.strip().lower() for part in named.split(",") if part.strip()))
    if exporters == ("none",):
        return ()
    unknown = [name for name in exporters if name not in TRACES_EXPORTERS]
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER may name {', '.join(TRACES_EXPORTERS)} or none, not {unknown[0]!r}")
    protocol = (_text("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _text("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf")
    if "otlp" in exporters and protocol != "http/protobuf":
        raise ValueError(f"OTLP traces are sent as http/protobuf only, not {protocol!r}")
    return exporters


def _seconds_or_zero(name: str, default: float) -> float:
    """As _seconds, but 0 is allowed (it switches the thing off)."""
    value = _text(name)
    if value is not None and value.strip() in ("0", "0.0"):
        return 0.0
    return _seconds(name, default)


@dataclass(frozen=True)
class Settings:
    issuer: str = field(default_factory=lambda: os.environ.get("BUREAU_ISSUER", "http://127.0.0.1:8000"))
    audience: str = field(default_factory=lambda: os.environ.get("BUREAU_AUDIENCE", "bureau"))
    signing_key_file: str | None = field(default_factory=lambda: os.environ.get("BUREAU_SIGNING_KEY_FILE"))
    smtp_url: str | None = field(default_factory=lambda: os.environ.get("SMTP_URL"))
    mail_from: str = field(default_factory=lambda: os.environ.get("BUREAU_MAIL_FROM", "bureau@localhost"))
    access_token_ttl: int = 3600
    invitation_days: int = 14
    session_ttl_seconds: int = 15 * 60
    # Browser origins allowed to call /graphql and /exports (CORS); comma-separated, none by default.
    cors_origins: tuple[str, ...] = field(default_factory=lambda: tuple(
        origin.strip().rstrip("/") for origin in os.environ.get("BUREAU_CORS_ORIGINS", "").split(",")
        if origin.strip()))
    # Prometheus metrics are closed by default. BUREAU_METRICS_TOKEN: /metrics on the API needs it as a
    # bearer token. BUREAU_METRICS_PORT: metrics only on a listener of their own (BUREAU_METRICS_HOST,
    # loopback by default), never on the API. One or the other, so that no one wonders which applies.
    metrics_token: str | None = field(default_factory=lambda: _text("BUREAU_METRICS_TOKEN"))
    metrics_port: int | None = field(default_factory=lambda: _port("BUREAU_METRICS_PORT"))
    metrics_host: str = field(default_factory=lambda: _text("BUREAU_METRICS_HOST") or "127.0.0.1")
    # prometheus-client's multiprocess mode: every worker writes its metrics here, a scrape sums them up.
    # `bureau serve --workers N` (N > 1) sets it for its workers; prometheus-client reads the same variable.
    metrics_multiproc_dir: str | None = field(default_factory=lambda: _text("PROMETHEUS_MULTIPROC_DIR"))
    # Query cost (schema.cost): the most one operation may cost, and each client's budget, a bucket of
    # cost_bucket points that refills at cost_restore_rate points a second (auth.budget). Shared by every
    # instance through Redis when REDIS_URL is set, else per process.
    cost_limit: int = field(default_factory=lambda: _positive("BUREAU_COST_LIMIT", 50_000))
    cost_bucket: int = field(default_factory=lambda: _positive("BUREAU_COST_BUCKET", 100_000))
    cost_restore_rate: int = field(default_factory=lambda: _positive("BUREAU_COST_RESTORE_RATE", 5_000))
    redis_url: str | None = field(default_factory=lambda: _text("REDIS_URL"))
    # Keys of the budgets in Redis start with this, so that deployments (or tests) may share one Redis.
    cost_key_prefix: str = field(default_factory=lambda: _text("BUREAU_COST_KEY_PREFIX") or "bureau:cost:")
    # Who may read the schema (__schema, __type): any valid token, anyone, or nobody. Field suggestions
    # ("Did you mean ...") are given only where introspection is open.
    introspection: str = field(default_factory=_introspection)
    limits: Limits = field(default_factory=Limits)
    # The response cache of repeated reads (R82-R84, web.response_cache). A cached answer is keyed by the
    # caller's grants and the data versions of its firms, so it is never served after a write it depends
    # on; but what changes with time alone (a session expiring, an invitation lapsing) shows up to the
    # TTL late. That is a change of what a read means, so it is off until a deployment asks for it.
    # In this process (a least-recently-used store of at most response_cache_bytes), and shared in Redis
    # under response_cache_key_prefix when REDIS_URL is set.
    response_cache: bool = field(default_factory=lambda: _switch("BUREAU_RESPONSE_CACHE", False))
    response_cache_ttl: float = field(default_factory=lambda: _seconds("BUREAU_RESPONSE_CACHE_TTL", 10.0))
    response_cache_bytes: int = field(default_factory=lambda: _positive("BUREAU_RESPONSE_CACHE_BYTES",
                                                                        64 * 1024 * 1024))
    response_cache_key_prefix: str = field(default_factory=lambda: _text("BUREAU_RESPONSE_CACHE_KEY_PREFIX")
                                           or "bureau:response:")
    # The compiled read path (schema.compiled_reads, R79): a query over the plain types answered by
    # one SQL statement; off: every operation runs through the resolvers. PostgreSQL only.
    compiled_reads: bool = field(default_factory=lambda: _switch("BUREAU_COMPILED_READS", True))
    # Database outage (R54): fail fast with 503 rather than queue behind a dead server. Connecting and
    # waiting for a pooled connection give up after a second each; one statement after 15 s (the
    # server's, not the CLI's: a rollover may run long); Retry-After tells clients when to try again.
    db_connect_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_CONNECT_TIMEOUT", 1.0))
    db_pool_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_POOL_TIMEOUT", 1.0))
    db_command_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_COMMAND_TIMEOUT", 15.0))
    # R108: connections each server process keeps open. Beyond them SQLAlchemy opens overflow ones and
    # closes each when it comes back: under more concurrent requests than this, a connection a request.
    db_pool_size: int = field(default_factory=lambda: _positive("BUREAU_DB_POOL_SIZE", 20))
    retry_after: int = field(default_factory=lambda: math.ceil(_seconds("BUREAU_RETRY_AFTER", 5)))
    # `bureau serve`'s log lines: one JSON object each (for a log pipeline), or text for a developer's terminal.
    log_format: str = field(default_factory=_log_format)
    # R112: how long a log line may wait in its buffer; 0 writes each line at once (observability.logs).
    log_flush_seconds: float = field(default_factory=lambda: _seconds_or_zero("BUREAU_LOG_FLUSH_SECONDS", 0.2))
    # Where OpenTelemetry spans go (observability.tracing); empty: tracing is off.
    traces_exporters: tuple[str, ...] = field(default_factory=_traces_exporters)
    # Per-request overheads (R76-R78). A token's principal (its grants) is kept this many seconds in the
    # process (0: never); parsed and validated documents are kept, the most recently used this many and
    # this many characters of query text in all (schema.documents).
    principal_cache_seconds: float = field(
        default_factory=lambda: _seconds_or_zero("BUREAU_PRINCIPAL_CACHE_SECONDS", 5.0))
    document_cache_size: int = field(default_factory=lambda: _count("BUREAU_DOCUMENT_CACHE_SIZE", 500))
    document_cache_text: int = field(default_factory=lambda: _count("BUREAU_DOCUMENT_CACHE_TEXT", 256 * 1024))
    # Persisted queries (R74, R75, schema.persisted_queries): Apollo's automatic persisted queries, kept
    # this many documents and this many characters of query text in the process (least recently used out),
    # and in Redis under persisted_query_key_prefix for persisted_query_ttl seconds when REDIS_URL is set.
    # persisted_queries: an Apollo persisted query manifest (JSON) whose operations are known from the start;
    # persisted_only: only those run (an allow-list), and nothing is registered automatically.
    persisted_query_cache_size: int = field(default_factory=lambda: _positive("BUREAU_PERSISTED_QUERY_CACHE_SIZE",
                                                                              1000))
    persisted_query_cache_text: int = field(
        default_factory=lambda: _positive("BUREAU_PERSISTED_QUERY_CACHE_TEXT", 4 * 1024 * 1024))
    persisted_query_ttl: int = field(default_factory=lambda: _positive("BUREAU_PERSISTED_QUERY_TTL", 86_400))
    persisted_query_key_prefix: str = field(default_factory=lambda: _text("BUREAU_PERSISTED_QUERY_KEY_PREFIX")
                                            or "bureau:apq:")
    persisted_queries: str | None = field(default_factory=lambda: _text("BUREAU_PERSISTED_QUERIES"))
    persisted_only: bool = field(default_factory=lambda: _switch("BUREAU_PERSISTED_ONLY", False))
    # The server's garbage collector: start-up objects frozen out of every collection, and thresholds
    # raised so that a request's short-lived cycles are collected less often (web.serving).
    gc_freeze: bool = field(default_factory=lambda: _switch("BUREAU_GC_FREEZE", True))
    gc_thresholds: tuple[int, int, int] | None = field(default_factory=_gc_thresholds)
    # R100: a full collection this often (0: only when Python's own heuristic runs one), so that what
    # requests left in the oldest generation does not grow the process between Python's rare ones.
    gc_full_seconds: float = field(default_factory=lambda: _seconds_or_zero("BUREAU_GC_FULL_SECONDS", 10.0))
    # R109: glibc's malloc kept from holding on to what large answers freed (web.serving.tune_allocator).
    malloc_tuning: bool = field(default_factory=lambda: _switch("BUREAU_MALLOC_TUNING", True))
    # Webhooks (R67-R70): plain http to a loopback host (and loopback addresses) only in development;
    # each delivery's time limit; whether `bureau serve` runs the delivery worker beside the server.
    webhooks_allow_http_loopback: bool = field(
        default_factory=lambda: _switch("BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK", False))
    webhook_timeout: float = field(default_factory=lambda: _seconds("BUREAU_WEBHOOK_TIMEOUT", 10.0))
    webhooks_worker: bool = field(default_factory=lambda: _switch("BUREAU_WEBHOOKS_WORKER", True))

    def __post_init__(self) -> None:
        if self.cost_bucket < self.cost_limit:
            raise ValueError("BUREAU_COST_BUCKET must hold at least BUREAU_COST_LIMIT, or the dearest allowed "
                             "query could never run")
        if self.introspection not in INTROSPECTION_MODES:
            raise ValueError(f"introspection must be one of {', '.join(INTROSPECTION_MODES)}")
        if self.persisted_only and self.persisted_queries is None:
            raise ValueError("BUREAU_PERSISTED_ONLY=on needs BUREAU_PERSISTED_QUERIES, the manifest of the "
                             "operations it allows")
        if self.metrics_token is not None and self.metrics_port is not None:
            raise ValueError("set BUREAU_METRICS_TOKEN or BUREAU_METRICS_PORT, not both")
