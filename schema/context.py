"""The per-request context every resolver receives."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strawberry.types import Info as StrawberryInfo

from auth.principal import Principal
from loaders import Loaders
from loaders.base import RequestDb
from resolvers.runtime import Runtime


@dataclass
class Context:
    principal: Principal
    db: RequestDb
    runtime: Runtime
    loaders: Loaders = field(init=False)
    request: Any = None
    response: Any = None
    # The response cache (web.response_cache): the key this request's answer is kept under, if it may be
    # kept, and whether the operation was a query (MarkQueries says, once the document is parsed).
    cache_key: str | None = None
    cache_until: datetime | None = None  # when the answer next changes with time alone (R84)
    is_query: bool = False
    # Persisted queries (schema.persisted_queries): the app's store, and the hash to store this request's
    # document under once it reaches execution (R74).
    persisted: Any = None
    persisted_register: str | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.principal)


Info = StrawberryInfo[Context, None]
