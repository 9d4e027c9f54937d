"""Data versions (R82): a counter per firm (and per user, and one global) that every committed write
bumps, so that cached responses read at older versions are never served again; and the indexes that
tell when a firm's answers next change with time alone (R84).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_data_versions")),
    )
    op.create_index(op.f("ix_memberships_firm_id_invitation_expires_at"), "memberships",
                    ["firm_id", "invitation_expires_at"])
    op.create_index(op.f("ix_memberships_firm_id_access_ends_at"), "memberships", ["firm_id", "access_ends_at"])
    op.create_index(op.f("ix_license_sessions_firm_id_expires_at"), "license_sessions", ["firm_id", "expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_license_sessions_firm_id_expires_at"), table_name="license_sessions")
    op.drop_index(op.f("ix_memberships_firm_id_access_ends_at"), table_name="memberships")
    op.drop_index(op.f("ix_memberships_firm_id_invitation_expires_at"), table_name="memberships")
    op.drop_table("data_versions")
