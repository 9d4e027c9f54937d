"""OAuth clients and the server's signing keys (shared by every process through the database)."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, CreatedMixin, IdMixin, UTCDateTime


class OAuthClient(IdMixin, CreatedMixin, Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Only a hash is kept; the secret is shown once, when the client is created.
    secret_hash: Mapped[str | None] = mapped_column(String(200))
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    # A client-credentials token acts for this firm; NULL for vendor and user-facing apps.
    firm_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("firms.id", ondelete="CASCADE"))
    scopes: Mapped[str] = mapped_column(Text)
    redirect_uris: Mapped[str] = mapped_column(Text, default="")


class SigningKey(IdMixin, CreatedMixin, Base):
    """An asymmetric key as a private JWK; retired keys still validate until their tokens expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_jwk: Mapped[str] = mapped_column(Text)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ServerSecret(Base):
    """Secrets generated on first use (e.g. the key that digests personal identity numbers)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
