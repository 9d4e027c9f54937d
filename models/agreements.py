"""Customer agreements: one customer's companies, grouped for licensing and invoicing."""

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, enum_type
from models.billing_details import BillingDetailsColumns
from models.enums import BillingMode


class Agreement(IdMixin, CreatedMixin, BillingDetailsColumns, Base):
    __tablename__ = "agreements"
    # NULL customer numbers are distinct in a unique constraint on both databases (R1).
    __table_args__ = (UniqueConstraint("firm_id", "customer_number"), Index(None, "firm_id", "name"))

    firm_id: Mapped[int] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    customer_number: Mapped[str | None] = mapped_column(String(50))
    billing_mode: Mapped[BillingMode] = mapped_column(enum_type(BillingMode))
    primary_contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
