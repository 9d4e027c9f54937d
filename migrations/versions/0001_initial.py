"""The initial schema: every table of models.Base.metadata, and append-only audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The models' column types, spelled out so that this migration never changes when
# models/base.py does (same DDL: BIGINT ids, NUMERIC(14, 2) money, text money on SQLite).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(14, 2).with_variant(sa.String(32), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)


def enum(name: str, *values: str) -> sa.Enum:
    """models.base.enum_type: a VARCHAR(32) with a CHECK named ck_<table>_<name>."""
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


APPEND_ONLY_MESSAGE = "audit events are append-only"

# R29: the database itself refuses to change or remove audit events.
POSTGRESQL_APPEND_ONLY = [
    f"""
    CREATE FUNCTION audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (% refused)', TG_OP;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
    """,
]
POSTGRESQL_DROP_APPEND_ONLY = [
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
]
# SQLite drops a table's triggers with it: a later batch migration that rebuilds
# audit_events must create these again.
SQLITE_APPEND_ONLY = [
    f"""
    CREATE TRIGGER audit_events_no_{verb.lower()}
    BEFORE {verb} ON audit_events
    BEGIN
        SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}');
    END
    """
    for verb in ("UPDATE", "DELETE")
]
SQLITE_DROP_APPEND_ONLY = [
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_events_no_update",
]


def _statements(postgresql: list[str], sqlite: list[str]) -> list[str]:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        return postgresql
    if dialect == "sqlite":
        return sqlite
    raise NotImplementedError(f"append-only audit events are not written for {dialect}")


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("included_file_storage_gb", sa.Integer(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_editions")),
        sa.UniqueConstraint("code", name=op.f("uq_editions_code")),
    )
    op.create_table(
        "features",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", enum("featurekind", "FEATURE", "INTEGRATION"), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_features")),
        sa.UniqueConstraint("code", name=op.f("uq_features_code")),
    )
    op.create_table(
        "firms",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organization_number", sa.String(length=40), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("has_reseller_agreement", sa.Boolean(), nullable=False),
        sa.Column("is_certified", sa.Boolean(), nullable=False),
        sa.Column("reseller_discount_percent", Money, nullable=False),
        sa.Column("last_invoice_number", sa.Integer(), nullable=False),
        sa.Column("last_order_number", sa.Integer(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("billing_contact_name", sa.String(length=200), nullable=True),
        sa.Column("billing_email", sa.String(length=320), nullable=True),
        sa.Column("invoice_street", sa.String(length=200), nullable=True),
        sa.Column("invoice_postal_code", sa.String(length=20), nullable=True),
        sa.Column("invoice_city", sa.String(length=100), nullable=True),
        sa.Column("invoice_country", sa.String(length=2), nullable=True),
        sa.Column("e_invoice_enabled", sa.Boolean(), nullable=False),
        sa.Column("e_invoice_address", sa.String(length=100), nullable=True),
        sa.Column("e_invoice_operator_code", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firms")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("principal_key", sa.String(length=200), nullable=False),
        sa.Column("mutation", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "principal_key",
            "key",
            name=op.f("uq_idempotency_records_principal_key_key"),
        ),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=100), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column("retired_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_keys_kid")),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_normalized", sa.String(length=320), nullable=True),
        sa.Column("personal_identity_digest", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            enum("userstatus", "INVITED", "ACTIVE", "DEACTIVATED"),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_normalized", name=op.f("uq_users_email_normalized")),
        sa.UniqueConstraint("personal_identity_digest", name=op.f("uq_users_personal_identity_digest")),
    )
    op.create_table(
        "agreements",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("customer_number", sa.String(length=50), nullable=True),
        sa.Column("billing_mode", enum("billingmode", "FIRM", "CUSTOMER"), nullable=False),
        sa.Column("primary_contact_id", BigId, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("billing_contact_name", sa.String(length=200), nullable=True),
        sa.Column("billing_email", sa.String(length=320), nullable=True),
        sa.Column("invoice_street", sa.String(length=200), nullable=True),
        sa.Column("invoice_postal_code", sa.String(length=20), nullable=True),
        sa.Column("invoice_city", sa.String(length=100), nullable=True),
        sa.Column("invoice_country", sa.String(length=2), nullable=True),
        sa.Column("e_invoice_enabled", sa.Boolean(), nullable=False),
        sa.Column("e_invoice_address", sa.String(length=100), nullable=True),
        sa.Column("e_invoice_operator_code", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_agreements_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["primary_contact_id"],
            ["users.id"],
            name=op.f("fk_agreements_primary_contact_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
        sa.UniqueConstraint(
            "firm_id",
            "customer_number",
            name=op.f("uq_agreements_firm_id_customer_number"),
        ),
    )
    op.create_index(op.f("ix_agreements_firm_id_name"), "agreements", ["firm_id", "name"])
    op.create_table(
        "audit_events",
        sa.Column("firm_id", BigId, nullable=True),
        sa.Column("company_id", BigId, nullable=True),
        sa.Column("subscription_id", BigId, nullable=True),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("actor_user_id", BigId, nullable=True),
        sa.Column("client_id", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_audit_events_actor_user_id_users"),
        ),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_audit_events_firm_id_firms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_company_id_id"), "audit_events", ["company_id", "id"])
    op.create_index(op.f("ix_audit_events_firm_id_id"), "audit_events", ["firm_id", "id"])
    op.create_index(
        op.f("ix_audit_events_subscription_id_id"),
        "audit_events",
        ["subscription_id", "id"],
    )
    op.create_table(
        "client_users",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_client_users_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_client_users_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_users")),
        sa.UniqueConstraint("firm_id", "user_id", name=op.f("uq_client_users_firm_id_user_id")),
    )
    op.create_index(op.f("ix_client_users_user_id"), "client_users", ["user_id"])
    op.create_table(
        "edition_prices",
        sa.Column("edition_code", sa.String(length=50), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_price", Money, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["edition_code"],
            ["editions.code"],
            name=op.f("fk_edition_prices_edition_code_editions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edition_prices")),
        sa.UniqueConstraint(
            "edition_code",
            "currency",
            "valid_from",
            name=op.f("uq_edition_prices_edition_code_currency_valid_from"),
        ),
    )
    op.create_table(
        "feature_prices",
        sa.Column("feature_code", sa.String(length=50), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_price", Money, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_code"],
            ["features.code"],
            name=op.f("fk_feature_prices_feature_code_features"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_prices")),
        sa.UniqueConstraint(
            "feature_code",
            "currency",
            "valid_from",
            name=op.f("uq_feature_prices_feature_code_currency_valid_from"),
        ),
    )
    op.create_table(
        "firm_members",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("role", enum("firmrole", "FIRM_ADMIN", "FIRM_ADVISOR"), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_firm_members_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_firm_members_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firm_members")),
        sa.UniqueConstraint("firm_id", "user_id", name=op.f("uq_firm_members_firm_id_user_id")),
    )
    op.create_index(op.f("ix_firm_members_user_id"), "firm_members", ["user_id"])
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("firm_id", BigId, nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_oauth_clients_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_clients_client_id")),
    )
    op.create_table(
        "outbox_emails",
        sa.Column("firm_id", BigId, nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_outbox_emails_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_emails")),
    )
    op.create_index(
        op.f("ix_outbox_emails_sent_at_next_attempt_at"),
        "outbox_emails",
        ["sent_at", "next_attempt_at"],
    )
    op.create_table(
        "companies",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("agreement_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organization_number", sa.String(length=40), nullable=True),
        sa.Column("vat_number", sa.String(length=40), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_companies_agreement_id_agreements"),
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_companies_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    op.create_index(op.f("ix_companies_agreement_id"), "companies", ["agreement_id"])
    op.create_index(op.f("ix_companies_firm_id_name"), "companies", ["firm_id", "name"])
    op.create_table(
        "invoices",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("agreement_id", BigId, nullable=True),
        sa.Column("billing_account", sa.String(length=40), nullable=False),
        sa.Column("billing_mode", enum("billingmode", "FIRM", "CUSTOMER"), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", Money, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_invoices_agreement_id_agreements"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_invoices_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint(
            "firm_id",
            "billing_account",
            "period_start",
            name=op.f("uq_invoices_firm_id_billing_account_period_start"),
        ),
        sa.UniqueConstraint("firm_id", "number", name=op.f("uq_invoices_firm_id_number")),
    )
    op.create_index(op.f("ix_invoices_agreement_id"), "invoices", ["agreement_id"])
    op.create_table(
        "subscriptions",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("agreement_id", BigId, nullable=True),
        sa.Column("master_firm_id", BigId, nullable=True),
        sa.Column("edition_code", sa.String(length=50), nullable=False),
        sa.Column("status", enum("subscriptionstatus", "ACTIVE", "CANCELLED"), nullable=False),
        sa.Column("channel", enum("saleschannel", "DIRECT", "MARKETPLACE"), nullable=False),
        sa.Column(
            "billing_interval",
            enum("billinginterval", "MONTHLY", "YEARLY"),
            nullable=False,
        ),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("current_period_start", sa.Date(), nullable=False),
        sa.Column("current_period_end", sa.Date(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "(agreement_id IS NULL) <> (master_firm_id IS NULL)",
            name=op.f("ck_subscriptions_one_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_subscriptions_agreement_id_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["edition_code"],
            ["editions.code"],
            name=op.f("fk_subscriptions_edition_code_editions"),
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_subscriptions_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["master_firm_id"],
            ["firms.id"],
            name=op.f("fk_subscriptions_master_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("agreement_id", name=op.f("uq_subscriptions_agreement_id")),
        sa.UniqueConstraint("master_firm_id", name=op.f("uq_subscriptions_master_firm_id")),
    )
    op.create_index(op.f("ix_subscriptions_firm_id"), "subscriptions", ["firm_id"])
    op.create_table(
        "client_user_companies",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("client_user_id", BigId, nullable=False),
        sa.Column("company_id", BigId, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_user_id"],
            ["client_users.id"],
            name=op.f("fk_client_user_companies_client_user_id_client_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_client_user_companies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_client_user_companies_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_user_companies")),
        sa.UniqueConstraint(
            "client_user_id",
            "company_id",
            name=op.f("uq_client_user_companies_client_user_id_company_id"),
        ),
    )
    op.create_index(
        op.f("ix_client_user_companies_company_id"),
        "client_user_companies",
        ["company_id"],
    )
    op.create_table(
        "invoice_lines",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("invoice_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("agreement_id", BigId, nullable=True),
        sa.Column("customer_number", sa.String(length=50), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column(
            "license_type",
            enum("licensetype", "NAMED", "CONCURRENT", "CLIENT_USER"),
            nullable=True,
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", Money, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_invoice_lines_agreement_id_agreements"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_invoice_lines_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    op.create_index(op.f("ix_invoice_lines_invoice_id"), "invoice_lines", ["invoice_id"])
    op.create_table(
        "license_sessions",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column("company_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_license_sessions_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_license_sessions_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_license_sessions_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_license_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_license_sessions")),
    )
    op.create_index(
        op.f("ix_license_sessions_subscription_id_expires_at"),
        "license_sessions",
        ["subscription_id", "expires_at"],
    )
    op.create_index(op.f("ix_license_sessions_user_id"), "license_sessions", ["user_id"])
    op.create_table(
        "memberships",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("company_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column(
            "role",
            enum("role", "REPORTER", "APPROVER", "ADMINISTRATOR", "ACCOUNTANT"),
            nullable=False,
        ),
        sa.Column(
            "license_type",
            enum("licensetype", "NAMED", "CONCURRENT", "CLIENT_USER"),
            nullable=False,
        ),
        sa.Column(
            "status",
            enum("membershipstatus", "INVITED", "ACTIVE", "DEACTIVATED"),
            nullable=False,
        ),
        sa.Column("employee_number", sa.String(length=50), nullable=True),
        sa.Column("pay_type", enum("paytype", "MONTHLY", "HOURLY"), nullable=True),
        sa.Column("approver_id", BigId, nullable=True),
        sa.Column("invited_at", UTCDateTime, nullable=True),
        sa.Column("invitation_expires_at", UTCDateTime, nullable=True),
        sa.Column("activated_at", UTCDateTime, nullable=True),
        sa.Column("deactivated_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["approver_id"], ["users.id"], name=op.f("fk_memberships_approver_id_users")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_memberships_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_memberships_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("user_id", "company_id", name=op.f("uq_memberships_user_id_company_id")),
    )
    op.create_index(
        op.f("ix_memberships_company_id_status"),
        "memberships",
        ["company_id", "status"],
    )
    op.create_index(op.f("ix_memberships_firm_id"), "memberships", ["firm_id"])
    op.create_table(
        "orders",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("billing_mode", enum("billingmode", "FIRM", "CUSTOMER"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", Money, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_orders_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_orders_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("firm_id", "number", name=op.f("uq_orders_firm_id_number")),
    )
    op.create_index(op.f("ix_orders_subscription_id"), "orders", ["subscription_id"])
    op.create_table(
        "scheduled_changes",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column(
            "kind",
            enum("scheduledchangekind", "SEAT_DECREASE", "EDITION_CHANGE"),
            nullable=False,
        ),
        sa.Column(
            "license_type",
            enum("licensetype", "NAMED", "CONCURRENT", "CLIENT_USER"),
            nullable=True,
        ),
        sa.Column("from_value", sa.String(length=50), nullable=False),
        sa.Column("to_value", sa.String(length=50), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=True),
        sa.Column("cancelled_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_scheduled_changes_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_scheduled_changes_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_changes")),
    )
    op.create_index(op.f("ix_scheduled_changes_effective_on"), "scheduled_changes", ["effective_on"])
    op.create_index(
        op.f("ix_scheduled_changes_subscription_id_applied_at_cancelled_at"),
        "scheduled_changes",
        ["subscription_id", "applied_at", "cancelled_at"],
    )
    op.create_table(
        "seat_pools",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column(
            "license_type",
            enum("licensetype", "NAMED", "CONCURRENT", "CLIENT_USER"),
            nullable=False,
        ),
        sa.Column("purchased", sa.Integer(), nullable=False),
        sa.Column("purchased_at_period_start", sa.Integer(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.CheckConstraint("purchased >= 0", name=op.f("ck_seat_pools_purchased_not_negative")),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_seat_pools_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_seat_pools_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_pools")),
        sa.UniqueConstraint(
            "subscription_id",
            "license_type",
            name=op.f("uq_seat_pools_subscription_id_license_type"),
        ),
    )
    op.create_table(
        "subscription_features",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column("feature_code", sa.String(length=50), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paid_through_period_start", sa.Date(), nullable=True),
        sa.Column("enabled_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_code"],
            ["features.code"],
            name=op.f("fk_subscription_features_feature_code_features"),
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_subscription_features_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_features_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_features")),
        sa.UniqueConstraint(
            "subscription_id",
            "feature_code",
            name=op.f("uq_subscription_features_subscription_id_feature_code"),
        ),
    )
    op.create_table(
        "order_lines",
        sa.Column("firm_id", BigId, nullable=False),
        sa.Column("order_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column(
            "license_type",
            enum("licensetype", "NAMED", "CONCURRENT", "CLIENT_USER"),
            nullable=True,
        ),
        sa.Column("feature_code", sa.String(length=50), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", Money, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_order_lines_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    op.create_index(op.f("ix_order_lines_order_id"), "order_lines", ["order_id"])

    for statement in _statements(POSTGRESQL_APPEND_ONLY, SQLITE_APPEND_ONLY):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(POSTGRESQL_DROP_APPEND_ONLY, SQLITE_DROP_APPEND_ONLY):
        op.execute(statement)
    # Dropping a table drops its indexes; children first.
    op.drop_table("order_lines")
    op.drop_table("subscription_features")
    op.drop_table("seat_pools")
    op.drop_table("scheduled_changes")
    op.drop_table("orders")
    op.drop_table("memberships")
    op.drop_table("license_sessions")
    op.drop_table("invoice_lines")
    op.drop_table("client_user_companies")
    op.drop_table("subscriptions")
    op.drop_table("invoices")
    op.drop_table("companies")
    op.drop_table("outbox_emails")
    op.drop_table("oauth_clients")
    op.drop_table("firm_members")
    op.drop_table("feature_prices")
    op.drop_table("edition_prices")
    op.drop_table("client_users")
    op.drop_table("audit_events")
    op.drop_table("agreements")
    op.drop_table("users")
    op.drop_table("signing_keys")
    op.drop_table("server_secrets")
    op.drop_table("idempotency_records")
    op.drop_table("firms")
    op.drop_table("features")
    op.drop_table("editions")
