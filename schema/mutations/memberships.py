"""Membership mutations after the invitation: accountant access and its end, changes,
deactivation, reactivation and a renewed welcome email."""

from datetime import date

import strawberry

from auth.policy import Action
from models import Company as CompanyRow
from models import Membership as MembershipRow
from models.enums import Role as RoleEnum
from resolvers import memberships
from resolvers.base import Outcome
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.mutations.users import InviteUserPayload
from schema.types.common import LicenseType, PayType, Role
from schema.types.users import Membership


@strawberry.input
class GrantAccountantAccessInput:
    company_id: strawberry.ID
    name: str
    email: str
    idempotency_key: str | None = None
    until: date | None = strawberry.field(
        default=None,
        description="The first day without access (ISO date, UTC): the access ends by itself at 00:00 UTC of this "
                    "day, and its seat is free from then on. Must be after today. Without it, access lasts until "
                    "revoked.",
    )


@strawberry.input
class UpdateMembershipInput:
    membership_id: strawberry.ID
    role: Role | None = None  # type: ignore[valid-type]
    license_type: LicenseType | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="NAMED or CONCURRENT; client-user licences are handed out with assignClientUser."
    )
    employee_number: str | None = strawberry.field(default=None, description="Blank clears it.")
    pay_type: PayType | None = None  # type: ignore[valid-type]
    approver_id: strawberry.ID | None = strawberry.field(
        default=None, description="A member of the same company; blank clears it."
    )


@strawberry.input
class DeactivateMembershipInput:
    membership_id: strawberry.ID


@strawberry.input
class ReactivateMembershipInput:
    membership_id: strawberry.ID
    idempotency_key: str | None = None


@strawberry.input
class ResendWelcomeEmailInput:
    membership_id: strawberry.ID


@strawberry.input
class RevokeAccountantAccessInput:
    membership_id: strawberry.ID = strawberry.field(description="An ACCOUNTANT membership.")


@strawberry.type
class MembershipPayload:
    membership: Membership | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _membership(membership_id: str) -> Target:
    """A membership's changes need "manage members" on its company; its row is locked."""
    return Target(MembershipRow, membership_id, "membershipId", lock=True)


def _its_role(input: object, membership: MembershipRow) -> list[RoleEnum]:
    return [membership.role]


def _payload(outcome: Outcome[MembershipRow]) -> MembershipPayload:
    return MembershipPayload(membership=Membership.maybe(outcome.value), user_errors=user_errors(outcome))


@strawberry.type
class MembershipMutations:
    @mutation(Action.MANAGE_MEMBERS, grants=lambda input, company: [RoleEnum.ACCOUNTANT],
              description="A client invites its accountant: role ACCOUNTANT.")
    async def grant_accountant_access(self, info: Info, input: GrantAccountantAccessInput) -> InviteUserPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", lock=True),
                            lambda uow, company: memberships.grant_accountant_access(
                                uow, company, name=input.name, email=input.email, until=input.until), input=input)
        membership, queued = outcome.value or (None, False)
        return InviteUserPayload(membership=Membership.maybe(membership), welcome_email_queued=queued,
                                 user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_MEMBERS, grants=lambda input, membership: [membership.role, input.role])
    async def update_membership(self, info: Info, input: UpdateMembershipInput) -> MembershipPayload:
        return _payload(await run(info, _membership(input.membership_id),
                                  lambda uow, membership: memberships.update_membership(
                                      uow, membership, role=input.role, license_type=input.license_type,
                                      employee_number=input.employee_number, pay_type=input.pay_type,
                                      approver_id=input.approver_id), input=input))

    @mutation(Action.MANAGE_MEMBERS, grants=_its_role)
    async def deactivate_membership(self, info: Info, input: DeactivateMembershipInput) -> MembershipPayload:
        return _payload(await run(info, _membership(input.membership_id), memberships.deactivate_membership,
                                  input=input))

    @mutation(Action.MANAGE_MEMBERS, grants=_its_role,
              description="Gives a deactivated membership back its access; the seat rules apply as for an invitation.")
    async def reactivate_membership(self, info: Info, input: ReactivateMembershipInput) -> MembershipPayload:
        return _payload(await run(info, _membership(input.membership_id), memberships.reactivate_membership,
                                  input=input))

    @mutation(Action.MANAGE_MEMBERS, grants=_its_role,
              description="Renews a pending invitation (a lapsed one needs a free seat again) and mails it anew. "
              "A user without an email gets no email: the invitation is renewed to wait for their BankID sign-in.")
    async def resend_welcome_email(self, info: Info, input: ResendWelcomeEmailInput) -> MembershipPayload:
        return _payload(await run(info, _membership(input.membership_id), memberships.resend_welcome_email,
                                  input=input))

    @mutation(Action.MANAGE_MEMBERS, grants=_its_role,
              description="Ends an accountant's access at once: the membership is DEACTIVATED, its seat is free and "
                          "any end set with `until` is dropped. Only ACCOUNTANT memberships.")
    async def revoke_accountant_access(self, info: Info, input: RevokeAccountantAccessInput) -> MembershipPayload:
        return _payload(await run(info, _membership(input.membership_id), memberships.revoke_accountant_access,
                                  input=input))
