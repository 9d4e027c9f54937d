"""Accountant access with an end (R52): memberships.access_ends_at, the exclusive end of a
membership's access. Nothing to backfill: existing memberships have no end.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    # SQLite: rebuild the table, so that its CREATE TABLE reads as create_all writes it (one
    # clause a line; tests/unit/test_migrations.py compares them). PostgreSQL adds the column.
    recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("memberships", recreate=recreate) as batch:
        batch.add_column(sa.Column("access_ends_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("access_ends_at")
