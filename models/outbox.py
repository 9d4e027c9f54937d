"""Transactional outbox for email (R20): rows written with the change, sent by a worker."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime

LINK_PLACEHOLDER = "{link}"


class OutboxEmail(IdMixin, CreatedMixin, Base):
    __tablename__ = "outbox_emails"
    __table_args__ = (Index(None, "sent_at", "next_attempt_at"),)

    firm_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # A link the body names by LINK_PLACEHOLDER: its secret is made when the email is sent.
    link_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invitation_tokens.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Not sent, and never will be: its link was used or expired before it could go out.
    discarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
