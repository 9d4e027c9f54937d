"""OAuth authorization server state: authorization codes, rotating refresh tokens, revoked
access tokens, invitation links, external identity provider links, sign-in attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The models' column types, spelled out so that this migration never changes when models do.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=False),
        sa.Column("auth_time", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("family_id", sa.String(length=64), nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["client_pk"], ["oauth_clients.id"],
                                name=op.f("fk_oauth_authorization_codes_client_pk_oauth_clients"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_oauth_authorization_codes_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_authorization_codes_code_hash")),
    )
    op.create_index(op.f("ix_oauth_authorization_codes_expires_at"), "oauth_authorization_codes", ["expires_at"])
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("client_pk", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("access_jti", sa.String(length=100), nullable=True),
        sa.Column("access_expires_at", UTCDateTime, nullable=True),
        sa.Column("auth_time", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["client_pk"], ["oauth_clients.id"],
                                name=op.f("fk_oauth_refresh_tokens_client_pk_oauth_clients"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_oauth_refresh_tokens_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oauth_refresh_tokens_token_hash")),
    )
    op.create_index(op.f("ix_oauth_refresh_tokens_family_id"), "oauth_refresh_tokens", ["family_id"])
    op.create_index(op.f("ix_oauth_refresh_tokens_expires_at"), "oauth_refresh_tokens", ["expires_at"])
    op.create_table(
        "oauth_revoked_access_tokens",
        sa.Column("jti", sa.String(length=100), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_oauth_revoked_access_tokens")),
    )
    op.create_index(op.f("ix_oauth_revoked_access_tokens_expires_at"), "oauth_revoked_access_tokens",
                    ["expires_at"])
    op.create_table(
        "invitation_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("firm_id", BigId, nullable=True),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("membership_id", BigId, nullable=True),
        sa.Column("pending_email", sa.String(length=320), nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_invitation_tokens_firm_id_firms"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"],
                                name=op.f("fk_invitation_tokens_membership_id_memberships"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_invitation_tokens_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_tokens_token_hash")),
    )
    op.create_index(op.f("ix_invitation_tokens_membership_id"), "invitation_tokens", ["membership_id"])
    op.create_index(op.f("ix_invitation_tokens_user_id"), "invitation_tokens", ["user_id"])
    op.create_index(op.f("ix_invitation_tokens_firm_id"), "invitation_tokens", ["firm_id"])
    op.create_table(
        "external_subject_links",
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_external_subject_links_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_subject_links")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_external_subject_links_issuer_subject")),
        sa.UniqueConstraint("issuer", "user_id", name=op.f("uq_external_subject_links_issuer_user_id")),
    )
    op.create_table(
        "sign_in_attempts",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", UTCDateTime, nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index(op.f("ix_sign_in_attempts_account_attempted_at"), "sign_in_attempts",
                    ["account", "attempted_at"])
    op.create_index(op.f("ix_sign_in_attempts_address_attempted_at"), "sign_in_attempts",
                    ["address", "attempted_at"])
    op.create_index(op.f("ix_sign_in_attempts_attempted_at"), "sign_in_attempts", ["attempted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_attempts_attempted_at"), table_name="sign_in_attempts")
    op.drop_index(op.f("ix_sign_in_attempts_address_attempted_at"), table_name="sign_in_attempts")
    op.drop_index(op.f("ix_sign_in_attempts_account_attempted_at"), table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_table("external_subject_links")
    op.drop_index(op.f("ix_invitation_tokens_firm_id"), table_name="invitation_tokens")
    op.drop_index(op.f("ix_invitation_tokens_user_id"), table_name="invitation_tokens")
    op.drop_index(op.f("ix_invitation_tokens_membership_id"), table_name="invitation_tokens")
    op.drop_table("invitation_tokens")
    op.drop_index(op.f("ix_oauth_revoked_access_tokens_expires_at"), table_name="oauth_revoked_access_tokens")
    op.drop_table("oauth_revoked_access_tokens")
    op.drop_index(op.f("ix_oauth_refresh_tokens_expires_at"), table_name="oauth_refresh_tokens")
    op.drop_index(op.f("ix_oauth_refresh_tokens_family_id"), table_name="oauth_refresh_tokens")
    op.drop_table("oauth_refresh_tokens")
    op.drop_index(op.f("ix_oauth_authorization_codes_expires_at"), table_name="oauth_authorization_codes")
    op.drop_table("oauth_authorization_codes")
