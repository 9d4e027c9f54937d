"""Invitation and membership mutations."""

import strawberry

from auth.policy import Action
from models import Company as CompanyRow
from resolvers import users
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, run, user_errors
from schema.types.common import LicenseType, PayType, Role
from schema.types.users import Membership


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


@strawberry.type
class UserMutations:
    @strawberry.mutation
    async def invite_user(self, info: Info, input: InviteUserInput) -> InviteUserPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", Action.MANAGE_MEMBERS,
                                   lock=True),
                            lambda uow, company: users.invite_user(
                                uow, company, name=input.name, email=input.email,
                                personal_identity_number=input.personal_identity_number, role=input.role,
                                license_type=input.license_type, employee_number=input.employee_number,
                                pay_type=input.pay_type, approver_id=input.approver_id,
                                send_welcome_email=input.send_welcome_email is not False), input=input)
        membership, queued = outcome.value or (None, False)
        return InviteUserPayload(membership=Membership.maybe(membership), welcome_email_queued=queued,
                                 user_errors=user_errors(outcome))
