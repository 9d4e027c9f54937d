"""R20: the email outbox is delivered over real SMTP (aiosmtpd on loopback); nothing lost, nothing sent twice.

Other tests share the session database and may leave unsent mail behind, which these passes
also deliver; every assertion is about this test's own recipients.
"""

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from models import OutboxEmail
from models.db import Database, connect
from models.migrate import migrate
from resolvers.outbox import (
    BACKOFF_CAP,
    DeliveryReport,
    SmtpTarget,
    backoff,
    deliver_due,
    parse_smtp_url,
    run_worker,
)
from resolvers.runtime import Runtime
from tests.api.client import Api, unique
from tests.api.mail import MailServer, free_port


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def addresses(count: int = 1) -> list[str]:
    return [f"{unique('outbox')}.{secrets.token_hex(3)}@mail.example" for _ in range(count)]


async def queue(database: Database, to: list[str], *, due: datetime | None) -> None:
    async with database.sessions.begin() as session:
        session.add_all(OutboxEmail(to_address=address, subject="Welcome to bureau", body=f"Hello {address}\n",
                                    next_attempt_at=due) for address in to)


async def rows(database: Database, to: list[str]) -> list[OutboxEmail]:
    async with database.sessions() as session:
        found = await session.scalars(select(OutboxEmail).where(OutboxEmail.to_address.in_(to))
                                      .order_by(OutboxEmail.id))
        return list(found)


# --------------------------------------------------------------------------- delivery


async def test_due_mail_is_delivered_once_and_marked_sent(runtime: Runtime, mail: MailServer) -> None:
    [due, never_tried, later] = to = addresses(3)
    at = now()
    await queue(runtime.database, [due], due=at - timedelta(seconds=1))
    await queue(runtime.database, [never_tried], due=None)
    await queue(runtime.database, [later], due=at + timedelta(minutes=10))

    report = await deliver_due(runtime.database, mail.target, at, sender="Bureau <noreply@bureau.example>")
    assert report.sent >= 2
    assert len(mail.recorder.to(due)) == 1 and len(mail.recorder.to(never_tried)) == 1
    assert mail.recorder.to(later) == []

    message = mail.recorder.to(due)[0]
    assert message["To"] == due and message["Subject"] == "Welcome to bureau"
    assert message["From"] == "Bureau <noreply@bureau.example>"
    assert message["Date"] and message["Message-ID"].endswith("@bureau.example>")
    assert message.get_content().rstrip() == f"Hello {due}"

    by_address = {row.to_address: row for row in await rows(runtime.database, to)}
    assert by_address[due].sent_at == at and by_address[due].attempts == 0 and by_address[due].last_error is None
    assert by_address[never_tried].sent_at == at
    assert by_address[later].sent_at is None and by_address[later].attempts == 0

    # A second pass sends nothing again; the not-yet-due one goes once its time has come.
    await deliver_due(runtime.database, mail.target, at)
    await deliver_due(runtime.database, mail.target, at + timedelta(minutes=11))
    await deliver_due(runtime.database, mail.target, at + timedelta(minutes=12))
    assert [len(mail.recorder.to(address)) for address in to] == [1, 1, 1]


async def test_welcome_email_from_an_invitation_is_delivered(api: Api, runtime: Runtime, mail: MailServer) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=5)
    [email] = addresses()
    invited = await api.invite(firm.admin, company_id, email=email)
    assert invited["welcomeEmailQueued"] is True

    await deliver_due(runtime.database, mail.target, runtime.now() + timedelta(seconds=1))
    [message] = mail.recorder.to(email)
    assert message["Subject"].startswith("You are invited to")
    assert "/invitations/" in message.get_content()
    [row] = await rows(runtime.database, [email])
    assert row.sent_at is not None


async def test_an_invitation_revoked_before_its_email_went_out_is_not_sent(api: Api, runtime: Runtime,
                                                                          mail: MailServer) -> None:
    """R104: deactivating an invitation whose welcome email still waits discards the email."""
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=5)
    [email] = addresses()
    invited = await api.invite(firm.admin, company_id, email=email)
    await api.mutate("deactivateMembership", {"membershipId": invited["membership"]["id"]}, "membership { id }",
                     token=firm.admin)
    await deliver_due(runtime.database, mail.target, runtime.now() + timedelta(seconds=1))
    assert mail.recorder.to(email) == []
    [row] = await rows(runtime.database, [email])
    assert row.sent_at is None and row.discarded_at is not None


async def test_a_refusing_server_loses_nothing_and_the_retry_sends_once(runtime: Runtime, mail: MailServer) -> None:
    [address] = to = addresses()
    at = now()
    await queue(runtime.database, to, due=at)
    mail.recorder.refuse = "451 4.3.0 try later"

    report = await deliver_due(runtime.database, mail.target, at)
    assert report.failed >= 1
    [row] = await rows(runtime.database, to)
    assert row.sent_at is None and row.attempts == 1
    assert row.last_error is not None and "451" in row.last_error
    assert row.next_attempt_at is not None
    assert at + timedelta(seconds=30) <= row.next_attempt_at <= at + timedelta(seconds=33)

    # Not due again before the backoff has passed, even if the server is back.
    mail.recorder.refuse = None
    await deliver_due(runtime.database, mail.target, at + timedelta(seconds=10))
    assert mail.recorder.to(address) == []
    [row] = await rows(runtime.database, to)
    assert row.attempts == 1 and row.sent_at is None

    later = at + timedelta(minutes=1)
    await deliver_due(runtime.database, mail.target, later)
    await deliver_due(runtime.database, mail.target, later + timedelta(hours=2))
    assert len(mail.recorder.to(address)) == 1
    [row] = await rows(runtime.database, to)
    assert row.sent_at == later and row.attempts == 1 and row.last_error is None


async def test_the_backoff_doubles_up_to_an_hour(runtime: Runtime, mail: MailServer) -> None:
    assert timedelta(seconds=30) <= backoff(1) <= timedelta(seconds=33)
    assert timedelta(seconds=60) <= backoff(2) <= timedelta(seconds=66)
    assert timedelta(seconds=240) <= backoff(4) <= timedelta(seconds=264)
    assert BACKOFF_CAP <= backoff(50) <= BACKOFF_CAP * 1.1

    [address] = to = addresses()
    at = now()
    await queue(runtime.database, to, due=at)
    mail.recorder.refuse = "451 4.3.0 try later"
    await deliver_due(runtime.database, mail.target, at)
    [row] = await rows(runtime.database, to)
    assert row.next_attempt_at is not None
    second = row.next_attempt_at
    await deliver_due(runtime.database, mail.target, second)
    [row] = await rows(runtime.database, to)
    assert row.attempts == 2 and row.next_attempt_at is not None
    assert second + timedelta(seconds=60) <= row.next_attempt_at <= second + timedelta(seconds=66)
    assert mail.recorder.to(address) == []


async def test_a_mail_server_that_is_down_loses_nothing(runtime: Runtime) -> None:
    to = addresses(3)
    at = now()
    await queue(runtime.database, to, due=at)
    port = free_port()  # nothing listens there
    down = parse_smtp_url(f"smtp://mailer:s3cr%2Ft@127.0.0.1:{port}")

    report = await deliver_due(runtime.database, down, at)
    assert report.sent == 0 and report.failed >= 3
    for row in await rows(runtime.database, to):
        assert row.sent_at is None and row.attempts == 1
        assert row.next_attempt_at is not None and row.next_attempt_at > at
        assert row.last_error and "s3cr" not in row.last_error

    with MailServer() as mail:
        await deliver_due(runtime.database, mail.target, at + timedelta(minutes=1))
        await deliver_due(runtime.database, mail.target, at + timedelta(minutes=2))
        assert [len(mail.recorder.to(address)) for address in to] == [1, 1, 1]
    assert all(row.sent_at == at + timedelta(minutes=1) for row in await rows(runtime.database, to))


async def test_two_passes_at_once_send_each_message_exactly_once(runtime: Runtime, mail: MailServer) -> None:
    assert not runtime.database.is_sqlite
    to = addresses(24)
    at = now()
    await queue(runtime.database, to, due=at)
    mail.recorder.delay = 0.01  # both passes are mid-send at the same time

    reports = await asyncio.gather(
        deliver_due(runtime.database, mail.target, at, batch_size=5),
        deliver_due(runtime.database, mail.target, at, batch_size=5),
    )
    assert all(report.sent > 0 for report in reports), reports  # both really worked
    assert [len(mail.recorder.to(address)) for address in to] == [1] * len(to)
    assert all(row.sent_at == at and row.attempts == 0 for row in await rows(runtime.database, to))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_credentials_are_percent_decoded_and_never_stored(runtime: Runtime) -> None:
    seen: list[tuple[str, str]] = []

    def text(value: str | bytes) -> str:
        return value.decode() if isinstance(value, bytes) else value

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = text(auth_data.login), text(auth_data.password)
        seen.append((login, password))
        # handled=False: the server answers (235 or 535) itself.
        return AuthResult(success=(login, password) == ("mailer@bureau", "p@ss:w/rd"), handled=False)

    with MailServer(authenticator=authenticator, auth_require_tls=False, auth_required=True) as mail:
        [wrong, right] = addresses(2)
        at = now()
        await queue(runtime.database, [wrong], due=at)
        bad = parse_smtp_url(f"smtp://mailer%40bureau:wrong-secret@127.0.0.1:{mail.port}")
        await deliver_due(runtime.database, bad, at)
        [row] = await rows(runtime.database, [wrong])
        assert row.sent_at is None and row.attempts == 1
        assert row.last_error and "535" in row.last_error and "wrong-secret" not in row.last_error

        await queue(runtime.database, [right], due=at)
        good = parse_smtp_url(f"smtp://mailer%40bureau:p%40ss%3Aw%2Frd@127.0.0.1:{mail.port}")
        await deliver_due(runtime.database, good, at + timedelta(minutes=1))
        assert len(mail.recorder.to(right)) == 1 and len(mail.recorder.to(wrong)) == 1
        assert ("mailer@bureau", "p@ss:w/rd") in seen


async def test_the_worker_delivers_until_stopped(runtime: Runtime, mail: MailServer) -> None:
    [address] = to = addresses()
    await queue(runtime.database, to, due=now())
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime.database, mail.target, lambda: datetime.now(UTC), stop,
                                            interval=0.05))
    for _ in range(200):
        if mail.recorder.to(address):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert len(mail.recorder.to(address)) == 1


async def test_delivery_on_sqlite(tmp_path: Path, mail: MailServer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    await migrate(url)
    database = connect(url)
    try:
        to = addresses(3)
        at = now()
        await queue(database, to, due=at)
        mail.recorder.refuse = "451 4.3.0 try later"
        assert await deliver_due(database, mail.target, at) == DeliveryReport(sent=0, failed=3)
        mail.recorder.refuse = None
        assert await deliver_due(database, mail.target, at) == DeliveryReport()
        assert await deliver_due(database, mail.target, at + timedelta(minutes=1)) == DeliveryReport(sent=3)
        assert await deliver_due(database, mail.target, at + timedelta(minutes=2)) == DeliveryReport()
        assert [len(mail.recorder.to(address)) for address in to] == [1, 1, 1]
    finally:
        await database.dispose()


# --------------------------------------------------------------------------- SMTP_URL


def test_parse_smtp_url() -> None:
    assert parse_smtp_url("smtp://mail.example:2525") == SmtpTarget("mail.example", 2525)
    assert parse_smtp_url("smtp://mail.example") == SmtpTarget("mail.example", 25, start_tls=None)
    secure = parse_smtp_url("smtps://u:p@mail.example")
    assert secure == SmtpTarget("mail.example", 465, "u", "p", use_tls=True, start_tls=False)
    target = parse_smtp_url("SMTP://me%40corp.example:p%40ss%3Aw%2Frd%25@Mail.Example:587/")
    assert (target.username, target.password, target.host, target.port) == (
        "me@corp.example", "p@ss:w/rd%", "mail.example", 587)
    assert target.use_tls is False and target.start_tls is None  # STARTTLS when offered
    assert parse_smtp_url("smtp://[::1]:25").host == "::1"
    assert parse_smtp_url("smtp://u:@h:25").password == ""
    # The password shows neither in the repr nor in the printable form.
    assert "w/rd" not in repr(target) and "w%2Frd" not in repr(target)
    assert str(target) == "smtp://me@corp.example@mail.example:587"


@pytest.mark.parametrize("url", [
    "", "   ", "mail.example:25", "http://mail.example", "smtp://", "smtp://:25", "smtp://u:secret@mail.example:x",
    "smtp://mail.example:99999", "smtp://mail.example:0", "smtp://mail.example/path", "smtp://mail.example?x=1",
    "smtp://user@mail.example", "smtp://:secret@mail.example",
])
def test_parse_smtp_url_rejects(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_smtp_url(url)
    assert "secret" not in str(raised.value)


async def test_bureau_outbox_deliver_once_sends_queued_mail(tmp_path: Any, mail: MailServer) -> None:
    """The command line end to end: an SQLite file with queued mail, `bureau outbox deliver --once`."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from models.db import connect
    from models.migrate import migrate

    root = Path(__file__).resolve().parents[2]  # noqa: ASYNC240 - a path, not I/O
    url = f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}"
    await migrate(url)
    database = connect(url)
    to = addresses(2)
    try:
        await queue(database, to, due=None)
    finally:
        await database.dispose()
    env = {**os.environ, "DATABASE_URL": url, "SMTP_URL": f"smtp://127.0.0.1:{mail.port}", "PYTHONPATH": str(root)}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli", "outbox", "deliver", "--once"],
                                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"sent": 2, "failed": 0}
    assert all(len(mail.recorder.to(address)) == 1 for address in to)
