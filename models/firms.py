"""Partner firms, their staff and the client-user licences they hand out."""

from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, MoneyType, enum_type
from models.billing_details import BillingDetailsColumns
from models.enums import FirmRole


class Firm(IdMixin, CreatedMixin, BillingDetailsColumns, Base):
    __tablename__ = "firms"

    name: Mapped[str] = mapped_column(String(200))
    organization_number: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    has_reseller_agreement: Mapped[bool] = mapped_column(Boolean, default=False)
    is_certified: Mapped[bool] = mapped_column(Boolean, default=False)
    reseller_discount_percent: Mapped[Decimal] = mapped_column(MoneyType(), default=Decimal("0.00"))
    # Gapless per-firm number series (R24), advanced under the firm row's lock.
    last_invoice_number: Mapped[int] = mapped_column(Integer, default=0)
    last_order_number: Mapped[int] = mapped_column(Integer, default=0)


class FirmMember(IdMixin, CreatedMixin, Base):
    """A user on a firm's staff; acts on every company of the firm through the role."""

    __tablename__ = "firm_members"
    __table_args__ = (UniqueConstraint("firm_id", "user_id"), Index(None, "user_id"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    role: Mapped[FirmRole] = mapped_column(enum_type(FirmRole))


class ClientUser(IdMixin, CreatedMixin, Base):
    """A firm-issued named licence for one person (R16, R17)."""

    __tablename__ = "client_users"
    __table_args__ = (UniqueConstraint("firm_id", "user_id"), Index(None, "user_id"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))


class ClientUserCompany(IdMixin, Base):
    __tablename__ = "client_user_companies"
    __table_args__ = (UniqueConstraint("client_user_id", "company_id"), Index(None, "company_id"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    client_user_id: Mapped[int] = mapped_column(BigId, ForeignKey("client_users.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(BigId, ForeignKey("companies.id", ondelete="CASCADE"))
