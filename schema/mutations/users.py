"""Invitation and membership mutations."""

import strawberry

from auth.policy import Action
from models import Company as CompanyRow
from models import User as UserRow
from resolvers import users
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.common import LicenseType, PayType, Role
from schema.types.users import Membership, User


@strawberry.input
class InviteUserInput:
    company_id: strawberry.ID
    name: str
    email: str | None = strawberry.field(
        default=None,
        description="Needed for the welcome email; without it the user must sign in with BankID and give an "
        "email then.",
    )
    personal_identity_number: str | None = strawberry.field(
        default=None, description="Swedish personnummer (YYYYMMDD-NNNN or YYMMDD-NNNN); enables BankID sign-in."
    )
    role: Role  # type: ignore[valid-type]
    license_type: LicenseType  # type: ignore[valid-type]
    employee_number: str | None = None
    pay_type: PayType | None = None  # type: ignore[valid-type]
    approver_id: strawberry.ID | None = None
    send_welcome_email: bool | None = True
    idempotency_key: str | None = None


@strawberry.type
class InviteUserPayload:
    membership: Membership | None = None
    welcome_email_queued: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RequestEmailChangeInput:
    email: str


@strawberry.input
class CorrectUserIdentityInput:
    user_id: strawberry.ID
    email: str | None = strawberry.field(default=None, description="The user's right email.")
    personal_identity_number: str | None = strawberry.field(
        default=None, description="The user's right Swedish personnummer; never returned.")
    remove_personal_identity_number: bool | None = False


@strawberry.type
class UserPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserMutations:
    @mutation(Action.MANAGE_MEMBERS, grants=lambda input, company: [input.role])
    async def invite_user(self, info: Info, input: InviteUserInput) -> InviteUserPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", lock=True),
                            lambda uow, company: users.invite_user(
                                uow, company, name=input.name, email=input.email,
                                personal_identity_number=input.personal_identity_number, role=input.role,
                                license_type=input.license_type, employee_number=input.employee_number,
                                pay_type=input.pay_type, approver_id=input.approver_id,
                                send_welcome_email=input.send_welcome_email is not False), input=input)
        membership, queued = outcome.value or (None, False)
        return InviteUserPayload(membership=Membership.maybe(membership), welcome_email_queued=queued,
                                 user_errors=user_errors(outcome))

    @mutation(Action.OWN_ACCOUNT, description="The signed-in user changes their own email: a link goes to the new "
              "address, and the email changes when it is opened.")
    async def request_email_change(self, info: Info, input: RequestEmailChangeInput) -> UserPayload:
        # No target: the caller's own account, which OWN_ACCOUNT asks for.
        outcome = await run(info, None, lambda uow, _: users.request_email_change(uow, email=input.email),
                            input=input)
        return UserPayload(user=User.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.PLATFORM, description="Vendor back office (platform:admin): correct a user's email or personal "
              "identity number, checked with the person out of band. Links sent before stop working.")
    async def correct_user_identity(self, info: Info, input: CorrectUserIdentityInput) -> UserPayload:
        outcome = await run(info, Target(UserRow, input.user_id, "userId"),
                            lambda uow, user: users.correct_identity(
                                uow, user, email=input.email, personal_identity_number=input.personal_identity_number,
                                remove_personal_identity_number=bool(input.remove_personal_identity_number)),
                            input=input)
        return UserPayload(user=User.maybe(outcome.value), user_errors=user_errors(outcome))
