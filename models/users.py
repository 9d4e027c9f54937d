"""People and their access to companies."""

from datetime import datetime

from sqlalchemy import Boolean, ColumnElement, ForeignKey, Index, String, UniqueConstraint, and_, or_
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime, enum_type
from models.enums import LicenseType, MembershipStatus, PayType, Role, UserStatus


class User(IdMixin, CreatedMixin, Base):
    """Global: one person may work in many firms and companies."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # Lower-cased copy: emails are unique case-insensitively on every database.
    email_normalized: Mapped[str | None] = mapped_column(String(320), unique=True)
    # HMAC of the canonical personnummer: matchable, never readable back (R19).
    personal_identity_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[UserStatus] = mapped_column(enum_type(UserStatus), default=UserStatus.INVITED)
    password_hash: Mapped[str | None] = mapped_column(String(200))


class Membership(IdMixin, CreatedMixin, Base):
    """A user's access to one company: role, licence type and status."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "company_id"),
        Index(None, "company_id", "status"),
        Index(None, "company_id", "id"),  # a page of a company's members (R86)
        # Seats in use (licensing/usage.py) read from the index alone, per company (R85).
        Index(None, "company_id", "license_type",
              postgresql_include=["user_id", "status", "access_ends_at", "invitation_expires_at"]),
        Index(None, "firm_id"),
        # When a firm's answers next change with time alone (models.data_versions.next_change, R84).
        Index(None, "firm_id", "invitation_expires_at"),
        Index(None, "firm_id", "access_ends_at"),
    )

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(BigId, ForeignKey("companies.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    role: Mapped[Role] = mapped_column(enum_type(Role))
    license_type: Mapped[LicenseType] = mapped_column(enum_type(LicenseType))
    status: Mapped[MembershipStatus] = mapped_column(enum_type(MembershipStatus))
    employee_number: Mapped[str | None] = mapped_column(String(50))
    pay_type: Mapped[PayType | None] = mapped_column(enum_type(PayType))
    approver_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invitation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Ended because its company was archived: given back if the archiving is undone.
    ended_by_archive: Mapped[bool] = mapped_column(Boolean, default=False)
    # R52: the exclusive end of access (00:00 UTC of grantAccountantAccess's `until`); from then
    # on the membership grants nothing, holds no seat and reads DEACTIVATED, with no job to run.
    access_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def grants_access(cls, now: datetime) -> ColumnElement[bool]:
        """R52 in SQL, the same rule as `licensing.memberships.grants_access`: not DEACTIVATED,
        and its end, if it has one, still ahead. It lives here rather than in licensing because
        auth (which may import only models) loads the principal's grants with it."""
        return and_(cls.status != MembershipStatus.DEACTIVATED,
                    or_(cls.access_ends_at.is_(None), cls.access_ends_at > now))
