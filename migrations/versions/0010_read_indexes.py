"""Indexes for reads bounded by the answer (R85, R86): each connection's page is a range of a
(parent, id) index read `first + 1` rows deep, so a page of a firm's 5,000 companies reads 101
rows, not 5,000. Three (parent) indexes become (parent, id), which serves what they served.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = [
    ("companies", ["firm_id", "id"]),
    ("agreements", ["firm_id", "id"]),
    ("memberships", ["company_id", "id"]),
    ("invoices", ["firm_id", "id"]),
]
# (table, the old index's columns): replaced by (columns..., id).
WIDENED = [
    ("companies", ["agreement_id"]),
    ("orders", ["subscription_id"]),
    ("invoices", ["agreement_id"]),
]


def _name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, columns in ADDED:
        op.create_index(_name(table, columns), table, columns)
    for table, columns in WIDENED:
        op.create_index(_name(table, [*columns, "id"]), table, [*columns, "id"])
        op.drop_index(_name(table, columns), table_name=table)


def downgrade() -> None:
    for table, columns in WIDENED:
        op.create_index(_name(table, columns), table, columns)
        op.drop_index(_name(table, [*columns, "id"]), table_name=table)
    for table, columns in ADDED:
        op.drop_index(_name(table, columns), table_name=table)
