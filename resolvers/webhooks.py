"""Webhook endpoints (R67, R69, R71): registered, changed, rolled and removed by a firm's admins.

The signing secret is made here and answered once, by the mutation that made it (create, roll);
it is kept encrypted (auth.webhook_secrets) and never answered or logged again. A URL must be
https, and its host must resolve to public addresses only (server-side request forgery); plain
http to a loopback host only with BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK (development).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select

from auth import webhook_secrets
from licensing import webhooks as rules
from licensing.errors import RuleViolation
from models import Firm, WebhookDelivery, WebhookEndpoint, ids
from models.enums import UserErrorCode
from resolvers.base import UnitOfWork, changes

MAX_OVERLAP = timedelta(days=7)
DEFAULT_OVERLAP = timedelta(hours=24)
RESOLVE_TIMEOUT = 5.0


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name stands for (itself, for an IP literal); none when it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def default_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def check_url(uow: UnitOfWork, url: str, field: Sequence[str]) -> str:
    allow = uow.runtime.settings.webhooks_allow_http_loopback
    url, host = rules.check_url(url, field, allow_http_loopback=allow)
    rules.check_addresses(await resolve(host, default_port(url)), field, allow_loopback=allow)
    return url


async def create_endpoint(uow: UnitOfWork, firm: Firm, *, url: str,
                          event_types: Sequence[rules.EventType]) -> tuple[WebhookEndpoint, str]:
    types = rules.check_event_types(event_types, ["input", "eventTypes"])
    url = await check_url(uow, url, ["input", "url"])
    count = await uow.session.scalar(select(func.count()).select_from(WebhookEndpoint)
                                     .where(WebhookEndpoint.firm_id == firm.id))
    if (count or 0) >= rules.MAX_ENDPOINTS_PER_FIRM:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            f"A firm may register at most {rules.MAX_ENDPOINTS_PER_FIRM} webhook endpoints.",
                            ["input", "firmId"])
    secret = webhook_secrets.new_secret()
    aes = await webhook_secrets.cipher(uow.session)
    endpoint = WebhookEndpoint(firm_id=firm.id, url=url, event_types=rules.encode_types(types), enabled=True,
                               secret_encrypted=webhook_secrets.encrypt(aes, secret),
                               created_at=uow.runtime.now())
    uow.session.add(endpoint)
    await uow.session.flush()
    # The URL's host only: a path or query may carry the receiver's own token.
    uow.audit("webhook.endpoint_created", endpoint, f"Webhook endpoint for {urlsplit(url).hostname} registered",
              after={"host": urlsplit(url).hostname, "eventTypes": [t.name for t in types]})
    return endpoint, secret


async def update_endpoint(uow: UnitOfWork, endpoint: WebhookEndpoint, *, url: str | None,
                          event_types: Sequence[rules.EventType] | None, enabled: bool | None) -> WebhookEndpoint:
    values: dict[str, object] = {}
    if event_types is not None:
        values["event_types"] = rules.encode_types(rules.check_event_types(event_types, ["input", "eventTypes"]))
    if url is not None:
        values["url"] = await check_url(uow, url, ["input", "url"])
    if enabled is not None:
        values["enabled"] = enabled
    before, after = changes(endpoint, values)
    if after:
        for shown in (before, after):
            if "url" in shown:
                shown["url"] = urlsplit(str(shown["url"])).hostname
        uow.audit("webhook.endpoint_updated", endpoint, "Webhook endpoint changed", before=before, after=after)
    return endpoint


async def delete_endpoint(uow: UnitOfWork, endpoint: WebhookEndpoint) -> str:
    gid = ids.of(endpoint)
    uow.audit("webhook.endpoint_deleted", endpoint, f"Webhook endpoint for {urlsplit(endpoint.url).hostname} removed")
    await uow.session.delete(endpoint)
    return gid


async def roll_secret(uow: UnitOfWork, endpoint: WebhookEndpoint, *,
                      overlap_seconds: int | None) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the current one also signs (a second v1=) for the overlap,
    so that receivers can switch without dropping an event. A roll during an overlap ends it:
    only the secret being replaced keeps signing."""
    overlap = DEFAULT_OVERLAP if overlap_seconds is None else timedelta(seconds=overlap_seconds)
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            f"The overlap must be 0 to {int(MAX_OVERLAP.total_seconds())} seconds.",
                            ["input", "overlapSeconds"])
    now = uow.runtime.now()
    secret = webhook_secrets.new_secret()
    aes = await webhook_secrets.cipher(uow.session)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if overlap else None
    endpoint.previous_secret_expires_at = now + overlap if overlap else None
    endpoint.secret_encrypted = webhook_secrets.encrypt(aes, secret)
    endpoint.secret_rolled_at = now
    uow.audit("webhook.secret_rolled", endpoint, "Webhook signing secret rolled",
              after={"overlapSeconds": int(overlap.total_seconds())})
    return endpoint, secret


async def redeliver(uow: UnitOfWork, delivery: WebhookDelivery) -> WebhookDelivery:
    """The same event (same id and sequence: receivers drop it if they have it) sent again, as a
    delivery of its own with a fresh day of retries; the one asked for keeps its history."""
    endpoint = await uow.session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "No WebhookDelivery with that ID.", ["input", "deliveryId"])
    again = WebhookDelivery(firm_id=delivery.firm_id, endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
                            redelivery_of_id=delivery.id, created_at=uow.runtime.now(), attempts=0)
    uow.session.add(again)
    await uow.session.flush()
    uow.audit("webhook.redelivery_requested", endpoint, "Webhook delivery requested again",
              after={"delivery": ids.of(again), "of": ids.of(delivery)})
    return again
