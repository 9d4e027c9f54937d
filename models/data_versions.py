"""Per-firm data versions (R82): every committed write bumps the versions of the firms whose data it
changed, in its own transaction, so that a response cached under the versions it was read at is
never served once a write it depends on has committed.

Scopes: `firm:<id>` for a firm's rows (every table with a column that references firms.id),
`user:<id>` for a user's own row, and `global` for what no firm owns (the catalog, a firm's own
row, whose name its transfer partner sees) or what a write does not say (a bulk statement that
moves rows between firms, raw SQL). The hooks are registered on the session factory every
Database is built with (models.db.session_factory calls `install`), so the mutations' unit of work,
the rollover, the CLI, the invitation pages and a test's own writes through `database.sessions` all
bump alike; a session made some other way (a bare `Session(engine)`) bumps nothing.
"""

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeGuard

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    String,
    Table,
    Text,
    TextClause,
    bindparam,
    func,
    inspect,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from models.base import Base
from models.db import Database, DriverStatement, add_hooks
from models.firms import ClientUser, FirmMember
from models.users import Membership

GLOBAL = "global"

# Tables no GraphQL read shows, or only through authentication (which runs on every request, never
# cached): their writes change no cached answer. Sign-ins and token refreshes write them constantly.
UNREAD = frozenset({
    "data_versions", "idempotency_records", "oauth_authorization_codes", "oauth_refresh_tokens",
    "oauth_revoked_access_tokens", "oauth_clients", "outbox_emails", "server_secrets", "sign_in_attempts",
    "signing_keys", "external_subject_links",
    "webhook_sequences",  # counters only; the events they number are read as the firm's (R68)
})

_TOUCHED = "bureau.data_versions.scopes"
_USERS = "bureau.data_versions.users"
# session.info: (channel, payload) pairs to NOTIFY before the commit (live.publish notes its events
# here, ahead of `_bump`). On PostgreSQL the bump's statement sends them too, one round trip for both;
# what it does not send (nothing to bump, or noted after it ran) `_notify_the_rest` sends, still in
# the transaction; a rollback drops them (`_forget`).
NOTIFY = "bureau.commit.notify"


class DataVersion(Base):
    __tablename__ = "data_versions"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


def firm_scope(firm_id: int) -> str:
    return f"firm:{firm_id}"


def user_scope(user_id: int) -> str:
    return f"user:{user_id}"


def _firm_columns(table: Table) -> list[Column[int]]:
    return [column for column in table.c if any(fk.column.table.name == "firms" for fk in column.foreign_keys)]


def _scopes(session: Session) -> set[str]:
    scopes: set[str] = session.info.setdefault(_TOUCHED, set())
    return scopes


def _note_object(session: Session, obj: object, *, new: bool = False) -> None:
    state = inspect(obj)
    table = state.mapper.local_table
    if not isinstance(table, Table) or table.name in UNREAD:
        return
    scopes = _scopes(session)
    if table.name == "users":
        user_id = state.identity[0] if state.identity else getattr(obj, "id", None)
        if user_id is None:
            scopes.add(GLOBAL)
            return
        scopes.add(user_scope(user_id))
        if not new:  # a new user's rows are new too, and bump their firms themselves
            session.info.setdefault(_USERS, set()).add(user_id)  # the firms that show the user, at commit
        return
    columns = _firm_columns(table) if table.name != "firms" else []
    firms: set[int] = set()
    for column in columns:
        attribute = state.mapper.get_property_by_column(column).key
        history = state.attrs[attribute].history
        firms.update(value for value in (*history.unchanged, *history.added, *history.deleted)
                     if isinstance(value, int))
        current = getattr(obj, attribute, None)
        if isinstance(current, int):
            firms.add(current)
    if not firms:  # the catalog, a firm's own row, a vendor's audit event: no one firm's
        scopes.add(GLOBAL)
    scopes.update(firm_scope(firm_id) for firm_id in firms)


def _collect(session: Session, flush_context: object) -> None:
    # After the flush new rows have their ids and foreign keys; the history of changed ones is still there.
    for obj in session.new:
        _note_object(session, obj, new=True)
    for obj in (*session.dirty, *session.deleted):
        _note_object(session, obj)


def _bulk(state: ORMExecuteState) -> None:
    """UPDATE, DELETE and INSERT statements sent through a session: the firms of the rows they touch,
    read before they run; global when that cannot be told."""
    statement = state.statement
    if isinstance(statement, TextClause):
        if not statement.text.lstrip().lower().startswith("select"):
            _scopes(state.session).add(GLOBAL)
        return
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(statement, "table", None)
    if not isinstance(table, Table) or table.name in UNREAD:
        return
    scopes = _scopes(state.session)
    columns = [table.c.id] if table.name == "firms" else _firm_columns(table)
    values = getattr(statement, "_values", None)  # an UPDATE's SET clause; if this private attribute goes, global
    moves = state.is_update and (values is None or any(getattr(key, "key", key) in {c.key for c in columns}
                                                       for key in values))
    if state.is_insert or not columns or (moves and table.name != "firms"):
        scopes.add(GLOBAL)
        return
    where = statement.whereclause  # type: ignore[attr-defined]
    if table.name == "firms" and _is_id_equals(where, table.c.id):  # a firm's counters: no need to ask
        scopes.add(firm_scope(where.right.value))
        return
    query = union(*(select(column.label("firm_id")).where(where) if where is not None else
                    select(column.label("firm_id")) for column in columns))
    firm_ids = state.session.execute(query).scalars().all()
    scopes.update(firm_scope(firm_id) for firm_id in firm_ids if firm_id is not None)


def _is_id_equals(where: object, column: Column[int]) -> TypeGuard[BinaryExpression[bool]]:
    return isinstance(where, BinaryExpression) and where.left.compare(column) and where.operator is operators.eq \
        and isinstance(where.right, BindParameter) and isinstance(where.right.value, int)


def _user_firms(session: Session, user_ids: Iterable[int]) -> set[int]:
    ids = sorted(user_ids)
    query = union(select(Membership.firm_id).where(Membership.user_id.in_(ids)),
                  select(FirmMember.firm_id).where(FirmMember.user_id.in_(ids)),
                  select(ClientUser.firm_id).where(ClientUser.user_id.in_(ids)))
    return {firm_id for firm_id in session.execute(query).scalars() if firm_id is not None}


def _bump(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush next anyway; its rows must be counted
    scopes: set[str] = session.info.pop(_TOUCHED, set())
    users: set[int] = session.info.pop(_USERS, set())
    if users:
        scopes.update(firm_scope(firm_id) for firm_id in _user_firms(session, users))
    if not scopes:
        return
    # One statement, in a fixed order, so that two writers of the same firms queue rather than deadlock.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{"scope": scope, "version": 1} for scope in sorted(scopes)]
    statement = insert(DataVersion).values(rows).on_conflict_do_update(
        index_elements=[DataVersion.scope], set_={"version": DataVersion.version + 1})
    notes: list[tuple[str, str]] = session.info.pop(NOTIFY, []) if dialect == "postgresql" else []
    if not notes:
        session.execute(statement)
        return
    # WITH bumped AS (the upsert) SELECT pg_notify(...) FROM unnest(channels, payloads), in their order:
    # PostgreSQL runs a data-modifying WITH to completion whether or not the query reads it.
    notes_table = func.unnest(bindparam("channels", [c for c, _ in notes], type_=ARRAY(Text)),
                              bindparam("payloads", [p for _, p in notes], type_=ARRAY(Text))
                              ).table_valued("channel", "payload", with_ordinality="n").render_derived()
    session.execute(select(func.pg_notify(notes_table.c.channel, notes_table.c.payload))
                    .add_cte(statement.returning(DataVersion.scope).cte("bumped"))
                    .select_from(notes_table).order_by(notes_table.c.n))


def _notify_the_rest(session: Session) -> None:
    """The NOTIFYs the bump did not carry (it had nothing to bump), still in this transaction (R96)."""
    for channel, payload in session.info.pop(NOTIFY, []):
        session.connection().execute(select(func.pg_notify(channel, payload)))


def _forget(session: Session) -> None:
    # Also called when a savepoint rolls back: the outer transaction's writes still count (and what the
    # savepoint had noted stays, a harmless extra bump).
    if session.in_nested_transaction():
        return
    session.info.pop(_TOUCHED, None)
    session.info.pop(_USERS, None)
    session.info.pop(NOTIFY, None)


def install(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every commit of these sessions bumps the versions of what it wrote (R82) and sends the NOTIFYs
    noted for it, with the bump where there is one (R96). Registered in this order: the bump first."""
    add_hooks(sessions, {"after_flush": _collect, "do_orm_execute": _bulk, "before_commit": _bump,
                         "after_rollback": _forget})
    add_hooks(sessions, {"before_commit": _notify_the_rest})


SCOPES = "scopes"


@functools.cache
def _versions_on_driver(dialect: Dialect) -> DriverStatement:
    """The versions of the scopes bound as SCOPES (a list), as one JSON object of those written."""
    asked = bindparam(SCOPES, type_=postgresql.ARRAY(String(40)), required=True)
    statement = select(func.json_object_agg(DataVersion.scope, DataVersion.version).cast(Text)).where(
        DataVersion.scope == func.any(asked))
    return DriverStatement.of(statement, dialect, SCOPES, [GLOBAL])


async def read_versions(database: Database, session: AsyncSession | None, scopes: Sequence[str], *,
                        on_driver: bool = True) -> dict[str, int]:
    """The versions of `scopes` now (a scope never written is at 0): on PostgreSQL one statement on the
    driver (R110), the same whether the front door or the app reads them; else, or when not `on_driver`
    (tracing makes a span of each statement SQLAlchemy runs), through `session`."""
    if database.is_sqlite or not on_driver:
        if session is None:
            raise ValueError("these versions are read through a session")
        return await current_versions(session, scopes)
    written = await database.driver_scalar(_versions_on_driver(database.engine.dialect), list(scopes))
    found = json.loads(written) if isinstance(written, str) else {}
    return {scope: int(found.get(scope, 0)) for scope in scopes}


async def current_versions(session: AsyncSession, scopes: Sequence[str]) -> dict[str, int]:
    """The versions of `scopes` now; a scope never written is at 0."""
    rows = await session.execute(select(DataVersion.scope, DataVersion.version).where(DataVersion.scope.in_(scopes)))
    found: dict[str, int] = {scope: version for scope, version in rows.all()}
    return {scope: found.get(scope, 0) for scope in scopes}


async def next_change(session: AsyncSession, firm_ids: Sequence[int], now: datetime) -> datetime | None:
    """The first moment after `now` at which the answers of these firms change with time alone, no write
    needed (R84): a live session expires, an invitation lapses, an access ends (R52), a transfer offer
    expires. A cached answer lives no longer; None when none is ahead."""
    from models.agreements import AgreementTransfer
    from models.subscriptions import LicenseSession

    ids = sorted(firm_ids)
    if not ids:
        return None
    moments = union_all(
        select(func.min(LicenseSession.expires_at).label("at")).where(
            LicenseSession.firm_id.in_(ids), LicenseSession.ended_at.is_(None), LicenseSession.expires_at > now),
        select(func.min(Membership.invitation_expires_at)).where(
            Membership.firm_id.in_(ids), Membership.invitation_expires_at > now),
        select(func.min(Membership.access_ends_at)).where(Membership.firm_id.in_(ids), Membership.access_ends_at > now),
        select(func.min(AgreementTransfer.expires_at)).where(
            or_(AgreementTransfer.from_firm_id.in_(ids), AgreementTransfer.to_firm_id.in_(ids)),
            AgreementTransfer.expires_at > now),
    ).subquery()
    at = await session.scalar(select(func.min(moments.c.at)))
    return at if isinstance(at, datetime) else None
