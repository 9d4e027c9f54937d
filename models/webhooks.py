"""Webhooks for partner integrations: a firm's endpoints, the events written with each change
(an outbox, like `models.outbox`), one delivery per endpoint and event, and its attempts."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime


class WebhookEndpoint(IdMixin, CreatedMixin, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "firm_id", "id"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    # The event types it wants, by name, space-separated (licensing.webhooks.EventType).
    event_types: Mapped[str] = mapped_column(String(1000))
    enabled: Mapped[bool] = mapped_column(default=True)
    # The signing secret, encrypted with a server key (auth.webhook_secrets): it must be
    # usable for HMAC, so it cannot be hashed; it is shown once and never answered again.
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    # After a roll, the old secret still signs (a second v1=) until this moment.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(String(500))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    secret_rolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookEvent(IdMixin, Base):
    """One event, written in the transaction of the change; its body is signed as stored."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index(None, "firm_id", "id"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    # "evt_" + 32 hex digits: what receivers deduplicate on.
    event_key: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(200))
    # Per subject, increasing in commit order: receivers drop what is older than they hold.
    sequence: Mapped[int] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)


class WebhookSequence(Base):
    """The last sequence number given to a subject's events; its row lock orders concurrent writers."""

    __tablename__ = "webhook_sequences"

    subject_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[int] = mapped_column(BigId)


class WebhookDelivery(IdMixin, Base):
    """The outbox row: one event for one endpoint, retried with backoff until delivered or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "endpoint_id", "id"),
        Index(None, "delivered_at", "dead_at", "next_attempt_at"),
    )

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_events.id", ondelete="CASCADE"))
    # A manual redelivery is a delivery of its own, with its own day of retries.
    redelivery_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("webhook_deliveries.id",
                                                                          ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Given up: it kept failing for about a day (resolvers.webhook_delivery.DEAD_AFTER).
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))


class WebhookAttempt(IdMixin, Base):
    """One try of a delivery: the history the API shows."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "id"),)

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)
