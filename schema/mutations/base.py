"""How every mutation runs: the target and the action are declared at the field, loaded and
authorized here before the resolver runs, all in one transaction (R26)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from auth.policy import Action
from models import Base
from resolvers.base import Outcome, UnitOfWork, run_in_transaction
from resolvers.idempotency import IdempotencyKey, remember, replay
from schema.context import Info
from schema.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """The object a mutation acts on: its model, global ID, input field name and the action."""

    model: type[Base]
    global_id: str | None
    field: str
    action: Action
    lock: bool = False


async def run(
    info: Info,
    target: Target | None,
    work: Callable[[UnitOfWork, Any], Awaitable[T]],
    *,
    input: Any = None,
) -> Outcome[T]:
    """Loads the target (NOT_FOUND when it cannot be seen), authorizes the action (FORBIDDEN),
    runs the resolver and commits; userErrors roll everything back. An input with an
    `idempotency_key` makes a repeat return the first result (R27)."""
    context = info.context
    key = getattr(input, "idempotency_key", None)
    idem = IdempotencyKey(key, info.field_name, input) if key and not getattr(input, "dry_run", False) else None

    async def unit(uow: UnitOfWork) -> T:
        obj: Any = None
        if target is not None:
            obj = await uow.get(target.model, target.global_id, ["input", target.field], lock=target.lock)
            uow.authorize(target.action, obj)
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


def owner_target(owner_id: str, action: Action) -> Target:
    """The target of an `ownerId` that names a firm or one of its agreements."""
    from models import Agreement, Firm, ids

    model = Firm if ids.decode_as(owner_id, "Firm") is not None else Agreement
    return Target(model, owner_id, "ownerId", action)


def platform_only(info: Info) -> None:
    """For mutations with no target object: the vendor's back office only."""
    from auth.policy import Tenancy, authorize

    authorize(info.context.principal, Action.PLATFORM, Tenancy(firm_id=0))


def user_errors(outcome: Outcome[Any]) -> list[UserError]:
    return [UserError.of(violation) for violation in outcome.errors]
