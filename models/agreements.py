"""Customer agreements: one customer's companies, grouped for licensing and invoicing."""

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime, enum_type
from models.billing_details import BillingDetailsColumns
from models.enums import BillingMode, TransferStatus


class Agreement(IdMixin, CreatedMixin, BillingDetailsColumns, Base):
    __tablename__ = "agreements"
    # NULL customer numbers are distinct in a unique constraint on both databases (R1).
    __table_args__ = (UniqueConstraint("firm_id", "customer_number"), Index(None, "firm_id", "name"),
                      Index(None, "firm_id", "id"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    customer_number: Mapped[str | None] = mapped_column(String(50))
    billing_mode: Mapped[BillingMode] = mapped_column(enum_type(BillingMode))
    primary_contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    # Archived: left out of lists, its companies archived with it; the history stays.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AgreementTransfer(IdMixin, CreatedMixin, Base):
    """An agreement offered by its firm (or the vendor) to another firm, which accepts or
    declines it; accepted, it moves at the start of its subscription's next period."""

    __tablename__ = "agreement_transfers"
    __table_args__ = (Index(None, "agreement_id", "status"), Index(None, "to_firm_id", "status"))

    agreement_id: Mapped[int] = mapped_column(BigId, ForeignKey("agreements.id", ondelete="RESTRICT"))
    from_firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    to_firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    status: Mapped[TransferStatus] = mapped_column(enum_type(TransferStatus))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set by the receiving firm when it accepts: its own sales ledger's number.
    customer_number: Mapped[str | None] = mapped_column(String(50))
    effective_on: Mapped[date | None] = mapped_column(Date)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
