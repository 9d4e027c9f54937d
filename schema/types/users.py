"""Users and memberships."""

from datetime import date, datetime

import strawberry

import models
from licensing import memberships as rules
from loaders import relations as r
from models.enums import LoginMethod as LoginMethodEnum
from models.enums import MembershipStatus as MembershipStatusEnum
from schema.context import Info
from schema.types.base import FromModel
from schema.types.common import (
    Connection,
    LicenseType,
    LoginMethod,
    MembershipStatus,
    Node,
    PayType,
    Role,
    UserStatus,
    connection,
    page_args,
)
from schema.types.companies import Company


@strawberry.type
class User(Node, FromModel):
    model: strawberry.Private[models.User]
    name: str
    email: str | None
    status: UserStatus  # type: ignore[valid-type]

    @strawberry.field(description="True when a personal identity number is on file; the number itself is never "
                      "returned.")
    def has_personal_identity_number(self) -> bool:
        return self.model.personal_identity_digest is not None

    @strawberry.field
    def login_methods(self) -> list[LoginMethod]:  # type: ignore[valid-type]
        methods = []
        if self.model.email:
            methods.append(LoginMethodEnum.EMAIL)
        if self.model.personal_identity_digest:
            methods.append(LoginMethodEnum.BANKID)
        return methods

    @strawberry.field
    async def memberships(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection["Membership"]:
        return await connection(info, r.MembershipsByUserLoader, self.model.id, page_args(first, after),
                                Membership.from_model)


def _status(root: "Membership", info: Info) -> MembershipStatusEnum:
    # R52: the stored status cannot change by itself when an end passes; the end decides.
    return rules.effective_status(root.model.status, root.model.access_ends_at, info.context.db.now)


@strawberry.type(description="A user's access to one company: a role and the licence type it is charged under.")
class Membership(Node, FromModel):
    model: strawberry.Private[models.Membership]
    role: Role  # type: ignore[valid-type]
    license_type: LicenseType  # type: ignore[valid-type]
    status: MembershipStatus = strawberry.field(  # type: ignore[valid-type]
        resolver=_status,
        description="INVITED or ACTIVE while the membership grants its role; DEACTIVATED once deactivated, "
                    "revoked, or from its accessEndsOn on.",
    )
    employee_number: str | None
    pay_type: PayType | None  # type: ignore[valid-type]
    invited_at: datetime | None
    invitation_expires_at: datetime | None = strawberry.field(
        description="An invitation not accepted by then lapses and frees its seat. Null while it waits for the "
        "BankID sign-in of a user without an email, which accepts it: such an invitation does not lapse."
    )
    activated_at: datetime | None

    @strawberry.field(description="The first day without access (UTC) of accountant access granted with `until`: "
                      "from 00:00 UTC that day the membership reads DEACTIVATED, grants nothing and frees its seat. "
                      "Null when no end is set.")
    def access_ends_on(self) -> date | None:
        return rules.access_ends_on(self.model.access_ends_at)

    @strawberry.field
    async def user(self, info: Info) -> User:
        row = await info.context.loaders.get(r.UserByIdLoader).load(self.model.user_id)
        if row is None:
            raise LookupError("membership's user not visible")
        return User.from_model(row)

    @strawberry.field
    async def company(self, info: Info) -> Company:
        row = await info.context.loaders.get(r.CompanyByIdLoader).load(self.model.company_id)
        if row is None:
            raise LookupError("membership's company not visible")
        return Company.from_model(row)

    @strawberry.field
    async def approver(self, info: Info) -> User | None:
        if self.model.approver_id is None:
            return None
        return User.maybe(await info.context.loaders.get(r.UserByIdLoader).load(self.model.approver_id))
