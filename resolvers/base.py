"""The unit of work every mutation runs in: one transaction, one authorization entry point.

A mutation either commits everything it did, or (on a RuleViolation or any error) nothing
(R26). Contention the database reports (a unique key taken by a concurrent request, a
serialization failure, a deadlock) is retried with the whole unit of work, so that the
rules see the winner's rows and answer with the proper userError; CONFLICT only when
retrying did not help.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.policy import Action, authorize, tenancy_of
from auth.principal import Principal
from auth.visibility import VISIBILITY
from licensing.errors import RuleViolation
from live.publish import Seats, record_affects  # Seats: for the callers of UnitOfWork.audit
from models import AuditEvent, Base
from models import ids as global_ids
from models.enums import UserErrorCode
from observability import tracing
from resolvers.runtime import Runtime

log = logging.getLogger("bureau.mutations")
T = TypeVar("T")
B = TypeVar("B", bound=Base)
MAX_ATTEMPTS = 4


@dataclass
class Outcome(Generic[T]):
    value: T | None = None
    errors: list[RuleViolation] = field(default_factory=list)


class UnitOfWork:
    def __init__(self, session: AsyncSession, principal: Principal, runtime: Runtime) -> None:
        self.session = session
        self.principal = principal
        self.runtime = runtime

    # ------------------------------------------------------------- loading and authorizing

    async def get(
        self,
        model: type[B],
        global_id: str | None,
        field: Sequence[str],
        *,
        type_names: Sequence[str] | None = None,
        lock: bool = False,
    ) -> B:
        """The object behind a global ID, if the caller may see it; else NOT_FOUND at `field`."""
        names = type_names or (model.__name__ if model.__name__ != "Subscription" else "LicenseSubscription",)
        pk = global_ids.decode_as(global_id or "", *names)
        row = None
        if pk is not None:
            m: Any = model
            stmt = select(m).where(m.id == pk, VISIBILITY[model](self.principal))
            if lock:
                stmt = stmt.with_for_update()
            row = await self.session.scalar(stmt)
        if row is None:
            raise RuleViolation(UserErrorCode.NOT_FOUND, f"No {names[0]} with that ID.", field)
        return row  # type: ignore[no-any-return]

    def authorize(self, action: Action, obj: object) -> None:
        """Role and tenancy: raises Forbidden, a top-level error."""
        authorize(self.principal, action, tenancy_of(obj))

    async def get_authorized(
        self, model: type[B], global_id: str | None, field: Sequence[str], action: Action, *, lock: bool = False
    ) -> B:
        obj = await self.get(model, global_id, field, lock=lock)
        self.authorize(action, obj)
        return obj

    # ------------------------------------------------------------- audit (R29)

    def audit(
        self,
        action: str,
        subject: Base,
        summary: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        firm_id: int | None = None,
        company_id: int | None = None,
        subscription_id: int | None = None,
        actor_user_id: int | None = None,
        affects: Iterable[Seats] = (),
    ) -> AuditEvent:
        """R29. The actor is the caller, or `actor_user_id` where the caller is a link's holder.

        `affects`: whose seat usage the change may move (R72), announced with the row when it
        commits (live.publish): a subscription, an agreement (its subscription), a company (its
        agreement's, as it is now), a firm (its master licence's CLIENT_USER pool). A change that
        moves seats and says nothing leaves seatUsageChanged subscribers unaware."""
        event = AuditEvent(
            firm_id=firm_id if firm_id is not None else _firm_of(subject),
            company_id=company_id,
            subscription_id=subscription_id,
            occurred_at=self.runtime.now(),
            action=action,
            actor_user_id=actor_user_id if actor_user_id is not None else self.principal.user_id,
            client_id=self.principal.client_id or None,
            summary=summary,
            subject_id=global_ids.of(subject),
            before=_json(before),
            after=_json(after),
        )
        self.session.add(event)
        record_affects(self.session.sync_session, event, affects)
        return event


def _firm_of(subject: Base) -> int | None:
    """The firm an event belongs to: the subject's own firm, or the firm itself."""
    from models import Firm

    if isinstance(subject, Firm):
        return subject.id
    firm_id = getattr(subject, "firm_id", None)
    return firm_id if isinstance(firm_id, int) else None


def _json(values: dict[str, Any] | None) -> str | None:
    return None if values is None else json.dumps(values, default=str, sort_keys=True)


def changes(obj: object, new_values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Applies the values that differ and returns (before, after) of just those."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in new_values.items():
        old = getattr(obj, name)
        if old != value:
            before[name], after[name] = old, value
            setattr(obj, name, value)
    return before, after


def _retryable(exc: DBAPIError) -> bool:
    """Contention worth a retry: a unique key a concurrent request took first, a
    serialization failure, a deadlock, a busy SQLite file. Anything else is a bug."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in ("23505", "40001", "40P01", "55P03"):
        return True
    text = str(orig).lower()
    if isinstance(exc, IntegrityError):
        return "unique constraint failed" in text
    return isinstance(exc, OperationalError) and "locked" in text


class _DryRun(Exception):
    """Carries a dry run's answer out of its transaction, which is then rolled back."""

    def __init__(self, value: Any) -> None:
        self.value = value


async def run_in_transaction(
    runtime: Runtime,
    principal: Principal,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    dry_run: bool = False,
) -> Outcome[T]:
    """Runs `work` in one transaction; RuleViolations roll it back and become userErrors.
    A dry run does all the same work and checks, then rolls back (R26): its answer must be
    plain values, not rows."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with tracing.span("unit of work", **{"bureau.attempt": attempt}):
            async with runtime.database.sessions() as session:
                try:
                    async with session.begin():
                        value = await work(UnitOfWork(session, principal, runtime))
                        if dry_run:
                            raise _DryRun(value)
                    return Outcome(value=value)
                except _DryRun as done:
                    return Outcome(value=done.value)
                except RuleViolation as violation:
                    return Outcome(errors=violation.all)
                except DBAPIError as exc:
                    if not _retryable(exc):
                        raise
                    log.info("retrying after contention (attempt %d): %s", attempt, type(exc.orig).__name__)
    return Outcome(errors=[RuleViolation(UserErrorCode.CONFLICT, "The change met concurrent changes; try again.")])
