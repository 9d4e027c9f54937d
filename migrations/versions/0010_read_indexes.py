"""Indexes for reads bounded by the answer (R85, R86): each connection's page is a range of a
(parent, id) index read `first + 1` rows deep, so a page of a firm's 5,000 companies reads 101
rows, not 5,000. Three (parent) indexes become (parent, id), which serves what they served.

Seats in use (licensing/usage.py) join an agreement's companies to their memberships: with
the columns it tests in the index (INCLUDE, PostgreSQL only), PostgreSQL reads the answer's
memberships through it instead of scanning every firm's memberships (36 ms to 8 ms for 1,000
companies on the benchmark's dataset).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
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


SEAT_HOLDERS = ["company_id", "license_type"]
SEAT_HOLDER_COLUMNS = ["user_id", "status", "access_ends_at", "invitation_expires_at"]


def upgrade() -> None:
    for table, columns in ADDED:
        op.create_index(_name(table, columns), table, columns)
    op.create_index(_name("memberships", SEAT_HOLDERS), "memberships", SEAT_HOLDERS,
                    postgresql_include=SEAT_HOLDER_COLUMNS)
    for table, columns in WIDENED:
        op.create_index(_name(table, [*columns, "id"]), table, [*columns, "id"])
        op.drop_index(_name(table, columns), table_name=table)


def downgrade() -> None:
    for table, columns in WIDENED:
        op.create_index(_name(table, columns), table, columns)
        op.drop_index(_name(table, [*columns, "id"]), table_name=table)
    op.drop_index(_name("memberships", SEAT_HOLDERS), table_name="memberships")
    for table, columns in ADDED:
        op.drop_index(_name(table, columns), table_name=table)
