"""Who needs a seat of an agreement, and through which companies (R13).

Both fields follow the "read subscription" row of section 3 (auth.visibility.visible_seat_usage):
FIRM_ADMIN, FIRM_ADVISOR, and the agreement's ADMINISTRATORs and ACCOUNTANTs see every user
and company that counts, the other roles an empty list. Users and companies shown here are
loaded with the line, as part of what that reader may see about the agreement's seats.
"""

from typing import TYPE_CHECKING, Annotated

import strawberry

from licensing.usage import LICENSE_TYPES
from loaders import relations as r
from loaders.base import PageArgs
from schema.context import Info
from schema.types.common import Connection, LicenseType, list_connection

if TYPE_CHECKING:
    from schema.types.companies import Company
    from schema.types.users import User

CompanyT = Annotated["Company", strawberry.lazy("schema.types.companies")]
UserT = Annotated["User", strawberry.lazy("schema.types.users")]


@strawberry.type
class ChargeableAccess:
    license_type: LicenseType  # type: ignore[valid-type]
    users: int


@strawberry.type
class ChargeLine:
    line: strawberry.Private[r.ChargeLineRow]
    license_type: LicenseType  # type: ignore[valid-type]

    @strawberry.field
    def user(self) -> UserT:
        from schema.types.users import User

        return User.from_model(self.line.user)

    @strawberry.field
    async def companies(self, info: Info) -> list[CompanyT]:
        from schema.types.companies import Company

        rows = await info.context.loaders.get(r.CompaniesByChargeLineLoader).load(
            (self.line.agreement_id, self.line.user.id, self.line.license_type))
        return [Company.from_model(row) for row in rows]


async def chargeable_accesses(info: Info, agreement_id: int) -> list[ChargeableAccess]:
    """Every licence type that has users, in the order NAMED, CONCURRENT, CLIENT_USER."""
    counts = await info.context.loaders.get(r.ChargeableAccessesByAgreementLoader).load(agreement_id)
    return [ChargeableAccess(license_type=t, users=counts[t]) for t in LICENSE_TYPES if t in counts]


async def charge_breakdown(info: Info, agreement_id: int, args: PageArgs) -> Connection[ChargeLine]:
    page = await info.context.loaders.get(r.ChargeLinesByAgreementLoader).load((agreement_id, args))

    async def count() -> int:
        counts = await info.context.loaders.get(r.ChargeableAccessesByAgreementLoader).load(agreement_id)
        return sum(counts.values())

    return list_connection([(row.key, ChargeLine(line=row, license_type=row.license_type)) for row in page.rows],
                           page.has_next, page.has_previous, count)
