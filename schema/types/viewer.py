"""The caller."""

import strawberry

from loaders import relations as r
from loaders.base import PageArgs
from schema.context import Info
from schema.types.common import Connection, connection, list_connection, load_page, no_rows, page_args
from schema.types.firms import Firm
from schema.types.users import Membership, User


@strawberry.type(name="OAuthClient", description="An OAuth client registered with bureau (`bureau clients "
                                                 "create`); never its secret.")
class ViewerClient:
    client_id: str
    name: str


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

    @strawberry.field(description="The OAuth client the token was issued to; null for a token of another "
                                  "identity provider (BUREAU_TRUSTED_ISSUERS) or without a token.")
    async def client(self, info: Info) -> ViewerClient | None:
        row = await info.context.loaders.get(r.OwnClientLoader).load(info.context.principal.client_id)
        return ViewerClient(client_id=row.client_id, name=row.name) if row is not None else None

    @strawberry.field(description="The firm a client-credentials token acts for (its client's firm, `bureau "
                                  "clients create --firm`); null for a user's token and for clients of no firm.")
    async def firm(self, info: Info) -> Firm | None:
        return await _client_firm(info)

    @strawberry.field(description="Firms where the viewer is staff (FIRM_ADMIN or FIRM_ADVISOR); for a "
                                  "client-credentials token, the firm it acts for.")
    async def firms(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Firm]:
        user_id = info.context.principal.user_id
        if user_id is None:
            return await self._client_firms(info, page_args(first, after))
        page, count = await load_page(info, r.StaffByUserLoader, user_id, page_args(first, after))
        firms = await info.context.loaders.get(r.FirmByIdLoader).load_many([row.firm_id for row in page.rows])
        # Cursors are those of the staff records, so paging through firms stays stable.
        items = [(row.id, Firm.from_model(firm)) for row, firm in zip(page.rows, firms, strict=True) if firm]
        return list_connection(items, page.has_next, page.has_previous, count)

    @staticmethod
    async def _client_firms(info: Info, args: PageArgs) -> Connection[Firm]:
        """The one firm of a client-credentials token, paged like any list (its cursor: the firm's id)."""
        firm = await _client_firm(info)
        past = firm is not None and args.after is not None and args.after >= firm.model.id
        items = [] if firm is None or args.first == 0 or past else [(firm.model.id, firm)]

        async def count() -> int:
            return 0 if firm is None else 1

        return list_connection(items, False, past, count)

    @strawberry.field(description="Companies the viewer can access directly through a membership.")
    async def memberships(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        user_id = info.context.principal.user_id
        if user_id is None:
            return list_connection([], False, False, no_rows)
        return await connection(info, r.MembershipsByUserLoader, user_id, page_args(first, after),
                                Membership.from_model)


async def _client_firm(info: Info) -> Firm | None:
    """A client-credentials token's firm (the client acts as its administrator); None for any other token."""
    principal = info.context.principal
    if principal.client_firm_id is None or principal.user_id is not None:
        return None
    return Firm.maybe(await info.context.loaders.get(r.FirmByIdLoader).load(principal.client_firm_id))
