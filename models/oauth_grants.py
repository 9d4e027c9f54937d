"""What the authorization server remembers between requests: authorization codes, refresh
tokens (rotated, in families), revoked access tokens, invitation links, links to external
identity providers, and sign-in attempts (for the attempt limits).

Codes, refresh tokens and invitation tokens are random values of which only a SHA-256 hash
is kept: they are 256-bit secrets, so a fast hash is enough, and a leaked table gives
nobody a usable credential.
"""

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime, enum_type
from models.enums import LinkPurpose


def token_digest(token: str) -> str:
    """The stored form of a random token (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh 256-bit random token, URL-safe."""
    return secrets.token_urlsafe(32)


class AuthorizationCode(IdMixin, CreatedMixin, Base):
    """A code of the authorization code grant: single use, short-lived, bound to the client,
    the redirect URI and the PKCE challenge. Kept (marked used) until it expires, so that a
    second use is recognised and revokes what the first one got (RFC 6749 section 4.1.2)."""

    __tablename__ = "oauth_authorization_codes"
    __table_args__ = (Index(None, "expires_at"),)

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    # When the user signed in; refresh token families never outlive auth_time + the maximum.
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The refresh token family the code was exchanged for (set when it is used).
    family_id: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(IdMixin, CreatedMixin, Base):
    """One refresh token of a family (one sign-in). Each use rotates it: the used token is
    marked, a new one of the same family is issued. Presenting a used token again means it
    leaked: the whole family is revoked, and so are the access tokens issued with it."""

    __tablename__ = "oauth_refresh_tokens"
    __table_args__ = (Index(None, "family_id"), Index(None, "expires_at"))

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(64))
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    # The access token issued together with this refresh token, revoked with the family.
    access_jti: Mapped[str | None] = mapped_column(String(100))
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevokedAccessToken(Base):
    """The jti of an access token revoked before it expired (RFC 7009, or with its refresh
    token family); kept until the token would have expired anyway."""

    __tablename__ = "oauth_revoked_access_tokens"
    __table_args__ = (Index(None, "expires_at"),)

    jti: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvitationToken(IdMixin, CreatedMixin, Base):
    """The secret in a link sent by email (`/invitations/<token>`), for its `purpose`:
    accepting a membership; setting up an account (firm staff, who have no membership);
    confirming an email the person gave on acceptance (R18); confirming a new email the
    user asked for. A `pending_email` is stored on the user only once the link sent to it
    has been opened.

    Only the hash is kept. The outbox makes the secret when it sends the email
    (`resolvers.outbox`), so the raw link is never stored anywhere."""

    __tablename__ = "invitation_tokens"
    __table_args__ = (Index(None, "membership_id"), Index(None, "user_id"), Index(None, "firm_id"))

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    firm_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    membership_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("memberships.id", ondelete="CASCADE"))
    purpose: Mapped[LinkPurpose] = mapped_column(enum_type(LinkPurpose), default=LinkPurpose.INVITATION)
    pending_email: Mapped[str | None] = mapped_column(String(320))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def issue(cls, *, user_id: int, expires_at: datetime, purpose: LinkPurpose, firm_id: int | None = None,
              membership_id: int | None = None, pending_email: str | None = None) -> tuple[str, "InvitationToken"]:
        """A new link token and its row (the caller adds the row to its session)."""
        token = new_token()
        return token, cls(token_hash=token_digest(token), firm_id=firm_id, user_id=user_id, purpose=purpose,
                          membership_id=membership_id, pending_email=pending_email, expires_at=expires_at)

    def renew_secret(self) -> str:
        """A fresh secret for this link, replacing the old one: what the email carries."""
        token = new_token()
        self.token_hash = token_digest(token)
        return token


class ExternalSubjectLink(IdMixin, CreatedMixin, Base):
    """A user's account at a trusted external OpenID Connect provider: (issuer, sub)."""

    __tablename__ = "external_subject_links"
    __table_args__ = (UniqueConstraint("issuer", "subject"), UniqueConstraint("issuer", "user_id"))

    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))


class SignInAttempt(IdMixin, Base):
    """One password sign-in attempt, counted against the account and the client address
    (auth/passwords.py has the rules). Both are kept as SHA-256 digests (people type passwords
    into the email field). A success is kept as long as it makes its address known."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index(None, "account", "attempted_at"),
        Index(None, "address", "attempted_at"),
        Index(None, "attempted_at"),
    )

    account: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    # A successful sign-in clears the earlier failures of its account and address together
    # (still counted for the address as a whole).
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)
