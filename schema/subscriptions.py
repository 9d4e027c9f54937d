"""The Subscription root: live events over graphql-transport-ws (DESIGN.md section 5).

A websocket connection authenticates once, with the token of its connection_init payload
(`{"Authorization": "Bearer ..."}`); scopes are checked per operation as for HTTP. The
events themselves come from live/ (live.publish, live.hub). Each event is read in a fresh session,
as the principal stands at that moment: the token is validated again and the grants
reloaded, so an expired or revoked token ends the stream with UNAUTHENTICATED, and what
the caller may no longer see is not sent. No session stays open between events.
"""

import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import func, or_, select
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

import models
from auth.authenticate import ExternalIssuers, authenticate
from auth.principal import Principal
from auth.tokens import InvalidToken
from auth.visibility import visible_audit_events, visible_firms, visible_subscriptions
from licensing.usage import holds_seat
from live.hub import RESYNC, Event, Subscriber, hub_for
from loaders import Loaders
from loaders.base import RequestDb
from models import ids
from models.enums import LicenseType, MembershipStatus
from resolvers.runtime import Runtime
from schema.context import Context, Info
from schema.errors import _classify
from schema.types.audit import AuditEvent
from schema.types.subscriptions import LicenseSubscription, SeatPool

_event_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("bureau_live_event", default=None)

MAX_CATCH_UP = 1000  # audit events sent at most after a RESYNC
MAX_WAIT = 3600.0  # seconds between two seat recounts when nothing happens


class LiveContext(Context):
    """The context of one websocket connection. Strawberry shares it between the
    connection's operations; `db` and `loaders` are those of the event being sent, held in
    a context variable of the operation's task."""

    def __init__(self, runtime: Runtime, external: ExternalIssuers | None = None,
                 authorization: str | None = None) -> None:
        self.principal = Principal(client_id="", scopes=frozenset())  # nobody, until connection_init
        self.runtime = runtime
        self.external = external
        self.authorization = authorization  # the upgrade request's header, for non-browser clients
        self.connection_params: dict[str, Any] = {}
        self.request = self.response = None
        self.persisted_pending: set[str] = set()  # hashes sent with their query, stored once they run (R74)

    def __repr__(self) -> str:
        return f"LiveContext(client_id={self.principal.client_id!r})"

    def __eq__(self, other: object) -> bool:  # one connection is one context
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def _current(self) -> Context:
        context = _event_context.get()
        if context is None:
            raise RuntimeError("no live event is being sent")
        return context

    @property  # type: ignore[override]
    def db(self) -> RequestDb:
        return self._current().db

    @db.setter
    def db(self, value: RequestDb) -> None:
        raise AttributeError("a live context reads each event in its own session")

    @property  # type: ignore[override]
    def loaders(self) -> Loaders:
        return self._current().loaders

    @loaders.setter
    def loaders(self, value: Loaders) -> None:
        raise AttributeError("a live context reads each event in its own session")

    async def connect(self) -> None:
        """Authenticates the connection_init payload's token; raises InvalidToken."""
        params = {str(k).lower(): v for k, v in self.connection_params.items()}
        authorization = params.get("authorization")
        if authorization is not None and not isinstance(authorization, str):
            raise InvalidToken("expected a bearer token")
        authorization = authorization or self.authorization
        async with self.runtime.database.reads() as session:
            self.principal = await authenticate(self.runtime.tokens, session, authorization, external=self.external,
                                                now=self.runtime.now())
        self.authorization = authorization

    @contextlib.asynccontextmanager
    async def event(self) -> AsyncIterator[Context]:
        """A fresh session and the principal as it stands now, for reading one event."""
        now = self.runtime.now()  # one clock per event: its grants (R52) and its reads agree
        async with self.runtime.database.reads() as session:
            try:
                principal = await authenticate(self.runtime.tokens, session, self.authorization,
                                               external=self.external, now=now, cache=self.runtime.principals)
            except InvalidToken as exc:
                raise GraphQLError("Authentication required: " + str(exc),
                                   extensions={"code": "UNAUTHENTICATED"}) from exc
            await session.rollback()  # end the auth read; the event's reads start fresh
            context = Context(principal=principal, db=RequestDb(session, now), runtime=self.runtime)
            previous = _event_context.set(context)
            try:
                yield context
            finally:
                with contextlib.suppress(ValueError):  # when closed from another task's context
                    _event_context.reset(previous)


def _live(info: Info) -> LiveContext:
    if not isinstance(info.context, LiveContext):
        raise GraphQLError("Subscriptions run over the websocket (graphql-transport-ws).",
                           extensions={"code": "BAD_REQUEST"})
    return info.context


def _not_found(type_name: str) -> GraphQLError:
    return GraphQLError(f"No {type_name} with that ID.", extensions={"code": "NOT_FOUND"})


@contextlib.contextmanager
def _closing_on_error(inbox: Subscriber) -> Iterator[None]:
    try:
        yield
    except BaseException:
        inbox.close()
        raise


# ------------------------------------------------------------------ seat usage


@dataclass
class SeatState:
    pools: dict[Any, SeatPool]
    next_change: datetime | None  # when a live session, a pending invitation or an access end lapses


async def _seat_state(context: Context, pk: int | None) -> SeatState:
    row = None
    if pk is not None:
        row = await context.db.scalar(
            select(models.Subscription).where(models.Subscription.id == pk, visible_subscriptions(context.principal)))
    if row is None:
        raise _not_found("LicenseSubscription")
    # The numbers exactly as LicenseSubscription.seats answers them (the resolver is a plain method).
    subscription: Any = LicenseSubscription.from_model(row)
    pools: list[SeatPool] = await subscription.seats(SimpleNamespace(context=context))
    now = context.db.now
    session_ends = select(func.min(models.LicenseSession.expires_at)).where(
        models.LicenseSession.subscription_id == row.id, models.LicenseSession.ended_at.is_(None),
        models.LicenseSession.expires_at > now).scalar_subquery()
    invitation_lapses = select(func.min(models.Membership.invitation_expires_at)).join(
        models.Company, models.Company.id == models.Membership.company_id).where(
        models.Company.agreement_id == row.agreement_id, models.Membership.license_type == LicenseType.NAMED,
        models.Membership.status == MembershipStatus.INVITED,
        models.Membership.invitation_expires_at > now).scalar_subquery()
    # R52: an accountant's access that ends by the clock frees its seat then, with no one acting.
    access_ends = select(func.min(models.Membership.access_ends_at)).join(
        models.Company, models.Company.id == models.Membership.company_id).where(
        models.Company.agreement_id == row.agreement_id, models.Membership.license_type == LicenseType.NAMED,
        holds_seat(now), models.Membership.access_ends_at > now).scalar_subquery()
    times = (await context.db.all(select(session_ends, invitation_lapses, access_ends)))[0]
    moments = [t for t in times if t is not None]
    return SeatState({pool.license_type: pool for pool in pools}, min(moments) if moments else None)


def _touches(event: Event, subscription_pk: int) -> bool:
    return event.get("kind") == RESYNC["kind"] or subscription_pk in event.get("subscription_ids", ())


async def _seat_changes(live: LiveContext, pk: int, state: SeatState,
                        inbox: Subscriber) -> AsyncGenerator[SeatPool, None]:
    try:
        while True:
            wait = MAX_WAIT
            if state.next_change is not None:
                wait = min(max((state.next_change - live.runtime.now()).total_seconds() + 0.5, 0.5), MAX_WAIT)
            batch = await inbox.next(wait)
            if batch is not None and not any(_touches(event, pk) for event in batch):
                continue
            async with live.event() as context:
                new = await _seat_state(context, pk)
                changed = [pool for kind, pool in new.pools.items() if state.pools.get(kind) != pool]
                state = new
                for pool in changed:
                    yield pool
    finally:
        inbox.close()


# ------------------------------------------------------------------ audit events


async def _audit_stream(live: LiveContext, firm_pk: int, last_id: int,
                        inbox: Subscriber) -> AsyncGenerator[AuditEvent, None]:
    sent: deque[int] = deque(maxlen=MAX_CATCH_UP)
    try:
        while True:
            batch = await inbox.next()
            if batch is None:
                continue
            wanted = [e["audit_event_id"] for e in batch if e.get("kind") == "audit" and e.get("firm_id") == firm_pk]
            resync = any(e.get("kind") == RESYNC["kind"] for e in batch)
            if not wanted and not resync:
                continue
            async with live.event() as context:
                which = or_(models.AuditEvent.id.in_(wanted), models.AuditEvent.id > last_id) if resync \
                    else models.AuditEvent.id.in_(wanted)
                rows = await context.db.scalars(
                    select(models.AuditEvent)
                    .where(which, models.AuditEvent.firm_id == firm_pk, visible_audit_events(context.principal))
                    .order_by(models.AuditEvent.id).limit(MAX_CATCH_UP))
                for row in rows:
                    if row.id in sent:
                        continue
                    sent.append(row.id)
                    last_id = max(last_id, row.id)
                    yield AuditEvent.from_model(row)
    finally:
        inbox.close()


# ------------------------------------------------------------------ the root type


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Seat usage of one licence subscription, each time it changes.")
    async def seat_usage_changed(self, info: Info, subscription_id: strawberry.ID) -> AsyncGenerator[SeatPool, None]:
        live = _live(info)
        pk = ids.decode_as(subscription_id, "LicenseSubscription")
        inbox = hub_for(live.runtime.database.engine).subscribe()  # before the first count: no change slips by
        with _closing_on_error(inbox):
            async with live.event() as context:
                state = await _seat_state(context, pk)
        assert pk is not None
        inbox.ready = True
        return _seat_changes(live, pk, state, inbox)

    @strawberry.subscription(description="Audit events of one firm as they happen.")
    async def audit_events(self, info: Info, firm_id: strawberry.ID) -> AsyncGenerator[AuditEvent, None]:
        live = _live(info)
        pk = ids.decode_as(firm_id, "Firm")
        inbox = hub_for(live.runtime.database.engine).subscribe()
        with _closing_on_error(inbox):
            async with live.event() as context:
                visible = pk is not None and await context.db.scalar(
                    select(models.Firm.id).where(models.Firm.id == pk, visible_firms(context.principal)))
                if not visible:
                    raise _not_found("Firm")
                last_id = await context.db.scalar(
                    select(func.max(models.AuditEvent.id)).where(models.AuditEvent.firm_id == pk))
        assert pk is not None
        inbox.ready = True
        return _audit_stream(live, pk, int(last_id or 0), inbox)


class LiveOperations(SchemaExtension):
    """Over the websocket only subscriptions run (queries and mutations go over HTTP, which
    gives them their request's session); and every streamed result gets its errors' codes
    as HTTP answers do."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and context.graphql_document is not None:
            live = isinstance(context.context, LiveContext)
            try:
                kind = context.operation_type
            except Exception:  # noqa: BLE001 - strawberry reports a bad operation name itself
                kind = OperationType.SUBSCRIPTION if live else OperationType.QUERY
            if live and kind is not OperationType.SUBSCRIPTION:
                context.pre_execution_errors = [GraphQLError(
                    "Only subscriptions run over the websocket; send queries and mutations over HTTP.",
                    extensions={"code": "BAD_REQUEST"})]
            elif not live and kind is OperationType.SUBSCRIPTION:
                # Refused before it starts: over HTTP a subscription's stream would end in an unexpected error.
                context.pre_execution_errors = [GraphQLError(
                    "Subscriptions run over the websocket (graphql-transport-ws on /graphql), not over HTTP.",
                    extensions={"code": "BAD_REQUEST"})]
        yield

    def on_stream_result(self, result: Any) -> Iterator[None]:
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [_classify(error, self.execution_context.operation_name) for error in result.errors]
        yield


__all__ = ["LiveContext", "LiveOperations", "Subscription"]
