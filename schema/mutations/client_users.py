"""Client-user mutations (R16, R17): firm admins only."""

import strawberry

from auth.policy import Action
from models import ClientUser as ClientUserRow
from models import Firm as FirmRow
from resolvers import client_users
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.firms import ClientUser


@strawberry.input
class AssignClientUserInput:
    firm_id: strawberry.ID
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="An existing user, or a new one by name and email."
    )
    name: str | None = None
    email: str | None = None
    company_ids: list[strawberry.ID]
    idempotency_key: str | None = None


@strawberry.input
class AddClientUserCompanyInput:
    client_user_id: strawberry.ID
    company_id: strawberry.ID


@strawberry.input
class RemoveClientUserCompanyInput:
    client_user_id: strawberry.ID
    company_id: strawberry.ID


@strawberry.input
class RemoveClientUserInput:
    client_user_id: strawberry.ID


@strawberry.type
class RemoveClientUserPayload:
    removed_client_user_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ClientUserPayload:
    client_user: ClientUser | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _client_user(client_user_id: strawberry.ID) -> Target:
    # The row lock serialises changes to one client user's companies (the limit of five).
    return Target(ClientUserRow, client_user_id, "clientUserId", lock=True)


@strawberry.type
class ClientUserMutations:
    @mutation(Action.MANAGE_CLIENT_USERS)
    async def assign_client_user(self, info: Info, input: AssignClientUserInput) -> ClientUserPayload:
        outcome = await run(info, Target(FirmRow, input.firm_id, "firmId"),
                            lambda uow, firm: client_users.assign_client_user(
                                uow, firm, user_id=input.user_id, name=input.name, email=input.email,
                                company_ids=list(input.company_ids)), input=input)
        return ClientUserPayload(client_user=ClientUser.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_CLIENT_USERS)
    async def add_client_user_company(self, info: Info, input: AddClientUserCompanyInput) -> ClientUserPayload:
        outcome = await run(info, _client_user(input.client_user_id),
                            lambda uow, client_user: client_users.add_client_user_company(
                                uow, client_user, company_id=input.company_id), input=input)
        return ClientUserPayload(client_user=ClientUser.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_CLIENT_USERS)
    async def remove_client_user_company(self, info: Info, input: RemoveClientUserCompanyInput) -> ClientUserPayload:
        outcome = await run(info, _client_user(input.client_user_id),
                            lambda uow, client_user: client_users.remove_client_user_company(
                                uow, client_user, company_id=input.company_id), input=input)
        return ClientUserPayload(client_user=ClientUser.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_CLIENT_USERS, description="Releases a client user: every assignment and membership ends "
              "and its CLIENT_USER seat frees, so the seat count may then go down.")
    async def remove_client_user(self, info: Info, input: RemoveClientUserInput) -> RemoveClientUserPayload:
        outcome = await run(info, _client_user(input.client_user_id), client_users.remove_client_user, input=input)
        removed = strawberry.ID(outcome.value) if outcome.value else None
        return RemoveClientUserPayload(removed_client_user_id=removed, user_errors=user_errors(outcome))
