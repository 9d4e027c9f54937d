"""The caller."""

import strawberry

from loaders import relations as r
from schema.context import Info
from schema.types.common import Connection, connection, list_connection, load_page, no_rows, page_args
from schema.types.firms import Firm
from schema.types.users import Membership, User


@strawberry.type
class Viewer:
    client_id: str
    scopes: list[str]

    @strawberry.field(description="True while the signed-in user has no email. Until they give one "
                      "(requestEmailChange, then the link mailed to it), every operation but reading the viewer "
                      "and requestEmailChange is refused with extensions.code EMAIL_REQUIRED.")
    def email_required(self, info: Info) -> bool:
        return info.context.principal.email_required

    @strawberry.field
    async def user(self, info: Info) -> User | None:
        user_id = info.context.principal.user_id
        if user_id is None:
            return None
        return User.maybe(await info.context.loaders.get(r.UserByIdLoader).load(user_id))

    @strawberry.field(description="Firms where the viewer is staff (FIRM_ADMIN or FIRM_ADVISOR).")
    async def firms(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Firm]:
        user_id = info.context.principal.user_id
        if user_id is None:
            return list_connection([], False, False, no_rows)
        page, count = await load_page(info, r.StaffByUserLoader, user_id, page_args(first, after))
        firms = await info.context.loaders.get(r.FirmByIdLoader).load_many([row.firm_id for row in page.rows])
        # Cursors are those of the staff records, so paging through firms stays stable.
        items = [(row.id, Firm.from_model(firm)) for row, firm in zip(page.rows, firms, strict=True) if firm]
        return list_connection(items, page.has_next, page.has_previous, count)

    @strawberry.field(description="Companies the viewer can access directly through a membership.")
    async def memberships(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        user_id = info.context.principal.user_id
        if user_id is None:
            return list_connection([], False, False, no_rows)
        return await connection(info, r.MembershipsByUserLoader, user_id, page_args(first, after),
                                Membership.from_model)
