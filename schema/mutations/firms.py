"""Firm mutations."""

from decimal import Decimal

import strawberry

from auth.policy import Action
from models import Firm as FirmRow
from models import FirmMember as FirmMemberRow
from resolvers import firms
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.common import FirmRole
from schema.types.firms import Firm, FirmMember


@strawberry.input
class CreateFirmInput:
    name: str
    organization_number: str | None = None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")
    currency: str = strawberry.field(description="ISO 4217.")
    idempotency_key: str | None = None


@strawberry.input
class UpdateFirmInput:
    firm_id: strawberry.ID
    name: str | None = None
    has_reseller_agreement: bool | None = None
    is_certified: bool | None = None
    reseller_discount_percent: Decimal | None = strawberry.field(
        default=None, description="Discount off list prices on the consolidated invoice, 0 to 100."
    )


@strawberry.type
class FirmPayload:
    firm: Firm | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AddFirmStaffInput:
    firm_id: strawberry.ID
    name: str
    email: str
    role: FirmRole  # type: ignore[valid-type]


@strawberry.input
class RemoveFirmStaffInput:
    firm_member_id: strawberry.ID


@strawberry.type
class FirmMemberPayload:
    firm_member: FirmMember | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FirmMutations:
    @mutation(Action.PLATFORM, description="Vendor back office (platform:admin): register a partner firm.")
    async def create_firm(self, info: Info, input: CreateFirmInput) -> FirmPayload:
        outcome = await run(info, None, lambda uow, _: firms.create_firm(
            uow, name=input.name, organization_number=input.organization_number,
            country=input.country, currency=input.currency), input=input)
        return FirmPayload(firm=Firm.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_FIRM, vendor_when=lambda input: any(v is not None for v in (
        input.has_reseller_agreement, input.is_certified, input.reseller_discount_percent)),
        description="Vendor back office (platform:admin) for the reseller agreement, certification and discount; firm "
        "admins for the rest.")
    async def update_firm(self, info: Info, input: UpdateFirmInput) -> FirmPayload:
        outcome = await run(info, Target(FirmRow, input.firm_id, "firmId"), lambda uow, firm: firms.update_firm(
            uow, firm, name=input.name, has_reseller_agreement=input.has_reseller_agreement,
            is_certified=input.is_certified, reseller_discount_percent=input.reseller_discount_percent), input=input)
        return FirmPayload(firm=Firm.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_FIRM, grants=lambda input, firm: [input.role])
    async def add_firm_staff(self, info: Info, input: AddFirmStaffInput) -> FirmMemberPayload:
        outcome = await run(info, Target(FirmRow, input.firm_id, "firmId"),
                            lambda uow, firm: firms.add_firm_staff(uow, firm, name=input.name, email=input.email,
                                                                   role=input.role), input=input)
        return FirmMemberPayload(firm_member=FirmMember.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_FIRM, grants=lambda input, member: [member.role])
    async def remove_firm_staff(self, info: Info, input: RemoveFirmStaffInput) -> FirmMemberPayload:
        outcome = await run(info, Target(FirmMemberRow, input.firm_member_id, "firmMemberId"),
                            firms.remove_firm_staff, input=input)
        return FirmMemberPayload(firm_member=FirmMember.maybe(outcome.value), user_errors=user_errors(outcome))
