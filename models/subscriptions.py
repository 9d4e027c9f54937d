"""Licence subscriptions: seat pools, features, scheduled changes and live sessions."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, MoneyType, UTCDateTime, enum_type
from models.enums import (
    BillingInterval,
    BillingMode,
    LicenseType,
    SalesChannel,
    ScheduledChangeKind,
    SubscriptionStatus,
)


class Subscription(IdMixin, CreatedMixin, Base):
    """The licence of one agreement, or a firm's own master licence (never both)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("(agreement_id IS NULL) <> (master_firm_id IS NULL)", name="one_owner"),
        Index(None, "firm_id"),
    )

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    # RESTRICT: a subscription is billing history, never deleted with its agreement.
    agreement_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("agreements.id", ondelete="RESTRICT"), unique=True
    )
    master_firm_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("firms.id", ondelete="CASCADE"), unique=True
    )
    edition_code: Mapped[str] = mapped_column(String(50), ForeignKey("editions.code"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        enum_type(SubscriptionStatus), default=SubscriptionStatus.ACTIVE
    )
    channel: Mapped[SalesChannel] = mapped_column(enum_type(SalesChannel), default=SalesChannel.DIRECT)
    billing_interval: Mapped[BillingInterval] = mapped_column(enum_type(BillingInterval))
    # Periods are anchored on starts_on; current_period_* moves only at rollover (R15).
    starts_on: Mapped[date] = mapped_column(Date)
    current_period_start: Mapped[date] = mapped_column(Date)
    current_period_end: Mapped[date] = mapped_column(Date)


class SeatPool(IdMixin, Base):
    __tablename__ = "seat_pools"
    __table_args__ = (
        UniqueConstraint("subscription_id", "license_type"),
        CheckConstraint("purchased >= 0", name="purchased_not_negative"),
    )

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    license_type: Mapped[LicenseType] = mapped_column(enum_type(LicenseType))
    purchased: Mapped[int] = mapped_column(Integer)
    # Seats purchased when the current period began: what the period is invoiced for (R24).
    purchased_at_period_start: Mapped[int] = mapped_column(Integer)


class ScheduledChange(IdMixin, CreatedMixin, Base):
    """A change that waits for the next period (R8, R10)."""

    __tablename__ = "scheduled_changes"
    __table_args__ = (Index(None, "subscription_id", "applied_at", "cancelled_at"), Index(None, "effective_on"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    kind: Mapped[ScheduledChangeKind] = mapped_column(enum_type(ScheduledChangeKind))
    license_type: Mapped[LicenseType | None] = mapped_column(enum_type(LicenseType))
    from_value: Mapped[str] = mapped_column(String(50))
    to_value: Mapped[str] = mapped_column(String(50))
    effective_on: Mapped[date] = mapped_column(Date)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SubscriptionFeature(IdMixin, Base):
    """A feature or integration switched on or off for every user of a subscription (R12)."""

    __tablename__ = "subscription_features"
    __table_args__ = (UniqueConstraint("subscription_id", "feature_code"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    feature_code: Mapped[str] = mapped_column(String(50), ForeignKey("features.code"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The period start in which the add-on was last paid for: enabling again then costs nothing.
    paid_through_period_start: Mapped[date | None] = mapped_column(Date)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LicenseSession(IdMixin, Base):
    """A live seat of a CONCURRENT pool (R14); expires unless renewed."""

    __tablename__ = "license_sessions"
    # (firm_id, expires_at): when a firm's answers next change with time alone (models.data_versions, R84).
    __table_args__ = (Index(None, "subscription_id", "expires_at"), Index(None, "user_id"),
                      Index(None, "firm_id", "expires_at"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(BigId, ForeignKey("companies.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SubscriptionPeriod(IdMixin, CreatedMixin, Base):
    """One billing period as it stood when it began: what the period is invoiced for (R24).

    Recorded when the subscription is created and at each period change (R15), so that an
    invoice for any month can be built later from what held then."""

    __tablename__ = "subscription_periods"
    __table_args__ = (UniqueConstraint("subscription_id", "start"), Index(None, "invoice_id", "end"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscriptions.id", ondelete="RESTRICT"))
    # The agreement at the period's start (NULL for a firm's master licence).
    agreement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("agreements.id", ondelete="RESTRICT"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    edition_code: Mapped[str] = mapped_column(String(50))
    billing_interval: Mapped[BillingInterval] = mapped_column(enum_type(BillingInterval))
    # A change of billing mode applies from the next period (R24).
    billing_mode: Mapped[BillingMode] = mapped_column(enum_type(BillingMode))
    named_seats: Mapped[int] = mapped_column(Integer, default=0)
    concurrent_seats: Mapped[int] = mapped_column(Integer, default=0)
    client_user_seats: Mapped[int] = mapped_column(Integer, default=0)
    # Space-separated codes of the add-ons enabled when the period began.
    features: Mapped[str] = mapped_column(String(1000), default="")
    # The prices in force when the period began: the period is charged at these, whatever the
    # catalog or the firm's discount say later (R24).
    currency: Mapped[str] = mapped_column(String(3))
    seat_price: Mapped[Decimal] = mapped_column(MoneyType())
    # Space-separated CODE=monthly price of the add-ons enabled when the period began.
    feature_prices: Mapped[str] = mapped_column(String(2000), default="")
    discount_percent: Mapped[Decimal] = mapped_column(MoneyType())
    # The invoice the period is on: each period is invoiced exactly once.
    invoice_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoices.id", ondelete="SET NULL"))
    # When the period was placed on an invoice (or found to cost nothing): never looked at again.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Cut short (an immediate cancellation): charged for its days before this date only.
    cut_on: Mapped[date | None] = mapped_column(Date)
