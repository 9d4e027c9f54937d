"""Webhooks for partner integrations (R67-R71): endpoints, the event outbox, deliveries and their attempts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

UTCDateTime = sa.DateTime(timezone=True)
# BIGINT identities on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("webhook_sequences",
    sa.Column("subject_id", sa.String(length=200), nullable=False),
    sa.Column("last", BigId, nullable=False),
    sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_webhook_sequences"))
    )
    op.create_table("webhook_endpoints",
    sa.Column("firm_id", BigId, nullable=False),
    sa.Column("url", sa.String(length=2048), nullable=False),
    sa.Column("event_types", sa.String(length=1000), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("secret_encrypted", sa.String(length=500), nullable=False),
    sa.Column("previous_secret_encrypted", sa.String(length=500), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    sa.Column("secret_rolled_at", UTCDateTime, nullable=True),
    sa.Column("id", BigId, autoincrement=True, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_webhook_endpoints_firm_id_firms"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    sqlite_autoincrement=True
    )
    op.create_index(op.f("ix_webhook_endpoints_firm_id_id"), "webhook_endpoints", ["firm_id", "id"], unique=False)
    op.create_table("webhook_events",
    sa.Column("firm_id", BigId, nullable=False),
    sa.Column("event_key", sa.String(length=40), nullable=False),
    sa.Column("event_type", sa.String(length=40), nullable=False),
    sa.Column("subject_id", sa.String(length=200), nullable=False),
    sa.Column("sequence", BigId, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("id", BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_webhook_events_firm_id_firms"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    sa.UniqueConstraint("event_key", name=op.f("uq_webhook_events_event_key")),
    sqlite_autoincrement=True
    )
    op.create_index(op.f("ix_webhook_events_firm_id_id"), "webhook_events", ["firm_id", "id"], unique=False)
    op.create_table("webhook_deliveries",
    sa.Column("firm_id", BigId, nullable=False),
    sa.Column("endpoint_id", BigId, nullable=False),
    sa.Column("event_id", BigId, nullable=False),
    sa.Column("redelivery_of_id", BigId, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("dead_at", UTCDateTime, nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.String(length=500), nullable=True),
    sa.Column("id", BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["event_id"], ["webhook_events.id"], name=op.f("fk_webhook_deliveries_event_id_webhook_events"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_webhook_deliveries_firm_id_firms"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["redelivery_of_id"], ["webhook_deliveries.id"], name=op.f("fk_webhook_deliveries_redelivery_of_id_webhook_deliveries"), ondelete="SET NULL"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    sqlite_autoincrement=True
    )
    op.create_index(op.f("ix_webhook_deliveries_delivered_at_dead_at_next_attempt_at"), "webhook_deliveries", ["delivered_at", "dead_at", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_webhook_deliveries_endpoint_id_id"), "webhook_deliveries", ["endpoint_id", "id"], unique=False)
    op.create_table("webhook_attempts",
    sa.Column("firm_id", BigId, nullable=False),
    sa.Column("delivery_id", BigId, nullable=False),
    sa.Column("attempted_at", UTCDateTime, nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.String(length=500), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
    sa.Column("id", BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_webhook_attempts_firm_id_firms"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    sqlite_autoincrement=True
    )
    op.create_index(op.f("ix_webhook_attempts_delivery_id_id"), "webhook_attempts", ["delivery_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_attempts_delivery_id_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index(op.f("ix_webhook_deliveries_endpoint_id_id"), table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_delivered_at_dead_at_next_attempt_at"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhook_events_firm_id_id"), table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index(op.f("ix_webhook_endpoints_firm_id_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_table("webhook_sequences")
