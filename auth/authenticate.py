"""Turns a bearer token into a Principal with its grants (one small query each)."""

from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from auth.principal import CompanyGrant, Grants, Principal
from auth.tokens import InvalidToken, TokenService
from models import Company, FirmMember, Membership, OAuthClient, Subscription, User
from models.enums import LicenseType, SubscriptionStatus, UserStatus
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


async def load_grants(session: AsyncSession, user_id: int, now: datetime) -> Grants:
    """The user's firm roles and the memberships that grant their role at `now` (the request's
    clock): a DEACTIVATED one never, one with an end only until it (R52)."""
    staff = await session.execute(select(FirmMember.firm_id, FirmMember.role).where(FirmMember.user_id == user_id))
    licence = aliased(Subscription)  # the agreement's licence, for NAMED and CONCURRENT memberships
    master = aliased(Subscription)  # the firm's master licence, for CLIENT_USER ones
    client_user = Membership.license_type == LicenseType.CLIENT_USER
    # A membership grants nothing once the licence its seat came from is cancelled (R46).
    licensed = or_(and_(client_user, or_(master.id.is_(None), master.status != SubscriptionStatus.CANCELLED)),
                   and_(~client_user, or_(licence.id.is_(None), licence.status != SubscriptionStatus.CANCELLED)))
    rows = await session.execute(
        select(
            Membership.company_id, Company.agreement_id, Company.firm_id,
            Membership.role, Membership.license_type, Membership.status,
        )
        .join(Company, Company.id == Membership.company_id)
        .outerjoin(licence, licence.agreement_id == Company.agreement_id)
        .outerjoin(master, master.master_firm_id == Company.firm_id)
        .where(Membership.user_id == user_id, Membership.grants_access(now), licensed)
    )
    return Grants(
        firm_roles={firm_id: role for firm_id, role in staff.all()},
        companies={row[0]: CompanyGrant(*row) for row in rows.all()},
    )


async def authenticate(tokens: TokenService, session: AsyncSession, authorization: str | None,
                       external: ExternalIssuers | None = None, *, now: datetime) -> Principal:
    """Validates the `Authorization: Bearer` header; raises InvalidToken for anything else.
    Tokens of a trusted external issuer go to `external`; all others must be ours. `now` is
    the request's clock, at which the grants are read."""
    if not authorization:
        raise MissingCredentials("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingCredentials("expected a bearer token")
    if external is not None and external.claims(token.strip()):
        return await external.authenticate(session, token.strip(), now=now)
    claims = await tokens.validate(token.strip())
    # One statement: the client, and whether the token was revoked (RFC 7009).
    revoked = exists().where(RevokedAccessToken.jti == claims.token_id)
    client = (
        await session.execute(
            select(OAuthClient.firm_id, revoked.label("revoked")).where(OAuthClient.client_id == claims.client_id)
        )
    ).first()
    if client is None:
        raise InvalidToken("unknown client")
    if client.revoked:
        raise InvalidToken("revoked token")
    principal = Principal(client_id=claims.client_id, scopes=claims.scopes, token_id=claims.token_id)
    if claims.subject == claims.client_id:
        principal.client_firm_id = client.firm_id
        return principal
    user_id = decode_as(claims.subject, "User")
    if user_id is None:
        raise InvalidToken("unknown subject")
    user = (await session.execute(select(User.status, User.email).where(User.id == user_id))).first()
    if user is None or user.status is UserStatus.DEACTIVATED:
        raise InvalidToken("unknown or deactivated user")
    principal.user_id = user_id
    principal.email_required = user.email is None
    principal.grants = await load_grants(session, user_id, now)
    return principal
