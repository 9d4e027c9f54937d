"""The vendor's catalog: editions and add-ons, with prices versioned by date."""

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, IdMixin, MoneyType, enum_type
from models.enums import FeatureKind


class Edition(IdMixin, Base):
    __tablename__ = "editions"

    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    included_file_storage_gb: Mapped[int] = mapped_column(Integer)


class EditionPrice(IdMixin, Base):
    """A monthly seat price in one currency, in force from valid_from until the next one."""

    __tablename__ = "edition_prices"
    __table_args__ = (UniqueConstraint("edition_code", "currency", "valid_from"),)

    edition_code: Mapped[str] = mapped_column(String(50), ForeignKey("editions.code", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_price: Mapped[Decimal] = mapped_column(MoneyType())
    valid_from: Mapped[date] = mapped_column(Date)


class Feature(IdMixin, Base):
    __tablename__ = "features"

    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[FeatureKind] = mapped_column(enum_type(FeatureKind))


class FeaturePrice(IdMixin, Base):
    __tablename__ = "feature_prices"
    __table_args__ = (UniqueConstraint("feature_code", "currency", "valid_from"),)

    feature_code: Mapped[str] = mapped_column(String(50), ForeignKey("features.code", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_price: Mapped[Decimal] = mapped_column(MoneyType())
    valid_from: Mapped[date] = mapped_column(Date)


__all__ = ["BigId", "Edition", "EditionPrice", "Feature", "FeaturePrice"]
