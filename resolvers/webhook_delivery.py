"""Delivery of webhook events (R70): signed POSTs with retries, backoff and a dead state.

Deliveries are `WebhookDelivery` rows written with the change (resolvers.webhook_events). This
module sends them through the loop the email outbox uses (resolvers.outbox_loop: SKIP LOCKED
claiming, attempts, exponential backoff):

- `deliver_due(database, now)` is one pass; `bureau webhooks deliver --once` runs it with the
  runtime's clock.
- `run_worker(database, clock, stop)` repeats passes until `stop` is set; `bureau webhooks
  deliver` and `bureau serve` (unless BUREAU_WEBHOOKS_WORKER=off) run it.

A delivery succeeds when the endpoint answers 2xx within the timeout (BUREAU_WEBHOOK_TIMEOUT,
for the whole request); anything else (refused, timed out, 3xx, 4xx, 5xx, an address that is not
public) is a failed attempt, recorded with its status and error, and the delivery is due again
after `backoff(attempts)`. One whose next try would fall more than DEAD_AFTER after it was made
is given up (dead); `redeliverWebhook` can send it again. Redirects are never followed.

Like email, delivery is at least once: should the process die between the endpoint's answer and
the commit, the event goes again, with the same `id` and `sequence`, so receivers can tell.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth import webhook_secrets
from auth.tls import client_context
from licensing.webhooks import EventType, address_refusal
from models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from models import ids as global_ids
from models.db import Database
from observability import metrics
from resolvers.outbox_loop import deliver_due_rows, record_failure, run_periodically
from resolvers.webhooks import default_port, resolve

log = logging.getLogger("bureau.webhooks")

DEAD_AFTER = timedelta(hours=24)
USER_AGENT = "bureau-webhooks/1"
_ERROR_LENGTH = 300


@dataclass
class WebhookReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        WebhookDelivery.delivered_at.is_(None),
        WebhookDelivery.dead_at.is_(None),
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
        # A disabled endpoint's deliveries wait until it is enabled again.
        WebhookDelivery.endpoint_id.in_(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))),
    )


class _Keys:
    """The server key that decrypts endpoint secrets, read once per pass, and only when there is
    something to send (so an idle worker never makes one)."""

    def __init__(self) -> None:
        self.aes: AESGCM | None = None

    async def get(self, session: AsyncSession) -> AESGCM:
        if self.aes is None:
            self.aes = await webhook_secrets.cipher(session)
        return self.aes


def signing_secrets(aes: AESGCM, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the one it replaced while the roll's overlap lasts (R69)."""
    found = [webhook_secrets.decrypt(aes, endpoint.secret_encrypted)]
    if (endpoint.previous_secret_encrypted is not None and endpoint.previous_secret_expires_at is not None
            and now < endpoint.previous_secret_expires_at):
        found.append(webhook_secrets.decrypt(aes, endpoint.previous_secret_encrypted))
    return found


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                limit: float) -> tuple[int | None, str | None]:
    """(status, error): error is None only for a 2xx answer. The answer's body is never read."""
    try:
        async with asyncio.timeout(limit):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code
    except TimeoutError:
        return None, f"timed out after {limit:g}s"
    except httpx.TimeoutException:
        return None, f"timed out after {limit:g}s"
    except (httpx.HTTPError, OSError) as exc:
        return None, " ".join(f"{type(exc).__name__}: {exc}".split())[:_ERROR_LENGTH]
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}"


async def _send_one(client: httpx.AsyncClient, keys: _Keys, now: datetime, limit: float, allow_loopback: bool,
                    report: WebhookReport, session: AsyncSession, delivery: WebhookDelivery) -> bool | None:
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    event = await session.get(WebhookEvent, delivery.event_id)
    if endpoint is None or event is None:  # removed since it was read
        return None
    aes = await keys.get(session)
    body = event.body.encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhook_secrets.HEADER: webhook_secrets.signature_header(signing_secrets(aes, endpoint, now), timestamp, body),
        "Bureau-Event-Id": event.event_key,
        "Bureau-Event-Type": EventType[event.event_type].value,
        "Bureau-Delivery-Id": global_ids.of(delivery),
    }
    started = time.monotonic()
    host = (urlsplit(endpoint.url).hostname or "").rstrip(".")
    addresses = await resolve(host, default_port(endpoint.url))
    refusals = [r for r in (address_refusal(a, allow_loopback=allow_loopback) for a in addresses) if r is not None]
    status: int | None
    error: str | None
    if not addresses:
        status, error = None, "the host does not resolve"
    elif refusals:
        # Checked again at each delivery: a name may have moved to a private address since registration.
        status, error = None, f"not sent: the host resolves to {refusals[0]}"
    else:
        status, error = await _post(client, endpoint.url, body, headers, limit)
    session.add(WebhookAttempt(firm_id=delivery.firm_id, delivery_id=delivery.id, attempted_at=now,
                               status_code=status, error=error,
                               duration_ms=int((time.monotonic() - started) * 1000)))
    delivery.last_status_code = status
    if error is None:
        delivery.attempts = (delivery.attempts or 0) + 1
        delivery.delivered_at = now
        delivery.last_error = None
        delivery.next_attempt_at = None
        metrics.OUTBOX_DELIVERIES.labels("webhook", "sent").inc()
        report.delivered += 1
        return True
    record_failure(delivery, now, error)
    metrics.OUTBOX_DELIVERIES.labels("webhook", "failed").inc()
    report.failed += 1
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > delivery.created_at + DEAD_AFTER:
        delivery.dead_at = now
        delivery.next_attempt_at = None
        metrics.OUTBOX_DELIVERIES.labels("webhook", "dead").inc()
        report.dead += 1
        log.warning("webhooks: delivery %s given up after %s attempts: %s", delivery.id, delivery.attempts, error)
    else:
        log.info("webhooks: delivery %s failed (attempt %s): %s", delivery.id, delivery.attempts, error)
    return False


async def deliver_due(database: Database, now: datetime, *, request_seconds: float = 10.0,
                      allow_loopback: bool = False, batch_size: int = 100) -> WebhookReport:
    """One pass over every delivery that is due at `now` (never-tried ones are due)."""
    report = WebhookReport()
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                 verify=client_context(trust_env=False)) as client:
        send = functools.partial(_send_one, client, _Keys(), now, request_seconds, allow_loopback, report)
        await deliver_due_rows(database, WebhookDelivery, _due, now, send, batch_size=batch_size)
    if report.delivered or report.failed:
        log.info("webhooks: %s delivered, %s failed, %s given up", report.delivered, report.failed, report.dead)
    await record_backlog(database)
    return report


async def record_backlog(database: Database) -> None:
    """The webhook outbox gauges: deliveries waiting, those that failed before, those given up."""
    async with database.sessions() as session:
        backlog, failing, dead = (await session.execute(select(
            func.count().filter(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.dead_at.is_(None)),
            func.count().filter(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.dead_at.is_(None),
                                WebhookDelivery.attempts > 0),
            func.count().filter(WebhookDelivery.dead_at.is_not(None)),
        ))).one()
    metrics.OUTBOX_BACKLOG.labels("webhook").set(backlog)
    metrics.OUTBOX_FAILING.labels("webhook").set(failing)
    metrics.WEBHOOKS_DEAD.set(dead)


async def run_worker(database: Database, clock: Callable[[], datetime], stop: asyncio.Event, interval: float = 5.0,
                     *, request_seconds: float = 10.0, allow_loopback: bool = False) -> None:
    log.info("webhooks: delivering every %ss", interval)
    await run_periodically(lambda now: deliver_due(database, now, request_seconds=request_seconds,
                                                       allow_loopback=allow_loopback),
                           clock, stop, interval, log)
