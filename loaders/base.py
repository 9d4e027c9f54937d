"""Batching building blocks: every relation is one loader class created per request.

An AsyncSession is not safe across concurrent tasks, and aiodataloader dispatches batches
as tasks: `RequestDb` serialises them on the request's one read session.
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import BigInteger, ColumnElement, Executable, Select, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from auth.principal import Principal
from models import Base
from observability import tracing

M = TypeVar("M", bound=Base)
V = TypeVar("V")
K = TypeVar("K", bound=Hashable)
Filter = ColumnElement[bool]


class RequestDb:
    """The request's read session, and the request's one "now" (seat usage depends on it)."""

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        # PostgreSQL pages many parents with LATERAL, which SQLite lacks (loaders.base.PageLoader).
        self.dialect = session.bind.dialect.name if session.bind is not None else ""
        self._lock = asyncio.Lock()
        self._closed = False

    async def all(self, stmt: Executable) -> Sequence[Any]:
        async with self._lock:
            self._check_open()
            return (await self.session.execute(stmt)).all()

    async def scalars(self, stmt: Executable) -> Sequence[Any]:
        async with self._lock:
            self._check_open()
            return (await self.session.scalars(stmt)).all()

    async def scalar(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        async with self._lock:
            self._check_open()
            return await self.session.scalar(stmt, params)

    async def core_scalar(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        """A Core statement (no ORM entity in it, as the compiled reads'), on the session's connection
        without the ORM's execution: a tenth of a small read's CPU."""
        async with self._lock:
            self._check_open()
            connection = await self.session.connection()
            return await connection.scalar(stmt, params)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the request has finished; its reads are closed")

    async def close(self) -> None:
        """Waits for a read still running (a field's error can end execution while sibling
        loaders are mid-query) and refuses later ones, so the session closes cleanly."""
        async with self._lock:
            self._closed = True


class RequestLoader(DataLoader, Generic[K, V]):  # type: ignore[misc]
    """A DataLoader bound to one request's database session and principal."""

    def __init__(self, db: RequestDb, principal: Principal) -> None:
        super().__init__()
        self.db = db
        self.principal = principal
        if tracing.enabled():
            self.batch_load_fn = self._traced(self.batch_load_fn)

    def _traced(self, load: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Each batch is a span (R93): how a resolver reaches the database, and how many keys at once."""
        name = type(self).__name__

        async def batch(keys: Sequence[Any]) -> Any:
            with tracing.span(f"load {name}", **{"bureau.loader.keys": len(keys)}):
                return await load(keys)

        return batch


class ByIdLoader(RequestLoader[int, M]):
    """`<Thing>ByIdLoader`: rows the caller may see, None for the rest."""

    model: ClassVar[type[Base]]
    visible: ClassVar[Callable[[Principal], Filter]]

    async def batch_load_fn(self, keys: Sequence[int]) -> list[M | None]:
        model: Any = self.model
        rows = await self.db.scalars(select(model).where(model.id.in_(keys), self.visible_among(keys)))
        by_id = {row.id: row for row in rows}
        return [by_id.get(key) for key in keys]

    def visible_among(self, keys: Sequence[int]) -> Filter:
        """The visibility filter for reading exactly `keys`."""
        return type(self).visible(self.principal)


class ByKeyLoader(RequestLoader[Any, M]):
    """Rows grouped by a foreign key, in id order; unpaginated (small, bounded lists)."""

    model: ClassVar[type[Base]]
    key: ClassVar[InstrumentedAttribute[Any]]
    visible: ClassVar[Callable[[Principal], Filter] | None] = None

    async def batch_load_fn(self, keys: Sequence[Any]) -> list[list[M]]:
        model: Any = self.model
        key_col = type(self).key
        visible = type(self).visible
        where = visible(self.principal) if visible else true()
        rows = await self.db.scalars(select(model).where(key_col.in_(keys), where).order_by(model.id))
        grouped: dict[Any, list[M]] = defaultdict(list)
        for row in rows:
            grouped[getattr(row, key_col.key)].append(row)
        return [grouped.get(key, []) for key in keys]


@dataclass(frozen=True)
class PageArgs:
    """One page of a connection: `first` rows after the row with id `after`."""

    first: int
    after: int | None = None
    search: str | None = None
    filters: tuple[tuple[str, Any], ...] = ()


@dataclass
class Page(Generic[V]):
    """One page of rows (model rows, or plain values such as charge lines)."""

    rows: list[V]
    has_next: bool
    has_previous: bool


class PageLoader(RequestLoader[tuple[Any, PageArgs], Page[M]]):
    """`<Things>By<Parent>Loader`: one page per parent, for many parents in one query.

    Keyset pagination on the primary key keeps cursors stable while rows are added. Each page
    reads `first + 1` rows of a (parent, id) index and stops (R86): one parent is a plain
    `WHERE parent = :p AND id > :after ORDER BY id LIMIT first + 1`; many parents on PostgreSQL
    the same per parent in a LATERAL join. SQLite has no LATERAL: there a window function
    numbers each parent's rows, reading all of them (SQLite is for development, not for size).
    """

    model: ClassVar[type[Base]]
    parent: ClassVar[InstrumentedAttribute[Any]]
    visible: ClassVar[Callable[[Principal], Filter]]
    search_columns: ClassVar[tuple[InstrumentedAttribute[Any], ...]] = ()
    newest_first: ClassVar[bool] = False

    def conditions(self, args: PageArgs) -> list[Filter]:
        model: Any = self.model
        where: list[Filter] = [type(self).visible(self.principal)]
        if args.search and self.search_columns:
            pattern = f"%{args.search.lower()}%"
            where.append(func.lower(self.search_columns[0]).like(pattern) if len(self.search_columns) == 1
                         else _any_like(self.search_columns, pattern))
        for column, value in args.filters:
            where.append(getattr(model, column) == value)
        return where

    async def batch_load_fn(self, keys: Sequence[tuple[Any, PageArgs]]) -> list[Page[M]]:
        by_args: dict[PageArgs, list[Any]] = defaultdict(list)
        for parent, args in keys:
            by_args[args].append(parent)
        pages: dict[tuple[Any, PageArgs], Page[M]] = {}
        for args, parents in by_args.items():
            for parent, rows in (await self._load(parents, args)).items():
                pages[(parent, args)] = Page(rows[: args.first], len(rows) > args.first, args.after is not None)
        return [pages.get(key, Page([], False, key[1].after is not None)) for key in keys]

    async def _load(self, parents: list[Any], args: PageArgs) -> dict[Any, list[M]]:
        grouped: dict[Any, list[M]] = {parent: [] for parent in parents}
        if len(parents) == 1:
            grouped[parents[0]] = list(await self.db.scalars(self._one_page(parents[0], args)))
            return grouped
        stmt = self._lateral_pages(parents, args) if self.db.dialect == "postgresql" else \
            self._numbered_pages(parents, args)
        for row, parent in await self.db.all(stmt):
            grouped[parent].append(row)
        return grouped

    def _where(self, args: PageArgs) -> list[Filter]:
        model: Any = self.model
        where = self.conditions(args)
        if args.after is not None:
            where.append(model.id < args.after if self.newest_first else model.id > args.after)
        return where

    def _order(self, id_column: Any) -> Any:
        return id_column.desc() if self.newest_first else id_column.asc()

    def _one_page(self, parent: Any, args: PageArgs) -> Select[Any]:
        model: Any = self.model
        return (select(model).where(type(self).parent == parent, *self._where(args))
                .order_by(self._order(model.id)).limit(args.first + 1))

    def _lateral_pages(self, parents: list[Any], args: PageArgs) -> Select[Any]:
        """(row, parent): each parent's page read through its own index range."""
        keys = (func.unnest(bindparam("parents", list(parents), type_=ARRAY(BigInteger)))
                .table_valued("parent").render_derived(name="parents"))
        model: Any = self.model
        page = (select(model).where(type(self).parent == keys.c.parent, *self._where(args))
                .order_by(self._order(model.id)).limit(args.first + 1).lateral("page"))
        row: Any = aliased(model, page)
        return (select(row, keys.c.parent).select_from(keys).join(page, true())
                .order_by(keys.c.parent, self._order(row.id)))

    def _numbered_pages(self, parents: list[Any], args: PageArgs) -> Select[Any]:
        model: Any = self.model
        parent_col = type(self).parent
        order = self._order(model.id)
        numbered = (
            select(model.id.label("id"), parent_col.label("parent"),
                   func.row_number().over(partition_by=parent_col, order_by=order).label("n"))
            .where(parent_col.in_(parents), *self._where(args))
            .subquery()
        )
        return (
            select(model, numbered.c.parent)
            .join(numbered, model.id == numbered.c.id)
            .where(numbered.c.n <= args.first + 1)
            .order_by(numbered.c.parent, order)
        )


def _any_like(columns: Iterable[InstrumentedAttribute[Any]], pattern: str) -> Filter:
    from sqlalchemy import or_

    return or_(*(func.lower(column).like(pattern) for column in columns))


class CountLoader(RequestLoader[tuple[Any, PageArgs], int]):
    """totalCount of a connection, asked for only when the client selects it."""

    page_loader: ClassVar[type[PageLoader[Any]]]

    async def batch_load_fn(self, keys: Sequence[tuple[Any, PageArgs]]) -> list[int]:
        spec = self.page_loader(self.db, self.principal)
        parent_col = type(spec).parent
        by_args: dict[PageArgs, list[Any]] = defaultdict(list)
        for parent, args in keys:
            by_args[args].append(parent)
        counts: dict[tuple[Any, PageArgs], int] = {}
        for args, parents in by_args.items():
            stmt = (
                select(parent_col, func.count())
                .where(parent_col.in_(parents), *spec.conditions(args))
                .group_by(parent_col)
            )
            for parent, count in await self.db.all(stmt):
                counts[(parent, args)] = int(count)
        return [counts.get(key, 0) for key in keys]
