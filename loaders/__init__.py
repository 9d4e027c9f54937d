"""Per-request aiodataloader loaders: one class per access path, `<Thing>By<Key>Loader`."""

from typing import Any, TypeVar

from auth.principal import Principal
from loaders.base import RequestDb, RequestLoader

L = TypeVar("L", bound=RequestLoader[Any, Any])


class Loaders:
    """Created in the request context, never at module level: caches must not outlive a
    request (nor cross tenants). Each loader class gets one instance, made on first use."""

    def __init__(self, db: RequestDb, principal: Principal) -> None:
        self.db = db
        self.principal = principal
        self._made: dict[type[Any], Any] = {}

    def get(self, cls: type[L]) -> L:
        loader = self._made.get(cls)
        if loader is None:
            loader = self._made[cls] = cls(self.db, self.principal)
        return loader  # type: ignore[no-any-return]

    def clear(self) -> None:
        """After a mutation commits, later reads must see the new state."""
        self._made.clear()
