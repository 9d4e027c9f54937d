"""Node, connections, money and the enums every type uses."""

import base64
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

import strawberry

from loaders.base import CountLoader, Page, PageArgs, PageLoader
from loaders.relations import count_loader
from models import enums, ids
from schema.context import Info
from schema.errors import BadInput

FirmRole = strawberry.enum(enums.FirmRole)
Role = strawberry.enum(enums.Role)
LicenseType = strawberry.enum(enums.LicenseType)
MembershipStatus = strawberry.enum(enums.MembershipStatus)
UserStatus = strawberry.enum(enums.UserStatus)
PayType = strawberry.enum(enums.PayType)
BillingMode = strawberry.enum(enums.BillingMode)
BillingInterval = strawberry.enum(enums.BillingInterval)
SubscriptionStatus = strawberry.enum(enums.SubscriptionStatus)
SalesChannel = strawberry.enum(enums.SalesChannel)
ScheduledChangeKind = strawberry.enum(enums.ScheduledChangeKind)
FeatureKind = strawberry.enum(enums.FeatureKind)
LoginMethod = strawberry.enum(enums.LoginMethod)
TransferStatus = strawberry.enum(enums.TransferStatus)
InvoiceKind = strawberry.enum(enums.InvoiceKind)
PriceBasis = strawberry.enum(enums.PriceBasis, description="LIST: the catalog's price. RESELLER: the firm's reseller "
                             "price (list less its discount), shown to the firm's own staff only.")

DEFAULT_PAGE = 50
MAX_PAGE = 500


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Money:
    amount: Decimal
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR, SEK, NOK.")
    basis: PriceBasis = strawberry.field(  # type: ignore[valid-type]
        default=enums.PriceBasis.LIST, description="Which price the amount is at.")


T = TypeVar("T")


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.count()


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{pk}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        prefix, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        # A key beyond 64 bits names no row (R58); PostgreSQL would refuse it as a parameter.
        if prefix == "cursor" and pk.isdigit() and int(pk) <= ids.MAX_PK:
            return int(pk)
    except ValueError:
        pass
    raise BadInput("`after` is not a cursor this connection gave out")


def archived_filter(include_archived: bool) -> tuple[tuple[str, Any], ...]:
    """Lists leave archived companies and agreements out unless asked to include them."""
    return () if include_archived else (("archived_at", None),)


def page_args(first: int | None, after: str | None, search: str | None = None,
              filters: Sequence[tuple[str, Any]] = ()) -> PageArgs:
    if first is None:
        first = DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise BadInput(f"`first` must be between 0 and {MAX_PAGE}")
    search = search.strip() if search and search.strip() else None
    return PageArgs(first, decode_cursor(after) if after else None, search, tuple(filters))


async def connection(
    info: Info,
    loader: type[PageLoader[Any]],
    parent: Any,
    args: PageArgs,
    convert: Callable[[Any], T],
) -> Connection[T]:
    """One page of a relation through its per-request loader; totalCount only when asked."""
    page, count = await load_page(info, loader, parent, args)
    return list_connection([(row.id, convert(row)) for row in page.rows], page.has_next, page.has_previous, count)


async def load_page(
    info: Info, loader: type[PageLoader[Any]], parent: Any, args: PageArgs
) -> tuple[Page[Any], Callable[[], Awaitable[int]]]:
    page: Page[Any] = await info.context.loaders.get(loader).load((parent, args))
    counter: type[CountLoader] = count_loader(loader)
    count_args = PageArgs(0, None, args.search, args.filters)

    async def count() -> int:
        return int(await info.context.loaders.get(counter).load((parent, count_args)))

    return page, count


async def no_rows() -> int:
    return 0


def list_connection(
    items: Sequence[tuple[int, T]],
    has_next: bool,
    has_previous: bool,
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    edges = [Edge(cursor=encode_cursor(pk), node=node) for pk, node in items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )
