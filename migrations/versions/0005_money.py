"""Money that is right whatever the timing: each period keeps the prices and discount in force
when it began, order and invoice lines keep theirs, issued invoices keep their agreement's name,
charges are settled once, billing history is never deleted, billing-mode changes are
scheduled, and money columns hold any total the ceilings allow.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
KINDS_BEFORE = ("SEAT_DECREASE", "EDITION_CHANGE")
KINDS_AFTER = (*KINDS_BEFORE, "BILLING_MODE_CHANGE")
MONEY_COLUMNS = {
    "orders": ("total", "list_total"),
    "order_lines": ("unit_price", "amount", "list_unit_price", "list_amount"),
    "invoices": ("total",),
    "invoice_lines": ("unit_price", "amount"),
    "edition_prices": ("monthly_price",),
    "feature_prices": ("monthly_price",),
    "firms": ("reseller_discount_percent",),
}
# (table, column, referred table, on delete before, on delete after)
FOREIGN_KEYS = [
    ("orders", "subscription_id", "subscriptions", "CASCADE", "RESTRICT"),
    ("invoices", "agreement_id", "agreements", "SET NULL", "RESTRICT"),
    ("invoice_lines", "agreement_id", "agreements", "SET NULL", "RESTRICT"),
    ("subscriptions", "agreement_id", "agreements", "CASCADE", "RESTRICT"),
    ("subscription_periods", "agreement_id", "agreements", "SET NULL", "RESTRICT"),
    ("subscription_periods", "subscription_id", "subscriptions", "CASCADE", "RESTRICT"),
]


def money() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.Numeric(18, 2).with_variant(sa.String(32), "sqlite")


def _kind_check(values: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _foreign_keys(after: bool) -> None:
    for table, column, referred, before_rule, after_rule in FOREIGN_KEYS:
        name = op.f(f"fk_{table}_{column}_{referred}")
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete=after_rule if after else before_rule)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # SQLite keeps money as text
        for table, columns in MONEY_COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Numeric(18, 2), existing_type=sa.Numeric(14, 2))
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.drop_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), _kind_check(KINDS_AFTER))

    with op.batch_alter_table("subscription_periods") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("seat_price", money(), nullable=True))
        batch.add_column(sa.Column("feature_prices", sa.String(2000), nullable=False, server_default=""))
        batch.add_column(sa.Column("discount_percent", money(), nullable=True))
        batch.add_column(sa.Column("settled_at", UTCDateTime, nullable=True))
    # Periods recorded before this revision: the firm's currency and discount of today, and the
    # catalog's price at the period's start (what the invoice builder used until now).
    op.execute("UPDATE subscription_periods SET currency = (SELECT currency FROM firms "
               "WHERE firms.id = subscription_periods.firm_id)")
    op.execute("UPDATE subscription_periods SET discount_percent = CASE WHEN billing_mode = 'FIRM' THEN "
               "(SELECT reseller_discount_percent FROM firms WHERE firms.id = subscription_periods.firm_id) "
               "ELSE 0 END")
    op.execute("UPDATE subscription_periods SET seat_price = COALESCE((SELECT p.monthly_price FROM edition_prices p "
               "WHERE p.edition_code = subscription_periods.edition_code AND p.currency = subscription_periods.currency "
               "AND p.valid_from <= subscription_periods.start ORDER BY p.valid_from DESC LIMIT 1), 0)")
    op.execute("UPDATE subscription_periods SET settled_at = created_at WHERE invoice_id IS NOT NULL")
    with op.batch_alter_table("subscription_periods") as batch:
        batch.alter_column("currency", nullable=False, existing_type=sa.String(3))
        batch.alter_column("seat_price", nullable=False, existing_type=money())
        batch.alter_column("discount_percent", nullable=False, existing_type=money())
        batch.alter_column("feature_prices", server_default=None, existing_type=sa.String(2000))

    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("settled_at", UTCDateTime, nullable=True))
    op.execute("UPDATE orders SET settled_at = created_at WHERE invoice_id IS NOT NULL")
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("discount_percent", money(), nullable=True))
    op.execute("UPDATE order_lines SET discount_percent = 0")
    with op.batch_alter_table("order_lines") as batch:
        batch.alter_column("discount_percent", nullable=False, existing_type=money())

    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("agreement_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("list_unit_price", money(), nullable=True))
        batch.add_column(sa.Column("discount_percent", money(), nullable=True))
    op.execute("UPDATE invoice_lines SET agreement_name = COALESCE((SELECT name FROM agreements "
               "WHERE agreements.id = invoice_lines.agreement_id), (SELECT name FROM firms "
               "WHERE firms.id = invoice_lines.firm_id))")
    op.execute("UPDATE invoice_lines SET list_unit_price = unit_price, discount_percent = 0")
    with op.batch_alter_table("invoice_lines") as batch:
        batch.alter_column("agreement_name", nullable=False, existing_type=sa.String(200))
        batch.alter_column("list_unit_price", nullable=False, existing_type=money())
        batch.alter_column("discount_percent", nullable=False, existing_type=money())
    _foreign_keys(after=True)


def downgrade() -> None:
    _foreign_keys(after=False)
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("discount_percent")
        batch.drop_column("list_unit_price")
        batch.drop_column("agreement_name")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("discount_percent")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("settled_at")
    with op.batch_alter_table("subscription_periods") as batch:
        batch.drop_column("settled_at")
        batch.drop_column("discount_percent")
        batch.drop_column("feature_prices")
        batch.drop_column("seat_price")
        batch.drop_column("currency")
    op.execute("DELETE FROM scheduled_changes WHERE kind = 'BILLING_MODE_CHANGE'")
    with op.batch_alter_table("scheduled_changes") as batch:
        batch.drop_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_changes_scheduledchangekind"), _kind_check(KINDS_BEFORE))
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in MONEY_COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Numeric(14, 2), existing_type=sa.Numeric(18, 2))
