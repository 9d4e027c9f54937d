"""Delivery of the email outbox over SMTP (R20): nothing lost, nothing sent twice.

Mail is queued as `OutboxEmail` rows in the same transaction as the change that caused it
(see `resolvers.users.queue_welcome_email`). This module sends those rows:

- `parse_smtp_url(settings.smtp_url)` turns `SMTP_URL` into an `SmtpTarget`.
- `deliver_due(database, target, now)` makes one pass over every unsent row that is due and
  returns a `DeliveryReport`. `bureau outbox deliver --once` is
  `deliver_due(runtime.database, parse_smtp_url(settings.smtp_url), runtime.now())`.
- `run_worker(database, target, clock, stop)` repeats passes until `stop` is set; it is what
  `bureau outbox deliver` (without `--once`) and `bureau serve` (when SMTP_URL is set) run.

Nothing is lost: a row is marked sent only after the SMTP server accepted it; any failure
(server down, refusing, timing out) leaves it unsent with `attempts` counted and
`next_attempt_at` pushed back exponentially, so a later pass tries again.

Nothing is sent twice: each row is claimed with `SELECT ... FOR UPDATE SKIP LOCKED` in its own
transaction, which stays open while the message is handed to the SMTP server and commits
`sent_at` right after. The claiming, backoff and worker loop are `resolvers.outbox_loop`, shared
with the webhook outbox (R70).
"""

import asyncio
import email.utils
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from licensing.memberships import grants_access
from models import Membership, OutboxEmail
from models.db import Database
from models.oauth_grants import InvitationToken
from models.outbox import LINK_PLACEHOLDER
from observability import metrics
from resolvers.outbox_loop import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    DeliveryReport,
    backoff,
    deliver_due_rows,
    record_failure,
    run_periodically,
)
from settings import Settings

log = logging.getLogger("bureau.outbox")

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "DeliveryReport", "SmtpTarget", "backoff", "deliver_due", "parse_smtp_url",
           "run_worker"]

SMTP_TIMEOUT = 30.0
_ERROR_LENGTH = 300
_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send. `start_tls=None` means "upgrade with STARTTLS when offered"."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    start_tls: bool | None = None

    def __str__(self) -> str:
        scheme = "smtps" if self.use_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://[user:pass@]host[:port]` (STARTTLS when offered) or `smtps://...` (TLS from the start).

    The port defaults to 25 (smtp) or 465 (smtps); user and password are percent-decoded.
    Error messages never repeat the URL, since it may hold the password.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("SMTP_URL is empty; expected smtp://[user:pass@]host:port or smtps://...")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL is not a valid URL (check the host and the port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {scheme or 'nothing'!r}")
    host = parts.hostname
    if not host:
        raise ValueError("SMTP_URL has no host; expected smtp://[user:pass@]host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("SMTP_URL must not have a path, query or fragment; expected smtp://[user:pass@]host:port")
    if port == 0:
        raise ValueError("SMTP_URL has port 0")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and not username:
        raise ValueError("SMTP_URL has an empty user name")
    if username is not None and password is None:
        raise ValueError("SMTP_URL has a user name but no password; expected smtp://user:pass@host:port")
    use_tls = scheme == "smtps"
    return SmtpTarget(
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        username=username,
        password=password,
        use_tls=use_tls,
        start_tls=False if use_tls else None,
    )


# --------------------------------------------------------------------------- delivery


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxEmail.sent_at.is_(None),
        OutboxEmail.discarded_at.is_(None),
        or_(OutboxEmail.next_attempt_at.is_(None), OutboxEmail.next_attempt_at <= now),
    )


def _domain(sender: str) -> str:
    _, address = email.utils.parseaddr(sender)
    domain = address.rpartition("@")[2]
    return domain or "localhost"


def build_message(row: OutboxEmail, sender: str, link: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_address
    # A header must not carry line breaks (header injection); the subject comes from user data.
    message["Subject"] = " ".join(row.subject.split())
    created = row.created_at or datetime.now().astimezone()
    message["Date"] = email.utils.format_datetime(created)
    # Stable per row: should a message ever go out twice (see deliver_due), receivers can tell.
    message["Message-ID"] = f"<outbox.{row.id}.{created:%Y%m%d%H%M%S}@{_domain(sender)}>"
    body = row.body
    if link is not None:
        # The placeholder is the last one in the body: text before it (names) cannot move it.
        head, _, tail = body.rpartition(LINK_PLACEHOLDER)
        body = head + link + tail
    message.set_content(body)
    return message


class _Unreachable(Exception):
    """The SMTP server could not be reached in this pass; the remaining mail waits for the next."""


class _Mailer:
    """One SMTP connection per pass, opened on first use and reused for the batch."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self.smtp: aiosmtplib.SMTP | None = None
        self.unreachable: str | None = None

    async def send(self, message: EmailMessage) -> None:
        if self.unreachable is not None:
            raise _Unreachable(self.unreachable)
        if self.smtp is None or not self.smtp.is_connected:
            smtp = aiosmtplib.SMTP(
                hostname=self.target.host, port=self.target.port,
                username=self.target.username, password=self.target.password,
                use_tls=self.target.use_tls, start_tls=self.target.start_tls, timeout=SMTP_TIMEOUT,
            )
            try:
                await smtp.connect()
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Also covers a refused login: no point in trying again for every message.
                self.unreachable = describe_error(exc, self.target)
                log.warning("outbox: cannot reach the mail server %s: %s", self.target, self.unreachable)
                raise _Unreachable(self.unreachable) from exc
            self.smtp = smtp
        try:
            await self.smtp.send_message(message)
        except aiosmtplib.SMTPResponseException:
            raise  # the server refused this message; the connection stays usable (aiosmtplib sent RSET)
        except (aiosmtplib.SMTPException, OSError):
            self.close()  # the connection is gone or unusable; the next message reconnects once
            raise

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    async def quit(self) -> None:
        if self.smtp is not None and self.smtp.is_connected:
            try:
                await self.smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
        self.close()


def describe_error(exc: BaseException, target: SmtpTarget) -> str:
    """A short reason for `last_error` and the log, without the password."""
    if isinstance(exc, _Unreachable):
        text = str(exc)
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.code} {exc.message}"
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        text = f"{type(exc).__name__}: {first.code} {first.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    if target.password:
        text = text.replace(target.password, "***")
    text = " ".join(text.split())
    return text[:_ERROR_LENGTH]


async def _send_one(mailer: _Mailer, now: datetime, sender: str, issuer: str, session: AsyncSession,
                    row: OutboxEmail) -> bool | None:
    """Sends and records one claimed row (resolvers.outbox_loop); None when its link can no
    longer be used (then it is discarded, never sent)."""
    link = None
    if row.link_id is not None:
        token_row = await session.scalar(select(InvitationToken).where(InvitationToken.id == row.link_id)
                                         .with_for_update())
        if token_row is None or token_row.used_at is not None or token_row.expires_at <= now \
                or not await _membership_stands(session, token_row, now):
            row.discarded_at = now
            return None
        # The secret is made now and exists only in the message: the database keeps its hash.
        link = f"{issuer.rstrip('/')}/invitations/{token_row.renew_secret()}"
    try:
        await mailer.send(build_message(row, sender, link))
    except (_Unreachable, aiosmtplib.SMTPException, OSError, ValueError) as exc:
        record_failure(row, now, describe_error(exc, mailer.target))
        metrics.OUTBOX_DELIVERIES.labels("email", "failed").inc()
        if not isinstance(exc, _Unreachable):
            log.warning("outbox: email %s failed (attempt %s): %s", row.id, row.attempts, row.last_error)
        return False
    row.sent_at = now
    row.last_error = None
    metrics.OUTBOX_DELIVERIES.labels("email", "sent").inc()
    # The server has accepted the message; committing sent_at is what makes it "sent".
    # Should the process die or the database fail between here and the commit, the row stays
    # unsent and a later pass sends it again: the only window for a duplicate (at-least-once),
    # kept as short as one UPDATE. The Message-ID stays the same, so receivers can tell.
    return True


async def deliver_due(
    database: Database,
    target: SmtpTarget,
    now: datetime,
    *,
    batch_size: int = 100,
    sender: str = "bureau@localhost",
    issuer: str | None = None,
) -> DeliveryReport:
    """One pass over all unsent mail that is due at `now` (never-tried mail is due).

    Rows are claimed, sent and committed one by one (resolvers.outbox_loop). A failed row gets
    `attempts + 1`, a short `last_error` and `next_attempt_at = now + backoff(attempts)`,
    which takes it out of this pass. If the server cannot be reached, every due row counts
    as failed and is rescheduled. The CLI calls
    `deliver_due(runtime.database, parse_smtp_url(settings.smtp_url), runtime.now())`.
    """
    mailer = _Mailer(target)
    send = functools.partial(_send_one, mailer, now, sender, issuer or Settings().issuer)
    try:
        report = await deliver_due_rows(database, OutboxEmail, _due, now, send, batch_size=batch_size)
    finally:
        await mailer.quit()
    if report.sent or report.failed:
        log.info("outbox: %s sent, %s failed", report.sent, report.failed)
    await record_backlog(database)
    return report


async def record_backlog(database: Database) -> None:
    """Sets the outbox gauges (R92): mail waiting to be sent, and how much of it has failed before."""
    waiting = and_(OutboxEmail.sent_at.is_(None), OutboxEmail.discarded_at.is_(None))
    async with database.sessions() as session:
        backlog, failing = (await session.execute(
            select(func.count(), func.count().filter(OutboxEmail.attempts > 0)).where(waiting))).one()
    metrics.OUTBOX_BACKLOG.labels("email").set(backlog)
    metrics.OUTBOX_FAILING.labels("email").set(failing)


async def run_worker(
    database: Database,
    target: SmtpTarget,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    interval: float = 5.0,
    *,
    sender: str = "bureau@localhost",
    issuer: str | None = None,
) -> None:
    """Delivers due mail every `interval` seconds until `stop` is set.

    `bureau outbox deliver` (without --once) runs it until interrupted; `bureau serve` runs it
    in the background when SMTP_URL is set, and sets `stop` on shutdown. A pass that fails
    (say, the database is briefly unavailable) is logged and the loop goes on.
    """
    log.info("outbox: delivering to %s every %ss", target, interval)
    await run_periodically(lambda now: deliver_due(database, target, now, sender=sender, issuer=issuer),
                           clock, stop, interval, log)


async def _membership_stands(session: AsyncSession, link: InvitationToken, now: datetime) -> bool:
    """R104: a link of a membership deactivated (or ended) since the email was queued is not sent."""
    if link.membership_id is None:
        return True
    membership = await session.get(Membership, link.membership_id)
    return membership is not None and grants_access(membership.status, membership.access_ends_at, now)
