"""How every mutation runs: its Action is declared at the field (`@mutation(Action....)`),
like its scope in schema.scopes; its target is loaded and authorized here before the
resolver runs, all in one transaction (R26). A mutation without a declared Action is
refused (deny by default), and tests/unit/test_actions.py walks the schema for them."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from sqlalchemy import select

from auth.policy import Action, Forbidden, Tenancy, authorize, authorize_grant, tenancy_of
from licensing.errors import RuleViolation
from models import Base
from models.enums import FirmRole, Role, UserErrorCode
from observability import requests
from resolvers.base import Outcome, UnitOfWork, run_in_transaction
from resolvers.idempotency import IdempotencyKey, remember, replay
from schema.context import Info
from schema.errors import UserError

T = TypeVar("T")


GUARD = "bureau.guard"


@dataclass(frozen=True)
class Guard:
    """What a mutation needs, declared at its field: `action` on its target (role and
    tenancy); PLATFORM instead when `vendor_when(input)` holds (fields only the vendor may
    set); and the role ceiling for every role `grants(input, target)` names (the roles the
    mutation grants, and those of the membership it acts on)."""

    action: Action
    vendor_when: Callable[[Any], bool] | None = None
    grants: Callable[[Any, Any], Iterable[Role | FirmRole | None]] | None = None
    # Archived objects (and memberships of archived companies) refuse every other mutation.
    on_archived: bool = False


def mutation(action: Action, *, description: str | None = None, vendor_when: Callable[[Any], bool] | None = None,
             grants: Callable[[Any, Any], Iterable[Role | FirmRole | None]] | None = None,
             on_archived: bool = False) -> Any:
    """`@strawberry.mutation` with its Guard."""
    return strawberry.mutation(description=description, metadata={GUARD: Guard(
        action, vendor_when=vendor_when, grants=grants, on_archived=on_archived)})


def guard_of(info: Info) -> Guard:
    guard = info._field.metadata.get(GUARD)
    if not isinstance(guard, Guard):
        raise Forbidden("this operation declares no action")
    return guard


@dataclass(frozen=True)
class Target:
    """The object a mutation acts on: its model, global ID and input field name; `lock`
    takes its row lock; `own` makes any row but the caller's own NOT_FOUND; `tenancy`
    says where the action is checked when that is not the object's own place (a transfer
    is accepted by the receiving firm)."""

    model: type[Base]
    global_id: str | None
    field: str
    lock: bool = False
    own: bool = False
    tenancy: Callable[[Any], Tenancy] | None = None


async def run(
    info: Info,
    target: Target | None,
    work: Callable[[UnitOfWork, Any], Awaitable[T]],
    *,
    input: Any = None,
) -> Outcome[T]:
    """Loads the target (NOT_FOUND when it cannot be seen), authorizes the field's declared
    action and role ceiling (FORBIDDEN), runs the resolver and commits; userErrors roll
    everything back. An input with an `idempotency_key` makes a repeat return the first
    result (R27)."""
    context = info.context
    guard = guard_of(info)
    action = Action.PLATFORM if guard.vendor_when is not None and guard.vendor_when(input) else guard.action
    key = getattr(input, "idempotency_key", None)
    idem = IdempotencyKey(key, info.field_name, input) if key and not getattr(input, "dry_run", False) else None

    async def unit(uow: UnitOfWork) -> T:
        obj: Any = None
        if target is None:
            # No object to act on: the vendor's creations, or the caller's own account.
            authorize(uow.principal, action, Tenancy(firm_id=0))
        else:
            obj = await uow.get(target.model, target.global_id, ["input", target.field], lock=target.lock)
            if target.own and (uow.principal.user_id is None or getattr(obj, "user_id", None) != uow.principal.user_id):
                raise RuleViolation(UserErrorCode.NOT_FOUND, f"No {target.model.__name__} with that ID.",
                                    ["input", target.field])
            where = target.tenancy(obj) if target.tenancy is not None else tenancy_of(obj)
            authorize(uow.principal, action, where)
            for role in guard.grants(input, obj) if guard.grants is not None else ():
                if role is not None:
                    authorize_grant(uow.principal, role, where)
            if not guard.on_archived:
                await _refuse_archived(uow, obj, ["input", target.field])
        if idem is not None:
            seen, first = await replay(uow, idem)
            if seen:
                return first  # type: ignore[no-any-return]
        result = await work(uow, obj)
        if idem is not None:
            remember(uow, idem, result)
        return result

    dry_run = bool(getattr(input, "dry_run", False))
    outcome = await run_in_transaction(context.runtime, context.principal, unit, dry_run=dry_run)
    context.loaders.clear()
    return outcome


async def _refuse_archived(uow: UnitOfWork, obj: Any, field: list[str]) -> None:
    from models import Company, Membership

    archived = getattr(obj, "archived_at", None)
    if isinstance(obj, Membership):
        archived = await uow.session.scalar(select(Company.archived_at).where(Company.id == obj.company_id))
    if archived is not None:
        raise RuleViolation(UserErrorCode.ARCHIVED, "It is archived: take it out of the archive first.", field)


def owner_target(owner_id: str) -> Target:
    """The target of an `ownerId` that names a firm or one of its agreements."""
    from models import Agreement, Firm, ids

    model = Firm if ids.decode_as(owner_id, "Firm") is not None else Agreement
    return Target(model, owner_id, "ownerId")


def user_errors(outcome: Outcome[Any]) -> list[UserError]:
    requests.note_user_errors(violation.code.value for violation in outcome.errors)  # the request's log line
    return [UserError.of(violation) for violation in outcome.errors]
