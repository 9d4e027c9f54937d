"""Turns a bearer token into a Principal with its grants: one statement, or none when the
principal was read moments ago (auth.principals)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Integer,
    Row,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.util import find_tables

from auth.principal import CompanyGrant, Grants, Principal
from auth.principals import PrincipalCache
from auth.tokens import AccessClaims, InvalidToken, TokenService
from models import Company, FirmMember, Membership, OAuthClient, Subscription, User
from models.enums import FirmRole, LicenseType, MembershipStatus, Role, SubscriptionStatus, UserStatus
from models.ids import decode_as
from models.oauth_grants import RevokedAccessToken


class MissingCredentials(InvalidToken):
    """No usable `Authorization: Bearer` header at all (RFC 6750 invalid_request), as opposed
    to a token that fails validation (invalid_token)."""


class ExternalIssuers(Protocol):
    """Tokens of trusted external OpenID Connect providers (auth/external.py)."""

    def claims(self, token: str) -> bool:
        """Whether the token names one of these issuers (and so is theirs to validate)."""
        ...

    async def authenticate(self, session: AsyncSession, token: str, *, now: datetime) -> Principal:
        ...


def _no(kind: type[Integer] | type[String]) -> Any:
    """A NULL of a type: PostgreSQL would take two untyped ones in a UNION for text."""
    return cast(null(), kind)


# The one statement is a UNION ALL of rows of three kinds, in these columns:
#   kind 0, the token's client: a = its firm, b = 1 when the token was revoked, c = the user (NULL when
#           unknown), d = 1 when the user has no email, s1 = the user's status;
#   kind 1, a firm role: a = the firm, s1 = the role;
#   kind 2, a membership that grants: a = company, b = agreement, c = firm, s1..s3 = role, licence type
#           and status, until = its end.
COLUMNS = ("kind", "a", "b", "c", "d", "s1", "s2", "s3", "until")


def _labelled(*columns: Any) -> Any:
    """A select of the union's columns, each named alike in every part."""
    return select(*(column.label(name) for column, name in zip(columns, COLUMNS, strict=True)))


def _granting(user_id: int, now: datetime) -> Any:
    """The user's memberships that grant their role at `now` (the request's clock): a DEACTIVATED
    one never, one with an end only until it (R52); none once the licence its seat came from is
    cancelled (R46). First in the union, whose column types come from its first part."""
    licence = aliased(Subscription)  # the agreement's licence, for NAMED and CONCURRENT memberships
    master = aliased(Subscription)  # the firm's master licence, for CLIENT_USER ones
    client_user = Membership.license_type == LicenseType.CLIENT_USER
    licensed = or_(and_(client_user, or_(master.id.is_(None), master.status != SubscriptionStatus.CANCELLED)),
                   and_(~client_user, or_(licence.id.is_(None), licence.status != SubscriptionStatus.CANCELLED)))
    return (
        _labelled(literal_column("2"), Membership.company_id, Company.agreement_id, Company.firm_id, _no(Integer),
                  cast(Membership.role, String), cast(Membership.license_type, String),
                  cast(Membership.status, String), Membership.access_ends_at)
        .select_from(Membership)
        .join(Company, Company.id == Membership.company_id)
        .outerjoin(licence, licence.agreement_id == Company.agreement_id)
        .outerjoin(master, master.master_firm_id == Company.firm_id)
        .where(Membership.user_id == user_id, Membership.grants_access(now), licensed)
    )


def _staff_roles(user_id: int) -> Any:
    roles = _labelled(literal_column("1"), FirmMember.firm_id, _no(Integer), _no(Integer), _no(Integer),
                      cast(FirmMember.role, String), _no(String), _no(String), null())
    return roles.where(FirmMember.user_id == user_id)


def _grants_of(rows: Sequence[Row[Any]]) -> tuple[Grants, datetime | None]:
    """The grants in rows of _granting and _staff_roles, and when the first of them ends."""
    grants = Grants(
        firm_roles={row.a: FirmRole[row.s1] for row in rows if row.kind == 1},
        companies={row.a: CompanyGrant(row.a, row.b, row.c, Role[row.s1], LicenseType[row.s2],
                                       MembershipStatus[row.s3]) for row in rows if row.kind == 2},
    )
    return grants, min((row.until for row in rows if row.kind == 2 and row.until is not None), default=None)


async def load_grants(session: AsyncSession, user_id: int, now: datetime) -> Grants:
    """The user's firm roles and the memberships that grant their role at `now`, in one statement."""
    rows = (await session.execute(union_all(_granting(user_id, now), _staff_roles(user_id)))).all()
    return _grants_of(rows)[0]


def principal_statement(client_id: str, token_id: str, user_id: int | None, now: datetime) -> Any:
    """One statement for everything a token of ours stands for: the client, whether the token was
    revoked (RFC 7009), the user's status and email, and their grants."""
    revoked = exists().where(RevokedAccessToken.jti == token_id)
    one: Any = literal_column("1")
    zero: Any = literal_column("0")
    client = _labelled(
        literal_column("0"), OAuthClient.firm_id, case((revoked, one), else_=zero),
        User.id if user_id is not None else _no(Integer),
        case((User.email.is_(None), one), else_=zero) if user_id is not None else _no(Integer),
        cast(User.status, String) if user_id is not None else _no(String), _no(String), _no(String), null(),
    ).select_from(OAuthClient).where(OAuthClient.client_id == client_id)
    if user_id is None:
        return client
    client = client.outerjoin(User, User.id == user_id)
    return union_all(_granting(user_id, now), _staff_roles(user_id), client)


def read_tables() -> frozenset[str]:
    """The tables a principal is read from: a commit that wrote none of them leaves kept
    principals as they are (auth.principals)."""
    statement = principal_statement("client", "token", 1, datetime.now(UTC))
    found = find_tables(statement, include_aliases=True, include_joins=False, include_selects=False)
    return frozenset(table.name for table in (getattr(f, "element", f) for f in found) if isinstance(table, Table))


async def _read(session: AsyncSession, claims: AccessClaims, user_id: int | None,
                now: datetime) -> tuple[Principal, datetime | None]:
    """The principal_statement's rows, as a Principal. Raises InvalidToken."""
    rows = (await session.execute(principal_statement(claims.client_id, claims.token_id, user_id, now))).all()
    found = next((row for row in rows if row.kind == 0), None)
    if found is None:
        raise InvalidToken("unknown client")
    if found.b:
        raise InvalidToken("revoked token")
    principal = Principal(client_id=claims.client_id, scopes=claims.scopes, token_id=claims.token_id)
    if user_id is None:
        principal.client_firm_id = found.a
        return principal, None
    if found.c is None or found.s1 == UserStatus.DEACTIVATED.name:
        raise InvalidToken("unknown or deactivated user")
    principal.user_id = user_id
    principal.email_required = bool(found.d)
    principal.grants, until = _grants_of(rows)
    return principal, until


async def kept_principal(tokens: TokenService, authorization: str | None, external: ExternalIssuers | None, *,
                         now: datetime, cache: PrincipalCache, shared: bool = False) -> Principal | None:
    """The caller when no read is needed to know it: one of our own tokens, verified, whose principal
    `cache` keeps (R77). None for anything else, which `authenticate` decides. `shared`: the kept one
    itself, not a copy (PrincipalCache.get)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or (external is not None and external.claims(token)):
        return None
    try:
        await tokens.validate(token)  # the signature and expiry, every time
    except InvalidToken:
        return None
    return cache.get(token, now, shared=shared)


async def authenticate(tokens: TokenService, session: AsyncSession, authorization: str | None,
                       external: ExternalIssuers | None = None, *, now: datetime,
                       cache: PrincipalCache | None = None) -> Principal:
    """Validates the `Authorization: Bearer` header; raises InvalidToken for anything else.
    Tokens of a trusted external issuer go to `external`; all others must be ours, and their
    principal may come from `cache` (R77): the token's signature and expiry are checked every
    time. `now` is the request's clock, at which the grants are read."""
    if not authorization:
        raise MissingCredentials("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingCredentials("expected a bearer token")
    token = token.strip()
    if external is not None and external.claims(token):
        return await external.authenticate(session, token, now=now)
    claims = await tokens.validate(token)
    user_id = None
    if claims.subject != claims.client_id:
        user_id = decode_as(claims.subject, "User")
        if user_id is None:
            raise InvalidToken("unknown subject")
    if cache is None:
        return (await _read(session, claims, user_id, now))[0]
    kept = cache.get(token, now)
    if kept is not None:
        return kept
    return await cache.read_once(token, user_id, now, lambda: _read(session, claims, user_id, now))
