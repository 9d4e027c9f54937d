"""Tenant safety: links whose secret is made when their email is sent, link purposes, and
list prices kept on order lines (company members of a FIRM agreement see those).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)
PURPOSES = ("INVITATION", "ACCOUNT_SETUP", "EMAIL_CONFIRMATION", "EMAIL_CHANGE")


def money() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.Numeric(14, 2).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("invitation_tokens") as batch:
        batch.add_column(sa.Column("purpose", sa.Enum(*PURPOSES, name="linkpurpose", native_enum=False,
                                                      create_constraint=True, length=32),
                                   nullable=False, server_default="INVITATION"))
    op.execute("UPDATE invitation_tokens SET purpose = 'EMAIL_CONFIRMATION' WHERE pending_email IS NOT NULL")
    op.execute("UPDATE invitation_tokens SET purpose = 'ACCOUNT_SETUP' "
               "WHERE pending_email IS NULL AND membership_id IS NULL")
    with op.batch_alter_table("invitation_tokens") as batch:
        batch.alter_column("purpose", server_default=None)

    with op.batch_alter_table("outbox_emails") as batch:
        batch.add_column(sa.Column("link_id", BigId, nullable=True))
        batch.add_column(sa.Column("discarded_at", UTCDateTime, nullable=True))
        batch.create_foreign_key(op.f("fk_outbox_emails_link_id_invitation_tokens"), "invitation_tokens",
                                 ["link_id"], ["id"], ondelete="SET NULL")
    # Raw links queued before this revision stay in their bodies until sent; sent ones are blanked.
    op.execute("UPDATE outbox_emails SET body = '(sent; the link it carried is not kept)' "
               "WHERE sent_at IS NOT NULL AND body LIKE '%/invitations/%'")

    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("list_unit_price", money(), nullable=True))
        batch.add_column(sa.Column("list_amount", money(), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("list_total", money(), nullable=True))
    _backfill_list_prices()
    with op.batch_alter_table("order_lines") as batch:
        batch.alter_column("list_unit_price", nullable=False, existing_type=money())
        batch.alter_column("list_amount", nullable=False, existing_type=money())
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("list_total", nullable=False, existing_type=money())


def _backfill_list_prices() -> None:
    """CUSTOMER orders are at list price already. A FIRM order's list price is its reseller
    price undone with the firm's discount of today: the discount of the order's day was not
    kept before this revision, and these figures are only shown, never billed."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT l.id, l.unit_price, l.amount, o.billing_mode, f.reseller_discount_percent "
        "FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN firms f ON f.id = o.firm_id")).all()
    cent = Decimal("0.01")
    for line_id, unit, amount, mode, discount in rows:
        unit, amount, discount = Decimal(str(unit)), Decimal(str(amount)), Decimal(str(discount or 0))
        if mode == "FIRM" and discount < 100:
            factor = Decimal(1) - discount / 100
            unit = (unit / factor).quantize(cent, ROUND_HALF_UP)
            amount = (amount / factor).quantize(cent, ROUND_HALF_UP)
        bind.execute(sa.text("UPDATE order_lines SET list_unit_price = :unit, list_amount = :amount WHERE id = :id"),
                     {"unit": str(unit), "amount": str(amount), "id": line_id})
    totals = bind.execute(sa.text("SELECT order_id, list_amount FROM order_lines")).all()
    by_order: dict[int, Decimal] = {}
    for order_id, amount in totals:
        by_order[order_id] = by_order.get(order_id, Decimal("0.00")) + Decimal(str(amount))
    for order_id, total in by_order.items():
        bind.execute(sa.text("UPDATE orders SET list_total = :total WHERE id = :id"), {"total": str(total), "id": order_id})
    bind.execute(sa.text("UPDATE orders SET list_total = total WHERE list_total IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("list_total")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("list_amount")
        batch.drop_column("list_unit_price")
    with op.batch_alter_table("outbox_emails") as batch:
        batch.drop_constraint(op.f("fk_outbox_emails_link_id_invitation_tokens"), type_="foreignkey")
        batch.drop_column("discarded_at")
        batch.drop_column("link_id")
    with op.batch_alter_table("invitation_tokens") as batch:
        batch.drop_constraint(op.f("ck_invitation_tokens_linkpurpose"), type_="check")
        batch.drop_column("purpose")
