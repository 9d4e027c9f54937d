"""Webhook signing secrets (R69): made here, shown once, kept encrypted, used to sign.

A signing secret must be usable for HMAC, so unlike client secrets it cannot be kept as a hash.
It is kept encrypted (AES-GCM) with a server key that lives in `server_secrets`, like the
PII digest key: a copy of the endpoints table alone (a backup, a log of rows) signs nothing.
"""

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession

from auth.secrets import server_secret

WEBHOOK_KEY = "webhook-secret-key"  # noqa: S105 - a name, not a secret
PREFIX = "whsec_"
HEADER = "Bureau-Signature"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def cipher(session: AsyncSession) -> AESGCM:
    return AESGCM(await server_secret(session, WEBHOOK_KEY))


def encrypt(aes: AESGCM, secret: str) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + aes.encrypt(nonce, secret.encode(), WEBHOOK_KEY.encode())).decode()


def decrypt(aes: AESGCM, stored: str) -> str:
    raw = base64.b64decode(stored)
    return aes.decrypt(raw[:12], raw[12:], WEBHOOK_KEY.encode()).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 in hex over "<timestamp>.<body>", keyed with the whole secret string."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secrets_in_use: Sequence[str], timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per secret in use (two during a roll's overlap)."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_in_use)])
