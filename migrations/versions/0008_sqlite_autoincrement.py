"""SQLite AUTOINCREMENT (R62): without it SQLite hands a deleted row's id to the next row, so
an old audit event's subjectId came to name another firm's new agreement. Every table keyed
by `id` is rebuilt with AUTOINCREMENT; PostgreSQL's identities never reuse a value, so there
this migration does nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-15
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = [
    "agreement_transfers", "agreements", "audit_events", "client_user_companies", "client_users", "companies",
    "edition_prices", "editions", "external_subject_links", "feature_prices", "features", "firm_members", "firms",
    "idempotency_records", "invitation_tokens", "invoice_lines", "invoices", "license_sessions", "memberships",
    "oauth_authorization_codes", "oauth_clients", "oauth_refresh_tokens", "order_lines", "orders", "outbox_emails",
    "scheduled_changes", "seat_pools", "sign_in_attempts", "signing_keys", "subscription_features",
    "subscription_periods", "subscriptions", "users",
]
# SQLite drops a table's triggers with it (0001 made these): audit events stay append-only.
APPEND_ONLY = [
    f"""
    CREATE TRIGGER audit_events_no_{verb.lower()}
    BEFORE {verb} ON audit_events
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only');
    END
    """
    for verb in ("UPDATE", "DELETE")
]


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    for statement in APPEND_ONLY:
        op.execute(statement)


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
