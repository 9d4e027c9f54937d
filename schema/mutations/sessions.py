"""Concurrent session mutations (R14): the caller's own sessions only."""

import strawberry

from auth.policy import Action
from models import Company as CompanyRow
from resolvers import sessions
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, run, user_errors
from schema.types.subscriptions import LicenseSession


@strawberry.input
class StartSessionInput:
    company_id: strawberry.ID


@strawberry.input
class RenewSessionInput:
    session_id: strawberry.ID


@strawberry.input
class EndSessionInput:
    session_id: strawberry.ID


@strawberry.type
class SessionPayload:
    session: LicenseSession | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SessionMutations:
    @strawberry.mutation(description="Takes a seat of a concurrent pool for the calling user; give it back with "
                         "endSession.")
    async def start_session(self, info: Info, input: StartSessionInput) -> SessionPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", Action.OWN_SESSION),
                            sessions.start_session, input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))

    @strawberry.mutation
    async def renew_session(self, info: Info, input: RenewSessionInput) -> SessionPayload:
        # No Target: someone else's session is NOT_FOUND even to firm staff who can see it,
        # so the resolver loads it, checks the owner and then authorizes.
        outcome = await run(info, None, lambda uow, _: sessions.renew_session(uow, input.session_id), input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))

    @strawberry.mutation
    async def end_session(self, info: Info, input: EndSessionInput) -> SessionPayload:
        outcome = await run(info, None, lambda uow, _: sessions.end_session(uow, input.session_id), input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))
