"""The licence lifecycle: cancellation and interval changes as scheduled changes, periods cut
short, archived companies and agreements, credit notes, and agreement transfers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
KINDS_BEFORE = ("SEAT_DECREASE", "EDITION_CHANGE", "BILLING_MODE_CHANGE")
KINDS_AFTER = (*KINDS_BEFORE, "INTERVAL_CHANGE", "CANCELLATION")
STATUSES = ("OFFERED", "ACCEPTED", "DECLINED", "WITHDRAWN", "COMPLETED")
ONE_PER_MONTH = "uq_invoices_one_per_account_and_month"


def enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _recreate() -> str:
    # On SQLite a table written anew reads as create_all writes it; PostgreSQL alters in place.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def _kind_check(values: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.drop_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), _kind_check(KINDS_AFTER))
    with op.batch_alter_table("subscription_periods", recreate=_recreate()) as batch:
        batch.add_column(sa.Column("cut_on", sa.Date(), nullable=True))
    with op.batch_alter_table("companies", recreate=_recreate()) as batch:
        batch.add_column(sa.Column("archived_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("agreements", recreate=_recreate()) as batch:
        batch.add_column(sa.Column("archived_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("ended_by_archive", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("memberships") as batch:
        batch.alter_column("ended_by_archive", server_default=None, existing_type=sa.Boolean())

    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("kind", enum("invoicekind", "INVOICE", "CREDIT_NOTE"), nullable=False,
                                   server_default="INVOICE"))
        batch.add_column(sa.Column("credited_invoice_id", BigId, nullable=True))
        batch.add_column(sa.Column("reason", sa.String(500), nullable=True))
        batch.create_foreign_key(op.f("fk_invoices_credited_invoice_id_invoices"), "invoices",
                                 ["credited_invoice_id"], ["id"], ondelete="RESTRICT")
        batch.create_index(op.f("ix_invoices_credited_invoice_id"), ["credited_invoice_id"])
        batch.drop_constraint(op.f("uq_invoices_firm_id_billing_account_period_start"), type_="unique")
    with op.batch_alter_table("invoices") as batch:
        batch.alter_column("kind", server_default=None, existing_type=enum("invoicekind", "INVOICE", "CREDIT_NOTE"))
    # Still exactly one invoice per account and month (R15); credit notes are not counted.
    op.create_index(ONE_PER_MONTH, "invoices", ["firm_id", "billing_account", "period_start"], unique=True,
                    postgresql_where=sa.text("kind = 'INVOICE'"), sqlite_where=sa.text("kind = 'INVOICE'"))
    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("credited_line_id", BigId, nullable=True))
        batch.add_column(sa.Column("order_line_id", BigId, nullable=True))
        batch.create_foreign_key(op.f("fk_invoice_lines_credited_line_id_invoice_lines"), "invoice_lines",
                                 ["credited_line_id"], ["id"], ondelete="RESTRICT")
        batch.create_foreign_key(op.f("fk_invoice_lines_order_line_id_order_lines"), "order_lines",
                                 ["order_line_id"], ["id"], ondelete="RESTRICT")

    op.create_table(
        "agreement_transfers",
        sa.Column("agreement_id", BigId, nullable=False),
        sa.Column("from_firm_id", BigId, nullable=False),
        sa.Column("to_firm_id", BigId, nullable=False),
        sa.Column("status", enum("transferstatus", *STATUSES), nullable=False),
        sa.Column("offered_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("customer_number", sa.String(50), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"],
                                name=op.f("fk_agreement_transfers_agreement_id_agreements"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["from_firm_id"], ["firms.id"], name=op.f("fk_agreement_transfers_from_firm_id_firms"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["to_firm_id"], ["firms.id"], name=op.f("fk_agreement_transfers_to_firm_id_firms"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_transfers")),
    )
    op.create_index(op.f("ix_agreement_transfers_agreement_id_status"), "agreement_transfers",
                    ["agreement_id", "status"])
    op.create_index(op.f("ix_agreement_transfers_to_firm_id_status"), "agreement_transfers", ["to_firm_id", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agreement_transfers_to_firm_id_status"), table_name="agreement_transfers")
    op.drop_index(op.f("ix_agreement_transfers_agreement_id_status"), table_name="agreement_transfers")
    op.drop_table("agreement_transfers")
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_constraint(op.f("fk_invoice_lines_order_line_id_order_lines"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_invoice_lines_credited_line_id_invoice_lines"), type_="foreignkey")
        batch.drop_column("order_line_id")
        batch.drop_column("credited_line_id")
    op.drop_index(ONE_PER_MONTH, table_name="invoices")
    op.execute("DELETE FROM invoices WHERE kind = 'CREDIT_NOTE'")
    with op.batch_alter_table("invoices") as batch:
        batch.create_unique_constraint(op.f("uq_invoices_firm_id_billing_account_period_start"),
                                       ["firm_id", "billing_account", "period_start"])
        batch.drop_index(op.f("ix_invoices_credited_invoice_id"))
        batch.drop_constraint(op.f("fk_invoices_credited_invoice_id_invoices"), type_="foreignkey")
        batch.drop_constraint(op.f("ck_invoices_invoicekind"), type_="check")
        batch.drop_column("reason")
        batch.drop_column("credited_invoice_id")
        batch.drop_column("kind")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("ended_by_archive")
    with op.batch_alter_table("agreements") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("companies") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("subscription_periods") as batch:
        batch.drop_column("cut_on")
    op.execute("DELETE FROM scheduled_changes WHERE kind IN ('INTERVAL_CHANGE', 'CANCELLATION')")
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.drop_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), _kind_check(KINDS_BEFORE))
