"""Concurrent session mutations (R14): the caller's own sessions only."""

import strawberry

from auth.policy import Action
from models import Company as CompanyRow
from models import LicenseSession as LicenseSessionRow
from resolvers import sessions
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
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


def _own_session(session_id: strawberry.ID) -> Target:
    # Someone else's session is NOT_FOUND, even to firm staff who can see it.
    return Target(LicenseSessionRow, session_id, "sessionId", own=True)


@strawberry.type
class SessionMutations:
    @mutation(Action.OWN_SESSION, description="Takes a seat of a concurrent pool for the calling user; give it back "
              "with endSession.")
    async def start_session(self, info: Info, input: StartSessionInput) -> SessionPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId"),
                            sessions.start_session, input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.OWN_SESSION)
    async def renew_session(self, info: Info, input: RenewSessionInput) -> SessionPayload:
        outcome = await run(info, _own_session(input.session_id), sessions.renew_session, input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.OWN_SESSION)
    async def end_session(self, info: Info, input: EndSessionInput) -> SessionPayload:
        outcome = await run(info, _own_session(input.session_id), sessions.end_session, input=input)
        return SessionPayload(session=LicenseSession.maybe(outcome.value), user_errors=user_errors(outcome))
