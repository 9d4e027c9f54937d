"""Subscription periods (each billing period as it stood when it began) and invoice links (R24).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "subscription_periods",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column("agreement_id", BigId, nullable=True),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("edition_code", sa.String(length=50), nullable=False),
        sa.Column("billing_interval", enum("billinginterval", "MONTHLY", "YEARLY"), nullable=False),
        sa.Column("billing_mode", enum("billingmode", "FIRM", "CUSTOMER"), nullable=False),
        sa.Column("named_seats", sa.Integer(), nullable=False),
        sa.Column("concurrent_seats", sa.Integer(), nullable=False),
        sa.Column("client_user_seats", sa.Integer(), nullable=False),
        sa.Column("features", sa.String(length=1000), nullable=False),
        sa.Column("invoice_id", BigId, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"],
                                name=op.f("fk_subscription_periods_agreement_id_agreements"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_subscription_periods_firm_id_firms"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"],
                                name=op.f("fk_subscription_periods_subscription_id_subscriptions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_subscription_periods_invoice_id_invoices"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_periods")),
        sa.UniqueConstraint("subscription_id", "start", name=op.f("uq_subscription_periods_subscription_id_start")),
    )
    op.create_index(op.f("ix_subscription_periods_invoice_id_end"), "subscription_periods", ["invoice_id", "end"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("invoice_id", BigId, nullable=True))
        batch.create_foreign_key(op.f("fk_orders_invoice_id_invoices"), "invoices", ["invoice_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index(op.f("ix_orders_invoice_id_order_date"), ["invoice_id", "order_date"])


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index(op.f("ix_orders_invoice_id_order_date"))
        batch.drop_constraint(op.f("fk_orders_invoice_id_invoices"), type_="foreignkey")
        batch.drop_column("invoice_id")
    op.drop_index(op.f("ix_subscription_periods_invoice_id_end"), table_name="subscription_periods")
    op.drop_table("subscription_periods")
