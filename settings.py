"""Settings from the environment (DESIGN.md section 6); read once per process."""

import os
from dataclasses import dataclass, field


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
