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
    # Database outage (R54): fail fast with 503 rather than queue behind a dead server. Connecting and
    # waiting for a pooled connection give up after a second each; one statement after 15 s (the
    # server's, not the CLI's: a rollover may run long); Retry-After tells clients when to try again.
    db_connect_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_CONNECT_TIMEOUT", 1.0))
    db_pool_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_POOL_TIMEOUT", 1.0))
    db_command_timeout: float = field(default_factory=lambda: _seconds("BUREAU_DB_COMMAND_TIMEOUT", 15.0))
    retry_after: int = field(default_factory=lambda: math.ceil(_seconds("BUREAU_RETRY_AFTER", 5)))

    def __post_init__(self) -> None:
        if self.metrics_token is not None and self.metrics_port is not None:
            raise ValueError("set BUREAU_METRICS_TOKEN or BUREAU_METRICS_PORT, not both")
