"""What outlives a request: the database, the token service, settings and the clock."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from auth import principals
from auth.budget import Budget, budget_for
from auth.keys import KeyRing
from auth.principals import PrincipalCache
from auth.tokens import TokenService
from live import publish
from models.db import Database
from resolvers import webhook_events
from settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    database: Database
    settings: Settings
    keys: KeyRing
    tokens: TokenService
    # Tests replace the clock; "today" is always the UTC date (DESIGN.md, Periods).
    clock: Callable[[], datetime] = field(default=_now)
    # Each client's query budget (schema.cost), in Redis when REDIS_URL is set.
    budget: Budget = field(init=False)
    # Principals read moments ago, by token (R77).
    principals: PrincipalCache = field(init=False)

    def __post_init__(self) -> None:
        # The hooks every commit through this database needs, on its session factory (models.db):
        # live events (live.publish), the principals' version (R77) and webhook events (R68). Data
        # versions come with it.
        publish.install(self.database.sessions)
        principals.install(self.database.sessions)
        webhook_events.install(self.database.sessions)
        self.principals = PrincipalCache(self.settings.principal_cache_seconds)
        self.budget = budget_for(self.settings.redis_url, self.settings.cost_bucket, self.settings.cost_restore_rate,
                                 self.settings.cost_key_prefix)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    @classmethod
    def create(cls, database: Database, settings: Settings | None = None) -> "Runtime":
        settings = settings or Settings()
        keys = KeyRing(database.sessions, settings.signing_key_file)
        return cls(database, settings, keys, TokenService(keys, settings))
