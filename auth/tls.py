"""The TLS context of bureau's outbound HTTPS (webhook deliveries, a trusted issuer's keys), made once a
process. httpx makes one for every client, loading the whole CA bundle: 14 ms of the event loop's time,
which the webhook worker spent every five seconds, deliveries or none, holding up every request meanwhile."""

import functools
import ssl

import httpx


@functools.cache
def client_context(*, trust_env: bool) -> ssl.SSLContext:
    """httpx's own default context (certifi's CAs; with `trust_env`, SSL_CERT_FILE and SSL_CERT_DIR as well)."""
    return httpx.create_ssl_context(trust_env=trust_env)
