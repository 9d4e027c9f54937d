"""Client companies: each lives in one agreement of one firm."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime


class Company(IdMixin, CreatedMixin, Base):
    __tablename__ = "companies"
    # (parent, id): a page of a firm's or an agreement's companies is an index range (R86).
    __table_args__ = (Index(None, "agreement_id", "id"), Index(None, "firm_id", "name"), Index(None, "firm_id", "id"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    agreement_id: Mapped[int] = mapped_column(BigId, ForeignKey("agreements.id"))
    name: Mapped[str] = mapped_column(String(200))
    organization_number: Mapped[str | None] = mapped_column(String(40))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    # Archived: every access ended, left out of lists; the history stays readable.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
