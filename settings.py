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
    # Database outage (R54): fail fast with 503 rather than queue behind a dead server. Connecting and
    # waiting for a pooled connection give up after a second each; one statement after 15 s (the
    # server's, not the CLI's: a rollover may run long); Retry-After tells clients when to try again.
    db_connect_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_CONNECT_TIMEOUT", 1.0))
    db_pool_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_POOL_TIMEOUT", 1.0))
    db_command_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_COMMAND_TIMEOUT", 15.0))
    retry_after: int = field(default_factory=lambda: math.ceil(_seconds("BUREAU_RETRY_AFTER", 5)))

    def __post_init__(self) -> None:
        if self.cost_bucket < self.cost_limit:
            raise ValueError("BUREAU_COST_BUCKET must hold at least BUREAU_COST_LIMIT, or the dearest allowed "
                             "query could never run")
        if self.introspection not in INTROSPECTION_MODES:
            raise ValueError(f"introspection must be one of {', '.join(INTROSPECTION_MODES)}")
        if self.metrics_token is not None and self.metrics_port is not None:
            raise ValueError("set BUREAU_METRICS_TOKEN or BUREAU_METRICS_PORT, not both")
